"""One logging setup for our code, openleadr and BAC0/bacpypes3.

openleadr sets its logger to INFO at import (a line per poll) and BAC0 installs its own handlers:
both are brought under this one root handler. Under systemd (``JOURNAL_STREAM`` set) journald
stamps each line itself, so our format leaves the timestamp out.
"""

from __future__ import annotations

import logging
import os
import sys


def setup(level: str = "INFO") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    if os.environ.get("JOURNAL_STREAM"):
        fmt = "%(levelname)s %(name)s: %(message)s"
    else:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(numeric)
    # Library chatter only at DEBUG: openleadr logs every poll at INFO, bacpypes3/aiohttp are noisy.
    library_level = numeric if numeric <= logging.DEBUG else logging.WARNING
    for name in ("openleadr", "bacpypes3", "BAC0_Root", "aiohttp", "apscheduler"):
        logging.getLogger(name).setLevel(library_level)
