"""IFSF numbers: packed BCD, plain and with a control byte (PROTOCOLS.md, IFSF "Numbers").

A *number* is a control byte followed by packed BCD: bit 7 of the control byte is the sign,
bits 6..0 the count of digits before the decimal point. ``04 00 04 90`` is 4.90,
``0A 00 00 02 12 22 84`` is 21222.84, ``82 12 34`` is -12.34 and ``05 00 10 00 00`` is 100.000.
The control byte is honoured on input, whatever the usual decimals are: a controller has been
seen sending a prepay with three decimals. Decoded values are ``Decimal`` with as many places
as the wire had, so a volume keeps the dispenser's own decimals.

Sizes the notes give: volumes and amounts 5 bytes (8 digits), prices 4 bytes (6 digits),
totals 7 bytes (12 digits). Sequence numbers and product numbers are plain BCD, without a
control byte, most significant digit first.
"""

from __future__ import annotations

from decimal import Decimal

from .errors import IfsfLocalError, IfsfProtocolError

__all__ = [
    "AMOUNT_SIZE",
    "PRICE_SIZE",
    "TOTAL_SIZE",
    "VOLUME_SIZE",
    "decode_bcd",
    "decode_number",
    "encode_bcd",
    "encode_number",
]

VOLUME_SIZE = 5
AMOUNT_SIZE = 5
PRICE_SIZE = 4
TOTAL_SIZE = 7

_SIGN = 0x80
_DIGITS_BEFORE = 0x7F


def encode_bcd(value: int, length: int) -> bytes:
    """``value`` as exactly ``length`` bytes of packed BCD, most significant digit first."""
    if length < 1:
        raise IfsfLocalError(f"a BCD field needs at least one byte, not {length}")
    if not 0 <= value < 10 ** (2 * length):
        raise IfsfLocalError(f"{value} does not fit in {length} BCD bytes")
    digits = f"{value:0{2 * length}d}"
    return bytes(int(digits[i : i + 2], 16) for i in range(0, len(digits), 2))


def decode_bcd(data: bytes) -> int:
    """The value of packed BCD ``data``; a nibble above 9 is a protocol error."""
    value = 0
    for byte in data:
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise IfsfProtocolError("bad BCD digit", bytes(data))
        value = value * 100 + high * 10 + low
    return value


def decode_number(data: bytes) -> Decimal:
    """A control byte and packed BCD, as an exact ``Decimal``.

    The exponent is (digits before the point) - (digits on the wire): a control byte that
    claims more digits before the point than the field has scales the value up, as the sender
    said, rather than being refused.
    """
    if len(data) < 2:
        raise IfsfProtocolError("a number needs a control byte and at least one BCD byte", data)
    control = data[0]
    digits = 2 * (len(data) - 1)
    magnitude = decode_bcd(data[1:])
    sign = 1 if control & _SIGN else 0
    before = control & _DIGITS_BEFORE
    exponent = before - digits
    if exponent > 0:  # an integer: no exponent notation in what people read
        return Decimal((sign, tuple(int(d) for d in str(magnitude * 10**exponent)), 0))
    return Decimal((sign, tuple(int(d) for d in f"{magnitude:0{digits}d}"), exponent))


def encode_number(value: Decimal, size: int, places: int | None = None) -> bytes:
    """``value`` as a control byte and ``size - 1`` bytes of BCD, with ``places`` decimals.

    ``places`` defaults to the value's own (``Decimal("4.90")`` has 2). A value that needs
    more places than given, or more digits than the field holds, is refused, never rounded.
    """
    if size < 2:
        raise IfsfLocalError(f"a number needs at least 2 bytes, not {size}")
    if not value.is_finite():
        raise IfsfLocalError(f"{value} is not a number")
    digits = 2 * (size - 1)
    if places is None:
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        places = max(0, -exponent)
    if not 0 <= places <= digits:
        raise IfsfLocalError(f"{places} decimals do not fit in {digits} digits")
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise IfsfLocalError(f"{value} has more than {places} decimals")
    magnitude = abs(int(scaled))
    if magnitude >= 10**digits:
        raise IfsfLocalError(f"{value} does not fit in {digits} digits with {places} decimals")
    control = (digits - places) | (_SIGN if value < 0 else 0)
    return bytes((control,)) + encode_bcd(magnitude, size - 1)
