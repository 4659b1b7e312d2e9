"""The pump drivers the station knows, by the configuration's ``protocol`` value.

The station core (``edge/``) imports this module and nothing of any one protocol: it reads a
line's and a pump's protocol keys through ``Driver.read_line``/``read_pump``, checks them with
``Driver.check`` and opens lines with ``Driver.open_line`` (``domain.equipment.Driver``).
A new protocol is one package under ``drivers/`` and one entry here.
"""

from __future__ import annotations

import importlib
from functools import cache

from domain.equipment import Driver

__all__ = ["driver", "names"]

#: protocol -> the module whose ``DRIVER`` drives it. Loaded when a line asks for it: a station
#: carries the code of the protocols it drives only.
MODULES: dict[str, str] = {
    "dart": "drivers.dart.driver",
    "gilbarco": "drivers.gilbarco.driver",
    "ifsf": "drivers.ifsf.driver",
}


@cache
def driver(name: str) -> Driver:
    """The driver for ``protocol = name``; KeyError for an unknown protocol."""
    found: Driver = importlib.import_module(MODULES[name]).DRIVER
    return found


def names() -> list[str]:
    return sorted(MODULES)
