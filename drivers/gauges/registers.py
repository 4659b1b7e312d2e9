"""Where a tank gauge keeps a value, and how its 16-bit registers become a number.

There is no standard register map for the Modbus level probes and consoles sold in China
(PROTOCOLS.md, "Tank gauges"): the address, the register table (holding or input), the value
type, the scale and, for 32-bit values, the order of the two registers all come from the
configuration. This module is pure: registers in, `Decimal` out, and back (for the simulator).

Modbus Application Protocol V1.1b3: a register is 16 bits sent big-endian (section 4.2);
"read holding registers" (0x03, section 6.3) and "read input registers" (0x04, section 6.4)
return at most 125 registers per request.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import IntEnum, StrEnum

MAX_READ = 125  # registers per read request (sections 6.3 and 6.4)
MAX_ADDRESS = 0xFFFF


class FunctionCode(IntEnum):
    READ_HOLDING_REGISTERS = 0x03
    READ_INPUT_REGISTERS = 0x04


class RegisterKind(StrEnum):
    """The register table a gauge keeps its measurements in."""

    HOLDING = "holding"  # "4x" registers, read with function 0x03
    INPUT = "input"  # "3x" registers, read with function 0x04

    @property
    def function(self) -> FunctionCode:
        if self is RegisterKind.HOLDING:
            return FunctionCode.READ_HOLDING_REGISTERS
        return FunctionCode.READ_INPUT_REGISTERS


class ValueType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"  # IEEE 754 single precision

    @property
    def words(self) -> int:
        return 1 if self in (ValueType.INT16, ValueType.UINT16) else 2


class WordOrder(StrEnum):
    """The order of the two registers of a 32-bit value; A is its most significant byte.

    ABCD: high register first (Modbus's own big-endian habit). CDAB: low register first, as
    many consoles and PLCs send it. Bytes inside a register are always big-endian.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"


# struct format of each type, big-endian.
_FORMATS = {
    ValueType.INT16: ">h",
    ValueType.UINT16: ">H",
    ValueType.INT32: ">i",
    ValueType.UINT32: ">I",
    ValueType.FLOAT32: ">f",
}
# A float32 holds 24 bits of mantissa, a little over 7 significant decimal digits: printing it
# with more would invent digits the gauge never measured (1234.5999755859375 for 1234.6).
_FLOAT32_DIGITS = ".7g"


class RegisterError(ValueError):
    """Registers that hold no usable measurement (NaN, infinity, wrong count)."""


@dataclass(frozen=True)
class Register:
    """One value in a gauge: its wire address (0-based, as in the request), type and scale.

    The measurement is the decoded number times `scale`: a level sent in 0.1 mm steps has
    scale 0.1; a volume sent in cubic metres as float32 has scale 1000 (litres).
    """

    address: int
    type: ValueType = ValueType.UINT16
    scale: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if not 0 <= self.address <= MAX_ADDRESS - (self.words - 1):
            raise ValueError(f"register address {self.address} is out of range")
        if not self.scale.is_finite() or self.scale == 0:
            raise ValueError(f"scale must be a finite number other than 0, not {self.scale}")

    @property
    def words(self) -> int:
        return self.type.words

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.words)

    def decode(self, words: Sequence[int], order: WordOrder = WordOrder.ABCD) -> Decimal:
        """The measurement held in `words` (this register's registers, in address order)."""
        if len(words) != self.words or not all(0 <= w <= 0xFFFF for w in words):
            raise RegisterError(f"{self.type} needs {self.words} 16-bit registers, got {words!r}")
        ordered = list(words)
        if self.words == 2 and order is WordOrder.CDAB:
            ordered.reverse()
        raw = b"".join(w.to_bytes(2, "big") for w in ordered)
        (number,) = struct.unpack(_FORMATS[self.type], raw)
        if isinstance(number, float):
            if not math.isfinite(number):
                raise RegisterError(f"register {self.address} holds {number} (no measurement)")
            value = Decimal(format(number, _FLOAT32_DIGITS))
        else:
            value = Decimal(number)
        return value * self.scale

    def encode(self, value: Decimal, order: WordOrder = WordOrder.ABCD) -> tuple[int, ...]:
        """The registers a gauge would send for `value` (for simulators and tests); integers
        are rounded to the nearest step and clamped to the type's range."""
        raw = value / self.scale
        if self.type is ValueType.FLOAT32:
            packed = struct.pack(">f", float(raw))
        else:
            low, high = _integer_range(self.type)
            whole = int(raw.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
            packed = struct.pack(_FORMATS[self.type], min(max(whole, low), high))
        words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
        if self.words == 2 and order is WordOrder.CDAB:
            words.reverse()
        return tuple(words)


def _integer_range(kind: ValueType) -> tuple[int, int]:
    bits = 16 * kind.words
    if kind in (ValueType.UINT16, ValueType.UINT32):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@dataclass(frozen=True)
class Block:
    """One read request: `count` registers from `start`."""

    start: int
    count: int

    @property
    def addresses(self) -> range:
        return range(self.start, self.start + self.count)


def plan_reads(registers: Iterable[Register], max_count: int = MAX_READ) -> tuple[Block, ...]:
    """As few requests as cover every register, each at most `max_count` long.

    Only registers that touch or overlap are read together: many gauges answer a request that
    spans an address they do not define with "illegal data address" (exception 02), so gaps
    are never read to save a request.
    """
    addresses = sorted({a for register in registers for a in register.addresses})
    blocks: list[Block] = []
    for address in addresses:
        last = blocks[-1] if blocks else None
        if last is not None and address == last.start + last.count and last.count < max_count:
            blocks[-1] = Block(last.start, last.count + 1)
        else:
            blocks.append(Block(address, 1))
    return tuple(blocks)


def words_of(image: Mapping[int, int], register: Register) -> list[int]:
    """The register's words out of an image of read registers (address -> word).

    Raises RegisterError when one of them was not read.
    """
    try:
        return [image[address] for address in register.addresses]
    except KeyError as missing:
        raise RegisterError(f"register {missing.args[0]} was not read") from None
