"""Area `kernel`: what the kernel costs per event, against the bare generated slot machine in the same run.

One recorded stream of typed kernel events (`kernel_event_stream`) is replayed, in one run and
interleaved, through:

* `kernel`: `Kernel.handle(event)` on a fresh kernel: identity routing, exec-id dedup, lots and leverage
  mapping, fee model, account projection, command building, the typed machine API and the kernel's own
  invariant checks: everything but the normaliser (events are already typed);
* `machine`: the bare generated `SlotMachine` fed, through the raw transitions trigger
  (`model.trigger(name, **params)`), exactly the machine events the kernel fired while the stream was
  recorded: the machine's own cost, the same yardstick as `generated` in the `codegen` area;
* `machine_fire` (diagnostic): the same machine events through `SlotMachine.fire`, the typed API the
  kernel calls (parameter checks, `Step`, the spec's invariants after every event), so the kernel's
  overhead can be split into "typed API" and "kernel proper".

Some kernel events never reach the machine (balance and funding frames, refused intents, duplicated
execution ids) and some fire two machine events (an unattributable fill freezes entries first), so the
two replays have different lengths. Per-event figures divide each replay by its own number of events;
`overhead_ratio` is kernel µs per kernel event / machine µs per machine event (medians), the issue's
contract key. `workload_ratio` compares the two replays of the same work as wholes.

The kernel logs every refusal as a warning. During the run the `pink_fsm.kernel` logger gets a
`NullHandler` and stops propagating: the records are still made (their cost is measured), but nothing is
printed through the progress bars. docs/bench.md describes the stream and the figures.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from pink_fsm.bench.runner import Area, Figures, ProgressFn, Settings, Target, Variant, interleaved_ns, median_and_min
from pink_fsm.bench.stream import Event
from pink_fsm.fsm.machine import Step
from pink_fsm.generated.slot import SlotMachine
from pink_fsm.kernel.events import (
    AccountUpdate,
    CancelIntent,
    EnterIntent,
    ExitIntent,
    FundingFee,
    KernelEvent,
    KernelResult,
    MarkPrice,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRef,
    OrderRejected,
    PlaceOrder,
    RecordTrade,
    TradeWritten,
    VenueTruth,
)
from pink_fsm.kernel.kernel import FLAT_STATES, Kernel, KernelConfig
from pink_fsm.kernel.values import ClientOrderId, ContractSpec, ExecId, Side, Symbol, VenueOrderId

__all__ = [
    "AREA",
    "CONTRACTS",
    "EVENTS_PER_S_TARGET",
    "EVENT_KINDS",
    "OVERHEAD_TARGET",
    "SEED_CAPITAL_USDT",
    "KernelStream",
    "RecordingSlot",
    "fresh_kernel",
    "kernel_event_stream",
    "variants",
]

EVENTS_PER_S_TARGET: Final = 30_000
OVERHEAD_TARGET: Final = 3.0
SEED_CAPITAL_USDT: Final = Decimal(10_000)
CONFIG: Final = KernelConfig()
ZERO: Final = Decimal(0)
HOT_WINDOW_MS: Final = 5000
T0_MS: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z; the stream's clock only moves forward from here
MAX_ACTIONS_PER_TRADE: Final = 2000


@dataclass(frozen=True)
class _Instrument:
    spec: ContractSpec
    px: Decimal  # reference price per base unit
    tick: Decimal


# A cheap alt, a mid-cap and a large-cap USDT-M contract, with their lot sizes and leverage caps.
INSTRUMENTS: Final = (
    _Instrument(ContractSpec(Symbol("FET", "USDT"), Decimal(1), Decimal("0.0001"), max_leverage=50),
                Decimal("0.6091"), Decimal("0.0001")),
    _Instrument(ContractSpec(Symbol("SOL", "USDT"), Decimal("0.01"), Decimal("0.001"), max_leverage=50),
                Decimal("27.314"), Decimal("0.001")),
    _Instrument(ContractSpec(Symbol("BTC", "USDT"), Decimal("0.0001"), Decimal("0.1"), max_leverage=125),
                Decimal("64210.5"), Decimal("0.1")),
)
CONTRACTS: Final[Mapping[Symbol, ContractSpec]] = {i.spec.symbol: i.spec for i in INSTRUMENTS}
TAKER_RATES: Final = (Decimal("0.0005"), Decimal("0.00045"))  # published, and a VIP tier the fee model learns
MAKER_RATE: Final = Decimal("0.0002")
EVENT_KINDS: Final = (MarkPrice, OrderFilled, OrderAccepted, OrderCancelled, OrderRejected, AccountUpdate, FundingFee,
                      EnterIntent, ExitIntent, CancelIntent, TradeWritten)


def fresh_kernel(slot: SlotMachine | None = None) -> Kernel:
    """The kernel every replay starts from (the recording one only differs by its logging machine)."""
    return Kernel(CONTRACTS, SEED_CAPITAL_USDT, CONFIG, slot=slot)


class RecordingSlot(SlotMachine):
    """The generated slot machine, logging every event the kernel fires at it: the equivalent machine stream."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Event] = []

    def fire(self, event: str, **params: Any) -> Step:
        self.log.append((event, dict(params)))
        return super().fire(event, **params)


@dataclass(frozen=True)
class KernelStream:
    """A recorded workload: the kernel events, the machine events the kernel fired for them, the outcomes."""

    events: tuple[KernelEvent, ...]
    machine_events: tuple[Event, ...]
    outcomes: tuple[str, ...]
    trades: int

    def mix(self) -> dict[str, int]:
        """Events per kind, as `mix_<kind>` counts (`mix_order_filled`, ...), every kind even when 0."""
        counts = collections.Counter(type(event) for event in self.events)
        return {f"mix_{_snake(kind.__name__)}": counts[kind] for kind in EVENT_KINDS}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class _VenueOrder:
    """The venue's view of one of our orders: what it asked for and what it executed so far (cumulative)."""

    client_id: ClientOrderId
    venue_id: VenueOrderId
    symbol: Symbol
    lot_size: Decimal
    role: str
    qty_lots: int
    fee_rate: Decimal
    is_maker: bool
    cum_lots: int = 0
    cum_quote_usdt: Decimal = ZERO
    cum_fee_usdt: Decimal = ZERO
    frames: list[OrderFilled] = field(default_factory=list)

    @property
    def remaining_lots(self) -> int:
        return self.qty_lots - self.cum_lots

    def ref(self, with_client: bool = True) -> OrderRef:
        return OrderRef(self.symbol, self.client_id if with_client else None, self.venue_id)

    def execute(self, ts_ms: int, lots: int, px: Decimal, fee_known: bool) -> OrderFilled:
        """Execute `lots` more at `px`: the cumulative execution report the user stream would carry."""
        self.cum_lots += lots
        self.cum_quote_usdt += lots * self.lot_size * px
        self.cum_fee_usdt = self.cum_quote_usdt * self.fee_rate
        cum_qty = self.cum_lots * self.lot_size
        frame = OrderFilled(ts_ms, self.ref(), ExecId(f"{self.venue_id}:{cum_qty.normalize()}"), cum_qty,
                            self.cum_quote_usdt, self.cum_fee_usdt if fee_known else None, self.is_maker)
        self.frames.append(frame)
        return frame


class _Session:
    """A simulated policy and venue around one kernel, recording every event the kernel is fed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.slot = RecordingSlot()
        self.kernel = fresh_kernel(self.slot)
        self.events: list[KernelEvent] = []
        self.outcomes: list[str] = []
        self.ts_ms = T0_MS
        self.instrument = INSTRUMENTS[0]
        self.px = self.instrument.px
        self.next_venue_id = 1_900_000_000_000_000_000
        self.next_foreign = 1
        self.entry: _VenueOrder | None = None
        self.exit: _VenueOrder | None = None
        self.ended: list[_VenueOrder] = []
        self.closed_seq = 0
        self.handlers = self._handlers()

    # ------------------------------------------------------------------ recording

    @property
    def state(self) -> str:
        return self.kernel.slot.state

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def clock(self, least: int = 5, most: int = 250) -> int:
        self.ts_ms += self.rng.randint(least, most)
        return self.ts_ms

    def send(self, event: KernelEvent) -> KernelResult:
        result = self.kernel.handle(event)
        self.events.append(event)
        self.outcomes.append(result.outcome)
        for command in result.commands:
            if isinstance(command, PlaceOrder):
                self.place(command)
            elif isinstance(command, RecordTrade):
                self.closed_seq = command.trade_seq
        return result

    def place(self, command: PlaceOrder) -> None:
        self.next_venue_id += self.rng.randint(1, 999)
        spec = CONTRACTS[command.symbol]
        maker = self.chance(0.3)
        venue = _VenueOrder(command.client_id, VenueOrderId(str(self.next_venue_id)), command.symbol, spec.lot_size,
                            command.role, command.qty_lots, MAKER_RATE if maker else self.rng.choice(TAKER_RATES),
                            maker)
        if command.role == "ENTRY":
            self.entry, self.exit = venue, None
        else:
            self.exit = venue

    # ------------------------------------------------------------------ market and account background

    def marks(self, most: int = 5) -> None:
        """A few mark prices: a random walk on the tick grid; now and then a corrupt print or another symbol."""
        tick = self.instrument.tick
        for _ in range(self.rng.randint(0, most)):
            roll = self.rng.random()
            if roll < 0.004:
                self.send(MarkPrice(self.clock(), self.instrument.spec.symbol, ZERO))
            elif roll < 0.02:
                other = self.rng.choice([i for i in INSTRUMENTS if i is not self.instrument])
                self.send(MarkPrice(self.clock(), other.spec.symbol, other.px))
            else:
                step_px = self.px * Decimal(self.rng.randint(-12, 12)) / 10_000
                self.px = max(tick, (self.px + step_px).quantize(tick, rounding=ROUND_HALF_EVEN))
                self.send(MarkPrice(self.clock(), self.instrument.spec.symbol, self.px))

    def balance(self) -> None:
        """A balance frame: the venue's wallet (our capital within tolerance), rarely off, or margin-only."""
        roll = self.rng.random()
        if roll < 0.15:
            self.send(AccountUpdate(self.clock(), None))  # margin-only frame (D6)
            return
        noise = Decimal(self.rng.randint(-40, 40)) / 100
        if roll < 0.17:
            noise = Decimal(self.rng.choice((-1, 1)) * self.rng.randint(5, 50))  # a real difference
        self.send(AccountUpdate(self.clock(), (self.kernel.capital_usdt + noise).quantize(Decimal("0.00000001"))))

    def fill_px(self) -> Decimal:
        tick = self.instrument.tick
        return max(tick, self.px + tick * self.rng.randint(-3, 3))

    def report(self, venue: _VenueOrder, complete: bool) -> None:
        """The venue executes part (or all) of the rest and reports it; sometimes twice, often with a balance."""
        if venue.remaining_lots <= 0:
            return
        lots = venue.remaining_lots if complete else self.rng.randint(1, max(1, venue.remaining_lots - 1))
        frame = venue.execute(self.clock(), min(lots, venue.remaining_lots), self.fill_px(), self.chance(0.95))
        self.send(frame)
        if self.chance(0.08):  # the user stream repeats a frame (D14)
            self.send(frame)
        if self.chance(0.5):
            self.balance()

    def stale_frame(self) -> None:
        """An older cumulative frame, reordered behind a newer one."""
        venue = self.entry if self.chance(0.5) else self.exit
        if venue is not None and venue.frames:
            self.send(self.rng.choice(venue.frames))

    def foreign_fill(self) -> None:
        """A fill of another system's order on the account (D7); rarely one we cannot attribute at all."""
        self.next_foreign += 1
        qty = Decimal(self.rng.randint(1, 500)) * self.instrument.spec.lot_size
        quote = qty * self.px
        venue_id = VenueOrderId(str(1_800_000_000_000_000_000 + self.next_foreign))
        if self.chance(0.05):
            ref = OrderRef(self.instrument.spec.symbol, None, venue_id)  # freezes entries until reconciled
        else:
            ref = OrderRef(self.instrument.spec.symbol, ClientOrderId(f"web_{self.next_foreign}"), venue_id)
        self.send(OrderFilled(self.clock(), ref, ExecId(f"{venue_id}:{qty}"), qty, quote, quote * TAKER_RATES[0],
                              False))
        if ref.client_id is None:
            self.balance()

    def noise(self) -> None:
        """One event that changes nothing lasting: the live account's and the policy's background."""
        pick = self.rng.randrange(10)
        if pick == 0:
            self.foreign_fill()
        elif pick == 1 and self.ended:
            venue = self.rng.choice(self.ended[-5:])
            kind = self.rng.randrange(3)
            if kind == 0:
                self.send(OrderAccepted(self.clock(), venue.ref()))
            elif kind == 1:
                self.send(OrderRejected(self.clock(), venue.ref(), "stale"))
            else:
                self.send(OrderCancelled(self.clock(), venue.ref(), expired=self.chance(0.3)))
        elif pick == 2:
            self.send(CancelIntent(self.clock(), self.rng.choice(("ENTRY", "EXIT", "BOTH"))))
        elif pick == 3:
            self.send(self.entry_intent())  # SLOT_BUSY unless flat
        elif pick == 4:
            self.send(ExitIntent(self.clock(), None, "policy"))
        elif pick == 5:
            self.stale_frame()
        elif pick == 6 and self.kernel.slot.model.entry_filled_lots > self.kernel.slot.model.exited_lots:
            self.send(FundingFee(self.clock(), None, Decimal(self.rng.randint(-500, 500)) / 10_000))
        elif pick == 7:
            self.balance()
        else:
            self.marks(3)

    # ------------------------------------------------------------------ entry

    def entry_intent(self, spoil: str = "") -> EnterIntent:
        """What the policy asks for: a size within capital x leverage; `spoil` makes it unsafe on purpose."""
        spec = self.instrument.spec
        conviction = Decimal(self.rng.randint(10, 120)) / 10
        budget = self.kernel.capital_usdt * min(conviction, Decimal(8)) * Decimal(self.rng.randint(5, 60)) / 100
        lots = max(1, int(budget / (self.px * spec.lot_size)))
        qty, px = lots * spec.lot_size, self.px
        legs = self.rng.choice((1, 1, 2, 3))
        ratios: tuple[Decimal, ...] = ((), (Decimal("0.5"),), (Decimal("0.4"), Decimal("0.3")))[legs - 1]
        venue = VenueTruth(True, 0)
        if spoil == "size":
            qty, conviction, px = self.rng.choice(((ZERO, conviction, px), (qty, Decimal(-1), px),
                                                   (qty, conviction, Decimal("NaN")), (qty * 1000, Decimal(1), px)))
        elif spoil == "venue":
            venue = self.rng.choice((VenueTruth(False, 0), VenueTruth(True, self.rng.randint(1, 50))))
        return EnterIntent(self.clock(), spec.symbol, self.rng.choice((Side.LONG, Side.SHORT)), qty, px, conviction,
                           venue, legs, ratios)

    def enter(self) -> None:
        if self.chance(0.3):
            self.instrument = self.rng.choice(INSTRUMENTS)
            self.px = self.instrument.px
        # Time passes between trades; sometimes too little (the hot window after an own fill, D8).
        self.ts_ms += self.rng.randint(0, 4_000) if self.chance(0.1) else self.rng.randint(HOT_WINDOW_MS, 600_000)
        if self.kernel.slot.model.entries_frozen or self.chance(0.1):
            self.balance()  # the runtime's periodic balance read; it also lifts a freeze once the two agree
        while self.chance(0.15):
            self.send(self.entry_intent(self.rng.choice(("size", "venue"))))
        if self.chance(0.1):
            self.send(ExitIntent(self.clock(), None, "nothing open"))
        self.send(self.entry_intent())

    def work_entry(self) -> None:
        """One move of the entry order: acknowledgement, a fill, a cancel, an expiry or an early exit."""
        venue = self.entry
        assert venue is not None
        state, roll = self.state, self.rng.random()
        if state == "ENTRY_SUBMITTED":
            if roll < 0.04:
                self.send(OrderRejected(self.clock(), venue.ref(), "insufficient margin"))
                self.ended.append(venue)
            elif roll < 0.07:
                self.end_order(venue, expired=True)
            elif roll < 0.12:
                self.send(CancelIntent(self.clock(), "ENTRY"))
            elif roll < 0.25:  # a fill overtakes the acknowledgement, which arrives stale
                self.report(venue, complete=self.chance(0.5))
                self.send(OrderAccepted(self.clock(), venue.ref()))
            else:
                self.send(OrderAccepted(self.clock(), venue.ref(with_client=self.chance(0.9))))
        elif state == "ENTRY_CANCELLING":
            if roll < 0.25 and venue.remaining_lots > 0:  # a fill races the cancel
                self.report(venue, complete=self.chance(0.3))
            elif roll < 0.4 and venue.cum_lots > 0:  # an urgent exit while the cancel is in flight
                self.send(ExitIntent(self.clock(), None, "urgent"))
            else:
                self.end_order(venue, expired=roll > 0.9)
        elif roll < 0.05:
            self.end_order(venue, expired=True)
        elif roll < 0.13:
            self.send(CancelIntent(self.clock(), "ENTRY"))
        elif roll < 0.2 and state == "ENTRY_PARTIAL":
            self.send(ExitIntent(self.clock(), self.exit_qty(), "early"))
        else:
            self.report(venue, complete=self.chance(0.45))

    def end_order(self, venue: _VenueOrder, expired: bool) -> None:
        """The venue ends an order; its terminal frame books the last execution first (normaliser order)."""
        if venue.remaining_lots > 0 and self.chance(0.2):
            self.report(venue, complete=self.chance(0.3))
        self.send(OrderCancelled(self.clock(), venue.ref(), expired=expired))
        self.ended.append(venue)
        if self.chance(0.05):  # the venue reports the end twice
            self.send(OrderCancelled(self.clock(), venue.ref(), expired=expired))

    def exit_requested(self) -> None:
        """The exit waits for the entry remainder to go: it fills, or the cancel confirms."""
        venue = self.entry
        assert venue is not None
        if self.chance(0.3) and venue.remaining_lots > 0:
            self.report(venue, complete=self.chance(0.6))
        else:
            self.end_order(venue, expired=self.chance(0.1))

    # ------------------------------------------------------------------ exit

    def exit_qty(self) -> Decimal | None:
        if self.chance(0.6):
            return None  # the active leg (D15)
        m = self.kernel.slot.model
        lot = self.instrument.spec.lot_size
        return self.rng.randint(1, max(1, m.entry_target_lots)) * lot

    def send_exit(self) -> None:
        if self.chance(0.25):
            self.noise()
        else:
            self.send(ExitIntent(self.clock(), self.exit_qty(), "policy"))

    def work_exit(self) -> None:
        """One move of the exit order: acknowledgement, a fill, a cancel, an expiry, a contradicting report."""
        venue = self.exit
        assert venue is not None
        state, roll = self.state, self.rng.random()
        if state == "EXIT_SENT":
            if roll < 0.1:
                self.send(OrderRejected(self.clock(), venue.ref(), "reduce-only"))
                self.ended.append(venue)
            elif roll < 0.15:
                self.send(CancelIntent(self.clock(), "EXIT"))
            elif roll < 0.18:
                self.end_order(venue, expired=True)
            elif roll < 0.3:
                self.report(venue, complete=self.chance(0.5))
                self.send(OrderAccepted(self.clock(), venue.ref()))
            else:
                self.send(OrderAccepted(self.clock(), venue.ref()))
        elif state == "EXIT_CANCELLING":
            if roll < 0.3 and venue.remaining_lots > 0:
                self.report(venue, complete=self.chance(0.4))
            else:
                self.end_order(venue, expired=roll > 0.9)
        elif roll < 0.1:
            self.send(CancelIntent(self.clock(), "EXIT"))
        elif roll < 0.13:
            self.end_order(venue, expired=True)
        elif roll < 0.15:  # more than the order asked: the book refuses it (INVALID_EVENT)
            qty = (venue.qty_lots + self.rng.randint(1, 5)) * venue.lot_size
            quote = venue.cum_quote_usdt + qty * self.px
            self.send(OrderFilled(self.clock(), venue.ref(), ExecId(f"{venue.venue_id}:x{qty}"), qty, quote,
                                  venue.cum_fee_usdt, venue.is_maker))
        else:
            self.report(venue, complete=self.chance(0.4))

    def after_close(self) -> None:
        """The trade is flat; late reports may come before the audit log confirms the record (D12)."""
        if self.chance(0.4):
            self.noise()
        else:
            self.send(TradeWritten(self.clock(), self.closed_seq))
            if self.chance(0.7):
                self.balance()

    # ------------------------------------------------------------------ a whole trade

    def trade(self) -> None:
        """One trade from a free slot until the slot is free again."""
        self.enter()
        for _ in range(MAX_ACTIONS_PER_TRADE):
            self.marks()
            state = self.state
            if state in FLAT_STATES:
                return
            self.handlers[state]()
        raise RuntimeError(f"kernel stream: trade did not end within {MAX_ACTIONS_PER_TRADE} moves")

    def _handlers(self) -> dict[str, Callable[[], None]]:
        handlers: dict[str, Callable[[], None]] = dict.fromkeys(
            ("ENTRY_SUBMITTED", "ENTRY_WORKING", "ENTRY_PARTIAL", "ENTRY_CANCELLING"), self.work_entry)
        handlers.update(dict.fromkeys(("POSITION_OPEN", "PARTIALLY_CLOSED", "EXIT_REJECTED"), self.send_exit))
        handlers.update(dict.fromkeys(("EXIT_SENT", "EXIT_ACKED", "EXIT_WORKING", "EXIT_CANCELLING"), self.work_exit))
        handlers["EXIT_REQUESTED"] = self.exit_requested
        handlers["CLOSED"] = self.after_close
        return handlers


def kernel_event_stream(seed: int = 20261124, trades: int = 250) -> KernelStream:
    """The recorded kernel events of `trades` trades, deterministic in `seed`, with the machine events they fire.

    Raises RuntimeError when the recording kernel refused an event as broken (KERNEL_ERROR, HALTED,
    UNHANDLED): the workload must be one the kernel handles as designed."""
    session = _Session(random.Random(seed))
    for _ in range(trades):
        session.trade()
    broken = sorted({o for o in session.outcomes if o in ("KERNEL_ERROR", "HALTED", "UNHANDLED", "UNKNOWN_EVENT")})
    if broken or session.kernel.halted:
        raise RuntimeError(f"kernel stream: the recording kernel reported {broken} {session.kernel.halted}")
    return KernelStream(tuple(session.events), tuple(session.slot.log), tuple(session.outcomes), trades)


# ------------------------------------------------------------------ timing


def _replay_kernel(events: Sequence[KernelEvent]) -> Callable[[], None]:
    handle = fresh_kernel().handle

    def replay() -> None:
        for event in events:
            handle(event)

    return replay


def _replay_machine(fire: Callable[..., object], stream: Sequence[Event]) -> Callable[[], None]:
    def replay() -> None:
        for name, params in stream:
            fire(name, **params)

    return replay


def variants(stream: KernelStream) -> tuple[Variant, ...]:
    """The contenders, each replaying its side of `stream` on a fresh kernel or machine."""
    return (
        Variant("kernel", lambda: _replay_kernel(stream.events)),
        Variant("machine", lambda: _replay_machine(SlotMachine().model.trigger, stream.machine_events)),
        Variant("machine_fire", lambda: _replay_machine(SlotMachine().fire, stream.machine_events)),
    )


def _figures(samples_ns: dict[str, list[int]], stream: KernelStream, settings: Settings) -> Figures:
    events, machine_events = len(stream.events), len(stream.machine_events)
    kernel_ns = median_and_min(samples_ns["kernel"])
    machine_ns = median_and_min(samples_ns["machine"])
    fire_ns = median_and_min(samples_ns["machine_fire"])
    kernel_us = (kernel_ns[0] / events / 1000, kernel_ns[1] / events / 1000)
    machine_us = (machine_ns[0] / machine_events / 1000, machine_ns[1] / machine_events / 1000)
    fire_us = (fire_ns[0] / machine_events / 1000, fire_ns[1] / machine_events / 1000)
    figures: Figures = {
        "events": events,
        "machine_events": machine_events,
        "repeats": settings.repeats,
        "trades": stream.trades,
        "events_per_s": round(1e6 / kernel_us[0], 1),
        "events_per_s_min": round(1e6 / kernel_us[1], 1),
        "us_per_event": round(kernel_us[0], 4),
        "us_per_event_min": round(kernel_us[1], 4),
        "machine_us_per_event": round(machine_us[0], 4),
        "machine_us_per_event_min": round(machine_us[1], 4),
        "machine_fire_us_per_event": round(fire_us[0], 4),
        "machine_fire_us_per_event_min": round(fire_us[1], 4),
        "overhead_ratio": round(kernel_us[0] / machine_us[0], 4),
        "overhead_ratio_min": round(kernel_us[1] / machine_us[1], 4),
        "fire_overhead_ratio": round(fire_us[0] / machine_us[0], 4),
        "workload_ratio": round(kernel_ns[0] / machine_ns[0], 4),
        "workload_ratio_min": round(kernel_ns[1] / machine_ns[1], 4),
        "not_ok_events": sum(1 for outcome in stream.outcomes if outcome != "OK"),
    }
    figures.update(stream.mix())
    return figures


@contextlib.contextmanager
def _kernel_log_discarded() -> Iterator[None]:
    """The kernel logs every refusal (a warning); during the run the records are still made, then dropped.

    Without a handler Python would print them on stderr (its last-resort handler), through the progress bars."""
    logger = logging.getLogger("pink_fsm.kernel")
    handler = logging.NullHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def run(settings: Settings, progress: ProgressFn) -> Figures:
    with _kernel_log_discarded():
        progress("recording the kernel event stream", 0, 1)
        stream = kernel_event_stream(settings.seed, settings.trades)
        samples_ns = interleaved_ns(variants(stream), settings.repeats, progress)
    return _figures(samples_ns, stream, settings)


FIGURE_DOCS: Final = {
    "events": "kernel events in the recorded stream (one replay)",
    "machine_events": "machine events the kernel fired for them (the bare machine's replay)",
    "repeats": "timed rounds per variant",
    "trades": "trades recorded in the stream",
    "events_per_s": "kernel handle() throughput, one core (median round)",
    "events_per_s_min": "kernel handle() throughput on the fastest round",
    "us_per_event": "kernel handle(): median µs per kernel event",
    "machine_us_per_event": "bare generated machine, raw transitions trigger: median µs per machine event",
    "machine_fire_us_per_event": "generated machine via fire() (the typed API the kernel calls): median µs/event",
    "overhead_ratio": "kernel µs/event / bare machine µs/event (medians): what the kernel adds",
    "overhead_ratio_min": "the same on the fastest rounds (ratio of minimums)",
    "fire_overhead_ratio": "fire() / raw trigger per machine event (medians): the typed API's share",
    "workload_ratio": "kernel replay / machine replay of the same work, as wholes (medians)",
    "workload_ratio_min": "the same on the fastest rounds",
    "not_ok_events": "kernel events whose outcome was not OK (refused, duplicate, stale, foreign, ...)",
    **{f"mix_{_snake(kind.__name__)}": f"{kind.__name__} events in the stream" for kind in EVENT_KINDS},
}

AREA: Final = Area(
    name="kernel",
    doc="kernel handle() on a recorded mixed stream vs the bare generated slot machine (same work)",
    run=run,
    figure_docs=FIGURE_DOCS,
    targets=(
        Target("us_per_event", round(1e6 / EVENTS_PER_S_TARGET, 2),
               f"at least {EVENTS_PER_S_TARGET:,} kernel events/s on one core (median µs/event)"),
        Target("overhead_ratio", OVERHEAD_TARGET, "kernel accounting costs at most 3x the bare machine's trigger"),
    ),
)
