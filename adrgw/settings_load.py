"""Where config.ini meets the adapters: the one place that knows which adapter reads which part.

adrgw/config checks the sections every gateway has and imports no adapter; each adapter's
``config`` module contributes a ``ConfigPart`` and imports adrgw/config's generic helpers. This
module, beside the composition root (app.py) and the command line, hands the parts to the loader,
so the imports run one way: settings_load -> adapters -> config -> core, and no cycle.
"""

from __future__ import annotations

import configparser
import os

from adrgw.bacnet import config as bacnet_config
from adrgw.config import settings
from adrgw.config.settings import ConfigPart, Settings
from adrgw.openadr import config as openadr_config
from adrgw.openadr3 import config as openadr3_config

# ``[ven] protocol`` -> the OpenADR adapter that reads [ven].
PROTOCOLS: dict[str, ConfigPart] = {openadr_config.PROTOCOL: openadr_config.PART,
                                    openadr3_config.PROTOCOL: openadr3_config.PART}
# The adapters every gateway has whatever its OpenADR protocol: the BACnet side.
PARTS: tuple[ConfigPart, ...] = (bacnet_config.PART,)


def load(path: str | os.PathLike[str]) -> Settings:
    """Read and validate ``path``; ConfigError listing every problem."""
    return settings.load(path, PROTOCOLS, PARTS)


def from_parser(parser: configparser.ConfigParser, name: str = "config.ini") -> Settings:
    """Validate an already parsed file (tests, the demo's printed config)."""
    return settings.from_parser(parser, name, PROTOCOLS, PARTS)
