"""The fast engine of `pink-codegen verify`: the composed model of `verify/model.py` over flat tuples, with the
environment compiled to Python for one `Bounds`, searched breadth first like `checker.check`, with the same
result.

Why: `checker.check` explores attrs `State` objects through the exact interpreter's dictionaries (about 5,000
states/s). The default profile's 206,858 states hold only 224 distinct slot configurations (slot state and
variables) and about 22,000 distinct (configuration, venue orders) pairs, so everything the slot decides is
decided once and memoised, and per state only the environment is computed:

* **Slot configurations are interned** (`FastModel.intern`): a state starts with the configuration's id (sid);
  its spec invariants (`ExactMachine.violated`) and the variables the composed invariants read are looked up
  once per sid.
* **Slot reactions are memoised** (`FastModel._react`): the slot's answer to an event with given params in a
  given configuration is `ExactMachine.step`'s own (model.apply calls the same), kept as (fired row, next sid,
  what model.apply does after: outputs and bookkeeping as one `Post` function, or None). The memo key is an int
  (sid << MEMO_SHIFT | the action's params: an order's ref, role and cum for a fill) or, for ENTER, the params.
* **Composed invariants** that depend on the configuration and the orders only (`check_orders`) are memoised per
  (sid, orders); the venue position and the pending record are checked per state.
* **The venue's actions on orders** are planned once per (sid, orders, the budgets they read) (`venue_plan`):
  each plan item holds the label, the orders after the action, what it adds to env and the slot's reaction, so a
  state's venue successors are `(nsid, env + delta | recent) + orders` each.

The generated source (`step`, `successors`, `holds`, `check_orders`, `venue_plan`) is the environment of
`model.actions` in the same order, specialised to the profile's bounds; it holds no spec text (fixed identifiers,
ints, reprs of validated event names). `step(st, True)`, the search's one call per state, first runs `holds`'s
checks and returns None when one fails, else what `successors(st)` returns:
`[(label_id, next_st, fired_row), ...]`.

**States** are tuples `(sid, env, *orders)`: env packs the venue position, next order id, trade count,
hot-window flag, budgets and pending record into one int (see PREFIX), an order is one int (ref, role, trade,
target lots, filled lots, acked, live, cancel requested, and the cumulative reports sent as a bit set). That is
a bijection with `model.State` for the profiles this engine accepts: an order's quote is a function of its role
and filled lots (one price level per role), the reports sent form an increasing sequence (no report lags), and
the lag and reorder budgets are zero. `to_state` maps a tuple back to a `model.State`.

**Numbers** are the exact interpreter's own (ints, and Fractions where a value is not whole; whole values are
stored as ints, which are equal and hash alike, as model.py does).

**Same result.** Labels are ints (`label_id`: action site, order ref and cumulative lots) rendered to exactly
`model.py`'s label text. When the fast code finds a problem (an invariant fails, a variable leaves its bounds,
the slot does not handle a venue event), the violation itself is computed by the reference code on the
converted state (`checker.composed_violations`, `ExactMachine.violated`, `ComposedModel.apply`), so names and
details are the reference's; if the reference disagrees, the engines differ and the check raises. The fired
rows are those of the reactions the search took (see `_search`).

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

from pink_codegen.exact import BoundError, ExactStep
from pink_codegen.types import ExactValue
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
# label_id = site << SITE_SHIFT | ref << REF_SHIFT | cum: an order ref is below FOREIGN_ORDER, cum below 256.
SITE_SHIFT = 16
REF_SHIFT = 8
# A state: the slot configuration's id (sid, see FastModel.intern), the environment fields packed in one int
# (env), the venue orders. env holds, from bit 0: recent (1 bit), position + POSITION_OFFSET (12 bits), next_ref
# and trades (8 bits each), the five budgets (4 bits each), and the pending record above them. An action that
# changes a field adds to env (a budget spent: env - DUP_ONE); a successor's tuple is 2 + len(orders) long.
PREFIX = ("sid", "env")
N_PREFIX = len(PREFIX)
RECENT = 1
POSITION_SHIFT = 1
POSITION_OFFSET = 1 << 11  # |position| <= 16 lots x 98 orders < 2048 (refs stay below FOREIGN_ORDER)
NEXT_REF_SHIFT = 13
TRADES_SHIFT = 21
BUDGET_SHIFTS = {"dup_left": 29, "foreign_left": 33, "vcancel_left": 37, "cancels_left": 41, "rejects_left": 45}
BUDGET_LIMIT = 15
# env's bits of the budgets the venue's actions on orders read (the plans of `_venue_steps` depend on them)
VENUE_BUDGETS = sum(BUDGET_LIMIT << BUDGET_SHIFTS[b] for b in ("dup_left", "vcancel_left", "rejects_left"))
RECORD_SHIFT = 49
ENV_WIDTHS = {"position": (POSITION_SHIFT, 0xFFF), "next_ref": (NEXT_REF_SHIFT, 0xFF),
              "trades": (TRADES_SHIFT, 0xFF), **{f: (shift, BUDGET_LIMIT) for f, shift in BUDGET_SHIFTS.items()}}
NEXT_REF_ONE = 1 << NEXT_REF_SHIFT
TRADES_ONE = 1 << TRADES_SHIFT
BELOW_RECORD = (1 << RECORD_SHIFT) - 1
# _post's ops: (OP_PLACE, order), (OP_CANCEL, ref), (OP_RECORD, trade), (OP_ADD, an env increment)
OP_PLACE = -1
OP_CANCEL = -2
OP_RECORD = -3
OP_ADD = -4
# The slot reactions are memoised under sid << MEMO_SHIFT | an int that determines the event's params in that
# action (an order's ref, role and cum for a fill); FOREIGN_KEY for the foreign fill.
MEMO_SHIFT = 32
FOREIGN_KEY = 1 << 31
ROW_BOUNDS = -2  # successors' marker: a variable left its bounds (the reference explains it)
ROW_UNHANDLED = -3  # the slot does not handle the event (successors' marker for a venue event)
ROW_UNHANDLED_VENUE = ROW_UNHANDLED
# The slot variables the composed invariants read (CANCEL reads entry_order and exit_order too), the order each
# cancelling state waits for (cancel_in_flight), and the states where a closed trade's PnL is checked.
CHECKED_VARS = ("entry_order", "trade_seq", "entry_filled_lots", "exited_lots", "entry_target_lots",
                "entry_cost_usdt", "exit_cost_usdt", "fees_usdt", "realised_pnl_usdt")
WAITING = {"EXIT_REQUESTED": "entry_order", "ENTRY_CANCELLING": "entry_order", "EXIT_CANCELLING": "exit_order"}
CLOSED_STATES = ("CLOSED", "TRADE_TERMINAL_WRITTEN")


Successor = tuple[int, tuple[Any, ...] | None, int]  # (label id, next state or None, fired row or a marker)
Post = Callable[[tuple[Any, ...]], tuple[Any, ...]]
Reaction = tuple[int, int, Post | None]  # (fired row or a marker, next sid, what model.apply does after)


class FastUnsupported(ValueError):
    """The fast engine cannot encode this model exactly; the message says why (use the reference checker)."""


def unsupported_bounds(bounds: Any) -> list[str]:
    """Bounds fields this engine does not encode that are switched on (differ from their default)."""
    return bounds_in_use_beyond(bounds, FAST_BOUNDS_FIELDS)


def why_unsupported(m: ComposedModel) -> str:
    """Empty when the fast engine can check `m` exactly, else the reason."""
    if type(m) is not ComposedModel:  # e.g. the slot x router x venue composition (verify/routed.py)
        return f"the fast engine encodes the slot x venue composition only, not {type(m).__name__}"
    b = m.bounds
    unknown = unsupported_bounds(b)
    if unknown:
        return (f"profile {b.name!r} switches on model capabilities the fast engine does not encode: "
                f"{', '.join(unknown)}")
    if len(b.price_levels) < 2:
        return f"profile {b.name!r} needs an entry and an exit price level"
    if max(b.max_lots, b.later_trade_max_lots) > MAX_LOTS_LIMIT:
        return f"profile {b.name!r}: more than {MAX_LOTS_LIMIT} lots per order"
    budgets = (b.duplicate_budget, b.foreign_budget, b.venue_cancel_budget, b.cancel_budget, b.reject_budget)
    if max(budgets) > BUDGET_LIMIT or min(budgets) < 0 or not 0 <= b.max_trades <= 0xFF:
        return f"profile {b.name!r}: a budget above {BUDGET_LIMIT} or more than 255 trades (the packed env)"
    if set(COMPOSED) != ENCODED_COMPOSED:
        return "checker.COMPOSED has invariants the fast engine does not encode"
    events = {e.name for e in m.ir.events}
    if not set(MODEL_EVENTS) <= events:
        return f"the slot spec has no event(s) {', '.join(sorted(set(MODEL_EVENTS) - events))} that model.py delivers"
    missing = {*CHECKED_VARS, *WAITING.values(), "exit_order"} - set(m.var_names)
    if missing:
        return f"the slot spec has no variable(s) {', '.join(sorted(missing))} that the composed invariants read"
    return ""


def _whole(value: ExactValue) -> ExactValue:
    if isinstance(value, Fraction) and value.denominator == 1:
        return value.numerator
    return value


def _cancel(orders: tuple[int, ...], ref: Any) -> tuple[int, ...]:
    """model._output's CANCEL_ORDER: every venue order with this ref is marked cancel-requested."""
    return tuple(o | CREQ if o & REF_MASK == ref else o for o in orders)


def _field(name: str) -> str:
    """Code for an environment field of the local `env` (next_ref, trades, position)."""
    shift, mask = ENV_WIDTHS[name]
    code = f"(env >> {shift} & {mask})"
    return f"({code} - {POSITION_OFFSET})" if name == "position" else code


def _mask(budget: str) -> int:
    """env's bits of a budget: nonzero while some is left."""
    return BUDGET_LIMIT << BUDGET_SHIFTS[budget]


def _one(budget: str) -> int:
    """What spending one of a budget takes from env."""
    return 1 << BUDGET_SHIFTS[budget]


def pack_env(fields: dict[str, Any]) -> int:
    """The env int of the environment fields (see PREFIX)."""
    env: int = (RECENT if fields["recent"] else 0) | fields["record_pending"] << RECORD_SHIFT
    for name, (shift, mask) in ENV_WIDTHS.items():
        value = fields[name] + (POSITION_OFFSET if name == "position" else 0)
        assert 0 <= value <= mask, (name, value)
        env |= value << shift
    return env


def unpack_env(env: int) -> dict[str, Any]:
    fields: dict[str, Any] = {name: env >> shift & mask for name, (shift, mask) in ENV_WIDTHS.items()}
    fields["position"] -= POSITION_OFFSET
    fields["recent"] = bool(env & RECENT)
    fields["record_pending"] = env >> RECORD_SHIFT
    return fields


def _post(nxt: tuple[Any, ...], ops: tuple[tuple[int, Any], ...]) -> tuple[Any, ...]:
    """The rest of model.apply after the slot fired a row: its outputs in emit order (a new venue order, a
    cancel request, a pending record), then the bookkeeping (next order ref, trade count, record written)."""
    sid, env = nxt[:N_PREFIX]
    orders = nxt[N_PREFIX:]
    for op, x in ops:
        if op == OP_PLACE:
            # model._venue_after updates the first order with a ref; the flat encoding keeps refs unique
            if any(o & REF_MASK == x & REF_MASK for o in orders):
                raise FastUnsupported("an order ref placed twice (the packed encoding keeps refs unique)")
            orders += (x,)
        elif op == OP_CANCEL:
            orders = _cancel(orders, x)
        elif op == OP_RECORD:
            env = env & BELOW_RECORD | x << RECORD_SHIFT
        else:
            env += x
    return (sid, env, *orders)


def _poster(ops: tuple[tuple[int, Any], ...]) -> Post | None:
    """`_post` for these ops as one function, None when there are none; the two frequent cases (a record
    pending or written; an order placed with the next ref) as straight code."""
    if not ops:
        return None
    if len(ops) == 1 and ops[0][0] == OP_RECORD:
        record = ops[0][1] << RECORD_SHIFT
        return lambda nxt: (nxt[0], nxt[1] & BELOW_RECORD | record, *nxt[2:])
    if len(ops) == 2 and ops[0][0] == OP_PLACE and ops[1] == (OP_ADD, NEXT_REF_ONE):
        order = ops[0][1]
        ref = order & REF_MASK

        def place(nxt: tuple[Any, ...]) -> tuple[Any, ...]:
            if any(o & REF_MASK == ref for o in nxt[N_PREFIX:]):  # see _post
                raise FastUnsupported("an order ref placed twice (the packed encoding keeps refs unique)")
            return (nxt[0], nxt[1] + NEXT_REF_ONE, *nxt[2:], order)
        return place
    return lambda nxt: _post(nxt, ops)


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


class FastModel:
    """The composed model of `m` compiled to `successors` and `holds` over flat tuples (see the module doc)."""

    def __init__(self, m: ComposedModel) -> None:
        reason = why_unsupported(m)
        if reason:
            raise FastUnsupported(reason)
        self.m = m
        self.b = m.bounds
        self.n_prefix = N_PREFIX
        self.rows = {t.index: t for t in m.ir.transitions}
        self.sites: list[Site] = []
        self._same_orders = False  # while generating venue actions that leave the orders as they are (O1 is O)
        self._foreign = 0  # the foreign fill's site (numbered in _venue, with the other venue sites)
        # The slot configurations met so far: sid -> (slot state, slot variables), and what the search needs of
        # each (filled by `intern`).
        self.slots: list[tuple[str, tuple[ExactValue, ...]]] = []
        self._sid_of: dict[tuple[str, tuple[ExactValue, ...]], int] = {}
        self._checked: list[tuple[Any, ...] | None] = []  # CK: the composed invariants' inputs, None: spec fails
        self._refs: list[tuple[Any, Any]] = []  # REFS: the entry and exit order refs (the policy's CANCEL)
        self.reacted: list[int] = []  # the row (or marker) of every reaction made, in order
        # M<e>: sid << MEMO_SHIFT | a key of the params of MODEL_EVENTS[e] (see _deliver) -> (fired row or a marker,
        # next sid, what model.apply does after: a Post or None)
        self.memo: list[dict[Any, Reaction]] = [{} for _ in MODEL_EVENTS]
        self._param_names = [tuple(p.name for p in m.ir.event(e).params) for e in MODEL_EVENTS]
        b = self.b
        self.px_entry = _whole(Fraction(b.price_levels[0]))
        self.px_exit = _whole(Fraction(b.price_levels[1]))
        self.fee_entry = _whole(Fraction(b.price_levels[0]) * b.fee_rate)
        self.fee_exit = _whole(Fraction(b.price_levels[1]) * b.fee_rate)
        self.source = self._generate()
        namespace: dict[str, Any] = {
            "CK": self._checked, "REFS": self._refs, "CHK": {}, "PLANS": {}, "react": self._react,
            **{f"M{e}": memo for e, memo in enumerate(self.memo)},
            "FastUnsupported": FastUnsupported,
            "PX_E": self.px_entry, "PX_X": self.px_exit, "FEE_E": self.fee_entry, "FEE_X": self.fee_exit,
            "FEE_NUM": b.fee_rate.numerator, "FEE_DEN": b.fee_rate.denominator,
            "CUMS": [tuple(c for c in range(1, MAX_LOTS_LIMIT + 1) if mask >> (c - 1) & 1)
                     for mask in range(1 << max(b.max_lots, b.later_trade_max_lots, 1))],
        }
        # The source holds no spec text at all: fixed identifiers, ints, and reprs of validated event names.
        exec(compile(self.source, f"<fast:{m.ir.name}:{b.name}>", "exec"), namespace)
        # step(st, True): the successors, or None when an invariant fails (the search's one call per state)
        self.step: Callable[[tuple[Any, ...], bool], list[Successor] | None] = namespace["step"]
        self.successors: Callable[[tuple[Any, ...]], list[Successor]] = namespace["successors"]
        self.holds: Callable[[tuple[Any, ...]], bool] = namespace["holds"]
        # step_of[sid]: `step` for every slot configuration (states dispatch on their first field, the sid)
        self.step_of: list[Callable[[tuple[Any, ...], bool], list[Successor] | None]] = []
        self.fault_sites = tuple(s.fault for s in self.sites)

    # ------------------------------------------------------------------ slot configurations and reactions

    def intern(self, slot_state: str, slot_vars: tuple[ExactValue, ...]) -> int:
        """The sid of a slot configuration; a new one gets what the search needs of it, decided once here: its
        spec invariants (by the exact interpreter) and the values the composed invariants and CANCEL read."""
        key = (slot_state, slot_vars)
        sid = self._sid_of.get(key)
        if sid is not None:
            return sid
        sid = len(self.slots)
        self._sid_of[key] = sid
        self.slots.append(key)
        values = dict(zip(self.m.var_names, slot_vars, strict=True))
        waited = WAITING.get(slot_state)
        checked = (*(values[n] for n in CHECKED_VARS), slot_state in CLOSED_STATES, values[waited] if waited else 0)
        self._checked.append(None if self.m.exact.violated(slot_state, values) else checked)
        self._refs.append((values["entry_order"], values["exit_order"]))
        self.step_of.append(self.step)
        return sid

    def _react(self, e: int, key: Any, sid: int, args: tuple[Any, ...]) -> Reaction:
        """The slot's reaction to event MODEL_EVENTS[e] with params `args` in slot configuration `sid`, by the
        exact interpreter (model.apply's own), memoised under `key`: (row, next sid, ops) or a marker row."""
        event = MODEL_EVENTS[e]
        slot_state, slot_vars = self.slots[sid]
        params = dict(zip(self._param_names[e], args, strict=True))
        reaction: Reaction
        try:
            step = self.m.exact.step(slot_state, dict(zip(self.m.var_names, slot_vars, strict=True)), event, params)
        except BoundError:
            reaction = (ROW_BOUNDS, -1, None)
        else:
            if step is None:
                reaction = (ROW_UNHANDLED, -1, None)
            else:
                new_vars = tuple(_whole(step.vars[n]) for n in self.m.var_names)
                reaction = (step.transition.index, self.intern(step.dest, new_vars), _poster(self._ops(step)))
        self.memo[e][key] = reaction
        self.reacted.append(reaction[0])
        return reaction

    @staticmethod
    def _ops(step: ExactStep) -> tuple[tuple[int, Any], ...]:
        """What model.apply does after the slot fired (`_post` applies it): outputs in emit order, bookkeeping."""
        ops: list[tuple[int, Any]] = []
        trade = _whole(step.vars["trade_seq"])  # model._output: the order belongs to the trade after the slot's update
        for output, args in step.emits:
            if output == "PLACE_ORDER":
                ref, lots = _whole(args["order"]), _whole(args["qty_lots"])
                if lots <= 0:  # type: ignore[operator]
                    continue
                if not (type(ref) is int and type(lots) is int and type(trade) is int and 0 < ref < FOREIGN_ORDER
                        and lots <= MAX_LOTS_LIMIT and trade >= 0):
                    raise FastUnsupported("an order the packed encoding cannot hold")
                role = ROLE_EXIT if args["role"] == "EXIT" else 0
                ops.append((OP_PLACE, ref | role | LIVE | lots << TARGET_SHIFT | trade << TRADE_SHIFT))
            elif output == "CANCEL_ORDER":
                ops.append((OP_CANCEL, args["order"]))
            elif output == "TRADE_CLOSED":
                trade_closed = _whole(args["trade_seq"])
                if type(trade_closed) is not int:
                    raise FastUnsupported("a pending record the packed encoding cannot hold")
                ops.append((OP_RECORD, trade_closed))
            else:
                raise FastUnsupported(f"output {output} is not modelled by the composed model")
        ok = step.outcome == "OK"
        if step.transition.event in ("ENTER", "EXIT") and ok:
            ops.append((OP_ADD, NEXT_REF_ONE))
        if step.transition.event == "ENTER" and ok:
            ops.append((OP_ADD, TRADES_ONE))
        if step.transition.event == "TRADE_WRITTEN":
            ops.append((OP_RECORD, 0))
        return tuple(ops)

    # ------------------------------------------------------------------ code generation helpers

    def _site(self, template: str, fault: bool) -> int:
        """The site's number (sites are numbered on first use, in model.actions's order)."""
        site = Site(template, fault)
        if site not in self.sites:
            self.sites.append(site)
        return self.sites.index(site)

    # ------------------------------------------------------------------ the generated source

    def _generate(self) -> str:
        """`step`, `successors` and `holds`: model.actions over the flat tuple, each action's event delivered
        through the memoised slot reaction."""
        venue = _Writer()
        self._venue(venue)  # first: `step` uses its sites
        w = _Writer()
        w(0, "def step(st, check=False):")
        w(1, "sid = st[0]")
        w(1, "env = st[1]")
        w(1, f"O = st[{N_PREFIX}:]")
        w(1, "if check:  # the search checks the invariants here (as holds does), saving a call and an unpacking")
        self._checks(w, 2, "return None")
        w(1, "out = []")
        w(1, f"sk = sid << {MEMO_SHIFT}")
        w(1, f"next_ref = {_field('next_ref')}")
        w(1, f"if next_ref >= {FOREIGN_ORDER}:")
        w(2, "raise FastUnsupported('order refs reach FOREIGN_ORDER (the reference model takes them as foreign)')")
        self._policy(w)
        self._venue_steps(w)
        w(1, "return out")
        w(0, "")
        w(0, "def successors(st):")
        w(1, "return step(st)")
        w(0, "")
        w(0, "def holds(st):")
        w(1, "sid = st[0]")
        w(1, "env = st[1]")
        w(1, f"O = st[{N_PREFIX}:]")
        self._checks(w, 1, "return False")
        w(1, "return True")
        w(0, "")
        self._check_orders(w)
        w(0, "")
        w.lines += venue.lines
        return "\n".join(w.lines) + "\n"

    def _policy(self, w: _Writer) -> None:
        b = self.b
        w(1, f"if {_field('trades')} < {int(b.max_trades)}:")
        w(2, f"p_venue_position_lots = abs({_field('position')})")
        w(2, f"p_own_fill_age_ms = 0 if env & {RECENT} else {HOT_WINDOW_PASSED_MS}")
        if b.later_trade_max_lots:
            w(2, f"mx_lots = {int(b.later_trade_max_lots)} if {_field('trades')} else {int(b.max_lots)}")
        for lots in range(1, max(b.max_lots, b.later_trade_max_lots) + 1):
            n = 2
            if b.later_trade_max_lots:
                w(2, f"if mx_lots >= {lots}:")
                n = 3
            for leverage in b.leverages:
                site = self._site(f"policy ENTER {int(lots)} lots x{int(leverage)}", False)
                params = {"order": "next_ref", "new_side": repr("SHORT"), "qty_lots": repr(int(lots)),
                          "px": "PX_E", "new_leverage": repr(int(leverage)), "exit_legs": "1",
                          "new_leg_ratio_0": "0", "new_leg_ratio_1": "0", "probe_ok": "True",
                          "venue_position_lots": "p_venue_position_lots", "own_fill_age_ms": "p_own_fill_age_ms"}
                self._deliver(w, n, "ENTER", str(site << SITE_SHIFT), params, "env", venue=False, key=None)
        for qty in (0, 1):
            site = self._site(f"policy EXIT qty={qty}", False)
            self._deliver(w, 1, "EXIT", str(site << SITE_SHIFT), {"order": "next_ref", "qty_lots": str(qty)}, "env",
                          venue=False, key=f"next_ref << 8 | {qty}")
        w(1, "v_entry_order, v_exit_order = REFS[sid]")
        for role, ref in (("ENTRY", "v_entry_order"), ("EXIT", "v_exit_order")):
            site = self._site(f"policy CANCEL {role} #{{ref}}", False)
            w(1, f"if env & {_mask('cancels_left')} and {ref}:")
            # The policy cancels what the slot believes is live: an order whose last fill is not reported too.
            w(2, "for o in O:")
            w(3, f"if o & {REF_MASK} == {ref} and (o & {LIVE} or (o >> {FILLED_SHIFT} & {LOTS_MASK}) > "
                 f"(o >> {SENT_SHIFT} & {SENT_MASK}).bit_length()):")
            self._deliver(w, 4, "CANCEL", f"{site << SITE_SHIFT} | {ref} << {REF_SHIFT}", {"order": ref},
                          f"env - {_one('cancels_left')}", venue=False, key=ref)
            w(4, "break")
        site = self._site("audit TRADE_WRITTEN", False)
        w(1, f"if env >> {RECORD_SHIFT}:")
        self._deliver(w, 2, "TRADE_WRITTEN", str(site << SITE_SHIFT), {}, "env", venue=False, key="0")
        site = self._site("clock: the hot window passes", False)
        w(1, f"if env & {RECENT}:")
        w(2, f"out.append(({site << SITE_SHIFT}, {self._next(f'env - {RECENT}', 'sid')}, -1))")

    def _venue(self, w: _Writer) -> None:
        ack = self._site("venue ACK #{ref}", False)
        reject = self._site("venue REJECT #{ref}", True)
        fill = self._site("venue FILL #{ref} cum={cum}", False)
        cancelled = self._site("venue CANCELLED #{ref}", False)
        venue_side = self._site("venue CANCELLED #{ref} (venue-side)", True)
        repeat = self._site("venue repeats FILL #{ref} cum={cum}", True)
        foreign = self._site("venue FILL of a foreign order", True)
        w(0, "def venue_plan(sid, O, env):")
        w(1, "plan = []")
        w(1, f"sk = sid << {MEMO_SHIFT}")
        w(1, "for k in range(len(O)):")
        w(2, "o = O[k]")
        w(2, f"if o & {LIVE}:")
        w(3, f"o_ref = o & {REF_MASK}")
        w(3, f"o_filled = o >> {FILLED_SHIFT} & {LOTS_MASK}")
        w(3, f"o_target = o >> {TARGET_SHIFT} & {LOTS_MASK}")
        w(3, f"o_lid = o_ref << {REF_SHIFT}")
        w(3, f"if not o & {ACKED} and o_filled == 0:")
        w(4, f"O1 = O[:k] + (o | {ACKED},) + O[k + 1:]")
        self._plan_item(w, 4, "ACK", f"{ack << SITE_SHIFT} | o_lid", {"order": "o_ref"}, "0", key="o_ref")
        w(4, f"if env & {_mask('rejects_left')}:")
        w(5, f"O1 = O[:k] + (o ^ {LIVE},) + O[k + 1:]")
        self._plan_item(w, 5, "REJECT", f"{reject << SITE_SHIFT} | o_lid", {"order": "o_ref"},
                        f"-{_one('rejects_left')}", key="o_ref")
        w(3, "if o_filled < o_target:")
        w(4, f"o_px, o_fee = (PX_X, FEE_X) if o & {ROLE_EXIT} else (PX_E, FEE_E)")
        w(4, f"o_fk = o_ref << 8 | (o & {ROLE_EXIT}) << 8  # a fill's params: the ref, the role and cum")
        w(4, f"o_keep = o & {~(LOTS_MASK << FILLED_SHIFT | LIVE)} | {ACKED}")
        w(4, "for cum in ((o_target,) if o_filled + 1 == o_target else (o_filled + 1, o_target)):")
        w(5, f"O1 = O[:k] + (o_keep | cum << {FILLED_SHIFT} | 1 << ({SENT_SHIFT - 1} + cum) | "
             f"({LIVE} if cum < o_target else 0),) + O[k + 1:]")
        # The model's entries are SHORT: an entry fill moves the position down, an exit fill up; the fill is recent.
        w(5, f"moved = (cum - o_filled) << {POSITION_SHIFT} if o & {ROLE_EXIT} else -(cum - o_filled) << "
             f"{POSITION_SHIFT}")
        self._plan_item(w, 5, "FILL", f"{fill << SITE_SHIFT} | o_lid | cum", self._fill_params(), "moved",
                        key="o_fk | cum", recent=True)
        w(4, f"if o & {CREQ} or env & {_mask('vcancel_left')}:")
        w(5, f"O1 = O[:k] + (o ^ {LIVE},) + O[k + 1:]")
        w(5, f"c_lid = ({cancelled << SITE_SHIFT} if o & {CREQ} else {venue_side << SITE_SHIFT}) | o_lid")
        w(5, f"spent = 0 if o & {CREQ} else -{_one('vcancel_left')}")
        self._plan_item(w, 5, "CANCELLED", "c_lid", {"order": "o_ref"}, "spent", key="o_ref")
        w(2, f"if env & {_mask('dup_left')} and o >> {SENT_SHIFT} & {SENT_MASK}:")
        w(3, f"o_ref = o & {REF_MASK}")
        w(3, f"o_lid = o_ref << {REF_SHIFT}")
        w(3, f"o_px, o_fee = (PX_X, FEE_X) if o & {ROLE_EXIT} else (PX_E, FEE_E)")
        w(3, f"o_fk = o_ref << 8 | (o & {ROLE_EXIT}) << 8")
        w(3, f"for cum in CUMS[o >> {SENT_SHIFT} & {SENT_MASK}]:")
        self._same_orders = True  # the venue orders do not change
        self._plan_item(w, 4, "FILL", f"{repeat << SITE_SHIFT} | o_lid | cum", self._fill_params(),
                        f"-{_one('dup_left')}", key="o_fk | cum")
        self._same_orders = False
        w(1, "return plan")
        self._foreign = foreign

    def _venue_steps(self, w: _Writer) -> None:
        """The venue's actions in `step`: the plan of (sid, orders, budgets), made once (`venue_plan`), applied to
        this state's env."""
        w(1, f"budgets = env & {VENUE_BUDGETS}")
        w(1, "plan = PLANS.get((sid, O, budgets))")
        w(1, "if plan is None:")
        w(2, "plan = PLANS[sid, O, budgets] = venue_plan(sid, O, budgets)")
        w(1, "for lid, O1, delta, recent, row, nsid, post in plan:")
        w(2, "if O1 is None:  # the slot leaves its bounds, or does not handle the venue event")
        w(3, "out.append((lid, None, row))")
        w(3, "return out")
        w(2, "nxt = (nsid, env + delta | recent) + O1")
        w(2, "out.append((lid, post(nxt) if post else nxt, row))")
        w(1, f"if env & {_mask('foreign_left')}:")
        self._same_orders = True  # the venue orders do not change
        self._deliver(w, 2, "FILL", str(self._foreign << SITE_SHIFT), {
            "order": str(FOREIGN_ORDER), "cum_lots": "1", "cum_quote_usdt": "PX_E", "cum_fee_usdt": "0"},
            f"env - {_one('foreign_left')}", venue=True, key=str(FOREIGN_KEY))
        self._same_orders = False

    def _plan_item(self, w: _Writer, n: int, event: str, lid: str, params: dict[str, str], delta: str, key: str,
                   recent: bool = False) -> None:
        """In `venue_plan`: deliver `event` (see _deliver) and add its plan item: (label id, the orders after,
        what it adds to env, the recent bit it sets, the slot's row, next sid, post), or a marker item that ends
        the plan (the slot leaves its bounds or does not handle the event)."""
        self._reaction(w, n, event, params, key)
        w(n, "if row >= 0:")
        orders = "O" if self._same_orders else "O1"
        w(n + 1, f"plan.append(({lid}, {orders}, {delta}, {RECENT if recent else 0}, row, nsid, post))")
        w(n, "else:")
        w(n + 1, f"plan.append(({lid}, None, 0, 0, row, 0, None))")
        w(n + 1, "return plan")

    def _reaction(self, w: _Writer, n: int, event: str, params: dict[str, str], key: str | None) -> None:
        """The code that binds `row, nsid, post`: the slot's memoised reaction to `event` with `params` in this
        slot configuration, made by `react` the first time. `key`: an int below 2**MEMO_SHIFT that, in this
        event's memo, determines the params (None: the params themselves)."""
        e = MODEL_EVENTS.index(event)
        args = "(" + "".join(f"{params[p.name]}, " for p in self.m.ir.event(event).params) + ")"
        w(n, f"key = (sid, *{args})" if key is None else f"key = sk | {key}")
        w(n, f"r = M{e}.get(key)")
        w(n, "if r is None:  # the first time in this slot configuration")
        w(n + 1, f"r = react({e}, key, sid, {args})")
        w(n, "row, nsid, post = r")

    @staticmethod
    def _fill_params() -> dict[str, str]:
        return {"order": "o_ref", "cum_lots": "cum", "cum_quote_usdt": "cum * o_px", "cum_fee_usdt": "cum * o_fee"}

    @staticmethod
    def _next(env: str, sid: str = "nsid", orders: str = "O") -> str:
        """The next state: the slot configuration, the env int and the orders (sliced from `st` when only the
        slot configuration changes)."""
        if env == "env" and orders == "O":
            return f"({sid},) + st[1:]"
        return f"({sid}, {env}) + {orders}"

    def _deliver(self, w: _Writer, n: int, event: str, lid: str, params: dict[str, str], env: str, venue: bool,
                 key: str | None) -> None:
        """Deliver `event` with `params` (code) to the slot: its reaction in this slot configuration (memoised,
        see `_react`), then model.apply's venue update (`env`, and O1 for venue actions) and `_post`'s outputs
        and bookkeeping. An event no row handles is a violation from the venue, and no successor from the policy.
        `key`: an int below 2**MEMO_SHIFT that, in this event's memo, determines the params (None: the params)."""
        self._reaction(w, n, event, params, key)
        w(n, "if row >= 0:")
        orders = "O1" if venue and not self._same_orders else "O"
        if not venue and env == "env":
            w(n + 1, "if post is None and nsid == sid:")
            w(n + 2, f"out.append(({lid}, st, row))  # nothing changes: the same state")
            w(n + 1, "else:")
            nxt = self._next(env, orders=orders)
            w(n + 2, f"out.append(({lid}, post({nxt}) if post else {nxt}, row))")
        else:
            w(n + 1, f"nxt = {self._next(env, orders=orders)}")
            w(n + 1, f"out.append(({lid}, post(nxt) if post else nxt, row))")
        w(n, f"elif row == {ROW_BOUNDS}:" if not venue else "else:")
        w(n + 1, f"out.append(({lid}, None, row))")
        w(n + 1, "return out")

    @staticmethod
    def _checks(w: _Writer, n: int, fail: str) -> None:
        """`fail` unless the invariants hold in the state unpacked to locals: what depends on the slot
        configuration and the orders only is decided once per pair (`check_orders`, memoised in CHK), the venue
        position and the pending record here."""
        w(n, "c = CHK.get((sid, O))")
        w(n, "if c is None:")
        w(n + 1, "c = CHK[sid, O] = check_orders(sid, O)")
        w(n, f"record_pending = env >> {RECORD_SHIFT}")
        w(n, f"if not c or abs({_field('position')}) > c[0] or record_pending and record_pending != c[1]:")
        w(n + 1, fail)

    @staticmethod
    def _check_orders(w: _Writer) -> None:
        """`check_orders(sid, O)`: False unless the spec's invariants (decided per slot configuration, CK) and
        checker.composed_violations's hold for the slot configuration and the orders, else what the rest of the
        checks needs: (entry target lots, trade seq) for one_entry_exposure and record_before_next_trade."""
        w(0, "def check_orders(sid, O):")
        w(1, "ck = CK[sid]")
        w(1, "if ck is None:  # a spec invariant fails")
        w(2, "return False")
        w(1, f"{', '.join(f'v_{name}' for name in CHECKED_VARS)}, closed, wref, = ck")
        w(1, "entry_found = False")
        w(1, "entry_filled = entry_quote = exited = live_entries = 0")
        w(1, "for o in O:")
        w(2, f"ref = o & {REF_MASK}")
        w(2, "if not entry_found and ref == v_entry_order:")
        w(3, "entry_found = True")
        w(3, f"entry_filled = o >> {FILLED_SHIFT} & {LOTS_MASK}")
        w(3, f"entry_quote = entry_filled * (PX_X if o & {ROLE_EXIT} else PX_E)")
        w(2, f"if o & {ROLE_EXIT}:")
        w(3, f"if o >> {TRADE_SHIFT} == v_trade_seq:")
        w(4, f"exited += o >> {FILLED_SHIFT} & {LOTS_MASK}")
        w(2, f"elif o & {LIVE}:")
        w(3, "live_entries += 1")
        # cancel_in_flight (wref: the order a cancelling state waits for, else 0): the first order with that ref
        # is dead or cancel-requested
        w(1, "if wref:")
        w(2, "for o in O:")
        w(3, f"if o & {REF_MASK} == wref:")
        w(4, f"if o & {LIVE} and not o & {CREQ}:")
        w(5, "return False  # cancel_in_flight")
        w(4, "break")
        w(1, "exit_quote = exited * PX_X")
        checks = [
            "v_entry_filled_lots != entry_filled or v_exited_lots != exited",  # books_match_venue
            "live_entries > 1",  # one_entry_exposure (the position: in _checks)
            "v_entry_cost_usdt != entry_quote or v_exit_cost_usdt != exit_quote",  # booked_at_venue_prices
            "v_fees_usdt * FEE_DEN != (entry_quote + exit_quote) * FEE_NUM",  # fees_match_venue
            # closed_pnl_is_price_change, in CLOSED and TRADE_TERMINAL_WRITTEN
            "closed and v_entry_filled_lots == exited and v_realised_pnl_usdt != entry_quote - exit_quote",
        ]
        for check in checks:
            w(1, f"if {check}:")
            w(2, "return False")
        w(1, "return (v_entry_target_lots, v_trade_seq)")

    # ------------------------------------------------------------------ states and labels

    def initial(self) -> tuple[Any, ...]:
        s = self.m.initial()
        sid = self.intern(s.slot_state, tuple(_whole(v) for v in s.slot_vars))
        env = pack_env({"position": s.position_lots, "next_ref": s.next_ref, "trades": s.trades,
                        "recent": s.recent_fill, "record_pending": s.record_pending, "dup_left": s.duplicates_left,
                        "foreign_left": s.foreign_left, "vcancel_left": s.venue_cancels_left,
                        "cancels_left": s.cancels_left, "rejects_left": s.rejects_left})
        return (sid, env)

    def slot_state(self, st: tuple[Any, ...]) -> str:
        """The slot's state name in a flat state."""
        sid: int = st[0]
        return self.slots[sid][0]

    def to_state(self, st: tuple[Any, ...]) -> State:
        """The reference model's State for a flat tuple."""
        slot_state, slot_vars = self.slots[st[0]]
        env = unpack_env(st[1])
        orders = []
        for o in st[N_PREFIX:]:
            role = "EXIT" if o & ROLE_EXIT else "ENTRY"
            filled = o >> FILLED_SHIFT & LOTS_MASK
            sent = o >> SENT_SHIFT & SENT_MASK
            sent_cums = tuple(c for c in range(1, MAX_LOTS_LIMIT + 1) if sent >> (c - 1) & 1)
            orders.append(VenueOrder(o & REF_MASK, role, o >> TRADE_SHIFT, o >> TARGET_SHIFT & LOTS_MASK, filled,
                                     Fraction(self.m.quote(role, filled)), bool(o & ACKED), bool(o & LIVE),
                                     bool(o & CREQ), sent_cums))
        b = self.b
        return State(slot_state, slot_vars, tuple(orders), env["position"], env["next_ref"], env["trades"],
                     env["recent"], env["record_pending"], env["dup_left"], env["foreign_left"], env["vcancel_left"],
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
    transitions = 0
    violations: list[Violation] = []
    slot_invariants = {inv.name: inv.catalogue for inv in m.ir.invariants}

    def trace(i: int, last: tuple[str, str, str] | None = None) -> tuple[tuple[str, str, str], ...]:
        steps: list[tuple[str, str, str]] = []
        while i > 0:
            steps.append((fm.label(parent_lid[i]), fm.slot_state(states[i]), fm.outcome(parent_lid[i], parent_row[i])))
            i = parent[i]
        steps.reverse()
        if last is not None:
            steps.append(last)
        return tuple(steps)

    step = fm.step
    setdefault = index.setdefault
    # The rows fired are those of the slot reactions the search took: a reaction is made (fm.reacted) the first
    # time a step meets it, and the search takes every entry of a step, until a cut at max_states. From the
    # first cut on, the rows are collected from the entries taken.
    reacted = fm.reacted
    fired: set[int] | None = None
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
        made = len(reacted)
        succ = step(st, True)
        if succ is None:  # an invariant fails
            violations.extend(_state_violations(fm, st, slot_invariants, trace(i)))
            break
        d = depth[i] + 1
        transitions += len(succ)
        taken = len(succ)
        for lid, nxt, row in succ:
            if nxt is st:  # a self loop: counted, its row fired; no new state, nothing for reachability
                continue
            if nxt is None:  # always the last entry: the step stops there
                transitions -= 1
                violations.append(_step_violation(fm, st, lid, row, trace(i)))
                break
            j = setdefault(nxt, n)
            if j == n:
                if n >= max_states:
                    del index[nxt]
                    # the entries after this one were not taken (checker.check stops here too)
                    taken = next(k for k, x in enumerate(succ) if x[1] is nxt) + 1
                    transitions -= len(succ) - taken
                    if fired is None:
                        fired = set(reacted[:made])
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
        if fired is not None:
            fired.update([row for _, _, row in succ[:taken]])
        if progress is not None and len(states) % 5000 == 0:
            progress(len(states), transitions, depth[-1])
    if fired is None:
        fired = set(reacted)
    fired.difference_update(range(ROW_UNHANDLED, 0))  # markers; the clock (-1) fires no row
    complete = head >= len(states) and not violations and len(states) < max_states
    verdicts = {name: "holds" for name in [*slot_invariants, *COMPOSED]}
    if complete:
        n_orders = N_PREFIX
        flat_env = POSITION_OFFSET << POSITION_SHIFT  # env's position bits when the venue position is 0
        position_bits = 0xFFF << POSITION_SHIFT
        free = FREE_STATES
        def flat() -> list[int]:
            return [i for i, st in enumerate(states)
                    if st[1] & position_bits == flat_env and not any(map(LIVE.__and__, st[n_orders:]))]

        def slot_free() -> list[int]:
            free_sids = {sid for sid, (slot_state, _) in enumerate(fm.slots) if slot_state in free}
            return [i for i, st in enumerate(states) if st[0] in free_sids]

        good: Callable[[], list[int]]
        for name, good, what in (("flat_reachable", flat, "flat"), ("slot_free_reachable", slot_free, "a free slot")):
            stuck = _unable_to_reach(len(states), reverse, good())
            if stuck is not None:
                violations.append(Violation(name, REACHABILITY[name][0], f"no way to {what} from "
                                            f"{fm.slot_state(states[stuck])} (venue position "
                                            f"{unpack_env(states[stuck][1])['position']})", trace(stuck)))
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
