"""The INI front-end: reads config.ini the way a technician typed it and explains what it cannot read.

configparser alone gives messages a technician cannot act on: a UTF-8 byte order mark (Windows
Notepad) becomes "File contains no section headers", a syntax error names no line, and an indented
line silently becomes part of the previous key's value (then reported as a bad number). This module
accepts the BOM, reports syntax errors as ``config.ini: line N: ...``, explains indented lines, and
offers the "did you mean" suggestions settings.py appends to unknown names. Nothing here knows the
gateway's keys: settings.py and the adapters' parts do the checking.
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

# configparser's own syntax, the one ConfigParser(inline_comment_prefixes=(";", "#")) reads.
_SECTION_RE = re.compile(r"^\[(?P<name>[^\]]+)\]")
_KEY_RE = re.compile(r"^(?P<key>[^=:\s][^=:]*?)\s*[=:]")
_COMMENT_PREFIXES = ("#", ";")


class ConfigError(Exception):
    """The config cannot be used: ``problems`` holds every one-line message (``<file>: ...``). The one
    error for config problems, whether the file cannot be read as INI (with line numbers) or a value
    is wrong (settings.py)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Continuation:
    """An indented line that configparser appended to the value of the key above it."""

    line: int
    text: str
    section: str
    key: str
    key_line: int


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice (case-insensitive), or "" when none is close."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[match[0]]!r}?" if match else ""


def new_parser() -> configparser.ConfigParser:
    return configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None, strict=True)


def decode(data: bytes, name: str) -> str:
    """UTF-8 text, with or without a byte order mark."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{name}: line {line}: not UTF-8 text (save the file as UTF-8)"]) from None


def continuations(text: str) -> list[Continuation]:
    """Indented, non-comment lines that follow a ``key = value`` line (configparser's multi-line
    values). The gateway has no multi-line values, so each one is a mistake to explain."""
    found: list[Continuation] = []
    section = ""
    key: Optional[tuple[str, int, int]] = None  # (name, line, indentation) of the last key line
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if not stripped:
            continue  # configparser keeps blank lines inside a value; they do not end it
        if stripped.startswith(_COMMENT_PREFIXES):
            continue
        indent = len(raw) - len(raw.lstrip())
        if key is not None and indent > key[2]:
            # configparser's rule: deeper than the key line means "more of its value"
            found.append(Continuation(number, stripped, section, key[0], key[1]))
            continue
        m = _SECTION_RE.match(stripped)
        if m:
            section, key = m.group("name").strip(), None
            continue
        m = _KEY_RE.match(stripped)
        key = (m.group("key").strip().lower(), number, indent) if m else None
    return found


def _line(lines: list[str], number: int) -> str:
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def parse(text: str, name: str) -> configparser.ConfigParser:
    """Parse ``text``; ConfigError with line numbers on a syntax error or an indented line."""
    parser = new_parser()
    lines = text.split("\n")  # as configparser counts them
    try:
        parser.read_string(text, source=name)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError([f"{name}: line {exc.lineno}: {_line(lines, exc.lineno)!r} comes before "
                        "any [section] header"]) from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError([f"{name}: line {exc.lineno}: [{exc.section}]: section appears twice"]) from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError([f"{name}: line {exc.lineno}: [{exc.section}] {exc.option}: key appears twice "
                        "in this section"]) from None
    except configparser.ParsingError as exc:
        raise ConfigError([f"{name}: line {lineno}: {_line(lines, lineno)!r} is not a [section] header, a "
                        "'key = value' line or a comment" for lineno, _ in exc.errors]) from None
    except configparser.Error as exc:
        raise ConfigError([f"{name}: not an INI file: {str(exc).splitlines()[0]}"]) from None
    problems = [f"{name}: line {c.line}: [{c.section}] {c.key}: the indented line {c.text!r} is read as "
                f"more text of {c.key!r} (line {c.key_line}); remove the leading spaces"
                for c in continuations(text)]
    if problems:
        raise ConfigError(problems)
    return parser


def read(path: str | os.PathLike[str], name: Optional[str] = None) -> configparser.ConfigParser:
    """Read and parse the file at ``path``; ConfigError (one line per problem) when it cannot be used."""
    shown = name or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([f"{shown}: cannot read file: {exc.strerror or exc}"]) from None
    return parse(decode(data, shown), shown)
