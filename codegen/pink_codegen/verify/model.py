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
  order's last fill. Each of these is a step of the order's venue machine, spec/venue.yaml run by the exact
  interpreter (`VenueEnvironment`): an action is offered only when that machine has a real transition for it,
  and `apply` checks that the venue machine lands where the model's order does (see `VenueOrder.venue_state`);
* faults (budgeted): a repeat of an earlier cumulative report (duplicate or out of order), a fill of an order
  that is not ours.

Capabilities that are off unless a profile asks for them (each one lets the environment produce a situation the
default venue never does; `mutants` turns them all on):
* `reorder_after_cancel_budget`: the venue executes a last fill of an order and confirms its cancel, and the
  confirmation reaches the slot before the fill's report (BingX's REST cancel reply and its user stream race);
  the report follows later ("stream delivers FILL");
* `lagging_stream_budget`: the venue executes a fill whose user-stream report lags (the slot hears of it later,
  after the order's cancel confirmation if one comes), and while the fill is in its hot window the kernel's REST
  position probe does not show it either (the premise of the hot window, D8): ENTER may carry that stale
  position, while the venue's own-fill time is exact;
* `second_price_level`: every lot of an order after its first fills at a second price (SECOND_PRICE x the
  order's level), so an order's fills have two prices and its VWAP differs from its last fill's price (D4);
* `exit_oversize`: EXIT sizes range over 0..max_lots + 1, up to more than any position can hold (D15);
* `multi_leg`: ENTER also with the leg plans listed (the ratios of the legs before the last), so the leg
  arithmetic is explored;
* `reorder_exit_orders`: the two reorderings above reach exit orders too, and exit orders are reduce-only at the
  venue (never filled beyond the position; their rest cancelled, on the stream, when the position closes).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import attrs

from pink_codegen.exact import BoundError, ExactMachine, Vars
from pink_codegen.ir import Machine
from pink_codegen.types import ExactValue

FOREIGN_ORDER = 99
SECOND_PRICE = Fraction(11, 10)  # with second_price_level: lots after an order's first fill at 110 % of its level


@attrs.frozen
class Bounds:
    """How far the checker looks. `default` checks in seconds (CI); `deep` explores much further."""

    name: str
    max_trades: int = 1
    max_lots: int = 2
    later_trade_max_lots: int = 0  # lots of the trades after the first (0: max_lots); a re-entry is small
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
    # Capabilities, off by default (see the module doc); turning one on never changes what the others explore.
    reorder_after_cancel_budget: int = 0  # fill reports delivered after their order's cancel confirmation
    lagging_stream_budget: int = 0  # fills whose report lags the venue (and, in the hot window, the REST probe)
    second_price_level: bool = False  # an order's lots after the first fill at a second price
    exit_oversize: bool = False  # EXIT sizes 0..max_lots + 1 (not only 0 = the leg and 1)
    multi_leg: tuple[tuple[Fraction, ...], ...] = ()  # extra ENTER leg plans: the ratios of the legs before the last
    # Let the two reordering capabilities above reach exit orders too (a late fill of an exit order, reported
    # after its cancel confirmation once the next exit order is out; docs/verify.md, "What it found", 4). Exit
    # orders are then reduce-only at the venue, as on BingX: with their reports lagging, the next exit order can
    # ask for more than the venue still holds. Off in `mutants` (see there).
    reorder_exit_orders: bool = False
    # A reduction, not a capability: when a trade starts, forget the orders of earlier trades that are done and
    # fully reported (nothing can observe them any more once no repeat of their reports can follow), so trades
    # that ended the same way converge. Only while the duplicate budget is spent.
    forget_finished_orders: bool = False

    @property
    def lagging(self) -> bool:
        """Can a fill's report reach the slot after the venue executed it (not in the same step)?"""
        return self.reorder_after_cancel_budget > 0 or self.lagging_stream_budget > 0


def bounds_in_use_beyond(bounds: Bounds, known: frozenset[str] | set[str] | tuple[str, ...]) -> list[str]:
    """Bounds fields outside `known` that are switched on (differ from their default): the model capabilities a
    derived encoding (the Promela export, the fast engine) does not know and so cannot reproduce exactly."""
    out: list[str] = []
    for f in attrs.fields(type(bounds)):
        if f.name in known:
            continue
        factory = getattr(f.default, "factory", None)
        default = factory() if callable(factory) else f.default
        if default is attrs.NOTHING or getattr(bounds, f.name) != default:
            out.append(f.name)
    return out


PROFILES = {
    "smoke": Bounds("smoke", max_lots=1, cancel_budget=1, reject_budget=1, duplicate_budget=1,
                    foreign_budget=0, venue_cancel_budget=1),
    "default": Bounds("default"),
    "deep": Bounds("deep", leverages=(1, 3), max_trades=2, max_lots=3, cancel_budget=2, reject_budget=2,
                   duplicate_budget=2, foreign_budget=1, venue_cancel_budget=2),
    # Every capability on, with small budgets: the situations the six mutants that survived `deep` need (a
    # fill reported after its cancel confirmation, a lagging stream and REST probe, two fill prices per order,
    # oversized exits, three exit legs). One trade of up to 3 lots then a second trade of 1, one cancel. Exit
    # orders' reports are not reordered here: with `reorder_exit_orders` the venue caps reduce-only exits at the
    # position, which hides an oversized exit (`leg_size_not_capped_at_open`); tests/test_verify.py checks this
    # profile with it on as well.
    "mutants": Bounds("mutants", max_trades=2, max_lots=3, cancel_budget=1, reject_budget=0, duplicate_budget=0,
                      foreign_budget=0, venue_cancel_budget=0, reorder_after_cancel_budget=1,
                      lagging_stream_budget=1, second_price_level=True, exit_oversize=True,
                      multi_leg=((Fraction(1, 4), Fraction(2, 3)),), later_trade_max_lots=1,
                      forget_finished_orders=True),
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
    reduce_only_cancelled: bool = False  # the venue cancelled its rest when the position closed; not reported yet

    @property
    def venue_state(self) -> str:
        """The order's state in its spec/venue.yaml machine, a function of the fields above (so adding it changes
        no state): NONE while the placement is unanswered (live, not acknowledged, nothing filled; the venue's
        answer, accepted or refused, is the next venue step, and a cancel requested meanwhile reaches the venue
        after the placement), OPEN once acknowledged, PARTIALLY_FILLED, FILLED, and CANCELLED for an order that
        ended short of its target. A refused order (REFUSED) has the same fields as one cancelled before any
        acknowledgement or fill: the model merges the two, both final with no real transition in venue.yaml."""
        if self.live:
            if self.filled_lots:
                return "PARTIALLY_FILLED"
            return "OPEN" if self.acked else "NONE"
        return "FILLED" if self.filled_lots == self.target_lots else "CANCELLED"


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
    reorders_left: int = 0
    lags_left: int = 0


@attrs.frozen
class Action:
    label: str  # e.g. "venue FILL #1 cum=2"
    event: str  # the slot event delivered ("" when none)
    params: tuple[tuple[str, ExactValue], ...]
    fault: bool = False


def delivered_lots(o: VenueOrder) -> int:
    """The order's cumulative executed lots as far as the user stream has reported them to the slot."""
    return o.sent_cums[-1] if o.sent_cums else 0


# ---------------------------------------------------------------------- the venue environment (spec/venue.yaml)


@functools.cache
def default_venue() -> Machine:
    """spec/venue.yaml of the checkout `verify` runs in (as the CLI finds spec/slot.yaml), else of the checkout
    this package lives in."""
    from pink_codegen.build import find_project_root
    from pink_codegen.loader import load_machine

    for root in (find_project_root(), Path(__file__).resolve().parents[3]):
        if root is not None and (root / "spec" / "venue.yaml").is_file():
            return load_machine(root / "spec" / "venue.yaml", "spec/venue.yaml")
    raise FileNotFoundError("spec/venue.yaml not found: the model checker's venue environment runs it")


class VenueSpecMismatch(AssertionError):
    """The model moved a venue order where its spec/venue.yaml machine does not go (a bug in model.py, or a
    venue.yaml change the model does not follow). Raised, never skipped, also under `python -O`."""


# What a model venue action does to one order, as venue.yaml events (see VenueEnvironment.events):
ACK, REJECT, FILL, FILL_CANCEL, CANCEL, VENUE_CANCEL, CANCEL_REQUEST = (
    "ACK", "REJECT", "FILL", "FILL_CANCEL", "CANCEL", "VENUE_CANCEL", "CANCEL_REQUEST")
# An order as its venue machine sees it: (venue state, role, target lots, filled lots, cancel requested).
OrderKey = tuple[str, str, int, int, bool]
Config = tuple[str, tuple[ExactValue, ...]]  # a venue machine's state and variables (in declaration order)
VenueEvent = tuple[str, tuple[tuple[str, ExactValue], ...], bool]  # event, params, must be a real transition


@attrs.frozen
class VenueOffers:
    """Which venue actions the venue machine allows on one order (VenueEnvironment.offers)."""

    ack: bool
    reject: bool
    fills: tuple[tuple[int, bool], ...]  # (cumulative lots, may the cancel confirmation follow the fill at once)
    cancel_done: bool  # the requested cancel can be carried out
    venue_cancel: bool


def order_key(o: VenueOrder) -> OrderKey:
    return (o.venue_state, o.role, o.target_lots, o.filled_lots, o.cancel_requested)


class VenueEnvironment:
    """spec/venue.yaml, one machine per venue order, run by the exact interpreter: the legality of the model's
    venue actions. The machine's configuration is derived from the VenueOrder (`config`), every venue action of
    the model is a short sequence of venue.yaml events (`events`), and steps are pure, so they are cached by
    (venue state, variables, event, params), runs by (order, action), and offers by order.

    How the model's orders meet venue.yaml's variables: the slot's PLACE_ORDER names no order type, so every
    order is a plain LIMIT order (not post-only; the model fills it at its price level), reduce-only when it is
    an exit (as the slot places them); the venue accepts a placement with every check passing (valid, margin,
    reducing) and refuses it as INVALID (the model's REJECT carries no reason); `reported_lots` equals
    `filled_lots`, because venue.yaml reports every execution at once (a report that lags, a model capability,
    is the stream delivering the venue's report late, not a venue step)."""

    def __init__(self, machine: Machine) -> None:
        self.ir = machine
        self.exact = ExactMachine(machine)
        self.var_names = tuple(v.name for v in machine.variables)
        state, vars_ = self.exact.initial()
        self.initial: Config = (state, tuple(vars_[n] for n in self.var_names))
        self.final = frozenset(st.name for st in machine.states if st.final)
        self._filled = self.var_names.index("filled_lots")
        self._steps: dict[tuple[str, tuple[ExactValue, ...], str, tuple[tuple[str, ExactValue], ...]],
                          tuple[str, tuple[ExactValue, ...], int, bool] | None] = {}
        self._runs: dict[tuple[OrderKey, str, int], tuple[Config, tuple[int, ...]] | None] = {}
        self._offers: dict[OrderKey, VenueOffers] = {}
        self._checked: dict[tuple[OrderKey, str, int, OrderKey], tuple[int, ...]] = {}
        self.fired: set[int] = set()  # venue.yaml rows of the model's venue steps (apply); the checker clears it

    def config(self, key: OrderKey) -> Config:
        """The venue machine of an order with this key: NONE (initial variables) while its placement is
        unanswered, else the state with the variables the model's order implies."""
        state, role, target, filled, cancel_requested = key
        if state == "NONE":
            return self.initial
        values = dict(zip(self.var_names, self.initial[1], strict=True))
        values.update(order_type="LIMIT", post_only=False, reduce_only=role == "EXIT", target_lots=target,
                      filled_lots=filled, reported_lots=filled, cancel_requested=cancel_requested)
        return state, tuple(values[n] for n in self.var_names)

    def _submit(self, key: OrderKey, valid: bool) -> tuple[tuple[str, ExactValue], ...]:
        return (("new_type", "LIMIT"), ("new_post_only", False), ("new_reduce_only", key[1] == "EXIT"),
                ("qty_lots", key[2]), ("valid", valid), ("crosses_book", False), ("reduces_position", True),
                ("margin_ok", True))

    def events(self, key: OrderKey, action: str, cum: int) -> list[VenueEvent]:
        """The venue.yaml events of a model venue action on an order (cum: the cumulative lots of a fill).

        An unanswered placement (NONE) is answered by the venue's next step: REJECT is the SUBMIT refused;
        ACK, FILL and the cancels start with the SUBMIT accepted and, if the runtime asked meanwhile, the cancel
        request (it reaches the venue after the placement). FILL is one MATCH of the lots beyond the order's
        fill (its report lagging or not: the venue's step is the same); FILL_CANCEL (the reorder capability) is
        that MATCH and then the requested cancel carried out; CANCEL is CANCEL_DONE, VENUE_CANCEL the venue-side
        cancel; CANCEL_REQUEST (the slot's CANCEL_ORDER) may be a no-op (a request repeated) or not reach a
        machine at all (an order already over: a final state takes no event), and on an unanswered placement it
        waits for the answer."""
        state, cancel_requested = key[0], key[4]
        if action == REJECT:
            return [("SUBMIT", self._submit(key, False), True),
                    *([("CANCEL_REQUEST", (), False)] if state == "NONE" and cancel_requested else [])]
        if action == CANCEL_REQUEST:
            return [] if state == "NONE" else [("CANCEL_REQUEST", (), False)]
        out: list[VenueEvent] = []
        if state == "NONE":
            out.append(("SUBMIT", self._submit(key, True), True))
            if cancel_requested:
                out.append(("CANCEL_REQUEST", (), True))
        if action in (FILL, FILL_CANCEL):
            out.append(("MATCH", (("lots", cum - key[3]),), True))
        if action in (FILL_CANCEL, CANCEL):
            out.append(("CANCEL_DONE", (), True))
        elif action in (ACK, VENUE_CANCEL):
            out.append((action, (), True))
        return out

    def step(self, cfg: Config, event: str,
             params: tuple[tuple[str, ExactValue], ...]) -> tuple[str, tuple[ExactValue, ...], int, bool] | None:
        """One venue.yaml step: (state, variables, row, real) or None when no row handles the event. A step is
        real when its outcome is OK and it changes something (state, a variable, or emits a report)."""
        key = (cfg[0], cfg[1], event, params)
        if key in self._steps:
            return self._steps[key]
        step = self.exact.step(cfg[0], dict(zip(self.var_names, cfg[1], strict=True)), event, dict(params))
        out = None
        if step is not None:
            values = tuple(step.vars[n] for n in self.var_names)
            real = step.outcome == "OK" and (step.dest != cfg[0] or values != cfg[1] or bool(step.emits))
            out = (step.dest, values, step.transition.index, real)
        self._steps[key] = out
        return out

    def run(self, key: OrderKey, action: str, cum: int = 0) -> tuple[Config, tuple[int, ...]] | None:
        """The venue machine after the action's events, and the rows they fire; None when an event that must be
        a real transition is not one (the venue cannot do this to the order now)."""
        memo = (key, action, cum)
        if memo in self._runs:
            return self._runs[memo]
        cfg = self.config(key)
        rows: list[int] = []
        result: tuple[Config, tuple[int, ...]] | None = None
        for event, params, must in self.events(key, action, cum):
            step = self.step(cfg, event, params)
            if step is None and not must and cfg[0] in self.final:
                continue  # an order that is over takes no event (a cancel request: "order not found")
            if step is None or (must and not step[3]):
                break
            cfg = (step[0], step[1])
            rows.append(step[2])
        else:
            result = (cfg, tuple(rows))
        self._runs[memo] = result
        return result

    def offers(self, o: VenueOrder) -> VenueOffers:
        """What the venue machine lets the venue do to this order now (the model's fills: one more lot, or
        the rest)."""
        key = order_key(o)
        got = self._offers.get(key)
        if got is None:
            fills = tuple((cum, self.run(key, FILL_CANCEL, cum) is not None)
                          for cum in sorted({key[3] + 1, key[2]}) if self.run(key, FILL, cum) is not None)
            refused = self.run(key, REJECT)  # the placement refused: SUBMIT into a final state
            got = VenueOffers(self.run(key, ACK) is not None, refused is not None and refused[0][0] in self.final,
                              fills, self.run(key, CANCEL) is not None, self.run(key, VENUE_CANCEL) is not None)
            self._offers[key] = got
        return got

    def advance(self, before: VenueOrder, action: str, cum: int, after: VenueOrder) -> None:
        """Check that the model's order `after` is where the venue machine of `before` goes by the action, and
        record the venue.yaml rows fired. Raises VenueSpecMismatch when it is not."""
        memo = (order_key(before), action, cum, order_key(after))
        rows = self._checked.get(memo)
        if rows is None:
            rows = self._check(*memo)
            self._checked[memo] = rows
        self.fired.update(rows)

    def _check(self, key: OrderKey, action: str, cum: int, after: OrderKey) -> tuple[int, ...]:
        run = self.run(key, action, cum)
        if run is None:
            raise VenueSpecMismatch(f"spec/venue.yaml has no {action} (cum {cum}) for an order in {key}: "
                                    f"{self.events(key, action, cum)}")
        (state, values), rows = run
        want_state, want = self.config(after)
        # Once over, the model keeps only what the order executed (a refused order and one cancelled before any
        # acknowledgement or fill look alike; a cancel request after the end changes no venue variable).
        same = (state in self.final and want_state in self.final and values[self._filled] == want[self._filled]) \
            or (state, values) == (want_state, want)
        if not same:
            raise VenueSpecMismatch(f"{action} (cum {cum}) on an order in {key}: spec/venue.yaml goes to {state} "
                                    f"{dict(zip(self.var_names, values, strict=True))}, the model to {after}")
        return rows


class ComposedModel:
    def __init__(self, slot: Machine, bounds: Bounds, venue: Machine | None = None) -> None:
        self.ir = slot
        self.exact = ExactMachine(slot)
        self.bounds = bounds
        # The venue environment's legality: spec/venue.yaml (or the machine given), one machine per order.
        self.venue = VenueEnvironment(venue if venue is not None else default_venue())
        self.var_names = tuple(v.name for v in slot.variables)
        self._index = {name: i for i, name in enumerate(self.var_names)}

    # ------------------------------------------------------------------ states

    def initial(self) -> State:
        state, vars_ = self.exact.initial()
        b = self.bounds
        return State(state, self._pack(vars_), (), 0, 1, 0, False, 0, b.duplicate_budget, b.foreign_budget,
                     b.venue_cancel_budget, b.cancel_budget, b.reject_budget, b.reorder_after_cancel_budget,
                     b.lagging_stream_budget)

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
            venue_lots = abs(s.position_lots)
            # REST lags like the stream within the hot window (lagging_stream_budget): the position before the
            # fills not reported yet.
            stale_lots = abs(s.position_lots - self._unreported_lots(s)) if b.lagging_stream_budget else venue_lots
            plans: tuple[tuple[Fraction, ...], ...] = ((), *b.multi_leg)
            max_lots = b.later_trade_max_lots if s.trades and b.later_trade_max_lots else b.max_lots
            for lots in range(1, max_lots + 1):
                for leverage in b.leverages:
                    for ratios in plans:
                        legs = f" {len(ratios) + 1} legs {'/'.join(map(str, ratios))}" if ratios else ""
                        r0, r1 = (*ratios, Fraction(0), Fraction(0))[:2]
                        params: tuple[tuple[str, ExactValue], ...] = (
                            ("order", s.next_ref), ("new_side", "SHORT"), ("qty_lots", lots),
                            ("px", b.price_levels[0]), ("new_leverage", leverage), ("exit_legs", len(ratios) + 1),
                            ("new_leg_ratio_0", r0), ("new_leg_ratio_1", r1),
                            ("probe_ok", True), ("venue_position_lots", venue_lots),
                            ("own_fill_age_ms", 0 if s.recent_fill else 60_000))
                        yield Action(f"policy ENTER {lots} lots x{leverage}{legs}", "ENTER", params)
                        if s.recent_fill and stale_lots != venue_lots:
                            yield Action(f"policy ENTER {lots} lots x{leverage}{legs} (REST probe lags: position "
                                         f"{stale_lots})", "ENTER", (*params[:-2], ("venue_position_lots", stale_lots),
                                                                     params[-1]), fault=True)
        for qty in range(b.max_lots + 2) if b.exit_oversize else (0, 1):
            yield Action(f"policy EXIT qty={qty}", "EXIT", (("order", s.next_ref), ("qty_lots", qty)))
        for role, name in (("ENTRY", "entry_order"), ("EXIT", "exit_order")):
            ref = self.var(s, name)
            # The policy cancels what the slot believes is live: an order whose last fill is not reported yet too.
            if s.cancels_left > 0 and ref and any(o.ref == ref and (o.live or o.filled_lots > delivered_lots(o))
                                                  for o in s.orders):
                yield Action(f"policy CANCEL {role} #{ref}", "CANCEL", (("order", ref),))
        if s.record_pending:
            yield Action("audit TRADE_WRITTEN", "TRADE_WRITTEN", ())
        if s.recent_fill:
            yield Action("clock: the hot window passes", "", ())

    def _venue_actions(self, s: State) -> Iterator[Action]:
        # What the venue may do to an order is what its venue.yaml machine allows (`VenueEnvironment.offers`);
        # the budgets, the capabilities and a lagging report are the model's own filters on top.
        px = self.bounds.price_levels
        lagging = self.bounds.lagging
        offers = self.venue.offers
        backlog = lagging and any(o.filled_lots > delivered_lots(o) for o in s.orders)  # reports the stream owes
        for o in s.orders:
            may = offers(o)
            unreported = lagging and o.filled_lots > delivered_lots(o)
            reorders = o.role == "ENTRY" or self.bounds.reorder_exit_orders  # may its report follow its cancel?
            if may.ack:
                yield Action(f"venue ACK #{o.ref}", "ACK", (("order", o.ref),))
            if may.reject and s.rejects_left > 0:
                yield Action(f"venue REJECT #{o.ref}", "REJECT", (("order", o.ref),), fault=True)
            # Exit orders are reduce-only: the venue never fills one beyond the position it holds, and cancels
            # what is left of them when the position closes (BingX; `_venue_after`). The cancel is a user-stream
            # event, so its report follows every fill report executed before it (only the REST reply to a
            # requested cancel races the stream). Both bind only when the slot's book lags the venue
            # (reorder_exit_orders): otherwise no exit order asks for more than is open.
            fills = may.fills
            if o.role == "EXIT" and self.bounds.reorder_exit_orders and fills:
                last = min(o.target_lots, o.filled_lots + abs(s.position_lots))
                fills = tuple((cum, o.cancel_requested and cum < o.target_lots)
                              for cum in sorted({o.filled_lots + 1, last}) if o.filled_lots < cum <= last)
            if not unreported:
                for cum, then_cancel in fills:
                    yield Action(f"venue FILL #{o.ref} cum={cum}", "FILL", self._fill_params(o, cum))
                    if s.lags_left > 0 and reorders:
                        yield Action(f"venue FILL #{o.ref} cum={cum} (its report lags)", "", self._fill_params(o, cum),
                                     fault=True)
                    if s.reorders_left > 0 and reorders and then_cancel:
                        yield Action(f"venue FILL #{o.ref} cum={cum}, then CANCELLED #{o.ref} overtakes its report",
                                     "CANCELLED", (("order", o.ref), ("cum_lots", cum)), fault=True)
            if o.reduce_only_cancelled and not backlog:
                yield Action(f"stream reports CANCELLED #{o.ref} (reduce-only: the position closed)", "CANCELLED",
                             (("order", o.ref),))
            # Our cancel carried out, else (within the fault budget) one by the venue itself; the venue may cancel
            # an order by itself also while ours is on its way, which looks the same to the slot.
            if o.cancel_requested and may.cancel_done:
                yield Action(f"venue CANCELLED #{o.ref}", "CANCELLED", (("order", o.ref),))
            elif not o.cancel_requested and may.venue_cancel and s.venue_cancels_left > 0:
                yield Action(f"venue CANCELLED #{o.ref} (venue-side)", "CANCELLED", (("order", o.ref),), fault=True)
            if s.duplicates_left > 0:
                for cum in o.sent_cums:
                    yield Action(f"venue repeats FILL #{o.ref} cum={cum}", "FILL", self._fill_params(o, cum),
                                 fault=True)
            if unreported:
                yield Action(f"stream delivers FILL #{o.ref} cum={o.filled_lots}", "FILL",
                             self._fill_params(o, o.filled_lots))
        if s.foreign_left > 0:
            yield Action("venue FILL of a foreign order", "FILL", (("order", FOREIGN_ORDER), ("cum_lots", 1),
                         ("cum_quote_usdt", px[0]), ("cum_fee_usdt", Fraction(0))), fault=True)

    def quote(self, role: str, cum: int) -> Fraction:
        """The venue's cumulative quote of an order's first `cum` lots (entries at the first price level, exits
        at the second; with second_price_level, every lot after the first at SECOND_PRICE x the level)."""
        price = self.bounds.price_levels[0 if role == "ENTRY" else 1]
        if not self.bounds.second_price_level or cum <= 1:
            return cum * price
        return price + (cum - 1) * price * SECOND_PRICE

    def _fill_params(self, o: VenueOrder, cum: int) -> tuple[tuple[str, ExactValue], ...]:
        quote = self.quote(o.role, cum)
        return (("order", o.ref), ("cum_lots", cum), ("cum_quote_usdt", quote),
                ("cum_fee_usdt", quote * self.bounds.fee_rate))

    def _unreported_lots(self, s: State) -> int:
        """Signed venue position of the fills executed but not reported yet (the model's entries are SHORT)."""
        return sum((-1 if o.role == "ENTRY" else 1) * (o.filled_lots - delivered_lots(o)) for o in s.orders)

    # ------------------------------------------------------------------ applying an action

    def apply(self, s: State, a: Action, vars_: Vars | None = None) -> tuple[State, str, int]:
        """(next state, slot outcome or "", fired row or -1). Raises BoundError from the slot. Pass the
        state's variables as a dict when you have them (the checker does, once per state)."""
        if not a.event:
            if not a.params:
                return attrs.evolve(s, recent_fill=False), "", -1
            return self._venue_after(s, a, dict(a.params)), "", -1  # a fill whose report lags
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
            if self.bounds.forget_finished_orders and s.duplicates_left == 0:
                trade = self.var(s, "trade_seq")
                s = attrs.evolve(s, orders=tuple(o for o in s.orders if o.trade == trade or o.live
                                                 or o.filled_lots > delivered_lots(o)))
        if a.event == "TRADE_WRITTEN":
            s = attrs.evolve(s, record_pending=0)
        return s, step.outcome, step.transition.index

    def _venue_after(self, s: State, a: Action, params: dict[str, ExactValue]) -> State:
        """What the venue did by producing this event (independent of how the slot books it)."""
        if a.label.startswith("venue repeats"):
            return attrs.evolve(s, duplicates_left=s.duplicates_left - 1)
        if params.get("order") == FOREIGN_ORDER:
            return attrs.evolve(s, foreign_left=s.foreign_left - 1)
        if a.label.startswith("stream"):  # executed earlier; only the report is new
            if a.event == "CANCELLED":
                return attrs.evolve(s, orders=tuple(attrs.evolve(o, reduce_only_cancelled=False)
                                                    if o.ref == params["order"] else o for o in s.orders))
            ref, cum = params["order"], params["cum_lots"]
            assert isinstance(cum, int)
            return attrs.evolve(s, orders=tuple(attrs.evolve(o, sent_cums=(*o.sent_cums, cum)) if o.ref == ref else o
                                                for o in s.orders))
        if not a.label.startswith("venue"):
            return s
        ref = params["order"]
        orders = list(s.orders)
        i = next(i for i, o in enumerate(orders) if o.ref == ref)
        o = orders[i]
        before = o
        position = s.position_lots
        recent = s.recent_fill
        cancels_left = s.venue_cancels_left
        rejects_left = s.rejects_left
        reorders_left, lags_left = s.reorders_left, s.lags_left
        cum = 0
        if "cum_lots" in params:  # the venue executes a fill (reported now, or later when it lags)
            cum = params["cum_lots"]
            assert isinstance(cum, int)
            sign = -1 if o.role == "ENTRY" else 1  # the model's entries are SHORT
            position += sign * (cum - o.filled_lots)
            reported = (*o.sent_cums, cum) if a.event == "FILL" else o.sent_cums
            o = attrs.evolve(o, filled_lots=cum, quote=self.quote(o.role, cum), acked=True, live=cum < o.target_lots,
                             sent_cums=reported)
            recent = True
            if not a.event:
                lags_left -= 1
        action = FILL
        if a.event == "ACK":
            o = attrs.evolve(o, acked=True)
            action = ACK
        elif a.event == "REJECT":
            o = attrs.evolve(o, live=False)
            rejects_left -= 1
            action = REJECT
        elif a.event == "CANCELLED":
            if "cum_lots" in params:
                reorders_left -= 1
                action = FILL_CANCEL
            elif a.fault:
                cancels_left -= 1
                action = VENUE_CANCEL
            else:
                action = CANCEL
            o = attrs.evolve(o, live=False)
        self.venue.advance(before, action, cum, o)  # the order's venue machine goes where the model's order does
        orders[i] = o
        if self.bounds.reorder_exit_orders and o.role == "EXIT" and "cum_lots" in params and position == 0:
            # Reduce-only (with reorder_exit_orders, as in `_venue_actions`): the venue cancels the rest of every
            # exit order once the position is closed.
            orders = [attrs.evolve(x, live=False, reduce_only_cancelled=True) if x.role == "EXIT" and x.live else x
                      for x in orders]
        return attrs.evolve(s, orders=tuple(orders), position_lots=position, recent_fill=recent,
                            venue_cancels_left=cancels_left, rejects_left=rejects_left, reorders_left=reorders_left,
                            lags_left=lags_left)

    def _output(self, s: State, name: str, args: dict[str, ExactValue]) -> State:
        if name == "PLACE_ORDER":
            ref, lots = args["order"], args["qty_lots"]
            assert isinstance(ref, int) and isinstance(lots, int)
            if lots <= 0:
                return s
            trade = self.var(s, "trade_seq")
            assert isinstance(trade, int)
            # Reduce-only (with reorder_exit_orders, as in `_venue_actions`): an exit order with no position left
            # to reduce is cancelled by the venue at once.
            gone = self.bounds.reorder_exit_orders and args["role"] == "EXIT" and s.position_lots == 0
            return attrs.evolve(s, orders=(*s.orders, VenueOrder(ref, str(args["role"]), trade, lots, live=not gone,
                                                                 reduce_only_cancelled=gone)))
        if name == "CANCEL_ORDER":
            ref = args["order"]
            orders = tuple(self._cancel_request(o) if o.ref == ref else o for o in s.orders)
            return attrs.evolve(s, orders=orders)
        if name == "TRADE_CLOSED":
            trade = args["trade_seq"]
            assert isinstance(trade, int)
            return attrs.evolve(s, record_pending=trade)
        return s

    def _cancel_request(self, o: VenueOrder) -> VenueOrder:
        after = attrs.evolve(o, cancel_requested=True)
        self.venue.advance(o, CANCEL_REQUEST, 0, after)  # a venue.yaml CANCEL_REQUEST (a no-op once it is over)
        return after


__all__ = ["PROFILES", "Action", "BoundError", "Bounds", "ComposedModel", "State", "VenueEnvironment", "VenueOffers",
           "VenueOrder", "VenueSpecMismatch", "default_venue", "delivered_lots"]
