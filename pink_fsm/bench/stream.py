"""A deterministic recorded event stream for the slot machine: realistic trade lifecycles.

`slot_event_stream(seed, trades)` records what a kernel and a venue would feed one slot: entries that
are acknowledged, filled in parts (cumulative lots, quote and fee per order, sometimes a duplicated
frame), rejected, cancelled on TTL or expired; exits per leg, exit fills, cancels that race fills;
marks between everything; and the noise a live account produces (foreign orders, stale
acknowledgements, refused commands, frozen entries, corrupt marks). Everything comes from
`random.Random(seed)`: the same seed gives the same stream on every machine, and nothing reads a clock.

The simulated venue reacts to what the slot emits (the lots of a PLACE_ORDER), so the recording is made
by driving the generated `SlotMachine` as it runs. Every (event, params) pair is valid for
`SlotMachine.fire` (typed parameters, and TRADE_WRITTEN only when the trade closed).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from pink_fsm.fsm.machine import Step
from pink_fsm.fsm.types import NO_ORDER, Side
from pink_fsm.generated.slot import SlotMachine

__all__ = ["Event", "slot_event_stream"]

Event = tuple[str, dict[str, Any]]
"""One recorded event: its name and its parameters, as `SlotMachine.fire(name, **params)` takes them."""

ZERO: Final = Decimal(0)
HOT_WINDOW_MS: Final = 5000
FOREIGN_ORDER_BASE: Final = 900_000_000
MAX_ACTIONS_PER_TRADE: Final = 2000

# (reference price, tick, typical lots): a cheap alt, a mid-cap and a large-cap USDT-M contract.
INSTRUMENTS: Final = (
    (Decimal("0.6091"), Decimal("0.0001"), 20_000),
    (Decimal("27.314"), Decimal("0.001"), 800),
    (Decimal("64210.5"), Decimal("0.1"), 40),
)
FEE_RATES: Final = (Decimal("0.0005"), Decimal("0.0002"), Decimal("-0.0001"))  # taker, maker, maker rebate

FREE: Final = frozenset({"IDLE", "ORDER_REJECTED", "TRADE_TERMINAL_WRITTEN"})
ENTRY_STATES: Final = frozenset({"ENTRY_SUBMITTED", "ENTRY_WORKING", "ENTRY_PARTIAL", "ENTRY_CANCELLING"})
CAN_EXIT: Final = frozenset({"POSITION_OPEN", "PARTIALLY_CLOSED", "EXIT_REJECTED"})
EXIT_WORKING_STATES: Final = frozenset({"EXIT_SENT", "EXIT_ACKED", "EXIT_WORKING", "EXIT_CANCELLING"})


@dataclass
class _VenueOrder:
    """The venue's view of one order: what it asked for and what it executed so far (cumulative)."""

    order: int
    qty_lots: int
    fee_rate: Decimal
    cum_lots: int = 0
    cum_quote_usdt: Decimal = ZERO
    cum_fee_usdt: Decimal = ZERO
    frames: list[dict[str, Any]] = field(default_factory=list)

    @property
    def remaining_lots(self) -> int:
        return self.qty_lots - self.cum_lots

    def execute(self, lots: int, px: Decimal) -> dict[str, Any]:
        """Execute `lots` more at `px`; returns the cumulative execution report."""
        self.cum_lots += lots
        self.cum_quote_usdt += lots * px
        self.cum_fee_usdt = self.cum_quote_usdt * self.fee_rate
        frame = {"order": self.order, "cum_lots": self.cum_lots, "cum_quote_usdt": self.cum_quote_usdt,
                 "cum_fee_usdt": self.cum_fee_usdt}
        self.frames.append(frame)
        return frame


class _Session:
    """A simulated kernel and venue around one slot, recording every event the slot is fed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.slot = SlotMachine()
        self.events: list[Event] = []
        self.px, self.tick, self.typical_lots = INSTRUMENTS[0]
        self.next_order = 1
        self.next_foreign = FOREIGN_ORDER_BASE
        self.entry: _VenueOrder | None = None
        self.exit: _VenueOrder | None = None
        self.exits: list[_VenueOrder] = []  # every exit order of the trade: the venue's position is what they left
        self.ended: list[int] = []  # orders that already ended, for stale reports
        self.in_flight: list[dict[str, Any]] = []  # fills executed before a cancel, delivered after it
        self.handlers = self._handlers()

    # ------------------------------------------------------------------ recording

    @property
    def state(self) -> str:
        return self.slot.state

    def send(self, event: str, **params: Any) -> Step:
        step = self.slot.fire(event, **params)
        self.events.append((event, params))
        return step

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def new_order(self) -> int:
        self.next_order += 1
        return self.next_order

    def marks(self, most: int = 5) -> None:
        """A few mark prices: a random walk on the tick grid, now and then a corrupt print (D15)."""
        for _ in range(self.rng.randint(0, most)):
            if self.chance(0.004):
                self.send("MARK_PRICE", px=ZERO)
                continue
            step_px = self.px * Decimal(self.rng.randint(-12, 12)) / 10_000
            self.px = max(self.tick, (self.px + step_px).quantize(self.tick, rounding=ROUND_HALF_EVEN))
            self.send("MARK_PRICE", px=self.px)

    def fill_price(self) -> Decimal:
        return max(self.tick, self.px + self.tick * self.rng.randint(-3, 3))

    # ------------------------------------------------------------------ venue reports

    def report(self, frame: dict[str, Any]) -> Step:
        settled_fee = frame["cum_fee_usdt"]
        if self.chance(0.06):  # booked first at a predicted fee, then settled with the actual one
            frame = {**frame, "cum_fee_usdt": settled_fee * Decimal("0.9")}
        step = self.send("FILL", **frame)
        if self.chance(0.08):  # the user stream repeats a frame (D14)
            self.send("FILL", **frame)
        if frame["cum_fee_usdt"] != settled_fee:
            self.settle(frame, settled_fee)
        return step

    def settle(self, frame: dict[str, Any], fee_usdt: Decimal) -> None:
        self.send("FILL", **{**frame, "cum_fee_usdt": fee_usdt})

    def venue_position_lots(self) -> int:
        """The lots the venue still holds: every execution counts, reported or not."""
        entry = self.entry.cum_lots if self.entry is not None else 0
        return entry - sum(venue.cum_lots for venue in self.exits)

    def room(self, venue: _VenueOrder) -> int:
        """Lots the venue can still execute of an order. Exit orders are reduce-only: never beyond the position."""
        if venue is self.entry:
            return venue.remaining_lots
        return max(0, min(venue.remaining_lots, self.venue_position_lots()))

    def execute(self, venue: _VenueOrder, complete: bool) -> dict[str, Any]:
        room = self.room(venue)
        lots = room if complete else self.rng.randint(1, max(1, room - 1))
        return venue.execute(min(lots, room), self.fill_price())

    def contradicting_frame(self, venue: _VenueOrder) -> None:
        """A report the book must refuse: more lots than the order asked, or a shrinking quote."""
        if self.chance(0.5) or venue.cum_lots == 0:
            self.send("FILL", order=venue.order, cum_lots=venue.qty_lots + self.rng.randint(1, 5),
                      cum_quote_usdt=venue.cum_quote_usdt + self.px * venue.qty_lots, cum_fee_usdt=venue.cum_fee_usdt)
        else:
            self.send("FILL", order=venue.order, cum_lots=venue.cum_lots + 1, cum_quote_usdt=ZERO,
                      cum_fee_usdt=venue.cum_fee_usdt)

    def stale_frame(self, venue: _VenueOrder | None) -> None:
        """An older cumulative frame of an order, reordered behind a newer one."""
        if venue is not None and venue.frames:
            self.send("FILL", **self.rng.choice(venue.frames))

    def foreign_fill(self) -> None:
        self.next_foreign += 1
        order = NO_ORDER if self.chance(0.1) else self.next_foreign
        lots = self.rng.randint(1, self.typical_lots)
        quote = lots * self.px
        self.send("FILL", order=order, cum_lots=lots, cum_quote_usdt=quote, cum_fee_usdt=quote * FEE_RATES[0])

    def deliver_in_flight(self) -> bool:
        if not self.in_flight:
            return False
        self.send("FILL", **self.in_flight.pop(0))
        return True

    def keep_in_flight(self, venue: _VenueOrder) -> None:
        """The venue executed part of the rest just before the cancel took; the report comes after it."""
        if self.room(venue) > 0 and self.chance(0.3):
            self.in_flight.append(self.execute(venue, complete=self.chance(0.3)))

    def end_order(self, venue: _VenueOrder, event: str) -> None:
        self.keep_in_flight(venue)
        self.send(event, order=venue.order)
        self.ended.append(venue.order)
        if self.chance(0.05):  # the venue reports the end twice
            self.send(event, order=venue.order)

    # ------------------------------------------------------------------ noise from the account and the kernel

    def noise(self) -> None:
        """One event that changes nothing (or nothing lasting): the live account's background."""
        pick = self.rng.randrange(10)
        if pick == 0:
            self.foreign_fill()
        elif pick == 1 and self.ended:
            self.send(self.rng.choice(("ACK", "REJECT", "CANCELLED", "EXPIRED")), order=self.rng.choice(self.ended))
        elif pick == 2:
            self.send("CANCEL", order=self.rng.choice((NO_ORDER, *self.ended[-3:], self.next_order + 7)))
        elif pick == 3:
            self.send("FREEZE_ENTRIES")
            self.marks(2)
            self.send("UNFREEZE_ENTRIES")
        elif pick == 4:
            self.send("ENTER", **self.entry_params(self.new_order()))
        elif pick == 5:
            self.send("EXIT", order=self.rng.choice((NO_ORDER, self.slot.model.entry_order)), qty_lots=0)
        elif pick == 6:
            self.stale_frame(self.entry if self.chance(0.5) else self.exit)
        else:
            self.marks(3)

    def refused_entry(self) -> None:
        """An entry the slot must refuse: frozen capital, a venue that is not provably flat, bad sizing."""
        pick = self.rng.randrange(3)
        params = self.entry_params(self.new_order())
        if pick == 0:
            self.send("FREEZE_ENTRIES")
            self.send("ENTER", **params)
            self.send("UNFREEZE_ENTRIES")
            return
        spoils: tuple[tuple[str, object], ...]
        if pick == 1:  # the venue is not provably flat (D8)
            spoils = (("probe_ok", False), ("venue_position_lots", self.rng.randint(1, 50)),
                      ("own_fill_age_ms", self.rng.randint(0, HOT_WINDOW_MS - 1)))
        else:  # unsafe sizing (D10, D15); exit legs come without usable ratios
            params["new_leg_ratio_0"] = Decimal("1.2")
            spoils = (("qty_lots", 0), ("new_leverage", 0), ("new_leverage", 200), ("exit_legs", 4),
                      ("new_side", Side.NONE), ("px", ZERO), ("exit_legs", 2), ("exit_legs", 3))
        key, value = self.rng.choice(spoils)
        params[key] = value
        self.send("ENTER", **params)

    # ------------------------------------------------------------------ entry

    def entry_params(self, order: int) -> dict[str, Any]:
        legs = self.rng.choice((1, 1, 2, 3))
        ratio_0 = self.rng.choice((Decimal("0.5"), Decimal("0.4"), Decimal("0.3"))) if legs >= 2 else ZERO
        ratio_1 = self.rng.choice((Decimal("0.3"), Decimal("0.2"))) if legs == 3 else ZERO
        return {"order": order, "new_side": self.rng.choice((Side.LONG, Side.SHORT)),
                "qty_lots": self.rng.randint(max(1, self.typical_lots // 4), self.typical_lots * 2), "px": self.px,
                "new_leverage": self.rng.randint(1, 25), "exit_legs": legs, "new_leg_ratio_0": ratio_0,
                "new_leg_ratio_1": ratio_1, "probe_ok": True, "venue_position_lots": 0,
                "own_fill_age_ms": self.rng.randint(HOT_WINDOW_MS, 3_600_000)}

    def enter(self) -> None:
        if self.chance(0.3):
            self.px, self.tick, self.typical_lots = self.rng.choice(INSTRUMENTS)
        while self.chance(0.2):
            self.refused_entry()
        if self.chance(0.1):
            self.send("EXIT", order=self.new_order(), qty_lots=0)
        order = self.new_order()
        step = self.send("ENTER", **self.entry_params(order))
        self.entry = _VenueOrder(order, step.emitted[0][1]["qty_lots"], self.rng.choice(FEE_RATES))
        self.exit = None
        self.exits = []

    def work_entry(self) -> None:
        """One move of an entry order: acknowledgement, a fill, a cancel, an expiry or an early exit."""
        venue = self.entry
        assert venue is not None
        state = self.state
        roll = self.rng.random()
        if state == "ENTRY_SUBMITTED":
            self.entry_submitted(venue, roll)
        elif state == "ENTRY_CANCELLING":
            self.entry_cancelling(venue, roll)
        elif roll < 0.05:
            self.send("EXPIRED", order=venue.order)
            self.ended.append(venue.order)
        elif roll < 0.15:
            self.send("CANCEL", order=venue.order)
        elif roll < 0.25 and state == "ENTRY_PARTIAL":
            self.send("EXIT", order=self.new_order(), qty_lots=self.exit_lots_wanted())
        elif roll < 0.30:
            self.send("EXIT", order=self.new_order(), qty_lots=0)
        else:
            self.report(self.execute(venue, complete=self.chance(0.45)))

    def entry_submitted(self, venue: _VenueOrder, roll: float) -> None:
        if roll < 0.04:
            self.send("REJECT", order=venue.order)
            self.ended.append(venue.order)
        elif roll < 0.07:
            self.send("EXPIRED", order=venue.order)
            self.ended.append(venue.order)
        elif roll < 0.12:
            self.send("CANCEL", order=venue.order)
        elif roll < 0.25:  # a fill overtakes the acknowledgement, which arrives stale
            self.report(self.execute(venue, complete=self.chance(0.5)))
            self.send("ACK", order=venue.order)
        else:
            self.send("ACK", order=venue.order)

    def entry_cancelling(self, venue: _VenueOrder, roll: float) -> None:
        if roll < 0.25 and venue.remaining_lots > 0:  # a fill races the cancel
            self.report(self.execute(venue, complete=self.chance(0.3)))
        elif roll < 0.45 and venue.cum_lots > 0:  # an urgent exit while the cancel is in flight
            self.send("EXIT", order=self.new_order(), qty_lots=0)
        else:
            self.end_order(venue, "CANCELLED" if roll < 0.8 else "EXPIRED")

    def exit_requested(self) -> None:
        """An exit waits for the entry remainder to go: it fills, or the cancel confirms."""
        venue = self.entry
        assert venue is not None
        roll = self.rng.random()
        if roll < 0.1:
            self.send("EXIT", order=self.new_order(), qty_lots=0)
        elif roll < 0.15:
            self.send("CANCEL", order=self.slot.model.exit_order)
        elif roll < 0.4 and venue.remaining_lots > 0:
            self.report(self.execute(venue, complete=self.chance(0.6)))
        else:
            self.end_order(venue, "CANCELLED" if roll < 0.85 else "EXPIRED")
        self.open_exit_if_placed()

    # ------------------------------------------------------------------ exit

    def exit_lots_wanted(self) -> int:
        if self.chance(0.6):
            return 0
        return self.rng.randint(1, max(1, self.slot.model.entry_target_lots))

    def open_exit_if_placed(self) -> None:
        """Register the exit order with the venue once the slot has sent it."""
        model = self.slot.model
        if self.state == "EXIT_SENT" and (self.exit is None or self.exit.order != model.exit_order):
            self.exit = _VenueOrder(model.exit_order, model.exit_target_lots, self.rng.choice(FEE_RATES))
            self.exits.append(self.exit)

    def send_exit(self) -> None:
        if self.chance(0.25):
            self.noise()
            return
        # A report that lags the cancel of the exit order it belongs to may follow the next exit order; the slot
        # remembers one replaced exit order, so the stream delivers the lagging reports before a second one.
        if self.in_flight and (self.slot.model.prev_exit_order != NO_ORDER or self.chance(0.5)):
            self.deliver_in_flight()
            return
        if self.chance(0.05):
            self.send("EXIT", order=self.rng.choice((NO_ORDER, self.slot.model.entry_order)), qty_lots=0)
        self.send("EXIT", order=self.new_order(), qty_lots=self.exit_lots_wanted())
        self.open_exit_if_placed()

    def work_exit(self) -> None:
        """One move of the exit order: acknowledgement, a fill, a cancel, an expiry, a late entry fill."""
        venue = self.exit
        assert venue is not None
        state = self.state
        if venue.remaining_lots > 0 and self.room(venue) == 0:
            # Reduce-only: the venue's position is closed (by fills whose reports lag), so it cancels the rest of
            # the exit order; that is a user-stream event and follows the lagging fill reports.
            if not self.deliver_in_flight():
                self.end_order(venue, "CANCELLED")
            return
        roll = self.rng.random()
        if self.in_flight and roll < 0.1:
            self.deliver_in_flight()
        elif state == "EXIT_SENT":
            self.exit_sent(venue, roll)
        elif state == "EXIT_CANCELLING":
            self.exit_cancelling(venue, roll)
        elif roll < 0.16:
            self.send("CANCEL", order=venue.order)
        elif roll < 0.20:
            self.end_order(venue, "EXPIRED")
        elif roll < 0.24:
            self.send("EXIT", order=self.new_order(), qty_lots=0)
        elif roll < 0.26:
            self.contradicting_frame(venue)
        else:
            self.report(self.execute(venue, complete=self.chance(0.4)))

    def exit_sent(self, venue: _VenueOrder, roll: float) -> None:
        if roll < 0.15:
            self.send("REJECT", order=venue.order)
            self.ended.append(venue.order)
        elif roll < 0.20:
            self.send("CANCEL", order=venue.order)
        elif roll < 0.24:
            self.end_order(venue, "EXPIRED")
        elif roll < 0.36:
            self.report(self.execute(venue, complete=self.chance(0.5)))
            self.send("ACK", order=venue.order)
        else:
            self.send("ACK", order=venue.order)

    def exit_cancelling(self, venue: _VenueOrder, roll: float) -> None:
        if roll < 0.3 and self.room(venue) > 0:  # a fill races the cancel
            self.report(self.execute(venue, complete=self.chance(0.4)))
        else:
            self.end_order(venue, "CANCELLED" if roll < 0.85 else "EXPIRED")

    def after_close(self) -> None:
        """The trade is flat; late reports may still come before the audit log confirms the record."""
        roll = self.rng.random()
        if self.in_flight and roll < 0.5:
            self.deliver_in_flight()
        elif roll < 0.6:
            self.noise()
        else:
            self.send("TRADE_WRITTEN")
            self.in_flight.clear()
            if self.chance(0.3):
                # A fee settles after the record was written: the record is rewritten, then durable again.
                m = self.slot.model
                entry = self.chance(0.5)
                self.send("FILL", order=m.entry_order if entry else m.exit_order,
                          cum_lots=m.entry_filled_lots if entry else m.exit_filled_lots,
                          cum_quote_usdt=m.entry_cost_usdt if entry else m.exit_order_cost_usdt,
                          cum_fee_usdt=(m.entry_fee_usdt if entry else m.exit_order_fee_usdt) + Decimal("0.01"))
                self.send("TRADE_WRITTEN")

    # ------------------------------------------------------------------ a whole trade

    def trade(self) -> None:
        """One trade from a free slot until the slot is free again."""
        self.enter()
        for _ in range(MAX_ACTIONS_PER_TRADE):
            self.marks()
            state = self.state
            if state in FREE and not self.deliver_in_flight():
                self.in_flight.clear()
                return
            self.act(state)
        raise RuntimeError(f"slot stream: trade did not end within {MAX_ACTIONS_PER_TRADE} moves")

    def act(self, state: str) -> None:
        handler = self.handlers.get(state)
        if handler is not None:
            handler()

    def _handlers(self) -> dict[str, Callable[[], None]]:
        handlers: dict[str, Callable[[], None]] = {state: self.work_entry for state in ENTRY_STATES}
        handlers.update({state: self.send_exit for state in CAN_EXIT})
        handlers.update({state: self.work_exit for state in EXIT_WORKING_STATES})
        handlers["EXIT_REQUESTED"] = self.exit_requested
        handlers["CLOSED"] = self.after_close
        return handlers


def slot_event_stream(seed: int = 20261124, trades: int = 250) -> list[Event]:
    """The recorded events of `trades` slot trades, deterministic in `seed`."""
    session = _Session(random.Random(seed))
    for _ in range(trades):
        session.trade()
    return session.events
