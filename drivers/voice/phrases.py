"""What the forecourt says, in the words a Chinese station uses. Pure functions.

Every number is spoken as Chinese numerals (`numbers`), and names from the configuration
("92号汽油") have their digits read the way people read them (九十二号汽油). The full table is in
docs/voice.md.
"""

from __future__ import annotations

from decimal import Decimal

from .numbers import integer, litres, money, spoken_name

Amount = Decimal | str | int


def nozzle(number: int) -> str:
    return f"{integer(number)}号枪"


def pump(number: int) -> str:
    return f"{integer(number)}号加油机"


def tank(number: int) -> str:
    return f"{integer(number)}号油罐"


def nozzle_authorized(nozzle_number: int) -> str:
    return f"{nozzle(nozzle_number)}已授权，请加油"


def pump_authorized(pump_number: int) -> str:
    """A whole pump authorized, before any nozzle is lifted."""
    return f"{pump(pump_number)}已授权，请加油"


def order_ready(nozzle_number: int | None) -> str:
    """An app order is authorized at the pump: the driver may lift the nozzle."""
    where = nozzle(nozzle_number) if nozzle_number is not None else ""
    return f"{where}手机订单已授权，请提枪加油"


def sale_completed(nozzle_number: int, amount: Amount, *, grade: str | None = None,
                   volume: Amount | None = None) -> str:
    what = spoken_name(grade) if grade else ""
    if volume is not None:
        what += litres(volume)
    middle = f"，{what}" if what else ""
    return f"{nozzle(nozzle_number)}加油完成{middle}，金额{money(amount)}"


def pump_alarm(pump_number: int, problem: str | None = None) -> str:
    return f"注意，{pump(pump_number)}{problem or '报警'}，请立即处理"


def low_stock(tank_number: int, grade: str | None = None,
              volume: Amount | None = None) -> str:
    what = spoken_name(grade) if grade else ""
    left = f"，剩余{litres(volume)}" if volume is not None else ""
    return f"{tank(tank_number)}{what}库存不足{left}，请及时订油"


def tank_problem(tank_number: int, problem: str, *, urgent: bool) -> str:
    if urgent:
        return f"注意，{tank(tank_number)}{problem}，请立即处理"
    return f"{tank(tank_number)}{problem}，请检查"
