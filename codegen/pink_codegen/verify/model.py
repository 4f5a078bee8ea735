"""The composed model the checker explores: the slot machine (exact interpreter of spec/slot.yaml) with a
venue environment and a policy environment around it.

A state is a tuple: the slot's state and variables, the venue's orders and position, and the fault budgets.
An action is one thing the environment does; every action delivers at most one event to the slot, and the
slot's emitted outputs (PLACE_ORDER, CANCEL_ORDER, TRADE_CLOSED) update the venue at once (run to completion).

Environment actions (bounded by `Bounds`):
* policy: ENTER (with the venue's truth as the kernel would probe it), EXIT (size 0 = active leg, or 1 lot),
  CANCEL of the live entry or exit order, TRADE_WRITTEN when the audit made the record durable, and a TICK that
  lets the hot window pass;
* venue, per live order: ACK, REJECT (before any fill), FILL of one more lot or of the rest (cumulative, at the
  venue's price level for the order), CANCELLED (requested, or venue-side within the fault budget) after the
  order's last fill;
* faults (budgeted): a repeat of an earlier cumulative report (duplicate or out of order), a fill of an order
  that is not ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import attrs

from pink_codegen.exact import BoundError, ExactMachine, Vars
from pink_codegen.ir import Machine
from pink_codegen.types import ExactValue

FOREIGN_ORDER = 99


@attrs.frozen
class Bounds:
    """How far the checker looks. `default` checks in seconds (CI); `deep` explores much further."""

    name: str
    max_trades: int = 1
    max_lots: int = 2
    # Entries fill at the first price, exits at the second; with the fee rate, every amount stays a whole number,
    # which keeps states cheap to hash (a Fraction's hash costs a modular inverse).
    price_levels: tuple[Fraction, ...] = (Fraction(3000), Fraction(2000))
    leverages: tuple[int, ...] = (3,)  # one leverage above 1 is enough to expose PnL scaled by leverage
    cancel_budget: int = 1  # policy cancels (each can start another exit order)
    reject_budget: int = 1  # venue rejections (a fault: the fault-free path is that orders execute)
    duplicate_budget: int = 1
    foreign_budget: int = 1
    venue_cancel_budget: int = 1
    fee_rate: Fraction = Fraction(1, 1000)


PROFILES = {
    "smoke": Bounds("smoke", max_lots=1, cancel_budget=1, reject_budget=1, duplicate_budget=1,
                    foreign_budget=0, venue_cancel_budget=1),
    "default": Bounds("default"),
    "deep": Bounds("deep", leverages=(1, 3), max_trades=2, max_lots=3, cancel_budget=2, reject_budget=2,
                   duplicate_budget=2, foreign_budget=1, venue_cancel_budget=2),
}


@attrs.frozen(cache_hash=True)
class VenueOrder:
    ref: int
    role: str  # ENTRY | EXIT
    trade: int  # the slot's trade_seq when the order was placed
    target_lots: int
    filled_lots: int = 0
    quote: Fraction = Fraction(0)
    acked: bool = False
    live: bool = True
    cancel_requested: bool = False
    sent_cums: tuple[int, ...] = ()  # cumulative reports already delivered (for duplicates and reordering)


@attrs.frozen(cache_hash=True)
class State:
    slot_state: str
    slot_vars: tuple[ExactValue, ...]
    orders: tuple[VenueOrder, ...]
    position_lots: int  # signed: + long, - short
    next_ref: int
    trades: int
    recent_fill: bool
    record_pending: int  # the trade whose terminal record is not durable yet (0: none)
    duplicates_left: int
    foreign_left: int
    venue_cancels_left: int
    cancels_left: int
    rejects_left: int


@attrs.frozen
class Action:
    label: str  # e.g. "venue FILL #1 cum=2"
    event: str  # the slot event delivered ("" when none)
    params: tuple[tuple[str, ExactValue], ...]
    fault: bool = False


class ComposedModel:
    def __init__(self, slot: Machine, bounds: Bounds) -> None:
        self.ir = slot
        self.exact = ExactMachine(slot)
        self.bounds = bounds
        self.var_names = tuple(v.name for v in slot.variables)
        self._index = {name: i for i, name in enumerate(self.var_names)}

    # ------------------------------------------------------------------ states

    def initial(self) -> State:
        state, vars_ = self.exact.initial()
        b = self.bounds
        return State(state, self._pack(vars_), (), 0, 1, 0, False, 0, b.duplicate_budget, b.foreign_budget,
                     b.venue_cancel_budget, b.cancel_budget, b.reject_budget)

    def _pack(self, vars_: Vars) -> tuple[ExactValue, ...]:
        # Whole Fractions are stored as ints: equal and hash-equal, and much cheaper to hash.
        return tuple(v.numerator if isinstance(v, Fraction) and v.denominator == 1 else v
                     for v in (vars_[n] for n in self.var_names))

    def vars(self, s: State) -> Vars:
        return dict(zip(self.var_names, s.slot_vars, strict=True))

    def var(self, s: State, name: str) -> ExactValue:
        return s.slot_vars[self._index[name]]

    # ------------------------------------------------------------------ actions

    def actions(self, s: State) -> Iterator[Action]:
        yield from self._policy_actions(s)
        yield from self._venue_actions(s)

    def _policy_actions(self, s: State) -> Iterator[Action]:
        b = self.bounds
        if s.trades < b.max_trades:
            for lots in range(1, b.max_lots + 1):
                for leverage in b.leverages:
                    venue_lots = abs(s.position_lots)
                    yield Action(f"policy ENTER {lots} lots x{leverage}", "ENTER", (
                        ("order", s.next_ref), ("new_side", "SHORT"), ("qty_lots", lots),
                        ("px", b.price_levels[0]), ("new_leverage", leverage), ("exit_legs", 1),
                        ("new_leg_ratio_0", Fraction(0)), ("new_leg_ratio_1", Fraction(0)),
                        ("probe_ok", True), ("venue_position_lots", venue_lots),
                        ("own_fill_age_ms", 0 if s.recent_fill else 60_000)))
        for qty in (0, 1):
            yield Action(f"policy EXIT qty={qty}", "EXIT", (("order", s.next_ref), ("qty_lots", qty)))
        for role, name in (("ENTRY", "entry_order"), ("EXIT", "exit_order")):
            ref = self.var(s, name)
            if s.cancels_left > 0 and ref and any(o.ref == ref and o.live for o in s.orders):
                yield Action(f"policy CANCEL {role} #{ref}", "CANCEL", (("order", ref),))
        if s.record_pending:
            yield Action("audit TRADE_WRITTEN", "TRADE_WRITTEN", ())
        if s.recent_fill:
            yield Action("clock: the hot window passes", "", ())

    def _venue_actions(self, s: State) -> Iterator[Action]:
        px = self.bounds.price_levels
        for o in s.orders:
            if o.live and not o.acked and o.filled_lots == 0:
                yield Action(f"venue ACK #{o.ref}", "ACK", (("order", o.ref),))
                if s.rejects_left > 0:
                    yield Action(f"venue REJECT #{o.ref}", "REJECT", (("order", o.ref),), fault=True)
            if o.live and o.filled_lots < o.target_lots:
                price = px[0] if o.role == "ENTRY" else px[1]
                for cum in sorted({o.filled_lots + 1, o.target_lots}):
                    yield Action(f"venue FILL #{o.ref} cum={cum}", "FILL", self._fill_params(o, cum, price))
            if o.live and (o.cancel_requested or s.venue_cancels_left > 0) and o.filled_lots < o.target_lots:
                fault = not o.cancel_requested
                yield Action(f"venue CANCELLED #{o.ref}{' (venue-side)' if fault else ''}", "CANCELLED",
                             (("order", o.ref),), fault=fault)
            if s.duplicates_left > 0:
                for cum in o.sent_cums:
                    price = px[0] if o.role == "ENTRY" else px[1]
                    yield Action(f"venue repeats FILL #{o.ref} cum={cum}", "FILL", self._fill_params(o, cum, price),
                                 fault=True)
        if s.foreign_left > 0:
            yield Action("venue FILL of a foreign order", "FILL", (("order", FOREIGN_ORDER), ("cum_lots", 1),
                         ("cum_quote_usdt", px[0]), ("cum_fee_usdt", Fraction(0))), fault=True)

    def _fill_params(self, o: VenueOrder, cum: int, price: Fraction) -> tuple[tuple[str, ExactValue], ...]:
        quote = cum * price  # one price level per order, so every cumulative report is cum x price
        return (("order", o.ref), ("cum_lots", cum), ("cum_quote_usdt", quote),
                ("cum_fee_usdt", quote * self.bounds.fee_rate))

    # ------------------------------------------------------------------ applying an action

    def apply(self, s: State, a: Action, vars_: Vars | None = None) -> tuple[State, str, int]:
        """(next state, slot outcome or "", fired row or -1). Raises BoundError from the slot. Pass the
        state's variables as a dict when you have them (the checker does, once per state)."""
        if not a.event:
            return attrs.evolve(s, recent_fill=False), "", -1
        params = dict(a.params)
        step = self.exact.step(s.slot_state, vars_ if vars_ is not None else self.vars(s), a.event, params)
        if step is None:
            return s, "UNHANDLED", -1
        s = self._venue_after(s, a, params)
        s = attrs.evolve(s, slot_state=step.dest, slot_vars=self._pack(step.vars))
        for name, args in step.emits:
            s = self._output(s, name, args)
        if a.event in ("ENTER", "EXIT") and step.outcome == "OK":
            s = attrs.evolve(s, next_ref=s.next_ref + 1)
        if a.event == "CANCEL":
            s = attrs.evolve(s, cancels_left=s.cancels_left - 1)
        if a.event == "ENTER" and step.outcome == "OK":
            s = attrs.evolve(s, trades=s.trades + 1)
        if a.event == "TRADE_WRITTEN":
            s = attrs.evolve(s, record_pending=0)
        return s, step.outcome, step.transition.index

    def _venue_after(self, s: State, a: Action, params: dict[str, ExactValue]) -> State:
        """What the venue did by producing this event (independent of how the slot books it)."""
        if a.label.startswith("venue repeats"):
            return attrs.evolve(s, duplicates_left=s.duplicates_left - 1)
        if params.get("order") == FOREIGN_ORDER:
            return attrs.evolve(s, foreign_left=s.foreign_left - 1)
        if not a.label.startswith("venue"):
            return s
        ref = params["order"]
        orders = list(s.orders)
        i = next(i for i, o in enumerate(orders) if o.ref == ref)
        o = orders[i]
        position = s.position_lots
        recent = s.recent_fill
        cancels_left = s.venue_cancels_left
        rejects_left = s.rejects_left
        if a.event == "ACK":
            o = attrs.evolve(o, acked=True)
        elif a.event == "REJECT":
            o = attrs.evolve(o, live=False)
            rejects_left -= 1
        elif a.event == "FILL":
            cum = params["cum_lots"]
            assert isinstance(cum, int)
            delta = cum - o.filled_lots
            quote = params["cum_quote_usdt"]
            assert isinstance(quote, Fraction)
            sign = -1 if o.role == "ENTRY" else 1  # the model's entries are SHORT
            position += sign * delta
            o = attrs.evolve(o, filled_lots=cum, quote=quote, acked=True, live=cum < o.target_lots,
                             sent_cums=(*o.sent_cums, cum))
            recent = True
        elif a.event == "CANCELLED":
            if a.fault:
                cancels_left -= 1
            o = attrs.evolve(o, live=False)
        orders[i] = o
        return attrs.evolve(s, orders=tuple(orders), position_lots=position, recent_fill=recent,
                            venue_cancels_left=cancels_left, rejects_left=rejects_left)

    def _output(self, s: State, name: str, args: dict[str, ExactValue]) -> State:
        if name == "PLACE_ORDER":
            ref, lots = args["order"], args["qty_lots"]
            assert isinstance(ref, int) and isinstance(lots, int)
            if lots <= 0:
                return s
            trade = self.var(s, "trade_seq")
            assert isinstance(trade, int)
            return attrs.evolve(s, orders=(*s.orders, VenueOrder(ref, str(args["role"]), trade, lots)))
        if name == "CANCEL_ORDER":
            ref = args["order"]
            orders = tuple(attrs.evolve(o, cancel_requested=True) if o.ref == ref else o for o in s.orders)
            return attrs.evolve(s, orders=orders)
        if name == "TRADE_CLOSED":
            trade = args["trade_seq"]
            assert isinstance(trade, int)
            return attrs.evolve(s, record_pending=trade)
        return s


__all__ = ["PROFILES", "Action", "BoundError", "Bounds", "ComposedModel", "State", "VenueOrder"]
