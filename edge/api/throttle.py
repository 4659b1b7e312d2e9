"""How often a PIN may be tried, from where, for whom: the login throttle (no I/O).

Three kinds of counter, all in memory (a restart forgets them: nothing a stranger types is
written to disk per try, and no lock outlives the daemon). Times are seconds on a monotonic
clock, passed in by the caller.

- **Per address and name** (the pair): `pair_attempts` wrong PINs from one address for one
  name are free; then that address waits before trying that name again, `first_wait` (30 s)
  after the first one over, doubling with each further wrong PIN, up to `longest_wait`. Only
  that address waits: the manager at the office PC is not kept out by someone typing wrong
  PINs at a tablet.
- **Per address** (whatever the names): `address_attempts` wrong PINs, then the same doubling
  waits for every name from that address. One address cannot spray names or PINs.
- **Per name** (whatever the addresses): when `user_addresses` or more addresses are over their
  free attempts for one name (a guessing attack spread over addresses), addresses that have
  never logged in are refused for that name until enough of those addresses' counters are
  forgotten; an address that has logged in (any user) since the daemon started is not refused
  but slowed, to one try per `trusted_interval`. One stranger alone, at one address, never
  triggers this.

Every try counts as wrong when it starts (`begin`) and is forgiven when the PIN was right
(`succeeded`): a hundred concurrent tries cannot all slip in before the first is counted.
Names are counted whether a user of that name exists or not, so the answers never tell which
names exist. A counter untouched for `forget_after` starts again; the tables are bounded
(`max_entries`, least recently used dropped first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar

_K = TypeVar("_K", str, tuple[str, str])


@dataclass(frozen=True)
class ThrottlePolicy:
    pair_attempts: int = 5
    address_attempts: int = 20
    user_addresses: int = 3
    first_wait: float = 30.0
    longest_wait: float = 15 * 60.0
    trusted_interval: float = 5.0
    forget_after: float = 60 * 60.0
    trust_for: float = 30 * 24 * 3600.0
    max_entries: int = 10_000


@dataclass(frozen=True)
class Verdict:
    """May this try go ahead? When not, `retry_after` seconds from now it may; `reason`
    (`pair`, `address`, `user`) is for logs and metrics, never for the answer."""

    allowed: bool
    retry_after: float = 0.0
    reason: str | None = None


ALLOWED = Verdict(True)


@dataclass
class _Count:
    wrong: int = 0
    last: float = 0.0  # when the last wrong PIN was counted (or the last try, for a pair)

    def free_at(self, free: int, policy: ThrottlePolicy) -> float:
        """When the next try may start."""
        if self.wrong < free:
            return self.last
        over = min(self.wrong - free, 30)  # 2**30 s is beyond any cap
        return self.last + min(policy.longest_wait, policy.first_wait * 2.0**over)


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        self._pairs: OrderedDict[tuple[str, str], _Count] = OrderedDict()
        self._addresses: OrderedDict[str, _Count] = OrderedDict()
        self._trusted: OrderedDict[str, float] = OrderedDict()  # address -> last good login
        # name -> the addresses whose pair for it is over its free attempts
        self._over: dict[str, set[str]] = {}

    # ------------------------------------------------------------- deciding

    def check(self, now: float, address: str, name: str) -> Verdict:
        """May `address` try a PIN for `name` now? Counts nothing (forgotten counters go)."""
        policy = self.policy
        waits: list[tuple[float, str]] = []
        counted = self._live(self._addresses, address, now)
        if counted is not None:
            waits.append((counted.free_at(policy.address_attempts, policy), "address"))
        pair = self._live(self._pairs, (address, name), now)
        if pair is not None:
            waits.append((pair.free_at(policy.pair_attempts, policy), "pair"))
        attack_ends = self._attack_ends(now, name)
        if attack_ends is not None:
            if self.trusted(now, address):
                if pair is not None:
                    waits.append((pair.last + policy.trusted_interval, "user"))
            else:
                waits.append((attack_ends, "user"))
        until, reason = max(waits, default=(now, None))
        if until <= now:
            return ALLOWED
        return Verdict(False, until - now, reason)

    def trusted(self, now: float, address: str) -> bool:
        since = self._trusted.get(address)
        return since is not None and now - since < self.policy.trust_for

    def name_status(self, now: float, name: str) -> tuple[int, float | None]:
        """(addresses over their free attempts for `name`, when addresses that never logged in
        may try it again; None while they may)."""
        addresses = self._over_addresses(now, name)
        return len(addresses), self._attack_ends(now, name)

    # ------------------------------------------------------------- counting

    def begin(self, now: float, address: str, name: str) -> None:
        """A try starts: counted as a wrong PIN until `succeeded` says otherwise."""
        policy = self.policy
        counted = self._touch(self._addresses, address, now)
        counted.wrong += 1
        counted.last = now
        pair = self._touch(self._pairs, (address, name), now)
        pair.wrong += 1
        pair.last = now
        if pair.wrong >= policy.pair_attempts:
            self._over.setdefault(name, set()).add(address)
        self._bound()

    def succeeded(self, now: float, address: str, name: str) -> None:
        """The PIN was right: that try is forgiven, the pair starts again, the address is
        trusted from now on (earlier wrong PINs of that address for other names still count)."""
        counted = self._addresses.get(address)
        if counted is not None:
            counted.wrong = max(0, counted.wrong - 1)
        self._drop_pair((address, name))
        self._trusted[address] = now
        self._trusted.move_to_end(address)
        self._bound()

    def unlock(self, name: str) -> int:
        """A person lifted the throttling of `name` (every address's pair, and the per-name
        refusal); returns how many addresses were waiting for it."""
        pairs = [key for key in self._pairs if key[1] == name]
        for key in pairs:
            self._drop_pair(key)
        self._over.pop(name, None)
        return len(pairs)

    # ------------------------------------------------------------- internals

    def _over_addresses(self, now: float, name: str) -> list[float]:
        """The last try of each address over its free attempts for `name`, oldest first."""
        lasts = []
        for address in list(self._over.get(name, ())):
            pair = self._live(self._pairs, (address, name), now)
            if pair is None:
                continue  # forgotten: _live dropped it
            lasts.append(pair.last)
        return sorted(lasts)

    def _attack_ends(self, now: float, name: str) -> float | None:
        lasts = self._over_addresses(now, name)
        need = self.policy.user_addresses
        if len(lasts) < need:
            return None
        # It ends when all but need - 1 of those addresses are forgotten.
        return lasts[len(lasts) - need] + self.policy.forget_after

    def _live(self, table: OrderedDict[_K, _Count], key: _K, now: float) -> _Count | None:
        counted = table.get(key)
        if counted is not None and now - counted.last >= self.policy.forget_after:
            del table[key]
            if isinstance(key, tuple):
                self._unmark(key)
            return None
        return counted

    def _touch(self, table: OrderedDict[_K, _Count], key: _K, now: float) -> _Count:
        counted = self._live(table, key, now)
        if counted is None:
            counted = table[key] = _Count()
        table.move_to_end(key)
        return counted

    def _drop_pair(self, key: tuple[str, str]) -> None:
        if self._pairs.pop(key, None) is not None:
            self._unmark(key)

    def _unmark(self, key: tuple[str, str]) -> None:
        address, name = key
        over = self._over.get(name)
        if over is not None:
            over.discard(address)
            if not over:
                del self._over[name]

    def _bound(self) -> None:
        limit = self.policy.max_entries
        while len(self._pairs) > limit:
            self._drop_pair(next(iter(self._pairs)))
        while len(self._addresses) > limit:
            self._addresses.popitem(last=False)
        while len(self._trusted) > limit:
            self._trusted.popitem(last=False)
