"""The fast engine of `pink-codegen verify`: the composed model of `verify/model.py`, compiled to specialised
Python for one spec and one `Bounds`, and searched breadth first like `checker.check`, with the same result.

Why: `checker.check` explores attrs `State` objects through the exact interpreter's dictionaries (about 5,000
states/s). Here, at check time, the slot's typed IR and the profile's bounds are turned into Python source,
compiled once with `compile()`, specialised per slot state: `step_<i>` and `holds_<i>` for each state of the
slot (dispatched on the state name by `STEP` and `HOLDS`), where an event tries only the rows whose sources
include that state, without a state test, and what the invariants decide by the state is decided here. The
search calls `step_<i>(st, True)`, which first runs `holds_<i>`'s checks (the same generator) and returns None
when one fails. The two dispatchers:

* `successors(st) -> [(label_id, next_st, fired_row), ...]`: every environment action of `model.actions` in
  the same order, each delivering its event through the slot's rows compiled to straight-line code (candidate
  rows by priority then declaration order, as `ExactMachine.enabled` orders them; guards as Python expressions
  over locals; lets, then every effect and emit on the pre-state, the bounds, then the assignment), followed
  by `model.apply`'s venue update, outputs and bookkeeping;
* `holds(st) -> bool`: the spec's invariants and the composed invariants of `checker.COMPOSED`.

**States** are flat tuples: the slot's state name, the variables some row of a delivered event can assign (the
others keep their initial value in every reachable state), the venue position, next order id, trade count,
hot-window flag, pending record and the budgets, then nine fields per venue order in placement order (ref,
role, trade, target lots, filled lots, acked, live, cancel requested, and the cumulative reports sent as a bit
set). That is a bijection with `model.State` for the profiles this engine accepts: an order's quote is a
function of its role and filled lots (one price level per role), the reports sent form an increasing sequence
(no report lags), and the lag and reorder budgets are zero. `to_state` maps a tuple back to a `model.State`.

**Numbers** are the exact interpreter's own: Python ints, and Fractions only where a value is not whole (never
in the shipped profiles: prices 3000 and 2000 USDT, fee rate 1/1000). The expressions are emitted from the same
typed trees with `expr.emit` (target "exact"); whole literals are written as ints and division returns an int
when the quotient is whole, else `div_exact`'s value. Python ints do not overflow, so no scaling is needed:
equal values are equal and hash alike whether int or Fraction, which keeps the state identity the reference's.

**Same result.** Labels are ints (`label_id`: action site, order ref and cumulative lots) rendered to exactly
`model.py`'s label text. When the fast code finds a problem (an invariant fails, a variable leaves its bounds,
the slot does not handle a venue event), the violation itself is computed by the reference code on the
converted state (`checker.composed_violations`, `ExactMachine.violated`, `ComposedModel.apply`), so names and
details are the reference's; if the reference disagrees, the engines differ and the check raises.

Supported profiles: `FAST_BOUNDS_FIELDS` (those of the Promela export, plus `later_trade_max_lots`); a `Bounds`
field outside it that is switched on (a model capability added later) makes `unsupported_bounds` name it, and
`pink-codegen verify --engine auto` runs the reference checker instead.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import attrs

from pink_codegen import expr as X
from pink_codegen.exact import BoundError
from pink_codegen.ir import Transition
from pink_codegen.types import ExactValue, NumType
from pink_codegen.verify.checker import (
    COMPOSED,
    FREE_STATES,
    REACHABILITY,
    CheckResult,
    Violation,
    composed_violations,
    result_of,
)
from pink_codegen.verify.model import (
    FOREIGN_ORDER,
    Action,
    ComposedModel,
    State,
    VenueOrder,
    bounds_in_use_beyond,
)
from pink_fsm.fsm.numbers import div_exact, floor_exact, sign_exact
from pink_fsm.fsm.types import SIDE_SIGN_EXACT

# The Bounds fields this engine encodes. Any other field must keep its default, or the engine refuses the profile.
FAST_BOUNDS_FIELDS = frozenset({"name", "max_trades", "max_lots", "later_trade_max_lots", "price_levels",
                                "leverages", "cancel_budget", "reject_budget", "duplicate_budget", "foreign_budget",
                                "venue_cancel_budget", "fee_rate"})
# The events model.py delivers; rows of other events never fire in the composed model.
MODEL_EVENTS = ("ENTER", "EXIT", "CANCEL", "TRADE_WRITTEN", "ACK", "REJECT", "FILL", "CANCELLED")
ENCODED_COMPOSED = frozenset({"books_match_venue", "one_entry_exposure", "booked_at_venue_prices",
                              "closed_pnl_is_price_change", "fees_match_venue", "record_before_next_trade",
                              "cancel_in_flight"})
HOT_WINDOW_PASSED_MS = 60_000  # model.py's own_fill_age_ms without a recent own fill
MAX_LOTS_LIMIT = 16  # an order's reports sent are a bit set of at most this many lots
# A venue order is one int: ref (8 bits), role, acked, live, cancel requested (1 bit each), target and filled
# lots (8 bits each), the cumulative reports sent as a bit set (bit c-1: report c), and the trade above them.
REF_MASK = 0xFF
ROLE_EXIT = 1 << 8
ACKED = 1 << 9
LIVE = 1 << 10
CREQ = 1 << 11
TARGET_SHIFT = 12
FILLED_SHIFT = 20
LOTS_MASK = 0xFF
SENT_SHIFT = 28
SENT_MASK = (1 << MAX_LOTS_LIMIT) - 1
TRADE_SHIFT = SENT_SHIFT + MAX_LOTS_LIMIT
ENV_FIELDS = ("position", "next_ref", "trades", "recent", "record_pending", "dup_left", "foreign_left",
              "vcancel_left", "cancels_left", "rejects_left")
# label_id = site << SITE_SHIFT | ref << REF_SHIFT | cum: an order ref is below FOREIGN_ORDER, cum below 256.
SITE_SHIFT = 16
REF_SHIFT = 8
ROW_BOUNDS = -2  # successors' marker: a variable left its bounds (the reference explains it)
ROW_UNHANDLED_VENUE = -3  # successors' marker: the slot does not handle a venue event


Successor = tuple[int, tuple[Any, ...] | None, int]  # (label id, next state or None, fired row or a marker)


class FastUnsupported(ValueError):
    """The fast engine cannot encode this model exactly; the message says why (use the reference checker)."""


def unsupported_bounds(bounds: Any) -> list[str]:
    """Bounds fields this engine does not encode that are switched on (differ from their default)."""
    return bounds_in_use_beyond(bounds, FAST_BOUNDS_FIELDS)


def why_unsupported(m: ComposedModel) -> str:
    """Empty when the fast engine can check `m` exactly, else the reason."""
    b = m.bounds
    unknown = unsupported_bounds(b)
    if unknown:
        return (f"profile {b.name!r} switches on model capabilities the fast engine does not encode: "
                f"{', '.join(unknown)}")
    if len(b.price_levels) < 2:
        return f"profile {b.name!r} needs an entry and an exit price level"
    if max(b.max_lots, b.later_trade_max_lots) > MAX_LOTS_LIMIT:
        return f"profile {b.name!r}: more than {MAX_LOTS_LIMIT} lots per order"
    if set(COMPOSED) != ENCODED_COMPOSED:
        return "checker.COMPOSED has invariants the fast engine does not encode"
    events = {e.name for e in m.ir.events}
    if not set(MODEL_EVENTS) <= events:
        return f"the slot spec has no event(s) {', '.join(sorted(set(MODEL_EVENTS) - events))} that model.py delivers"
    return ""


def _whole(value: ExactValue) -> ExactValue:
    if isinstance(value, Fraction) and value.denominator == 1:
        return value.numerator
    return value


def _div(a: int | Fraction, b: int | Fraction) -> int | Fraction:
    """`div_exact`, as an int when the quotient is whole (a whole quotient is its own 12-place rounding)."""
    if type(a) is int and type(b) is int and b and not a % b:
        return a // b
    q = div_exact(a, b)
    return q.numerator if q.denominator == 1 else q


def _cancel(orders: tuple[int, ...], ref: Any) -> tuple[int, ...]:
    """model._output's CANCEL_ORDER: every venue order with this ref is marked cancel-requested."""
    return tuple(o | CREQ if o & REF_MASK == ref else o for o in orders)


def pack_order(o: VenueOrder) -> int:
    """A model.VenueOrder as the fast engine's int (its quote and report order are implied, see the module doc)."""
    sent = 0
    for cum in o.sent_cums:
        sent |= 1 << (cum - 1)
    return (o.ref | (ROLE_EXIT if o.role == "EXIT" else 0) | (ACKED if o.acked else 0) | (LIVE if o.live else 0)
            | (CREQ if o.cancel_requested else 0) | o.target_lots << TARGET_SHIFT | o.filled_lots << FILLED_SHIFT
            | sent << SENT_SHIFT | o.trade << TRADE_SHIFT)


@attrs.frozen
class Site:
    """One environment action site of model.actions: its label text (with {ref} and {cum}) and whether it is a
    fault (fault edges do not count for the reachability properties)."""

    template: str
    fault: bool


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)


class _Indented(_Writer):
    """Writes to `inner` one level deeper."""

    def __init__(self, inner: _Writer) -> None:
        super().__init__()
        self.inner = inner

    def __call__(self, indent: int, text: str) -> None:
        self.inner(indent + 1, text)


class FastModel:
    """The composed model of `m` compiled to `successors` and `holds` over flat tuples (see the module doc)."""

    def __init__(self, m: ComposedModel) -> None:
        reason = why_unsupported(m)
        if reason:
            raise FastUnsupported(reason)
        self.m = m
        self.b = m.bounds
        ir = m.ir
        delivered = [t for t in ir.transitions if t.event in MODEL_EVENTS]
        assigned = {name for t in delivered for name, _ in t.effect}
        self.live_vars = tuple(v.name for v in ir.variables if v.name in assigned)
        self.const_vars = {v.name: _whole(v.init) for v in ir.variables if v.name not in assigned}
        self.prefix = ("S", *(f"v_{n}" for n in self.live_vars), *ENV_FIELDS)
        self.n_prefix = len(self.prefix)
        self.rows = {t.index: t for t in ir.transitions}
        self.pool: list[Any] = []
        self.sites: list[Site] = []
        self._here = ""  # the slot state whose successor function is being generated
        self._same_orders = False  # while generating venue actions that leave the orders as they are (O1 is O)
        b = self.b
        self.px_entry = _whole(Fraction(b.price_levels[0]))
        self.px_exit = _whole(Fraction(b.price_levels[1]))
        self.fee_entry = _whole(Fraction(b.price_levels[0]) * b.fee_rate)
        self.fee_exit = _whole(Fraction(b.price_levels[1]) * b.fee_rate)
        self._cx = X.EmitContext(target="exact", var=self._var, param=lambda n: f"p_{n}", state="S",
                                 enum_value=lambda _t, v: repr(v), literal=self._literal)
        self.source = self._generate()
        namespace: dict[str, Any] = {
            "K": self.pool, "div_exact": _div, "floor_exact": floor_exact, "sign_exact": sign_exact,
            "SIDE_SIGN_EXACT": SIDE_SIGN_EXACT, "_cancel": _cancel,
            "FastUnsupported": FastUnsupported,
            "PX_E": self.px_entry, "PX_X": self.px_exit, "FEE_E": self.fee_entry, "FEE_X": self.fee_exit,
            "FEE_NUM": b.fee_rate.numerator, "FEE_DEN": b.fee_rate.denominator,
            "CUMS": [tuple(c for c in range(1, MAX_LOTS_LIMIT + 1) if mask >> (c - 1) & 1)
                     for mask in range(1 << max(b.max_lots, b.later_trade_max_lots, 1))],
            **{f"c_{name}": value for name, value in self.const_vars.items()},
        }
        # The source is generated from the validated, typed IR only: identifiers are the loader's validated names
        # with a prefix, literals are ints, reprs of validated names, or pooled values (K[i]).
        exec(compile(self.source, f"<fast:{ir.name}:{b.name}>", "exec"), namespace)
        self.successors: Callable[[tuple[Any, ...]], list[tuple[int, tuple[Any, ...] | None, int]]] = \
            namespace["successors"]
        self.holds: Callable[[tuple[Any, ...]], bool] = namespace["holds"]
        # the step functions by slot state name, for the search (one dict lookup instead of a dispatch call)
        # step_of[name](st, True): the successors, or None when an invariant fails
        self.step_of: dict[str, Callable[[tuple[Any, ...], bool], list[Successor] | None]] = namespace["STEP"]
        self.fault_sites = tuple(s.fault for s in self.sites)

    # ------------------------------------------------------------------ code generation helpers

    def _var(self, name: str) -> str:
        return f"v_{name}" if name not in self.const_vars else f"c_{name}"

    def _literal(self, e: X.TExpr) -> str:
        if isinstance(e, X.StateTest):
            return self._pooled(frozenset(e.states))
        assert isinstance(e, X.Lit)
        return self._value(e.value)

    def _pooled(self, value: Any) -> str:
        self.pool.append(value)
        return f"K[{len(self.pool) - 1}]"

    def _value(self, value: ExactValue) -> str:
        """Code for an exact value: ints and bools as literals, names as reprs, other Fractions pooled."""
        if isinstance(value, bool):
            return "True" if value else "False"
        if isinstance(value, int):
            return repr(int(value))
        if isinstance(value, Fraction):
            return repr(value.numerator) if value.denominator == 1 else self._pooled(value)
        assert isinstance(value, str) and value.isidentifier()
        return repr(value)

    def _site(self, template: str, fault: bool) -> int:
        """The site's number: the same in every state's successor function (sites are numbered on first use)."""
        site = Site(template, fault)
        if site not in self.sites:
            self.sites.append(site)
        return self.sites.index(site)

    def _emit(self, e: X.TExpr) -> str:
        return X.emit(e, self._cx)

    # ------------------------------------------------------------------ the generated source

    def _generate(self) -> str:
        """One successor function per slot state (`step_<i>`, dispatched on the state name by `STEP`): an event
        delivered in a given state tries only the rows whose sources include that state, without a state test."""
        w = _Writer()
        names = [s.name for s in self.m.ir.states]
        for i, name in enumerate(names):
            self._here = name
            w(0, f"def step_{i}(st, check=False):  # {name}")
            w(1, f"{', '.join(self.prefix)}, = st[:{self.n_prefix}]")
            w(1, f"O = st[{self.n_prefix}:]")
            w(1, "if check:  # the search checks the invariants here (holds_<i>), saving a call and an unpacking")
            self._checks(_Indented(w), name, "return None")
            w(1, "out = []")
            w(1, f"if next_ref >= {FOREIGN_ORDER}:")
            w(2, "raise FastUnsupported('order refs reach FOREIGN_ORDER (the reference model takes them as foreign)')")
            self._policy(w)
            self._venue(w)
            w(1, "return out")
            w(0, "")
        w(0, "STEP = {" + ", ".join(f"{name!r}: step_{i}" for i, name in enumerate(names)) + "}")
        w(0, "")
        w(0, "def successors(st):")
        w(1, "return STEP[st[0]](st)")
        w(0, "")
        self._holds(w)
        return "\n".join(w.lines) + "\n"

    def _rows(self, event: str) -> list[Transition]:
        """The rows of `event` that can fire in the state being generated, by priority then declaration order
        (ExactMachine.enabled's order)."""
        return sorted((t for t in self.m.ir.transitions if t.event == event and self._here in t.sources),
                      key=lambda t: (-t.priority, t.index))

    def _policy(self, w: _Writer) -> None:
        b = self.b
        # A policy action whose event has no row in this state changes nothing (no successor): its sites are
        # still numbered (label ids are the same in every state's function) but its code goes to a discarded writer.
        main = w
        w = self._writer_for("ENTER", main)
        w(1, f"if trades < {int(b.max_trades)}:")
        w(2, "p_venue_position_lots = abs(position)")
        w(2, f"p_own_fill_age_ms = 0 if recent else {HOT_WINDOW_PASSED_MS}")
        if b.later_trade_max_lots:
            w(2, f"mx_lots = {int(b.later_trade_max_lots)} if trades else {int(b.max_lots)}")
        for lots in range(1, max(b.max_lots, b.later_trade_max_lots) + 1):
            n = 2
            if b.later_trade_max_lots:
                w(2, f"if mx_lots >= {lots}:")
                n = 3
            for leverage in b.leverages:
                site = self._site(f"policy ENTER {int(lots)} lots x{int(leverage)}", False)
                params = {"order": "next_ref", "new_side": repr("SHORT"), "qty_lots": repr(int(lots)),
                          "px": self._value(self.px_entry), "new_leverage": repr(int(leverage)), "exit_legs": "1",
                          "new_leg_ratio_0": "0", "new_leg_ratio_1": "0", "probe_ok": "True",
                          "venue_position_lots": "p_venue_position_lots", "own_fill_age_ms": "p_own_fill_age_ms"}
                self._deliver(w, n, "ENTER", str(site << SITE_SHIFT), params, {}, venue=False)
        w = self._writer_for("EXIT", main)
        for qty in (0, 1):
            site = self._site(f"policy EXIT qty={qty}", False)
            self._deliver(w, 1, "EXIT", str(site << SITE_SHIFT), {"order": "next_ref", "qty_lots": str(qty)}, {},
                          venue=False)
        w = self._writer_for("CANCEL", main)
        for role, name in (("ENTRY", "entry_order"), ("EXIT", "exit_order")):
            site = self._site(f"policy CANCEL {role} #{{ref}}", False)
            ref = self._var(name)
            w(1, f"if cancels_left > 0 and {ref}:")
            # The policy cancels what the slot believes is live: an order whose last fill is not reported too.
            w(2, "for o in O:")
            w(3, f"if o & {REF_MASK} == {ref} and (o & {LIVE} or (o >> {FILLED_SHIFT} & {LOTS_MASK}) > "
                 f"(o >> {SENT_SHIFT} & {SENT_MASK}).bit_length()):")
            self._deliver(w, 4, "CANCEL", f"{site << SITE_SHIFT} | {ref} << {REF_SHIFT}", {"order": ref},
                          {"cancels_left": "cancels_left - 1"}, venue=False)
            w(4, "break")
        site = self._site("audit TRADE_WRITTEN", False)
        w = self._writer_for("TRADE_WRITTEN", main)
        w(1, "if record_pending:")
        self._deliver(w, 2, "TRADE_WRITTEN", str(site << SITE_SHIFT), {}, {}, venue=False)
        w = main
        site = self._site("clock: the hot window passes", False)
        w(1, "if recent:")
        w(2, f"out.append(({site << SITE_SHIFT}, {self._next({'recent': 'False'})}, -1))")

    def _writer_for(self, event: str, main: _Writer) -> _Writer:
        """`main` when some row of `event` can fire in the state being generated, else a discarded writer."""
        return main if self._rows(event) else _Writer()

    def _venue(self, w: _Writer) -> None:
        ack = self._site("venue ACK #{ref}", False)
        reject = self._site("venue REJECT #{ref}", True)
        fill = self._site("venue FILL #{ref} cum={cum}", False)
        cancelled = self._site("venue CANCELLED #{ref}", False)
        venue_side = self._site("venue CANCELLED #{ref} (venue-side)", True)
        repeat = self._site("venue repeats FILL #{ref} cum={cum}", True)
        foreign = self._site("venue FILL of a foreign order", True)
        w(1, "for k in range(len(O)):")
        w(2, "o = O[k]")
        w(2, f"if o & {LIVE}:")
        w(3, f"o_ref = o & {REF_MASK}")
        w(3, f"o_filled = o >> {FILLED_SHIFT} & {LOTS_MASK}")
        w(3, f"o_target = o >> {TARGET_SHIFT} & {LOTS_MASK}")
        w(3, f"o_lid = o_ref << {REF_SHIFT}")
        w(3, f"if not o & {ACKED} and o_filled == 0:")
        w(4, f"O1 = O[:k] + (o | {ACKED},) + O[k + 1:]")
        self._deliver(w, 4, "ACK", f"{ack << SITE_SHIFT} | o_lid", {"order": "o_ref"}, {}, venue=True)
        w(4, "if rejects_left > 0:")
        w(5, f"O1 = O[:k] + (o ^ {LIVE},) + O[k + 1:]")
        self._deliver(w, 5, "REJECT", f"{reject << SITE_SHIFT} | o_lid", {"order": "o_ref"},
                      {"rejects_left": "rejects_left - 1"}, venue=True)
        w(3, "if o_filled < o_target:")
        w(4, f"o_px, o_fee = (PX_X, FEE_X) if o & {ROLE_EXIT} else (PX_E, FEE_E)")
        w(4, f"o_keep = o & {~(LOTS_MASK << FILLED_SHIFT | LIVE)} | {ACKED}")
        w(4, "for cum in ((o_target,) if o_filled + 1 == o_target else (o_filled + 1, o_target)):")
        w(5, f"O1 = O[:k] + (o_keep | cum << {FILLED_SHIFT} | 1 << ({SENT_SHIFT - 1} + cum) | "
             f"({LIVE} if cum < o_target else 0),) + O[k + 1:]")
        # The model's entries are SHORT: an entry fill moves the position down, an exit fill up.
        w(5, f"position1 = position + (cum - o_filled) if o & {ROLE_EXIT} else position - (cum - o_filled)")
        self._deliver(w, 5, "FILL", f"{fill << SITE_SHIFT} | o_lid | cum", self._fill_params(), {
            "position": "position1", "recent": "True"}, venue=True)
        w(4, f"if o & {CREQ} or vcancel_left > 0:")
        w(5, f"O1 = O[:k] + (o ^ {LIVE},) + O[k + 1:]")
        w(5, f"c_lid = ({cancelled << SITE_SHIFT} if o & {CREQ} else {venue_side << SITE_SHIFT}) | o_lid")
        w(5, f"vcancel1 = vcancel_left if o & {CREQ} else vcancel_left - 1")
        self._deliver(w, 5, "CANCELLED", "c_lid", {"order": "o_ref"}, {"vcancel_left": "vcancel1"}, venue=True)
        w(2, f"if dup_left > 0 and o >> {SENT_SHIFT} & {SENT_MASK}:")
        w(3, "O1 = O")
        w(3, f"o_ref = o & {REF_MASK}")
        w(3, f"o_lid = o_ref << {REF_SHIFT}")
        w(3, f"o_px, o_fee = (PX_X, FEE_X) if o & {ROLE_EXIT} else (PX_E, FEE_E)")
        w(3, f"for cum in CUMS[o >> {SENT_SHIFT} & {SENT_MASK}]:")
        self._same_orders = True  # O1 is O: the venue orders do not change
        self._deliver(w, 4, "FILL", f"{repeat << SITE_SHIFT} | o_lid | cum", self._fill_params(),
                      {"dup_left": "dup_left - 1"}, venue=True)
        w(1, "if foreign_left > 0:")
        w(2, "O1 = O")
        self._deliver(w, 2, "FILL", str(foreign << SITE_SHIFT), {
            "order": str(FOREIGN_ORDER), "cum_lots": "1", "cum_quote_usdt": "PX_E", "cum_fee_usdt": "0"},
            {"foreign_left": "foreign_left - 1"}, venue=True)
        self._same_orders = False

    @staticmethod
    def _fill_params() -> dict[str, str]:
        return {"order": "o_ref", "cum_lots": "cum", "cum_quote_usdt": "cum * o_px", "cum_fee_usdt": "cum * o_fee"}

    def _next(self, env: dict[str, str], dest: str = "S", vars_: dict[str, str] | None = None,
              orders: str = "O") -> str:
        """The next state: a tuple display of the prefix and the orders, or, when one run of fields changes and
        the orders do not, the unchanged fields sliced from `st` around a display of the changed ones (cheaper
        to build, and shorter source)."""
        vars_ = vars_ or {}
        parts = [dest, *(vars_.get(n, f"v_{n}") for n in self.live_vars), *(env.get(f, f) for f in ENV_FIELDS)]
        changed = [k for k, (part, local) in enumerate(zip(parts, self.prefix, strict=True)) if part != local]
        if orders == "O" and changed and changed[-1] - changed[0] + 1 == len(changed):
            a, b = changed[0], changed[-1] + 1
            pieces = [f"st[:{a}]"] if a else []
            pieces.append("(" + ", ".join(parts[a:b]) + ",)")
            pieces.append(f"st[{b}:]")
            return " + ".join(pieces)
        return "(" + ", ".join(parts) + f") + {orders}"

    def _deliver(self, w: _Writer, n: int, event: str, lid: str, params: dict[str, str], env: dict[str, str],
                 venue: bool) -> None:
        """Deliver `event` with `params` (code) to the slot: the first enabled row fires (ExactMachine.step),
        then model.apply's venue update (`env`, and O1 for venue actions), outputs and bookkeeping."""
        ev = self.m.ir.event(event)
        if not venue and not self._rows(event):
            w(n, "pass")  # no row of this event in this state: the action changes nothing
            return
        for p in ev.params:
            if params[p.name] != f"p_{p.name}":
                w(n, f"p_{p.name} = {params[p.name]}")
        first = True
        for t in self._rows(event):
            if t.guard is None:
                if first:  # every later row is shadowed
                    self._fire(w, n, t, lid, env, venue)
                    return
                w(n, "else:")
                self._fire(w, n + 1, t, lid, env, venue)
                return
            w(n, f"{'if' if first else 'elif'} {self._emit(t.guard)}:")
            first = False
            self._fire(w, n + 1, t, lid, env, venue)
        m = n
        if not first:
            w(n, "else:")
            m = n + 1
        if venue:
            w(m, f"out.append(({lid}, None, {ROW_UNHANDLED_VENUE}))")
            w(m, "return out")
        else:
            w(m, "pass")

    def _fire(self, w: _Writer, n: int, t: Transition, lid: str, env: dict[str, str], venue: bool) -> None:
        for name, e in t.lets:
            w(n, f"l_{name} = {self._emit(e)}")
        new: dict[str, str] = {}
        for name, e in t.effect:
            w(n, f"n_{name} = {self._emit(e)}")
            new[name] = f"n_{name}"
        emits: list[tuple[str, dict[str, str]]] = []
        for k, em in enumerate(t.emits):
            args: dict[str, str] = {}
            for a, e in em.args:
                w(n, f"e{k}_{a} = {self._emit(e)}")
                args[a] = f"e{k}_{a}"
            emits.append((em.output, args))
        tests: list[str] = []  # any variable out of its bounds: the reference names the first (effect order)
        for name, e in t.effect:
            v = self.m.ir.variable(name)
            if not isinstance(v.type, NumType):
                continue
            lit = e.value if isinstance(e, X.Lit) else None
            if isinstance(lit, int | Fraction) and not isinstance(lit, bool) and \
                    all(isinstance(bd, int | Fraction) for bd in (v.min, v.max) if bd is not None) and \
                    (v.min is None or lit >= v.min) and (v.max is None or lit <= v.max):  # type: ignore[operator]
                continue  # a literal within the bounds
            tests += [f"n_{name} {op} {self._value(bound)}" for bound, op in ((v.min, "<"), (v.max, ">"))
                      if bound is not None]
        if tests:
            w(n, f"if {' or '.join(tests)}:")
            w(n + 1, f"out.append(({lid}, None, {ROW_BOUNDS}))")
            w(n + 1, "return out")
        env = dict(env)
        orders = "O1" if venue and not self._same_orders else "O"
        trade = new.get("trade_seq", self._var("trade_seq"))
        for output, args in emits:
            if output == "PLACE_ORDER":
                w(n, f"if {args['qty_lots']} > 0:")
                # model._venue_after updates the first order with a ref; the flat encoding keeps refs unique.
                w(n + 1, f"if not (0 < {args['order']} < {FOREIGN_ORDER} and {args['qty_lots']} <= {MAX_LOTS_LIMIT} "
                         f"and {trade} >= 0) or any(x & {REF_MASK} == {args['order']} for x in {orders}):")
                w(n + 2, "raise FastUnsupported('an order the packed encoding cannot hold (or a ref placed twice)')")
                w(n + 1, f"O2 = {orders} + ({args['order']} | ({ROLE_EXIT} if {args['role']} == 'EXIT' else 0) | "
                         f"{LIVE} | {args['qty_lots']} << {TARGET_SHIFT} | {trade} << {TRADE_SHIFT},)")
                w(n, "else:")
                w(n + 1, f"O2 = {orders}")
            elif output == "CANCEL_ORDER":
                w(n, f"O2 = _cancel({orders}, {args['order']})")
            elif output == "TRADE_CLOSED":
                env["record_pending"] = args["trade_seq"]
                continue
            else:
                raise FastUnsupported(f"output {output} is not modelled by the composed model")
            orders = "O2"
        if t.event in ("ENTER", "EXIT") and t.outcome == "OK":
            env["next_ref"] = "next_ref + 1"
        if t.event == "ENTER" and t.outcome == "OK":
            env["trades"] = "trades + 1"
        if t.event == "TRADE_WRITTEN":
            env["record_pending"] = "0"
        dest = repr(t.dest) if t.dest is not None else "S"
        if not venue and not new and not env and dest == "S" and orders == "O":
            w(n, f"out.append(({lid}, st, {t.index}))")  # nothing changes: the same state
        else:
            w(n, f"out.append(({lid}, {self._next(env, dest, new, orders)}, {t.index}))")

    def _holds(self, w: _Writer) -> None:
        """`holds_<i>` for each slot state (dispatched by `HOLDS`, and `holds`): the invariants of `_checks`."""
        names = [s.name for s in self.m.ir.states]
        for i, name in enumerate(names):
            w(0, f"def holds_{i}(st):  # {name}")
            w(1, f"{', '.join(self.prefix)}, = st[:{self.n_prefix}]")
            w(1, f"O = st[{self.n_prefix}:]")
            self._checks(w, name, "return False")
            w(1, "return True")
            w(0, "")
        w(0, "HOLDS = {" + ", ".join(f"{name!r}: holds_{i}" for i, name in enumerate(names)) + "}")
        w(0, "")
        w(0, "def holds(st):")
        w(1, "return HOLDS[st[0]](st)")

    def _checks(self, w: _Writer, state: str, fail: str) -> None:
        """In slot state `state`, over the unpacked locals: `fail` unless the spec's invariants and
        checker.composed_violations's hold (the waiting order and the closed-state test decided here)."""
        v = self._var
        for inv in self.m.ir.invariants:
            w(1, f"if not {self._emit(inv.expr)}:")
            w(2, fail)
        waiting = {"EXIT_REQUESTED": "entry_order", "ENTRY_CANCELLING": "entry_order", "EXIT_CANCELLING": "exit_order"}
        wref = v(waiting[state]) if state in waiting else ""
        w(1, "entry_found = False")
        w(1, "entry_filled = entry_quote = exited = live_entries = 0")
        w(1, "for o in O:")
        w(2, f"ref = o & {REF_MASK}")
        w(2, f"if not entry_found and ref == {v('entry_order')}:")
        w(3, "entry_found = True")
        w(3, f"entry_filled = o >> {FILLED_SHIFT} & {LOTS_MASK}")
        w(3, f"entry_quote = entry_filled * (PX_X if o & {ROLE_EXIT} else PX_E)")
        w(2, f"if o & {ROLE_EXIT}:")
        w(3, f"if o >> {TRADE_SHIFT} == {v('trade_seq')}:")
        w(4, f"exited += o >> {FILLED_SHIFT} & {LOTS_MASK}")
        w(2, f"elif o & {LIVE}:")
        w(3, "live_entries += 1")
        if wref:  # cancel_in_flight: the first order with the waited-for ref is dead or cancel-requested
            w(1, "for o in O:")
            w(2, f"if o & {REF_MASK} == {wref}:")
            w(3, f"if o & {LIVE} and not o & {CREQ}:")
            w(4, f"{fail}  # cancel_in_flight")
            w(3, "break")
        w(1, "exit_quote = exited * PX_X")
        checks = [
            f"{v('entry_filled_lots')} != entry_filled or {v('exited_lots')} != exited",  # books_match_venue
            f"live_entries > 1 or abs(position) > {v('entry_target_lots')}",  # one_entry_exposure
            f"{v('entry_cost_usdt')} != entry_quote or {v('exit_cost_usdt')} != exit_quote",  # booked_at_venue_prices
            f"{v('fees_usdt')} * FEE_DEN != (entry_quote + exit_quote) * FEE_NUM",  # fees_match_venue
            f"record_pending and record_pending != {v('trade_seq')}",  # record_before_next_trade
        ]
        if state in ("CLOSED", "TRADE_TERMINAL_WRITTEN"):  # closed_pnl_is_price_change
            checks.append(f"{v('entry_filled_lots')} == exited and "
                          f"{v('realised_pnl_usdt')} != entry_quote - exit_quote")
        for check in checks:
            w(1, f"if {check}:")
            w(2, fail)

    # ------------------------------------------------------------------ states and labels

    def initial(self) -> tuple[Any, ...]:
        s = self.m.initial()
        values = dict(zip(self.m.var_names, s.slot_vars, strict=True))
        b = self.b
        return (s.slot_state, *(_whole(values[n]) for n in self.live_vars), 0, 1, 0, False, 0, b.duplicate_budget,
                b.foreign_budget, b.venue_cancel_budget, b.cancel_budget, b.reject_budget)

    def to_state(self, st: tuple[Any, ...]) -> State:
        """The reference model's State for a flat tuple."""
        k = self.n_prefix
        live = dict(zip(self.live_vars, st[1:1 + len(self.live_vars)], strict=True))
        slot_vars = tuple(_whole(live[n]) if n in live else self.const_vars[n] for n in self.m.var_names)
        env = dict(zip(ENV_FIELDS, st[1 + len(self.live_vars):k], strict=True))
        orders = []
        for o in st[k:]:
            role = "EXIT" if o & ROLE_EXIT else "ENTRY"
            filled = o >> FILLED_SHIFT & LOTS_MASK
            sent = o >> SENT_SHIFT & SENT_MASK
            sent_cums = tuple(c for c in range(1, MAX_LOTS_LIMIT + 1) if sent >> (c - 1) & 1)
            orders.append(VenueOrder(o & REF_MASK, role, o >> TRADE_SHIFT, o >> TARGET_SHIFT & LOTS_MASK, filled,
                                     Fraction(self.m.quote(role, filled)), bool(o & ACKED), bool(o & LIVE),
                                     bool(o & CREQ), sent_cums))
        b = self.b
        return State(st[0], slot_vars, tuple(orders), env["position"], env["next_ref"], env["trades"], env["recent"],
                     env["record_pending"], env["dup_left"], env["foreign_left"], env["vcancel_left"],
                     env["cancels_left"], env["rejects_left"], b.reorder_after_cancel_budget, b.lagging_stream_budget)

    def label(self, lid: int) -> str:
        site = self.sites[lid >> SITE_SHIFT]
        return site.template.format(ref=(lid >> REF_SHIFT) & 0xFF, cum=lid & 0xFF)

    def outcome(self, lid: int, row: int) -> str:
        return self.rows[row].outcome if row >= 0 else ""

    def reference_action(self, st: tuple[Any, ...], lid: int) -> tuple[State, Action]:
        """The reference model's state and action for a flat state and a label."""
        s = self.to_state(st)
        label = self.label(lid)
        action = next((a for a in self.m.actions(s) if a.label == label), None)
        if action is None:
            raise AssertionError(f"fast engine offered {label!r}, which the reference model does not in {s}")
        return s, action


# ---------------------------------------------------------------------------------------------
# The search


def check_fast(m: ComposedModel, max_states: int = 2_000_000,
               progress: Callable[[int, int, int], None] | None = None) -> CheckResult:
    """`checker.check` on the compiled model: the same states, transitions, depth, verdicts, dead rows and
    shortest counterexamples. Raises FastUnsupported when the model is outside what this engine encodes."""
    started = time.perf_counter()
    collecting = gc.isenabled()
    gc.disable()  # the search makes no reference cycles; the collector would rescan every stored state
    try:
        return _search(m, max_states, progress, started)
    finally:
        if collecting:
            gc.enable()


def _search(m: ComposedModel, max_states: int, progress: Callable[[int, int, int], None] | None,
            started: float) -> CheckResult:
    fm = FastModel(m)
    fault_sites = fm.fault_sites
    init = fm.initial()
    index: dict[tuple[Any, ...], int] = {init: 0}
    states: list[tuple[Any, ...]] = [init]
    parent = [-1]
    parent_lid = [0]
    parent_row = [-1]
    depth = [0]
    reverse: list[list[int]] = [[]]  # predecessors over non-fault edges, for the reachability properties
    fired: set[int] = set()
    transitions = 0
    violations: list[Violation] = []
    slot_invariants = {inv.name: inv.catalogue for inv in m.ir.invariants}

    def trace(i: int, last: tuple[str, str, str] | None = None) -> tuple[tuple[str, str, str], ...]:
        steps: list[tuple[str, str, str]] = []
        while i > 0:
            steps.append((fm.label(parent_lid[i]), states[i][0], fm.outcome(parent_lid[i], parent_row[i])))
            i = parent[i]
        steps.reverse()
        if last is not None:
            steps.append(last)
        return tuple(steps)

    step_of = fm.step_of
    setdefault, fired_add = index.setdefault, fired.add
    non_fault = [not f for f in fault_sites]
    states_append, parent_append, depth_append, reverse_append = \
        states.append, parent.append, depth.append, reverse.append
    parent_lid_append, parent_row_append = parent_lid.append, parent_row.append
    n = len(states)  # kept equal to len(states)
    head = 0
    while head < len(states) and not violations:
        i = head
        head += 1
        st = states[i]
        name = st[0]
        succ = step_of[name](st, True)
        if succ is None:  # an invariant fails
            violations.extend(_state_violations(fm, st, slot_invariants, trace(i)))
            break
        d = depth[i] + 1
        transitions += len(succ)
        for lid, nxt, row in succ:
            if nxt is st:  # a self loop: counted, its row fired; no new state, nothing for reachability
                fired_add(row)
                continue
            if nxt is None:  # always the last entry: the step stops there
                transitions -= 1
                violations.append(_step_violation(fm, st, lid, row, trace(i)))
                break
            fired_add(row)
            j = setdefault(nxt, n)
            if j == n:
                if n >= max_states:
                    del index[nxt]
                    # the entries after this one were not taken (checker.check stops here too)
                    transitions -= len(succ) - 1 - next(k for k, x in enumerate(succ) if x[1] is nxt)
                    break
                n += 1
                states_append(nxt)
                parent_append(i)
                parent_lid_append(lid)
                parent_row_append(row)
                depth_append(d)
                reverse_append([i] if non_fault[lid >> SITE_SHIFT] else [])
            elif non_fault[lid >> SITE_SHIFT]:
                reverse[j].append(i)
        if progress is not None and len(states) % 5000 == 0:
            progress(len(states), transitions, depth[-1])
    fired.discard(-1)  # environment-only actions (the clock) fire no row
    complete = head >= len(states) and not violations and len(states) < max_states
    verdicts = {name: "holds" for name in [*slot_invariants, *COMPOSED]}
    if complete:
        n_orders = fm.n_prefix
        position = 1 + len(fm.live_vars)  # ENV_FIELDS[0]
        free = FREE_STATES
        def flat() -> list[int]:
            return [i for i, st in enumerate(states) if st[position] == 0 and not any(o & LIVE for o in st[n_orders:])]

        def slot_free() -> list[int]:
            return [i for i, st in enumerate(states) if st[0] in free]

        good: Callable[[], list[int]]
        for name, good, what in (("flat_reachable", flat, "flat"), ("slot_free_reachable", slot_free, "a free slot")):
            stuck = _unable_to_reach(len(states), reverse, good())
            if stuck is not None:
                violations.append(Violation(name, REACHABILITY[name][0], f"no way to {what} from {states[stuck][0]} "
                                            f"(venue position {states[stuck][position]})", trace(stuck)))
                break
    return result_of(m, len(states), transitions, max(depth), started, complete, violations, fired, verdicts)


def _state_violations(fm: FastModel, st: tuple[Any, ...], slot_invariants: dict[str, str],
                      steps: tuple[tuple[str, str, str], ...]) -> list[Violation]:
    """The reference's violations of a state the compiled invariants reject (checker.check's order)."""
    s = fm.to_state(st)
    out = [Violation(name, slot_invariants[name], "spec invariant", steps)
           for name in fm.m.exact.violated(s.slot_state, fm.m.vars(s))]
    out += [Violation(name, COMPOSED[name][0], detail, steps) for name, detail in composed_violations(fm.m, s)]
    if not out:
        raise AssertionError(f"the fast engine's invariants fail in a state where the reference's hold: {s}")
    return out


def _step_violation(fm: FastModel, st: tuple[Any, ...], lid: int, row: int,
                    steps: tuple[tuple[str, str, str], ...]) -> Violation:
    """The reference's violation for an action the compiled step flagged (bounds, or a venue event unhandled)."""
    s, action = fm.reference_action(st, lid)
    try:
        _, outcome, _ = fm.m.apply(s, action)
    except BoundError as exc:
        if row != ROW_BOUNDS:
            raise AssertionError(f"the reference leaves the bounds on {action.label!r}, the fast engine not") from exc
        return Violation("bounds", "single_book", str(exc), (*steps, (action.label, "", "BOUND")))
    if row != ROW_UNHANDLED_VENUE or outcome != "UNHANDLED" or not action.label.startswith("venue"):
        raise AssertionError(f"the fast engine flagged {action.label!r} ({row}), the reference gives {outcome!r}")
    return Violation("venue_event_handled", "no_stranded_exit", f"{action.event} not handled in {s.slot_state}",
                     (*steps, (action.label, s.slot_state, "UNHANDLED")))


def _unable_to_reach(n_states: int, reverse: list[list[int]], queue: list[int]) -> int | None:
    """checker._unable_to_reach over the reversed non-fault edges from the good states `queue` (in BFS order):
    the first state (in BFS order, so with the shortest trace) from which no good state is reachable."""
    good = bytearray(n_states)
    for i in queue:
        good[i] = 1
    for j in queue:  # grows while it is walked: a FIFO
        for i in reverse[j]:
            if not good[i]:
                good[i] = 1
                queue.append(i)
    if len(queue) == n_states:
        return None
    return good.index(0)


# ---------------------------------------------------------------------------------------------
# Choosing the engine

ENGINES = ("auto", "fast", "reference")


def run_check(m: ComposedModel, engine: str = "auto", max_states: int = 2_000_000,
              progress: Callable[[int, int, int], None] | None = None) -> tuple[CheckResult, str, str]:
    """Check `m` with `engine` ("fast", "reference", or "auto": fast when it encodes the model, else the
    reference). Returns (result, the engine that ran, why auto fell back or ""). `engine="fast"` raises
    FastUnsupported for a model it does not encode."""
    from pink_codegen.verify.checker import check

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    if engine == "reference":
        return check(m, max_states=max_states, progress=progress), "reference", ""
    reason = why_unsupported(m)
    if not reason:
        try:
            return check_fast(m, max_states=max_states, progress=progress), "fast", ""
        except FastUnsupported as exc:  # met during the search (an order the encoding cannot hold)
            reason = str(exc)
    if engine == "fast":
        raise FastUnsupported(reason)
    return check(m, max_states=max_states, progress=progress), "reference", reason


__all__ = ["ENGINES", "FAST_BOUNDS_FIELDS", "FastModel", "FastUnsupported", "check_fast", "pack_order", "run_check",
           "unsupported_bounds", "why_unsupported"]
