"""IFSF codec: the notes' example messages decoded from their bytes, numbers, addresses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ifsf import (
    Ack,
    AllFuellingPoints,
    Answer,
    Calculator,
    CommunicationService,
    DataItem,
    ErrorAddress,
    ErrorCode,
    ErrorReport,
    FpId,
    FpState,
    FpStatus,
    FuellingPointAddress,
    IfsfLocalError,
    IfsfProtocolError,
    ItemCode,
    Lna,
    MessageStatus,
    Meter,
    NozzleAddress,
    NozzleForm,
    ProductModeAddress,
    ProductSlot,
    Read,
    RunningTransaction,
    TransactionAddress,
    TrId,
    UnknownAddress,
    Unsolicited,
    Write,
    decode_address,
    decode_bcd,
    decode_message,
    decode_number,
    encode_bcd,
    encode_number,
)
from drivers.ifsf.codec import decode_items
from drivers.ifsf.messages import decode_nozzle, nozzles_of_mask, release_items

from . import vectors as v

CONTROLLER = Lna(2, 1)


# ------------------------------------------------------------------ the notes' messages


def test_read_of_every_fp_state() -> None:
    message = decode_message(v.READ_FP_STATE_ALL)
    assert message == Read(Lna(1, 3), CONTROLLER, 14, AllFuellingPoints(), (FpId.FP_STATE,))


def test_answer_fp1_idle() -> None:
    message = decode_message(v.ANSWER_FP1_IDLE)
    assert isinstance(message, Answer)
    assert (message.destination, message.source, message.token) == (CONTROLLER, Lna(1, 2), 9)
    assert message.address == FuellingPointAddress(1)
    assert message.items == (DataItem(FpId.FP_STATE, b"\x03"),)
    assert FpStatus.from_items(message.items).state is FpState.IDLE


def test_ack_of_all_transactions_none_unpaid() -> None:
    message = decode_message(v.ACK_NO_TRANSACTIONS)
    assert isinstance(message, Ack)
    assert message.token == 0 and message.accepted
    # One dispenser answers "all transactions of FP 1" on 21 20 00 00.
    assert message.address == TransactionAddress(1, 0, marker=0x20)
    assert message.address.all_unpaid


def test_open_fp_write() -> None:
    message = decode_message(v.OPEN_FP1)
    assert message == Write(Lna(1, 1), CONTROLLER, 1, FuellingPointAddress(1),
                            (DataItem(FpId.OPEN_FP),))


def test_clear_transaction_write() -> None:
    message = decode_message(v.CLEAR_TRANSACTION_1621)
    assert message == Write(Lna(1, 9), CONTROLLER, 27, TransactionAddress(1, 1621),
                            (DataItem(TrId.CLEAR_TRANSACTION),))


def test_accepted_ack() -> None:
    message = decode_message(v.ACK_ACCEPTED)
    assert message == Ack(CONTROLLER, Lna(1, 3), 27, FuellingPointAddress(1))
    assert isinstance(message, Ack) and message.accepted and message.refused() == {}


def test_release_refused_with_code_3() -> None:
    message = decode_message(v.ACK_RELEASE_REFUSED)
    assert isinstance(message, Ack)
    assert message.token == 12
    assert message.status == MessageStatus.NOT_ALL_ACCEPTED
    assert message.codes == ((27, 0), (30, 0), (25, 0), (62, 3))
    assert message.refused() == {FpId.RELEASE_FP: ItemCode.REFUSED_IN_STATE}


def test_fp_status_message() -> None:
    message = decode_message(v.FP_STATUS_CLOSED)
    assert isinstance(message, Unsolicited)
    assert not message.ack_required and message.token == 0
    assert message.message_id == FpId.FP_STATUS_MESSAGE
    status = FpStatus.from_items(message.items)
    assert status.state is FpState.CLOSED
    assert status.lifted == frozenset()
    assert status.controller is None


def test_running_transaction_message() -> None:
    message = decode_message(v.RUNNING_TRANSACTION)
    assert isinstance(message, Unsolicited)
    assert message.message_id == FpId.RUNNING_TRANSACTION_MESSAGE
    running = RunningTransaction.from_items(message.items, NozzleForm.NUMBER)
    assert running.amount == Decimal("1.41") and str(running.amount) == "1.41"
    assert running.volume == Decimal("0.17") and str(running.volume) == "0.17"
    assert running.nozzle is None


def test_error_message_price_changed() -> None:
    message = decode_message(v.ERROR_PRICE_CHANGED)
    assert isinstance(message, Unsolicited)
    assert message.address == ErrorAddress(1, ErrorCode.PRICE_CHANGED)
    report = ErrorReport.from_items(0x99, message.items[1:])
    assert report.error_type == ErrorCode.PRICE_CHANGED
    assert report.state is FpState.CLOSED


@pytest.mark.parametrize("code", [0x35, 0x36, 0x37, 0x99])
def test_error_messages_with_the_price_change_results(code: int) -> None:
    # The notes' error message with each of the price change results in place of 0x99.
    data = bytes.fromhex(f"02 01 01 01 00 80 00 0C 03 22 41 {code:02X} 64 00 01 01 {code:02X}"
                         " 05 01 01")
    message = decode_message(data)
    assert isinstance(message, Unsolicited)
    assert message.address == ErrorAddress(2, code)
    report = ErrorReport.from_items(code, message.items)
    assert ErrorCode(report.error_type) is ErrorCode(code)
    assert report.state is FpState.INOPERATIVE


@pytest.mark.parametrize("data", v.ALL)
def test_encoder_reproduces_every_vector(data: bytes) -> None:
    assert decode_message(data).to_bytes() == data


# ------------------------------------------------------------------ numbers


def test_numbers_from_the_notes() -> None:
    assert decode_number(v.PRICE_4_90) == Decimal("4.90")
    assert str(decode_number(v.PRICE_4_90)) == "4.90"
    assert decode_number(v.TOTAL_21222_84) == Decimal("21222.84")
    assert decode_number(v.MINUS_12_34) == Decimal("-12.34")
    # The control byte is honoured: three decimals, kept.
    assert str(decode_number(v.PREPAY_100_000)) == "100.000"


def test_number_encoding_matches_the_notes() -> None:
    assert encode_number(Decimal("4.90"), 4) == v.PRICE_4_90
    assert encode_number(Decimal("21222.84"), 7) == v.TOTAL_21222_84
    assert encode_number(Decimal("-12.34"), 3) == v.MINUS_12_34
    assert encode_number(Decimal("100"), 5, 3) == v.PREPAY_100_000
    assert encode_number(Decimal("1.41"), 5) == bytes.fromhex("06 00 00 01 41")


def test_number_refusals() -> None:
    with pytest.raises(IfsfLocalError):
        encode_number(Decimal("1.234"), 5, 2)  # never rounded
    with pytest.raises(IfsfLocalError):
        encode_number(Decimal("1000000"), 5, 2)  # 9 digits in 8
    with pytest.raises(IfsfLocalError):
        encode_number(Decimal("NaN"), 5)
    with pytest.raises(IfsfProtocolError):
        decode_number(b"\x06")
    with pytest.raises(IfsfProtocolError):
        decode_number(bytes.fromhex("06 00 00 0A 00"))


def test_number_with_more_digits_before_the_point_than_the_field() -> None:
    value = decode_number(bytes.fromhex("0A 12 34"))
    assert value == Decimal("1234000000") and str(value) == "1234000000"


@given(st.decimals(min_value=Decimal("-999999.99"), max_value=Decimal("999999.99"), places=2))
def test_number_round_trip(value: Decimal) -> None:
    assert decode_number(encode_number(value, 5, 2)) == value


def test_bcd() -> None:
    assert encode_bcd(1621, 2) == b"\x16\x21"
    assert decode_bcd(b"\x00\x00\x00\x08") == 8
    with pytest.raises(IfsfProtocolError):
        decode_bcd(b"\x1a")
    with pytest.raises(IfsfLocalError):
        encode_bcd(10000, 2)


# ------------------------------------------------------------------ addresses


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("00", CommunicationService()),
        ("01", Calculator()),
        ("20", AllFuellingPoints()),
        ("21", FuellingPointAddress(1)),
        ("24", FuellingPointAddress(4)),
        ("22 13", NozzleAddress(2, 3)),
        ("41", ProductSlot(1)),
        ("48", ProductSlot(8)),
        ("61 00 00 00 08 11", ProductModeAddress(8, 1)),
        ("83", Meter(3)),
        ("21 21 16 21", TransactionAddress(1, 1621)),
        ("21 21 00 00", TransactionAddress(1, 0)),
        ("23 41 37", ErrorAddress(3, 0x37)),
        ("25", UnknownAddress(b"\x25")),
        ("21 30", UnknownAddress(b"\x21\x30")),
        ("99 99 99 99 99", UnknownAddress(bytes.fromhex("99 99 99 99 99"))),
    ],
)
def test_addresses(raw: str, address: object) -> None:
    data = bytes.fromhex(raw)
    assert decode_address(data) == address
    assert decode_address(data).to_bytes() == data


def test_price_change_address_from_the_notes() -> None:
    assert ProductModeAddress(8, 1).to_bytes() == v.PRODUCT_8_MODE_1


def test_address_refusals() -> None:
    with pytest.raises(IfsfLocalError):
        FuellingPointAddress(5)
    with pytest.raises(IfsfLocalError):
        NozzleAddress(1, 9)
    with pytest.raises(IfsfLocalError):
        TransactionAddress(1, 10000)
    with pytest.raises(IfsfProtocolError):
        decode_address(b"")
    with pytest.raises(IfsfProtocolError):
        decode_address(bytes.fromhex("21 21 1A 00"))


# ------------------------------------------------------------------ items


def test_long_item_length() -> None:
    value = bytes(range(256)) * 2
    item = DataItem(0xC9, value)
    data = item.to_bytes()
    assert data[:4] == bytes((0xC9, 0xFF, 0x02, 0x00))
    assert decode_items(data + DataItem(5, b"\x01").to_bytes()) == (item, DataItem(5, b"\x01"))
    # 255 bytes exactly already needs the long form: 255 is the marker.
    assert DataItem(1, b"\x00" * 255).to_bytes()[:4] == b"\x01\xff\x00\xff"


def test_items_that_overrun_are_refused() -> None:
    with pytest.raises(IfsfProtocolError):
        decode_items(bytes.fromhex("22 05 06 00"))
    with pytest.raises(IfsfProtocolError):
        decode_items(bytes.fromhex("22"))
    with pytest.raises(IfsfProtocolError):
        decode_items(bytes.fromhex("22 FF 00"))


def test_lenient_command_with_a_length_byte_of_one() -> None:
    # Some test tools send a command with length 1: it is an ordinary item on the wire.
    data = bytes.fromhex("01 01 02 01 00 41 00 05 01 21 3C 01 00")
    message = decode_message(data)
    assert isinstance(message, Write)
    assert message.items == (DataItem(FpId.OPEN_FP, b"\x00"),)


def test_message_refusals() -> None:
    with pytest.raises(IfsfProtocolError, match="unknown message type"):
        decode_message(bytes.fromhex("02 01 01 01 00 A0 00 03 01 21 00"))
    with pytest.raises(IfsfProtocolError, match="M_Lg"):
        decode_message(v.ACK_ACCEPTED[:-1])
    with pytest.raises(IfsfProtocolError, match="Ad_Lg"):
        decode_message(bytes.fromhex("02 01 01 01 00 E0 00 02 05 21"))
    with pytest.raises(IfsfProtocolError, match="status"):
        decode_message(bytes.fromhex("02 01 01 01 00 E0 00 02 01 21"))
    with pytest.raises(IfsfProtocolError, match="odd"):
        decode_message(bytes.fromhex("02 01 01 01 00 E0 00 06 01 21 05 3E 03 01"))


def test_an_ack_with_codes_only_for_status_5() -> None:
    with pytest.raises(IfsfLocalError):
        Ack(CONTROLLER, Lna(1, 1), 1, FuellingPointAddress(1), 0, ((62, 3),))


def test_ifsf_mc_is_kept() -> None:
    data = bytes.fromhex("01 01 02 01 02 01 00 03 01 00 01")
    message = decode_message(data)
    assert message.mc == 2 and message.address == CommunicationService()
    assert message.to_bytes() == data


# ------------------------------------------------------------------ meanings


def test_nozzle_forms_differ_from_nozzle_3_up() -> None:
    assert decode_nozzle(b"\x01", NozzleForm.NUMBER) == 1
    assert decode_nozzle(b"\x01", NozzleForm.BITMASK) == 1
    assert decode_nozzle(b"\x02", NozzleForm.BITMASK) == 2
    assert decode_nozzle(b"\x03", NozzleForm.NUMBER) == 3
    assert decode_nozzle(b"\x04", NozzleForm.BITMASK) == 3
    assert decode_nozzle(b"\x80", NozzleForm.BITMASK) == 8
    assert decode_nozzle(b"\x00", NozzleForm.NUMBER) is None
    with pytest.raises(IfsfProtocolError):
        decode_nozzle(b"\x03", NozzleForm.BITMASK)
    with pytest.raises(IfsfProtocolError):
        decode_nozzle(b"\x09", NozzleForm.NUMBER)
    assert nozzles_of_mask(b"\x05") == frozenset({1, 3})


def test_release_items_as_petrochina_sends_them() -> None:
    items = release_items(CONTROLLER, {1, 2}, amount=Decimal("100.00"))
    assert [i.id for i in items] == [27, 25, 30, 62]
    assert items[0].value == bytes.fromhex("06 00 01 00 00")
    assert items[1].value == b"\x03"
    assert items[2].value == b"\x02\x01"
    assert items[3].value == b""
    volume = release_items(CONTROLLER, {3}, volume=Decimal("20"), volume_places=2)
    assert volume[0] == DataItem(FpId.REMOTE_VOLUME_PRESET, bytes.fromhex("06 00 00 20 00"))
    with pytest.raises(IfsfLocalError):
        release_items(CONTROLLER, {1}, amount=Decimal(1), volume=Decimal(1))
