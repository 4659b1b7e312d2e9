"""Credit accounts (挂账) in the ledger: accounts, their cards and plates, and each use.

A use is held in the same transaction that checks the account's limits against the day's
uses (held, authorized and sold alike), so two pumps authorizing on one account at once cannot
both pass a limit that has room for one. The pump then authorizes; the use is bound to the
authorization, becomes sold with its sale (paid on account, signed by the signer), or is
released when the authorization ends without one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.accounts import AccountRefused
from domain.ids import IdMaker
from domain.model import Event, Preset
from edge.store import events
from edge.store.books import BooksError, BooksStore
from edge.store.codec import dec_text, dump_json, load_json, opt_dec_text, text_time, time_text

IDENTIFIER_KINDS = ("card", "plate")


def normalize(kind: str, value: str) -> str:
    """Plates and cards as typed at the pump: no spaces or dashes, upper case."""
    return "".join(value.split()).replace("-", "").replace("·", "").upper()


@dataclass(frozen=True)
class Limits:
    grades: tuple[str, ...] | None = None  # None: every grade
    amount: Decimal | None = None  # yuan a day
    volume: Decimal | None = None  # litres a day
    fills: int | None = None  # fills a day

    def to_api(self) -> dict[str, Any]:
        return {"grades": None if self.grades is None else list(self.grades),
                "amount": opt_dec_text(self.amount), "volume": opt_dec_text(self.volume),
                "fills": self.fills}

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Limits:
        def dec(key: str) -> Decimal | None:
            value = data.get(key)
            return None if value is None else Decimal(str(value))
        grades = data.get("grades")
        return cls(grades=None if grades is None else tuple(grades), amount=dec("amount"),
                   volume=dec("volume"), fills=data.get("fills"))


def _account(conn: sqlite3.Connection, account_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT id, name, status, limits, blocked_reason, source, created_at, "
                       "updated_at FROM credit_accounts WHERE id = ?", (account_id,)).fetchone()
    if row is None:
        return None
    idents = conn.execute("SELECT kind, value FROM credit_identifiers WHERE account_id = ? "
                          "ORDER BY kind, value", (account_id,)).fetchall()
    return {"id": row[0], "name": row[1], "status": row[2], "limits": json.loads(row[3]),
            "blocked_reason": row[4], "source": row[5], "created_at": text_time(row[6]),
            "updated_at": text_time(row[7]),
            "cards": [v for k, v in idents if k == "card"],
            "plates": [v for k, v in idents if k == "plate"]}


def upsert(conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, account_id: str,
           name: str, cards: Sequence[str], plates: Sequence[str], limits: Limits,
           source: str) -> dict[str, Any]:
    # The same plate typed twice ("新A 123", "新a123") is one plate.
    wanted = sorted({("card", normalize("card", c)) for c in cards} | {
        ("plate", normalize("plate", p)) for p in plates})
    if any(not value for _, value in wanted):
        raise BooksError("invalid_identifier", "a card or plate must not be empty", 422)
    for kind, value in wanted:
        owner = conn.execute("SELECT account_id FROM credit_identifiers WHERE kind = ? AND "
                             "value = ?", (kind, value)).fetchone()
        if owner is not None and owner[0] != account_id:
            raise BooksError("identifier_taken", f"{kind} {value} belongs to account {owner[0]}")
    existing = _account(conn, account_id)
    limits_text = json.dumps(limits.to_api(), ensure_ascii=False)
    if existing is None:
        conn.execute("INSERT INTO credit_accounts (id, name, status, limits, source, created_at, "
                     "updated_at) VALUES (?, ?, 'active', ?, ?, ?, ?)",
                     (account_id, name, limits_text, source, time_text(now), time_text(now)))
    else:
        conn.execute("UPDATE credit_accounts SET name = ?, limits = ?, source = ?, "
                     "updated_at = ? WHERE id = ?",
                     (name, limits_text, source, time_text(now), account_id))
    conn.execute("DELETE FROM credit_identifiers WHERE account_id = ?", (account_id,))
    conn.executemany("INSERT INTO credit_identifiers (kind, value, account_id) VALUES (?, ?, ?)",
                     [(k, v, account_id) for k, v in wanted])
    return _changed(conn, ids, now, account_id, "created" if existing is None else "updated")


def _changed(conn: sqlite3.Connection, ids: IdMaker, now: datetime, account_id: str,
             change: str) -> dict[str, Any]:
    found = _account(conn, account_id)
    assert found is not None
    data = load_json(dump_json({"change": change, **found}))
    events.append(conn, ids, now, "account.changed", data)
    return found


def set_blocked(conn: sqlite3.Connection, ids: IdMaker, now: datetime, account_id: str, *,
                blocked: bool, reason: str | None) -> dict[str, Any]:
    if _account(conn, account_id) is None:
        raise BooksError("unknown_account", f"there is no credit account {account_id}", 404)
    conn.execute("UPDATE credit_accounts SET status = ?, blocked_reason = ?, updated_at = ? "
                 "WHERE id = ?", ("blocked" if blocked else "active",
                                  reason if blocked else None, time_text(now), account_id))
    return _changed(conn, ids, now, account_id, "blocked" if blocked else "unblocked")


def find(conn: sqlite3.Connection, kind: str, value: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT account_id FROM credit_identifiers WHERE kind = ? AND value = ?",
                       (kind, normalize(kind, value))).fetchone()
    return None if row is None else _account(conn, row[0])


def _used_today(conn: sqlite3.Connection, account_id: str, day: str,
                price: Decimal) -> tuple[int, Decimal, Decimal]:
    """(fills, yuan, litres) the day's uses take: a sold use its sale, a held or authorized
    one its allowance (a volume allowance valued at `price`, an amount one in litres at it)."""
    fills, amount, volume = 0, Decimal(0), Decimal(0)
    for status, a_amount, a_volume, s_amount, s_volume in conn.execute(
            "SELECT status, allowance_amount, allowance_volume, amount, volume FROM "
            "account_uses WHERE account_id = ? AND day = ? AND status != 'released'",
            (account_id, day)):
        fills += 1
        if status == "sold":
            amount += Decimal(s_amount)
            volume += Decimal(s_volume)
        elif a_amount is not None:
            amount += Decimal(a_amount)
            volume += Decimal(a_amount) / price
        elif a_volume is not None:
            volume += Decimal(a_volume)
            amount += Decimal(a_volume) * price
    return fills, amount, volume


def hold(conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, day: date, kind: str,
         value: str, signer: str, user: str | None, nozzle: int, grade: str, grade_name: str,
         price: Decimal, preset: Preset | None) -> tuple[str, Preset | None]:
    """Checks the account and holds a use: (use id, the preset the pump gets). Raises
    AccountRefused with the reason in Chinese."""
    account = find(conn, kind, value)
    what = "挂账卡" if kind == "card" else "车牌"
    if account is None:
        raise AccountRefused("account_unknown", f"{what} {normalize(kind, value)} 未登记挂账，"
                             "不能挂账加油 (no credit account for this card or plate)")
    name = account["name"]
    if account["status"] != "active":
        why = account["blocked_reason"]
        raise AccountRefused("account_blocked", f"挂账单位「{name}」已停用"
                             f"{'：' + why if why else ''} (the account is blocked)")
    limits = Limits.from_api(account["limits"])
    if limits.grades is not None and grade not in limits.grades:
        raise AccountRefused("account_grade", f"挂账单位「{name}」不能加{grade_name} "
                             "(grade not allowed on the account)")
    fills, amount, volume = _used_today(conn, account["id"], day.isoformat(), price)
    if limits.fills is not None and fills >= limits.fills:
        raise AccountRefused("account_daily_fills", f"挂账单位「{name}」今日加油次数已达上限"
                             f"（{limits.fills} 次），请明日再来或改用其他方式付款 "
                             "(daily fills limit reached)")
    room_amount = None if limits.amount is None else limits.amount - amount
    room_volume = None if limits.volume is None else limits.volume - volume
    if room_amount is not None and room_amount <= 0:
        raise AccountRefused("account_daily_amount", f"挂账单位「{name}」今日挂账金额已达上限"
                             f"（{limits.amount} 元），请改用其他方式付款 "
                             "(daily amount limit reached)")
    if room_volume is not None and room_volume <= 0:
        raise AccountRefused("account_daily_volume", f"挂账单位「{name}」今日挂账油量已达上限"
                             f"（{limits.volume} 升），请改用其他方式付款 "
                             "(daily volume limit reached)")
    preset = _within(preset, room_amount, room_volume, price, name)
    use_id = ids.new(now)
    conn.execute(
        "INSERT INTO account_uses (id, account_id, day, status, identifier, signer, user_name, "
        "nozzle, grade, allowance_amount, allowance_volume, created_at, updated_at) "
        "VALUES (?, ?, ?, 'held', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (use_id, account["id"], day.isoformat(), f"{kind}:{normalize(kind, value)}", signer,
         user, nozzle, grade,
         dec_text(preset.value) if preset is not None and preset.kind == "amount" else None,
         dec_text(preset.value) if preset is not None and preset.kind == "volume" else None,
         time_text(now),
         time_text(now)),
    )  # fmt: skip
    return use_id, preset


def _within(preset: Preset | None, room_amount: Decimal | None, room_volume: Decimal | None,
            price: Decimal, name: str) -> Preset | None:
    """The preset within what is left of the day's limits; a fill-up is preset to it."""
    cent, centilitre = Decimal("0.01"), Decimal("0.01")
    if preset is not None:
        cost = preset.value if preset.kind == "amount" else preset.value * price
        litres = preset.value if preset.kind == "volume" else preset.value / price
        if room_amount is not None and cost > room_amount:
            raise AccountRefused("account_daily_amount", f"挂账单位「{name}」今日还可挂账 "
                                 f"{room_amount.quantize(cent)} 元，预置金额超出 "
                                 "(the preset is beyond what is left of the daily amount)")
        if room_volume is not None and litres > room_volume:
            raise AccountRefused("account_daily_volume", f"挂账单位「{name}」今日还可加 "
                                 f"{room_volume.quantize(centilitre)} 升，预置油量超出 "
                                 "(the preset is beyond what is left of the daily volume)")
        return preset
    if room_amount is None and room_volume is None:
        return None  # no money or volume limit: a fill-up stays one
    candidates = []
    if room_amount is not None:
        candidates.append(room_amount.quantize(cent, rounding="ROUND_DOWN"))
    if room_volume is not None:
        candidates.append((room_volume * price).quantize(cent, rounding="ROUND_DOWN"))
    return Preset("amount", min(candidates))


def bind(conn: sqlite3.Connection, now: datetime, use_id: str, auth_id: str) -> None:
    conn.execute("UPDATE account_uses SET status = 'authorized', authorization_id = ?, "
                 "updated_at = ? WHERE id = ? AND status = 'held'",
                 (auth_id, time_text(now), use_id))


def release(conn: sqlite3.Connection, now: datetime, *, use_id: str | None = None,
            auth_id: str | None = None) -> None:
    column, key = ("id", use_id) if use_id is not None else ("authorization_id", auth_id)
    conn.execute(f"UPDATE account_uses SET status = 'released', updated_at = ? WHERE {column} = ? "
                 "AND status IN ('held', 'authorized')", (time_text(now), key))


def sold(conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, auth_id: str, sale_id: str,
         volume: Decimal, amount: Decimal) -> dict[str, Any] | None:
    """The sale of an account's authorization: the use sold, the sale paid on account (the
    payment carries the signer's name). None when the authorization was no account's."""
    row = conn.execute("SELECT id, account_id, signer, status FROM account_uses WHERE "
                       "authorization_id = ?", (auth_id,)).fetchone()
    if row is None or row[3] == "sold":
        return None
    use_id, account_id, signer, _ = row
    conn.execute("UPDATE account_uses SET status = 'sold', sale_id = ?, volume = ?, amount = ?, "
                 "updated_at = ? WHERE id = ?",
                 (sale_id, dec_text(volume), dec_text(amount), time_text(now), use_id))
    if amount > 0:
        due = conn.execute("SELECT paid FROM sales WHERE id = ?", (sale_id,)).fetchone()
        if due is not None and not due[0]:
            conn.execute("INSERT INTO payments (id, sale_id, method, amount, user_name, "
                         "created_at) VALUES (?, ?, 'account', ?, ?, ?)",
                         (ids.new(now), sale_id, dec_text(amount), signer, time_text(now)))
            conn.execute("UPDATE sales SET paid = 1 WHERE id = ?", (sale_id,))
    data = {"account_id": account_id, "sale_id": sale_id, "signer": signer,
            "volume": format(volume, "f"), "amount": format(amount, "f")}
    events.append(conn, ids, now, "account.sale", data)
    return data


def statement(conn: sqlite3.Connection, account_id: str, start: datetime, end: datetime
              ) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT u.sale_id, u.identifier, u.signer, u.user_name, s.nozzle, s.grade, s.price, "
        "s.volume, s.amount, s.ended_at FROM account_uses u JOIN sales s ON s.id = u.sale_id "
        "WHERE u.account_id = ? AND u.status = 'sold' AND s.ended_at >= ? AND s.ended_at < ? "
        "ORDER BY s.ended_at, s.seq", (account_id, time_text(start), time_text(end)))
    return [{"sale_id": r[0], "identifier": r[1], "signer": r[2], "user": r[3], "nozzle": r[4],
             "grade": r[5], "price": r[6], "volume": r[7], "amount": r[8],
             "ended_at": text_time(r[9])} for r in rows]


class Accounts:
    """Credit accounts' reads and writes, each in one transaction of the station's store."""

    def __init__(self, books: BooksStore) -> None:
        self.books = books
        self.store = books.store

    def upsert(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.write_with(lambda conn, now: upsert(
            conn, self.books.ids, now, **kwargs))

    def set_blocked(self, account_id: str, *, blocked: bool, reason: str | None
                    ) -> dict[str, Any]:
        return self.store.write_with(lambda conn, now: set_blocked(
            conn, self.books.ids, now, account_id, blocked=blocked, reason=reason))

    def get(self, account_id: str) -> dict[str, Any] | None:
        return self.store.read_with(_account, account_id)

    def all(self) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            ids = [r[0] for r in conn.execute("SELECT id FROM credit_accounts ORDER BY id")]
            return [a for a in (_account(conn, i) for i in ids) if a is not None]
        return self.store.read_with(read)

    def hold(self, **kwargs: Any) -> tuple[str, Preset | None]:
        return self.store.write_with(lambda conn, now: hold(
            conn, self.books.ids, now, **kwargs))

    def bind(self, use_id: str, auth_id: str) -> None:
        self.store.write_with(bind, use_id, auth_id)

    def release(self, *, use_id: str | None = None, auth_id: str | None = None) -> None:
        self.store.write_with(lambda conn, now: release(
            conn, now, use_id=use_id, auth_id=auth_id))

    def sold(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.store.write_with(lambda conn, now: sold(
            conn, self.books.ids, now, **kwargs))

    def statement(self, account_id: str, start: datetime, end: datetime
                  ) -> list[dict[str, Any]]:
        return self.store.read_with(statement, account_id, start, end)


__all__ = ["IDENTIFIER_KINDS", "Accounts", "Event", "Limits", "normalize"]
