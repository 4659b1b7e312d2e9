"""The pump drivers the station knows, by the configuration's ``protocol`` value.

The station core (``edge/``) imports this module and nothing of any one protocol: it reads a
line's and a pump's protocol keys through ``Driver.read_line``/``read_pump``, checks them with
``Driver.check`` and opens lines with ``Driver.open_line`` (``domain.equipment.Driver``).
A new protocol is one package under ``drivers/`` and one entry here.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.equipment import Driver
from drivers.dart.driver import DRIVER as DART
from drivers.gilbarco.driver import DRIVER as GILBARCO
from drivers.ifsf.driver import DRIVER as IFSF

__all__ = ["DRIVERS", "driver", "names"]

DRIVERS: Mapping[str, Driver] = {d.name: d for d in (DART, GILBARCO, IFSF)}


def driver(name: str) -> Driver:
    """The driver for ``protocol = name``; KeyError for an unknown protocol."""
    return DRIVERS[name]


def names() -> list[str]:
    return sorted(DRIVERS)
