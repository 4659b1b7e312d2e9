"""Numbers as a Mandarin speaker says them: money in 元角分, litres with 点, names with 号.

The speech engine reads digits one by one or in English-style groups, so every number is turned
into Chinese numerals before it reaches the engine: "287.50" becomes 二百八十七元五角, the way
a cashier says it. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["digits", "integer", "litres", "money", "number", "spoken_name"]

_DIGITS = "零一二三四五六七八九"
_SECTION_UNITS = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))
# Every four digits take a new unit: 1,0000 is 一万, 1,0000,0000 is 一亿.
_GROUP_UNITS = ("", "万", "亿")
_GROUP = 10_000
_LARGEST = _GROUP ** len(_GROUP_UNITS) - 1
_CENT = Decimal("0.01")
_NEGATIVE = "负"


def _decimal(value: Decimal | str | int) -> Decimal:
    # Floats are refused like everywhere else in the station: 7.1 as a float is not 7.10 yuan.
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(f"expected Decimal, str or int, got {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _section(value: int) -> str:
    """0 < value < 10000; a zero between two spoken digits is said once (1005: 一千零五)."""
    out: list[str] = []
    gap = False
    for unit, name in _SECTION_UNITS:
        digit = value // unit % 10
        if digit == 0:
            gap = gap or bool(out)
            continue
        if gap:
            out.append("零")
            gap = False
        out.append(_DIGITS[digit] + name)
    return "".join(out)


def integer(value: int) -> str:
    """A whole number: 287 -> 二百八十七, 10 -> 十, 1005 -> 一千零五, 10010 -> 一万零一十."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected int, got {type(value).__name__}")
    if value < 0:
        return _NEGATIVE + integer(-value)
    if value == 0:
        return _DIGITS[0]
    if value > _LARGEST:
        raise ValueError(f"{value} is too large to speak")
    groups = []
    rest = value
    while rest:
        groups.append(rest % _GROUP)
        rest //= _GROUP
    out: list[str] = []
    gap = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            gap = gap or bool(out)
            continue
        # A group under 1000 after a higher one starts with a silent zero: 1,0005 is 一万零五.
        if out and (gap or group < 1000):
            out.append("零")
        out.append(_section(group) + _GROUP_UNITS[index])
        gap = False
    spoken = "".join(out)
    # People say 十五 and 十万, not 一十五 and 一十万; inside a number the 一 stays (一百一十).
    return spoken[1:] if spoken.startswith("一十") else spoken


def digits(text: str) -> str:
    """Digit by digit, as codes and numbers with leading zeros are read: "007" -> 零零七."""
    if not text.isdecimal() or not text.isascii():
        raise ValueError(f"not a string of digits: {text!r}")
    return "".join(_DIGITS[int(d)] for d in text)


def number(value: Decimal | str | int, places: int = 2) -> str:
    """A decimal number rounded half-up to `places`, the fraction read digit by digit and
    trailing zeros left out: 40.25 -> 四十点二五, 40.00 -> 四十, 0.75 -> 零点七五."""
    amount = _decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = _NEGATIVE if amount < 0 else ""
    whole, _, fraction = format(abs(amount), "f").partition(".")
    fraction = fraction.rstrip("0")
    spoken = sign + integer(int(whole))
    return spoken + "点" + digits(fraction) if fraction else spoken


def litres(value: Decimal | str | int) -> str:
    """A volume in litres: 40.25 -> 四十点二五升."""
    return number(value, 2) + "升"


def money(value: Decimal | str | int) -> str:
    """An amount in yuan, rounded half-up to the fen: 287.50 -> 二百八十七元五角,
    300.00 -> 三百元, 0.05 -> 五分, 10.05 -> 十元零五分, 0 -> 零元."""
    amount = _decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP)
    sign = _NEGATIVE if amount < 0 else ""
    fen_total = int(abs(amount) * 100)
    yuan, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    if fen_total == 0:
        return "零元"
    out = [sign]
    if yuan:
        out.append(integer(yuan) + "元")
    if jiao:
        out.append(_DIGITS[jiao] + "角")
    if fen:
        # 十元零五分: the missing 角 is said as 零 between yuan and fen.
        out.append(("零" if yuan and not jiao else "") + _DIGITS[fen] + "分")
    return "".join(out)


# A run of digits, with a minus sign when it does not follow a letter or digit ("-10号柴油").
_NUMBER_IN_NAME = re.compile(r"(?<![0-9A-Za-z])-(?=[0-9])|[0-9]+")


def _spoken_run(match: re.Match[str]) -> str:
    run = match.group()
    if run == "-":
        return _NEGATIVE
    if len(run) > 1 and run.startswith("0"):
        return digits(run)
    return integer(int(run))


def spoken_name(name: str) -> str:
    """A name with its numbers as people say them: "92号汽油" -> 九十二号汽油,
    "0号柴油" -> 零号柴油, "-10号柴油" -> 负十号柴油, "3号枪" -> 三号枪."""
    return _NUMBER_IN_NAME.sub(_spoken_run, name)
