"""One simulated IFSF dispenser node: its database, the messages it answers and sends.

No I/O and no clock. ``handle(message, now)`` takes a message from the controller and queues
the node's answers, acknowledges and unsolicited messages in ``outbox``; ``tick(now)`` moves
fuel, sends running figures and applies waiting price changes. Written from the field notes
(PROTOCOLS.md, IFSF), with their quirks:

- unsolicited messages are type 4 (no acknowledge), token 0;
- an acknowledge for every write, after the command ran and before the status message it
  causes; message status 5 lists every item of the write with its code;
- reading "all unpaid transactions" gives one answer per transaction, then an acknowledge on
  ``FP 20 00 00`` (as one dispenser does);
- a price is taken only when every fuelling point of the node is Idle or below; the write is
  acknowledged at once and the result comes later as an error message per fuelling point
  (0x99 done, 0x35 unknown product, 0x36 no answer from the board, 0x37 refused: that
  fuelling point goes Inoperative); the price applies only where every result is 0x99;
- Current_Log_Noz and a transaction's nozzle as a number or, configurably, as a bitmask;
- optionally, nozzle totals answered empty while they are zero.

A node is one Censtar TQC board (up to 4 fuelling points) or one nozzle of a DIT board (one
fuelling point with one nozzle; node numbers are station-unique).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from drivers.ifsf.address import (
    Address,
    AllFuellingPoints,
    Calculator,
    CommunicationService,
    ErrorAddress,
    FuellingPointAddress,
    Lna,
    NozzleAddress,
    ProductModeAddress,
    ProductSlot,
    TransactionAddress,
)
from drivers.ifsf.codec import Ack, Answer, DataItem, Message, Read, Unsolicited, Write
from drivers.ifsf.errors import IfsfError
from drivers.ifsf.ids import (
    CONTROLLER_SUBNET,
    DISPENSER_SUBNET,
    ErrorCode,
    ErrorId,
    FpId,
    ItemCode,
    MessageStatus,
    TrId,
)
from drivers.ifsf.messages import NozzleForm
from drivers.ifsf.numbers import decode_number
from simulator.metering import DEFAULT_DECIMALS, Decimals
from simulator.records import SimulationError

from .database import (
    fp_value,
    nozzle_value,
    price_raw,
    price_value,
    product_value,
    transaction_items,
)
from .fuelling_point import SimulatedFp
from .states import PRICE_STATES

__all__ = ["NodeFaults", "SimulatedNode"]

_COMMANDS = {FpId.OPEN_FP, FpId.CLOSE_FP, FpId.RELEASE_FP, FpId.TERMINATE_FP, FpId.SUSPEND_FP,
             FpId.RESUME_FP}


@dataclass
class NodeFaults:
    """What the node does wrong on purpose (the rest is in ``simulator.ifsf.server``)."""

    refuse: dict[int, int] = field(default_factory=dict)  # data id -> item code to answer
    price_result: dict[int, int] = field(default_factory=dict)  # FP -> 0x35/0x36/0x37


class SimulatedNode:
    """Dispenser node ``1.node``: fuelling points, each logical nozzle drawing one product."""

    def __init__(
        self,
        node: int,
        fps: Mapping[int, Mapping[int, int]],
        prices: Mapping[int, Decimal],
        *,
        decimals: Decimals = DEFAULT_DECIMALS,
        nozzle_form: NozzleForm = NozzleForm.NUMBER,
        flow_lpm: Decimal = Decimal("40"),
        ramp_seconds: Decimal = Decimal("1.5"),
        max_unpaid: int = 2,
        release_needs_preset: bool = True,
        first_sequence: int = 1,
        silent_zero_totals: bool = False,
    ) -> None:
        if not fps or not all(1 <= fp <= 4 for fp in fps):
            raise ValueError("a node has fuelling points numbered 1..4")
        products = sorted({p for nozzles in fps.values() for p in nozzles.values()})
        if len(products) > 8:
            raise ValueError("a node holds at most 8 products")
        self.lna = Lna(DISPENSER_SUBNET, node)
        self.decimals = decimals
        self.nozzle_form = nozzle_form
        self.silent_zero_totals = silent_zero_totals
        self.slots = {slot: product for slot, product in enumerate(products, start=1)}
        self.prices: dict[int, int] = {}
        for product, price in prices.items():
            self.prices[product] = price_raw(price, decimals.price)
        self.pending_prices: dict[int, int] = {}
        self.price_results: list[tuple[int, int, int]] = []  # (product, fp, result code)
        self.fps = {
            number: SimulatedFp(
                number, nozzles, self.prices.get, decimals=decimals, flow_lpm=flow_lpm,
                ramp_seconds=ramp_seconds, max_unpaid=max_unpaid,
                release_needs_preset=release_needs_preset, first_sequence=first_sequence)
            for number, nozzles in sorted(fps.items())
        }
        self.controller: Lna | None = None
        self.faults = NodeFaults()
        self.outbox: list[Message] = []
        self.ignored = 0  # messages for another node, or that a dispenser never answers

    # ---- the controller's side -----------------------------------------------------------------

    @property
    def configuration_needed(self) -> bool:
        """The heartbeat's status: some fuelling point was not opened since power-up."""
        return not all(fp.opened for fp in self.fps.values())

    def controller_heard(self, controller: Lna) -> None:
        if controller.subnet == CONTROLLER_SUBNET and self.controller is None:
            self.controller = controller

    def announce(self) -> None:
        """Every fuelling point's status, as a dispenser sends when the controller comes back."""
        for fp in self.fps.values():
            self._status(fp)

    def handle(self, message: Message, now: float) -> None:
        if message.destination != self.lna:
            self.ignored += 1
            return
        self.controller_heard(message.source)
        self.tick(now)
        if isinstance(message, Read):
            self._read(message)
        elif isinstance(message, Write):
            self._write(message, now)
        else:
            self.ignored += 1
        self._drain()

    def tick(self, now: float) -> None:
        for fp in self.fps.values():
            fp.tick(now)
        if self.pending_prices and all(fp.state in PRICE_STATES for fp in self.fps.values()):
            self._apply_prices(now)
        self._drain()

    def take_outbox(self) -> list[Message]:
        out, self.outbox = self.outbox, []
        return out

    # ---- the customer's and the technician's side -----------------------------------------------

    def fp(self, number: int) -> SimulatedFp:
        try:
            return self.fps[number]
        except KeyError:
            raise SimulationError(f"node {self.lna} has no fuelling point {number}") from None

    def power_cycle(self, now: float) -> None:
        for fp in self.fps.values():
            fp.power_cycle(now)
        self.pending_prices.clear()
        self.outbox.clear()

    def after_customer(self) -> None:
        self._drain()

    # ---- reads --------------------------------------------------------------------------------

    def _answer(self, request: Read | Write, address: Address, items: Iterable[DataItem]) -> None:
        self.outbox.append(Answer(request.source, self.lna, request.token, address, tuple(items)))

    def _ack(self, request: Read | Write, address: Address, status: int = 0,
             codes: tuple[tuple[int, int], ...] = ()) -> None:
        self.outbox.append(Ack(request.source, self.lna, request.token, address, status, codes))

    def _read(self, request: Read) -> None:
        address = request.address
        ids = request.ids
        if isinstance(address, AllFuellingPoints):
            for number, fp in self.fps.items():
                self._answer(request, FuellingPointAddress(number),
                             (DataItem(i, fp_value(fp, i, self.nozzle_form)) for i in ids))
            self._ack(request, address)
        elif isinstance(address, FuellingPointAddress) and address.fp in self.fps:
            fp = self.fps[address.fp]
            self._answer(request, address,
                         (DataItem(i, fp_value(fp, i, self.nozzle_form)) for i in ids))
        elif isinstance(address, NozzleAddress) and address.fp in self.fps and (
                address.nozzle in self.fps[address.fp].nozzles):
            fp = self.fps[address.fp]
            self._answer(request, address, (DataItem(i, nozzle_value(
                fp, address.nozzle, i, self._slot_of, self.silent_zero_totals)) for i in ids))
        elif isinstance(address, ProductSlot) and address.slot in self.slots:
            product = self.slots[address.slot]
            self._answer(request, address,
                         (DataItem(i, product_value(product, i)) for i in ids))
        elif isinstance(address, ProductModeAddress) and address.product in self.prices:
            price = self.prices[address.product]
            self._answer(request, address, (DataItem(i, price_value(price, i, self.decimals))
                                            for i in ids))
        elif isinstance(address, TransactionAddress) and address.fp in self.fps:
            self._read_transactions(request, address)
        elif isinstance(address, CommunicationService | Calculator):
            self._answer(request, address, (DataItem(i) for i in ids))
        else:
            self._ack(request, address, MessageStatus.UNKNOWN_ADDRESS)

    def _read_transactions(self, request: Read, address: TransactionAddress) -> None:
        fp = self.fps[address.fp]
        if address.all_unpaid:
            for record in fp.unpaid:
                self._answer(request, TransactionAddress(address.fp, record.sequence),
                             transaction_items(record, request.ids, self.decimals,
                                               self.nozzle_form))
            self._ack(request, TransactionAddress(address.fp, 0, marker=0x20))
            return
        found = fp.transaction(address.sequence)
        if found is None:
            self._ack(request, address, MessageStatus.UNKNOWN_ADDRESS)
        else:
            self._answer(request, address, transaction_items(found, request.ids,
                                                             self.decimals, self.nozzle_form))

    # ---- writes -------------------------------------------------------------------------------

    def _write(self, request: Write, now: float) -> None:
        address = request.address
        if isinstance(address, FuellingPointAddress) and address.fp in self.fps:
            codes = self._write_fp(self.fps[address.fp], request, now)
        elif isinstance(address, AllFuellingPoints):
            results = [self._write_fp(fp, request, now) for fp in self.fps.values()]
            codes = [(item_id, max(r[i][1] for r in results))
                     for i, (item_id, _) in enumerate(results[0])]
        elif isinstance(address, TransactionAddress) and address.fp in self.fps and (
                self.fps[address.fp].transaction(address.sequence) is not None):
            codes = self._write_transaction(self.fps[address.fp], address.sequence, request, now)
        elif isinstance(address, ProductModeAddress):
            codes = self._write_price(address.product, request)
        else:
            self._ack(request, address, MessageStatus.UNKNOWN_ADDRESS)
            return
        if all(code == ItemCode.ACCEPTED for _, code in codes):
            self._ack(request, address)
        else:
            self._ack(request, address, MessageStatus.NOT_ALL_ACCEPTED, tuple(codes))

    def _write_fp(self, fp: SimulatedFp, request: Write, now: float) -> list[tuple[int, int]]:
        codes: list[tuple[int, int]] = []
        releaser = request.source
        for item in request.items:
            refused = self.faults.refuse.get(item.id)
            if refused is not None:
                codes.append((item.id, refused))
                continue
            codes.append((item.id, self._fp_item(fp, item, releaser, now)))
            if item.id == FpId.RELEASE_CONTR_ID and len(item.value) == 2:
                releaser = Lna(item.value[0], item.value[1])
        return codes

    def _fp_item(self, fp: SimulatedFp, item: DataItem, releaser: Lna, now: float) -> int:
        try:
            if item.id in _COMMANDS:  # a command; a length byte of 1 is taken too (lenient)
                return self._command(fp, FpId(item.id), releaser, now)
            if item.id == FpId.REMOTE_AMOUNT_PREPAY:
                return fp.set_preset(price_raw(decode_number(item.value),
                                               self.decimals.amount), None)
            if item.id == FpId.REMOTE_VOLUME_PRESET:
                return fp.set_preset(None, price_raw(decode_number(item.value),
                                                     self.decimals.volume))
            if item.id == FpId.LOG_NOZ_MASK:
                mask = int.from_bytes(item.value, "big") if item.value else 0
                return fp.set_mask(frozenset(n for n in fp.nozzles if mask >> (n - 1) & 1))
            if item.id == FpId.RELEASE_CONTR_ID:
                return ItemCode.ACCEPTED if len(item.value) == 2 else ItemCode.BAD_VALUE
            if item.id == FpId.RUNNING_TRANSACTION_FREQUENCY:
                # Tenths of a second here; another implementation counts ten-second units.
                tenths = int.from_bytes(item.value, "big") if item.value else 0
                if tenths < 1:
                    return ItemCode.BAD_VALUE
                fp.running_interval = tenths / 10
                return ItemCode.ACCEPTED
        except (IfsfError, ValueError):
            return ItemCode.BAD_VALUE
        return ItemCode.NOT_WRITABLE if item.id < 100 else ItemCode.DOES_NOT_EXIST

    @staticmethod
    def _command(fp: SimulatedFp, command: FpId, releaser: Lna, now: float) -> int:
        if command is FpId.OPEN_FP:
            return fp.open(releaser, now)
        if command is FpId.CLOSE_FP:
            return fp.close(now)
        if command is FpId.RELEASE_FP:
            return fp.release(releaser, now)
        if command is FpId.TERMINATE_FP:
            return fp.terminate(now)
        if command is FpId.SUSPEND_FP:
            return fp.suspend(now)
        return fp.resume(now)

    def _write_transaction(self, fp: SimulatedFp, sequence: int, request: Write,
                           now: float) -> list[tuple[int, int]]:
        codes: list[tuple[int, int]] = []
        for item in request.items:
            refused = self.faults.refuse.get(item.id)
            if refused is not None:
                codes.append((item.id, refused))
            elif item.id == TrId.CLEAR_TRANSACTION:
                codes.append((item.id, fp.clear(sequence)))
            elif item.id in (TrId.LOCK_TRANSACTION, TrId.UNLOCK_TRANSACTION):
                codes.append((item.id, fp.lock(sequence, item.id == TrId.LOCK_TRANSACTION)))
            else:
                codes.append((item.id, ItemCode.NOT_WRITABLE))
        return codes

    def _write_price(self, product: int, request: Write) -> list[tuple[int, int]]:
        codes: list[tuple[int, int]] = []
        for item in request.items:
            if item.id != 2:  # ProductModeId.PRICE; the limits are not simulated
                codes.append((item.id, ItemCode.NOT_WRITABLE))
                continue
            try:
                price = price_raw(decode_number(item.value), self.decimals.price)
            except (IfsfError, ValueError):
                codes.append((item.id, ItemCode.BAD_VALUE))
                continue
            # Accepted at once; taken when every fuelling point is idle (``_apply_prices``).
            self.pending_prices[product] = price
            codes.append((item.id, ItemCode.ACCEPTED))
        return codes

    def _apply_prices(self, now: float) -> None:
        pending, self.pending_prices = self.pending_prices, {}
        for product, price in pending.items():
            known = product in self.slots.values()
            results = {
                number: (self.faults.price_result.get(number, ErrorCode.PRICE_CHANGED)
                         if known else ErrorCode.UNKNOWN_PRODUCT)
                for number in self.fps
            }
            if all(code == ErrorCode.PRICE_CHANGED for code in results.values()):
                self.prices[product] = price
            for number, code in results.items():
                fp = self.fps[number]
                if code == ErrorCode.PRICE_REFUSED:
                    fp.price_refused(now)
                self.price_results.append((product, number, code))
                self._error(fp, code)

    # ---- unsolicited messages -----------------------------------------------------------------

    def _slot_of(self, product: int) -> int:
        return next(slot for slot, p in self.slots.items() if p == product)

    def _send(self, address: Address, items: Iterable[DataItem]) -> None:
        if self.controller is None:
            return  # nobody to tell: a dispenser does not keep its status messages
        self.outbox.append(Unsolicited(self.controller, self.lna, 0, address, tuple(items)))

    def _status(self, fp: SimulatedFp) -> None:
        form = self.nozzle_form
        self._send(FuellingPointAddress(fp.number), (
            DataItem(FpId.FP_STATUS_MESSAGE),
            *(DataItem(i, fp_value(fp, i, form))
              for i in (FpId.FP_STATE, FpId.LOG_NOZ_STATE, FpId.ASSIGN_CONTR_ID)),
        ))

    def _running(self, fp: SimulatedFp) -> None:
        form = self.nozzle_form
        self._send(FuellingPointAddress(fp.number), (
            DataItem(FpId.RUNNING_TRANSACTION_MESSAGE),
            *(DataItem(i, fp_value(fp, i, form))
              for i in (FpId.CURRENT_LOG_NOZ, FpId.CURRENT_AMOUNT, FpId.CURRENT_VOLUME)),
        ))

    def _buffer(self, fp: SimulatedFp, sequence: int) -> None:
        record = next((t for t in fp.history if t.sequence == sequence), None)
        if record is None:
            return
        ids = (TrId.TR_SEQ_NB, TrId.TRANS_STATE, TrId.TR_BUFF_CONTR_ID, TrId.TR_AMOUNT,
               TrId.TR_VOLUME)
        self._send(TransactionAddress(fp.number, sequence), (
            DataItem(TrId.BUFFER_STATUS_MESSAGE),
            *transaction_items(record, ids, self.decimals, self.nozzle_form),
        ))

    def _error(self, fp: SimulatedFp, code: int) -> None:
        self._send(ErrorAddress(fp.number, code), (
            DataItem(ErrorId.ERROR_MESSAGE),
            DataItem(ErrorId.ERROR_TYPE, bytes((code,))),
            DataItem(ErrorId.FP_STATE, bytes((fp.state,))),
        ))

    def _drain(self) -> None:
        for fp in self.fps.values():
            notices, fp.notices = fp.notices, []
            for notice in notices:
                if notice.kind == "status":
                    self._status(fp)
                elif notice.kind == "running":
                    self._running(fp)
                else:
                    self._buffer(fp, notice.sequence)
