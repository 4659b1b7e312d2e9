"""The example messages of PROTOCOLS.md's IFSF section, as bytes (the notes' own hex)."""

from __future__ import annotations

READ_FP_STATE_ALL = bytes.fromhex("01 03 02 01 00 0E 00 03 01 20 14")
ANSWER_FP1_IDLE = bytes.fromhex("02 01 01 02 00 29 00 05 01 21 14 01 03")
ACK_NO_TRANSACTIONS = bytes.fromhex("02 01 01 04 00 E0 00 06 04 21 20 00 00 00")
OPEN_FP1 = bytes.fromhex("01 01 02 01 00 41 00 04 01 21 3C 00")
CLEAR_TRANSACTION_1621 = bytes.fromhex("01 09 02 01 00 5B 00 07 04 21 21 16 21 1E 00")
ACK_ACCEPTED = bytes.fromhex("02 01 01 03 00 FB 00 03 01 21 00")
ACK_RELEASE_REFUSED = bytes.fromhex(
    "02 01 01 03 00 EC 00 0B 01 21 05 1B 00 1E 00 19 00 3E 03")
FP_STATUS_CLOSED = bytes.fromhex(
    "02 01 01 01 00 80 00 0E 01 21 64 00 14 01 02 15 01 00 16 02 00 00")
RUNNING_TRANSACTION = bytes.fromhex(
    "02 01 01 03 00 80 00 12 01 21 66 00 22 05 06 00 00 01 41 23 05 06 00 00 00 17")
ERROR_PRICE_CHANGED = bytes.fromhex(
    "02 01 01 01 00 80 00 0C 03 21 41 99 64 00 01 01 99 05 01 02")

ALL = (
    READ_FP_STATE_ALL,
    ANSWER_FP1_IDLE,
    ACK_NO_TRANSACTIONS,
    OPEN_FP1,
    CLEAR_TRANSACTION_1621,
    ACK_ACCEPTED,
    ACK_RELEASE_REFUSED,
    FP_STATUS_CLOSED,
    RUNNING_TRANSACTION,
    ERROR_PRICE_CHANGED,
)

# Numbers (control byte + BCD) from the notes.
PRICE_4_90 = bytes.fromhex("04 00 04 90")
TOTAL_21222_84 = bytes.fromhex("0A 00 00 02 12 22 84")
MINUS_12_34 = bytes.fromhex("82 12 34")
PREPAY_100_000 = bytes.fromhex("05 00 10 00 00")

# The price change write's address: product 00000008, fuelling mode 1.
PRODUCT_8_MODE_1 = bytes.fromhex("61 00 00 00 08 11")
