"""Tank gauges over Modbus (PROTOCOLS.md, "Tank gauges").

``registers`` decodes values from 16-bit registers by a configured map, ``strapping`` turns a
level into litres, ``probe`` is one tank's map, ``delivery`` finds deliveries in readings (all
sans-I/O), ``url`` parses gauge addresses, ``link`` is the asyncio shell around pymodbus and
``poller`` reads one gauge's probes through it.
"""

from .delivery import DeliveryDetector, DeliveryFound, Phase, StockPoint
from .link import (
    EXCEPTION_NAMES,
    GaugeError,
    GaugeRefused,
    GaugeTimeout,
    GaugeUnreachable,
    ModbusLink,
)
from .poller import GaugeDataError, GaugePoller, PollResult
from .probe import ProbeMap, ProbeValues, Quantity
from .registers import (
    MAX_READ,
    Block,
    FunctionCode,
    Register,
    RegisterError,
    RegisterKind,
    ValueType,
    WordOrder,
    plan_reads,
    words_of,
)
from .strapping import StrappingTable
from .url import MODBUS_TCP_PORT, GaugeUrl, Transport

__all__ = [
    "EXCEPTION_NAMES",
    "MAX_READ",
    "MODBUS_TCP_PORT",
    "Block",
    "DeliveryDetector",
    "DeliveryFound",
    "FunctionCode",
    "GaugeDataError",
    "GaugeError",
    "GaugePoller",
    "GaugeRefused",
    "GaugeTimeout",
    "GaugeUnreachable",
    "GaugeUrl",
    "ModbusLink",
    "Phase",
    "PollResult",
    "ProbeMap",
    "ProbeValues",
    "Quantity",
    "Register",
    "RegisterError",
    "RegisterKind",
    "StockPoint",
    "StrappingTable",
    "Transport",
    "ValueType",
    "WordOrder",
    "plan_reads",
    "words_of",
]
