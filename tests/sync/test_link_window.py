"""The link's pure parts, with time as a parameter: the send window, ack parsing, the reconnect
backoff, topic names and the connection options taken from the configuration."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.model import Event
from edge.config import Sync
from sync.mqtt import Backoff, link_options, parse_broker, password_from_file, tls_context
from sync.outbox import Ack, Conflict, Window, parse_ack
from sync.topics import Topics, encode

T = 1000.0  # an arbitrary monotonic time


def ev(seq: int) -> Event:
    return Event(seq=seq, id=f"id-{seq}", type="tank.reading",
                 ts=datetime(2026, 11, 22, 1, 15, tzinfo=UTC), data={"n": seq})


def evs(*seqs: int) -> list[Event]:
    return [ev(seq) for seq in seqs]


def seqs(events: list[Event]) -> list[int]:
    return [event.seq for event in events]


# ------------------------------------------------------------------------------- the window


def test_take_fills_the_window_in_order_and_no_further() -> None:
    window = Window(3, ack_timeout=30)
    assert seqs(window.take(evs(1, 2, 3, 4, 5), T)) == [1, 2, 3]
    assert (window.in_flight, window.room(), window.cursor) == (3, 0, 3)
    assert window.take(evs(4, 5), T) == []
    assert (window.sent, window.resent, window.highest_sent) == (3, 0, 3)


def test_only_acks_free_room_and_a_stale_ack_changes_nothing() -> None:
    window = Window(3, ack_timeout=30)
    window.take(evs(1, 2, 3), T)
    assert window.ack(2) is True
    assert (window.in_flight, window.acked_upto, window.oldest_in_flight) == (1, 2, 3)
    assert seqs(window.take(evs(4, 5, 6), T)) == [4, 5]
    assert window.ack(1) is False  # older than what is known
    assert window.ack(2) is False
    assert window.in_flight == 3


def test_events_already_taken_on_this_connection_are_not_taken_twice() -> None:
    window = Window(5, ack_timeout=30)
    window.take(evs(1, 2), T)
    # The outbox is read after the cursor, but a racing read may still return old rows.
    assert seqs(window.take(evs(2, 3), T)) == [3]


def test_a_restart_sends_everything_unacked_again_from_the_lowest_seq() -> None:
    window = Window(4, ack_timeout=30)
    window.take(evs(1, 2, 3, 4), T)
    window.ack(2)
    window.restart()  # a new connection
    assert (window.cursor, window.in_flight) == (0, 0)
    assert seqs(window.take(evs(3, 4, 5), T + 1)) == [3, 4, 5]
    assert (window.sent, window.resent, window.highest_sent) == (7, 2, 5)


def test_an_event_an_ack_already_covers_is_sent_but_not_waited_for() -> None:
    window = Window(4, ack_timeout=30)
    window.take(evs(1), T)
    window.ack(3)  # the cloud had 2 and 3 from before a restart
    assert seqs(window.take(evs(2, 3, 4), T)) == [2, 3, 4]
    assert (window.in_flight, window.oldest_in_flight) == (1, 4)


def test_the_oldest_in_flight_decides_the_timeout_and_a_timeout_resends_the_window() -> None:
    window = Window(4, ack_timeout=30)
    assert window.next_timeout() is None
    window.take(evs(1, 2), T)
    window.take(evs(3), T + 10)
    assert window.next_timeout() == T + 30
    assert window.handle_timeout(T + 29.9) is False
    window.ack(1)
    assert window.next_timeout() == T + 30  # seq 2 was sent at T too
    window.ack(2)
    assert window.next_timeout() == T + 40
    assert window.handle_timeout(T + 40) is True
    assert (window.cursor, window.in_flight, window.timeouts) == (0, 0, 1)
    assert seqs(window.take(evs(3, 4), T + 40)) == [3, 4]
    assert window.resent == 1


def test_timeouts_in_a_row_back_off_up_to_the_cap_and_progress_resets_them() -> None:
    window = Window(2, ack_timeout=10, ack_timeout_max=35)
    now = T
    waits = []
    for _ in range(4):
        window.take(evs(1, 2), now)
        deadline = window.next_timeout()
        assert deadline is not None
        waits.append(deadline - now)
        now = deadline
        assert window.handle_timeout(now)
    assert waits == [10, 20, 35, 35]
    assert window.stalled == 4
    window.take(evs(1, 2), now)
    window.ack(1)
    assert window.stalled == 0
    assert window.next_timeout() == now + 10


def ev_in(epoch: int, seq: int) -> Event:
    return Event(seq=seq, id=f"id-{epoch}-{seq}", type="tank.reading",
                 ts=datetime(2026, 11, 22, 1, 15, tzinfo=UTC), data={"n": seq}, epoch=epoch)


def test_an_ack_frees_only_the_events_of_its_epoch() -> None:
    """After a restore, events of the old epoch wait ahead of the new epoch's: an ack of the new
    epoch frees the new events only, and an ack of the old one the old ones only."""
    window = Window(8, ack_timeout=30)
    window.take([ev_in(1, 5), ev_in(1, 6), ev_in(2, 7), ev_in(2, 8)], T)
    assert window.ack(8, epoch=2) is True
    assert (window.in_flight, window.oldest_in_flight) == (2, 5)
    assert window.ack(9, epoch=3) is True  # nothing of epoch 3 in flight: nothing freed
    assert window.in_flight == 2
    assert window.ack(6) is True
    assert window.in_flight == 0
    assert window.acked == {1: 6, 2: 8, 3: 9}
    assert window.acked_upto == 9
    # An event of an epoch acked past it is not waited for; of another epoch it is.
    window.rewind()
    window.take([ev_in(2, 8), ev_in(4, 9)], T)
    assert (window.in_flight, window.oldest_in_flight) == (1, 9)


def test_a_rewind_sends_everything_again_without_resetting_the_patience() -> None:
    window = Window(4, ack_timeout=10, ack_timeout_max=100)
    window.take(evs(1, 2), T)
    assert window.handle_timeout(T + 10)
    window.take(evs(1, 2), T + 10)
    window.rewind()
    assert (window.cursor, window.in_flight, window.stalled) == (0, 0, 1)
    window.take(evs(1, 2), T + 11)
    assert window.next_timeout() == T + 31  # still the doubled wait


def test_window_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Window(0, ack_timeout=1)
    with pytest.raises(ValueError):
        Window(1, ack_timeout=0)


@given(st.lists(st.one_of(st.tuples(st.just("commit"), st.integers(1, 5)),
                          st.tuples(st.just("ack"), st.integers(0, 40)),
                          st.tuples(st.just("restart"), st.just(0)),
                          st.tuples(st.just("tick"), st.integers(0, 50))), max_size=60))
def test_whatever_happens_events_go_out_in_order_and_the_window_holds(
        steps: list[tuple[str, int]]) -> None:
    """A model of the publisher loop: the outbox is a list, acks delete from it."""
    window = Window(4, ack_timeout=5)
    outbox: list[int] = []
    last_seq = 0
    now = T
    connection: list[int] = []  # what went out on the current connection
    for action, n in steps:
        if action == "commit":
            outbox += range(last_seq + 1, last_seq + n + 1)
            last_seq += n
        elif action == "ack":
            upto = min(n, window.highest_sent)  # the cloud acks only what it received
            window.ack(upto)
            outbox = [s for s in outbox if s > upto]
        elif action == "restart":
            window.restart()
            connection = []
        else:
            now += n
            if window.handle_timeout(now):
                connection = []
        pending = [s for s in outbox if s > window.cursor][: max(window.room(), 0)]
        sent = seqs(window.take(evs(*pending), now))
        connection += sent
        assert connection == sorted(set(connection))  # in order, once per connection
        assert 0 <= window.in_flight <= 4
        assert all(s in outbox for s in sent)  # only unacked events leave


# ---------------------------------------------------------------------------------- acks


@pytest.mark.parametrize(("payload", "parsed"), [
    (b'{"upto_seq": 0}', Ack(0, 1)),
    (b'{"upto_seq": 17}', Ack(17, 1)),
    (b'{"upto_seq": 17, "epoch": 3}', Ack(17, 3)),
    (b'{"upto_seq":9223372036854775807}', Ack(2**63 - 1, 1)),
    (b'{"v":1,"id":"x","type":"ack","station":"S","ts":"t","data":{"upto_seq":5}}', Ack(5, 1)),
    (b'{"conflict": {"epoch": 1, "seq": 4, "cloud_epoch": 2}}', Conflict(1, 4, 2)),
    (b'{"conflict": {"epoch": 2, "seq": 4}}', Conflict(2, 4, 0)),
    (b'{"data": {"conflict": {"epoch": 1, "seq": 1, "cloud_epoch": 1}}}', Conflict(1, 1, 1)),
    (b'', None), (b'\xff', None), (b'nonsense', None), (b'17', None), (b'[]', None),
    (b'{"upto_seq": -1}', None), (b'{"upto_seq": "5"}', None), (b'{"upto_seq": 5.0}', None),
    (b'{"upto_seq": true}', None), (b'{"upto_seq": null}', None), (b'{}', None),
    (b'{"data": 5}', None), (b'{"upto_seq": 9223372036854775808}', None),
    (b'{"upto_seq": 5, "epoch": 0}', None), (b'{"upto_seq": 5, "epoch": 2147483648}', None),
    (b'{"upto_seq": 5, "epoch": true}', None), (b'{"upto_seq": 5, "epoch": null}', None),
    (b'{"conflict": 1}', None), (b'{"conflict": {"epoch": 1, "seq": 0}}', None),
    (b'{"conflict": {"epoch": 1}}', None), (b'{"conflict": {"seq": 3}}', None),
    (b'{"conflict": {"epoch": 1, "seq": 3, "cloud_epoch": -1}}', None),
    (b'{"conflict": {"epoch": 1, "seq": 9223372036854775808}}', None),
    (b'[' * 100_000, None),
])
def test_parse_ack(payload: bytes, parsed: Ack | Conflict | None) -> None:
    assert parse_ack(payload) == parsed


@given(st.binary(max_size=200))
def test_parse_ack_never_raises(payload: bytes) -> None:
    result = parse_ack(payload)
    assert result is None or isinstance(result, Ack | Conflict)


@given(st.dictionaries(st.sampled_from(["upto_seq", "epoch", "conflict", "seq", "data"]),
                       st.integers() | st.booleans() | st.none() | st.text(max_size=3),
                       max_size=4))
def test_any_parsed_ack_is_within_sqlite_and_epoch_bounds(body: dict[str, object]) -> None:
    result = parse_ack(json.dumps(body).encode())
    if isinstance(result, Ack):
        assert 0 <= result.upto_seq <= 2**63 - 1 and 1 <= result.epoch <= 2**31 - 1


# ------------------------------------------------------------------------------- backoff


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 30.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert 0.25 <= backoff.next_delay() <= 0.5
    for _ in range(2000):  # no overflow however long the outage
        assert backoff.next_delay() <= 30.0


def test_backoff_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)


# ------------------------------------------------------------------------ topics, encoding


def test_topics_follow_the_contract() -> None:
    topics = Topics("XJ-URC-0001")
    assert (topics.status, topics.events, topics.live, topics.replies, topics.commands,
            topics.acks) == (
        "fcc/v1/XJ-URC-0001/status", "fcc/v1/XJ-URC-0001/events", "fcc/v1/XJ-URC-0001/live",
        "fcc/v1/XJ-URC-0001/replies", "fcc/v1/XJ-URC-0001/commands",
        "fcc/v1/XJ-URC-0001/acks")


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x" * 65, "站"])
def test_a_station_id_that_would_break_topics_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Topics(bad)


def test_encode_keeps_chinese_and_exact_decimals() -> None:
    from decimal import Decimal

    assert encode({"name": "92号汽油", "price": Decimal("7.50")}) == \
        '{"name":"92号汽油","price":"7.50"}'.encode()
    with pytest.raises(TypeError):
        encode({"x": object()})


# ------------------------------------------------------------------- options from config


def sync_config(tmp_path: Path, broker: str, **extra: object) -> Sync:
    address = parse_broker(broker)
    key = tmp_path / "cloud.pub"
    key.write_text("unused")
    return Sync(broker=broker, host=address.host, port=address.port, tls=address.tls,
                cloud_public_key=key, **extra)  # type: ignore[arg-type]


def test_parse_broker_defaults_ports_and_refuses_other_schemes() -> None:
    assert tuple(parse_broker("mqtt://broker.example.com")) == ("broker.example.com", 1883, False)
    assert tuple(parse_broker("mqtts://10.0.0.9")) == ("10.0.0.9", 8883, True)
    assert tuple(parse_broker("mqtts://h:9883")) == ("h", 9883, True)
    for bad in ("http://h", "h:1883", "mqtt://user:pw@h", "mqtt://h/path"):
        with pytest.raises(ValueError):
            parse_broker(bad)


def test_password_file_loses_only_its_line_end(tmp_path: Path) -> None:
    path = tmp_path / "mqtt.pass"
    path.write_text(" s3cret pass \r\n", "utf-8")
    assert password_from_file(path) == " s3cret pass "
    assert password_from_file(None) is None


def test_plain_mqtt_has_no_tls_and_options_carry_the_login(tmp_path: Path) -> None:
    password = tmp_path / "mqtt.pass"
    password.write_text("pw\n")
    config = sync_config(tmp_path, "mqtt://127.0.0.1:1883", username="XJ-URC-0001",
                         password_file=password)
    assert tls_context(config) is None
    assert link_options(config) == {"broker": "mqtt://127.0.0.1:1883",
                                    "username": "XJ-URC-0001", "password": "pw", "tls": None}


def test_mqtts_verifies_the_broker_by_default(tmp_path: Path) -> None:
    import ssl

    context = tls_context(sync_config(tmp_path, "mqtts://mqtt.example.com"))
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
