"""Promela export of the composed model, and running SPIN on it (`pink-codegen export-promela`).

The export is generated from the same definition `pink-codegen verify` explores: the slot machine's typed IR
(guards, lets, effects, emits and invariants of spec/slot.yaml, translated expression by expression) and the
environment of `verify/model.py` for one `Bounds` profile (policy, venue and fault actions, budgets, venue
orders), plus the composed invariants of `verify/checker.py` as assertions.

Encoding (one process, one loop):

    do
    :: atomic { if :: <environment action guard> -> <choose it: event, parameters> ... fi;
                d_step { <check the invariants of the state being left>; <slot step>; <venue update> } }
    od

* The state vector holds exactly what a `model.State` holds: the slot's state (a byte) and its 26 variables,
  the venue orders (fixed arrays of `MAX_ORDERS` entries in placement order and a count; the cumulative
  reports already sent as a bit set, which is the same information as the model's increasing tuple), the
  venue position, the next order id, the trade count, the hot-window flag, the pending record and the fault
  budgets. Temporaries (event parameters, lets, new values, the chosen action) are `hidden`, so they are not
  part of the state vector, and the states inside the `atomic` are not stored. So SPIN's "states, stored"
  (`-DNOREDUCE`, exhaustive) counts the same states as `pink-codegen verify`.
* Numbers: integral types (lots, counts, ms, leverage) are Promela ints. Fractional types (prices, money,
  ratios) are ints scaled by `SCALE`, the smallest power of ten that makes every amount of the profile whole
  (the price levels, and one lot's fee at the fee rate): 1 for the shipped profiles (prices 3000 and 2000,
  fee rate 1/1000: quotes and fees are whole USDT). A comparison with a literal that is not a multiple of
  1/SCALE (`min_sane_px` = 1e-8) is decided exactly by rounding the literal up or down.
* Division: the spec divides once (`entry_vwap_px = entry_cost_usdt / entry_filled_lots`); the exact
  interpreter rounds the quotient half-even at 12 places. The export computes the scaled quotient with integer
  division and asserts (`division_exact`) that it leaves no remainder; then the rounding at 12 places is the
  identity (SCALE divides 10^12), so the value is the interpreter's. SPIN checks that assertion in every
  reachable state, which proves the rounding never occurs within the profile's bounds (a multiplication of two
  scaled fractions is handled the same way).
* Properties: every spec invariant and every composed invariant of checker.COMPOSED is an assertion on each
  state (checked before leaving it; every state offers the policy's EXIT, so every state is left), as are the
  variables' [min, max] bounds (`bounds`) and that the slot handles every venue event
  (`venue_event_handled`). The reachability properties `flat_reachable` and `slot_free_reachable` ("from every
  state, flat is reachable without further faults": AG EF, a branching-time property) are not expressible as
  safety assertions or in LTL; SPIN does not check them, and the cross-check compares the safety verdicts and
  the number of reachable states only.
* Ints are 32-bit in Promela; the export refuses a profile whose largest scaled amount could come near 2^31.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import attrs

from pink_codegen import expr as X
from pink_codegen.ir import Machine, Transition
from pink_codegen.types import SIDE, BoolType, EnumType, ExactValue, NumType, RefType, Type
from pink_codegen.verify.checker import COMPOSED
from pink_codegen.verify.model import FOREIGN_ORDER, Bounds, bounds_in_use_beyond
from pink_fsm.fsm.numbers import DIV_SCALE
from pink_fsm.fsm.types import SIDE_SIGN_EXACT

# The Bounds fields this export knows how to encode. A field added later (a new model capability) must be OFF
# (its default) in a profile, or the export refuses the profile rather than export a different model.
KNOWN_BOUNDS_FIELDS = frozenset({"name", "max_trades", "max_lots", "price_levels", "leverages", "cancel_budget",
                                 "reject_budget", "duplicate_budget", "foreign_budget", "venue_cancel_budget",
                                 "fee_rate"})
# Events the environment of model.py delivers (the others' rows never fire within the composed model).
MODEL_EVENTS = ("ENTER", "EXIT", "CANCEL", "TRADE_WRITTEN", "ACK", "REJECT", "FILL", "CANCELLED")
INT_LIMIT = 2**31 - 1
AMOUNT_LIMIT = 2**24  # largest scaled amount a profile may produce (sums and products stay far below 2^31)
HOT_WINDOW_PASSED_MS = 60_000  # model.py's own_fill_age_ms when there was no recent own fill


class PromelaError(ValueError):
    """The profile or the spec cannot be exported faithfully; the message says why."""


# ---------------------------------------------------------------------------------------------
# Profiles


def unknown_bounds_in_use(bounds: Bounds) -> list[str]:
    """Bounds fields this export does not know that are switched on (differ from their default)."""
    return bounds_in_use_beyond(bounds, KNOWN_BOUNDS_FIELDS)


def scale_for(bounds: Bounds) -> int:
    """The smallest power of ten (at most 10^12) that makes every price level and one lot's fee whole."""
    amounts = [*bounds.price_levels, *(px * bounds.fee_rate for px in bounds.price_levels)]
    for places in range(DIV_SCALE + 1):
        scale: int = 10**places
        if all((Fraction(a) * scale).denominator == 1 for a in amounts):
            return scale
    raise PromelaError(f"profile {bounds.name!r}: prices {bounds.price_levels} and fee rate {bounds.fee_rate} "
                       f"need more than {DIV_SCALE} decimal places")


def max_orders_for(bounds: Bounds) -> int:
    """Venue orders a run can place: per trade one entry and at most one exit per lot that completes, plus one
    per cancel, rejection and venue-side cancel (the export asserts `orders_fit` when it appends)."""
    return (bounds.max_trades * (1 + bounds.max_lots) + bounds.cancel_budget + bounds.reject_budget
            + bounds.venue_cancel_budget)


# ---------------------------------------------------------------------------------------------
# Expressions


def _is_frac(t: Type) -> bool:
    return isinstance(t, NumType) and not t.integral


class _Expr:
    """Translate typed spec expressions to Promela over scaled ints. Division (and a product of two scaled
    fractions) adds an obligation: a condition that must hold for the integer result to be exact."""

    def __init__(self, scale: int, event: str | None) -> None:
        self.scale = scale
        self.event = event
        self.obligations: list[str] = []
        self._path: list[str] = []

    # -- helpers

    def frac(self, e: X.TExpr) -> str:
        """e in the scaled representation (integral values are multiplied by SCALE)."""
        code = self.expr(e)
        if _is_frac(e.type) or self.scale == 1:
            return code
        return f"({code} * {self.scale})"

    def as_type(self, e: X.TExpr, want: Type) -> str:
        return self.frac(e) if _is_frac(want) else self.expr(e)

    def numeric(self, e: X.TExpr, frac: bool) -> str:
        return self.frac(e) if frac else self.expr(e)

    def _oblige(self, condition: str) -> None:
        guard = " && ".join(self._path)
        self.obligations.append(f"(!({guard}) || {condition})" if guard else condition)

    def _lit(self, value: int | Fraction, frac: bool) -> str:
        scaled = Fraction(value) * (self.scale if frac else 1)
        if scaled.denominator != 1:
            raise PromelaError(f"the literal {value} is not a whole number of 1/{self.scale} (SCALE)")
        if abs(scaled) > INT_LIMIT:
            raise PromelaError(f"the literal {value} (scaled {scaled}) does not fit a 32-bit Promela int")
        return str(scaled.numerator) if scaled >= 0 else f"({scaled.numerator})"

    # -- the translation

    def expr(self, e: X.TExpr) -> str:
        if isinstance(e, X.Lit):
            if isinstance(e.value, bool):
                return "true" if e.value else "false"
            if isinstance(e.type, RefType):
                return "0"
            assert isinstance(e.value, int | Fraction)
            return self._lit(e.value, _is_frac(e.type))
        if isinstance(e, X.EnumLit):
            return _enum_const(e.type, e.value)
        if isinstance(e, X.Ref):
            return self._ref(e)
        if isinstance(e, X.Unary):
            inner = self.expr(e.operand)
            return f"(!{inner})" if e.op == "not" else f"(-{inner})"
        if isinstance(e, X.Bin):
            return self._bin(e)
        if isinstance(e, X.BoolOp):
            return self._boolop(e)
        if isinstance(e, X.Cmp):
            return self._cmp(e)
        if isinstance(e, X.IfExp):
            test = self.expr(e.test)
            self._path.append(test)
            body = self._branch(e.body, e.type)
            self._path[-1] = f"!{test}"
            orelse = self._branch(e.orelse, e.type)
            self._path.pop()
            return f"({test} -> {body} : {orelse})"
        if isinstance(e, X.StateTest):
            return "(" + " || ".join(f"slot_state == {_state_const(s)}" for s in e.states) + ")"
        if isinstance(e, X.Call):
            return self._call(e)
        raise PromelaError(f"cannot translate {X.render(e)!r} to Promela")

    def _branch(self, e: X.TExpr, t: Type) -> str:
        return self.numeric(e, _is_frac(t)) if isinstance(t, NumType) else self.expr(e)

    def _ref(self, e: X.Ref) -> str:
        if e.kind == "var":
            return f"v_{e.name}"
        if e.kind == "param":
            assert self.event is not None
            return f"p_{self.event}_{e.name}"
        if e.kind == "let":
            return f"l_{e.name}"
        assert e.target is not None
        if e.kind == "const":
            return self.expr(e.target)
        return f"({self._branch(e.target, e.type)})"  # a define, inlined as the exact interpreter does

    def _bin(self, e: X.Bin) -> str:
        frac = _is_frac(e.type)
        if e.op in "+-":
            return f"({self.numeric(e.left, frac)} {e.op} {self.numeric(e.right, frac)})"
        if e.op == "*":
            lf, rf = _is_frac(e.left.type), _is_frac(e.right.type)
            product = f"({self.expr(e.left)} * {self.expr(e.right)})"
            if lf and rf and self.scale != 1:
                self._oblige(f"({product} % {self.scale} == 0)")
                return f"({product} / {self.scale})"
            return product
        assert e.op == "/"
        # The scaled quotient: (a / b) * SCALE, exact or the obligation fails.
        if _is_frac(e.right.type):
            num = self.frac(e.left) if self.scale == 1 else f"({self.frac(e.left)} * {self.scale})"
            den = self.frac(e.right)
        else:
            num, den = self.frac(e.left), self.expr(e.right)
        self._oblige(f"({den} != 0 && {num} % {den} == 0)")
        return f"({num} / {den})"

    def _boolop(self, e: X.BoolOp) -> str:
        parts: list[str] = []
        depth = len(self._path)
        for v in e.values:
            code = self.expr(v)
            parts.append(code)
            self._path.append(code if e.op == "and" else f"!{code}")
        del self._path[depth:]
        return "(" + f" {'&&' if e.op == 'and' else '||'} ".join(parts) + ")"

    def _cmp(self, e: X.Cmp) -> str:
        if not (isinstance(e.left.type, NumType) or isinstance(e.right.type, NumType)):
            return f"({self.expr(e.left)} {e.op} {self.expr(e.right)})"
        frac = _is_frac(e.left.type) or _is_frac(e.right.type)
        for lit_side, other, op in ((e.right, e.left, e.op), (e.left, e.right, _FLIP[e.op])):
            value = _literal_value(lit_side)
            if value is not None and frac and (value * self.scale).denominator != 1:
                return self._cmp_inexact_literal(self.numeric(other, frac), op, value * self.scale)
        return f"({self.numeric(e.left, frac)} {e.op} {self.numeric(e.right, frac)})"

    @staticmethod
    def _cmp_inexact_literal(x: str, op: str, c: Fraction) -> str:
        """x op c for a scaled int x and a literal c between two ints: decided exactly."""
        lo, hi = math.floor(c), math.ceil(c)
        return {">=": f"({x} >= {hi})", ">": f"({x} >= {hi})", "<=": f"({x} <= {lo})", "<": f"({x} <= {lo})",
                "==": "false", "!=": "true"}[op]

    def _call(self, e: X.Call) -> str:
        frac = _is_frac(e.type)
        if e.fn in ("min", "max"):
            args = [self.numeric(a, frac) for a in e.args]
            out = args[0]
            for a in args[1:]:
                pick = "<" if e.fn == "min" else ">"
                out = f"({out} {pick} {a} -> {out} : {a})"
            return out
        if e.fn == "implies":
            return f"(!{self.expr(e.args[0])} || {self.expr(e.args[1])})"
        arg = e.args[0]
        if e.fn == "abs":
            x = self.expr(arg)
            return f"({x} < 0 -> -{x} : {x})"
        if e.fn == "sign":
            x = self.expr(arg)
            if arg.type == SIDE:
                pos = next(k for k, v in SIDE_SIGN_EXACT.items() if v == 1)
                neg = next(k for k, v in SIDE_SIGN_EXACT.items() if v == -1)
                return f"({x} == {_enum_const(SIDE, pos)} -> 1 : ({x} == {_enum_const(SIDE, neg)} -> -1 : 0))"
            return f"({x} > 0 -> 1 : ({x} < 0 -> -1 : 0))"
        if e.fn == "floor":
            x = self.expr(arg)
            if not _is_frac(arg.type) or self.scale == 1:
                return x
            s = self.scale
            return f"({x} >= 0 -> {x} / {s} : -((-{x} + {s - 1}) / {s}))"
        raise PromelaError(f"cannot translate {e.fn}() to Promela")


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _literal_value(e: X.TExpr) -> Fraction | None:
    while isinstance(e, X.Ref) and e.kind == "const" and e.target is not None:
        e = e.target
    if isinstance(e, X.Lit) and isinstance(e.value, int | Fraction) and not isinstance(e.value, bool):
        return Fraction(e.value)
    return None


def _enum_const(t: Type, value: str) -> str:
    assert isinstance(t, EnumType)
    return f"{t.name}_{value}"


def _state_const(name: str) -> str:
    return f"ST_{name}"


# ---------------------------------------------------------------------------------------------
# The model


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, indent: int, text: str) -> None:
        self.lines.append("  " * indent + text if text else "")

    def block(self, indent: int, lines: list[str]) -> None:
        for line in lines:
            self(indent, line)


class _Export:
    def __init__(self, slot: Machine, bounds: Bounds) -> None:
        unknown = unknown_bounds_in_use(bounds)
        if unknown:
            raise PromelaError(f"profile {bounds.name!r} switches on model capabilities the Promela export does not "
                               f"encode ({', '.join(unknown)}); export a profile without them, or extend "
                               f"pink_codegen/verify/promela.py first")
        if not bounds.price_levels or len(bounds.price_levels) < 2:
            raise PromelaError(f"profile {bounds.name!r}: the model needs an entry and an exit price level")
        self.m = slot
        self.b = bounds
        self.scale = scale_for(bounds)
        self.max_orders = max_orders_for(bounds)
        self.px_entry = self._scaled(bounds.price_levels[0])
        self.px_exit = self._scaled(bounds.price_levels[1])
        self.fee_entry = self._scaled(bounds.price_levels[0] * bounds.fee_rate)
        self.fee_exit = self._scaled(bounds.price_levels[1] * bounds.fee_rate)
        largest = bounds.max_lots * max(abs(self.px_entry), abs(self.px_exit)) * max(1, bounds.max_trades)
        if largest > AMOUNT_LIMIT or max(bounds.leverages, default=1) * largest > INT_LIMIT // 4:
            raise PromelaError(f"profile {bounds.name!r}: scaled amounts up to {largest} are too close to the "
                               f"32-bit range of Promela ints")
        if max(bounds.max_lots, 1) > 8 or self.max_orders > 60:
            raise PromelaError(f"profile {bounds.name!r}: more than 8 lots or 60 orders does not fit the byte "
                               f"encoding of the export")
        self.enums: dict[str, EnumType] = {SIDE.name: SIDE, **{e.name: e for e in slot.enums}}
        self.events = [e for e in slot.events if e.name in MODEL_EVENTS]
        missing = set(MODEL_EVENTS) - {e.name for e in self.events}
        if missing:
            raise PromelaError(f"the slot spec has no event(s) {', '.join(sorted(missing))} that model.py delivers")
        self.w = _Writer()

    def _scaled(self, value: Fraction) -> int:
        scaled = Fraction(value) * self.scale
        assert scaled.denominator == 1
        return scaled.numerator

    def _value(self, t: Type, value: ExactValue) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(t, EnumType):
            assert isinstance(value, str)
            return _enum_const(t, value)
        if isinstance(t, RefType):
            return str(value)
        assert isinstance(value, int | Fraction)
        return _Expr(self.scale, None)._lit(value, _is_frac(t))

    # -- declarations

    def text(self) -> str:
        w = self.w
        m, b = self.m, self.b
        w(0, f"/* Code generated by pink-codegen export-promela from {m.file} (sha256 {m.sha256}), profile "
             f"{b.name}; DO NOT EDIT. */")
        w(0, "/* Regenerate: pink-codegen export-promela --profile " + b.name + " --out FILE")
        w(0, "   Check:      spin -a FILE && cc -O2 -DNOREDUCE -DSAFETY -o pan pan.c && ./pan -m100000")
        known = ", ".join(f"{f}={_text(getattr(b, f))}" for f in sorted(KNOWN_BOUNDS_FIELDS - {"name"}))
        w(0, f"   Bounds: {known} (every other model capability off)")
        w(0, f"   Fractional values (prices, money, ratios) are ints scaled by SCALE = {self.scale}. */")
        w(0, "")
        w(0, f"#define SCALE {self.scale}")
        w(0, f"#define MAX_ORDERS {self.max_orders}")
        w(0, f"#define FOREIGN_ORDER {FOREIGN_ORDER}")
        for i, s in enumerate(m.states):
            w(0, f"#define {_state_const(s.name)} {i}")
        for enum in self.enums.values():
            for i, value in enumerate(enum.values):
                w(0, f"#define {_enum_const(enum, value)} {i}")
        w(0, "#define EV_TICK 0")
        for i, ev in enumerate(self.events, start=1):
            w(0, f"#define EV_{ev.name} {i}")
        w(0, "#define K_POLICY 0")
        w(0, "#define K_VENUE 1")
        w(0, "#define K_REPEAT 2")
        w(0, "#define K_FOREIGN 3")
        w(0, "")
        w(0, "/* ---- the state vector: what model.State holds ---- */")
        w(0, f"byte slot_state = {_state_const(m.initial)};")
        for v in m.variables:
            w(0, f"{_ptype(v.type)} v_{v.name} = {self._value(v.type, v.init)};")
        w(0, "byte n_orders = 0;  /* venue orders, in placement order */")
        w(0, "byte o_ref[MAX_ORDERS];")
        w(0, "byte o_role[MAX_ORDERS];")
        w(0, "int o_trade[MAX_ORDERS];")
        w(0, "byte o_target[MAX_ORDERS];")
        w(0, "byte o_filled[MAX_ORDERS];")
        w(0, "int o_quote[MAX_ORDERS];")
        w(0, "bool o_acked[MAX_ORDERS];")
        w(0, "bool o_live[MAX_ORDERS];")
        w(0, "bool o_cancel_req[MAX_ORDERS];")
        w(0, "byte o_sent[MAX_ORDERS];  /* bit c-1: cumulative report c delivered */")
        w(0, "int position_lots = 0;")
        w(0, "byte next_ref = 1;")
        w(0, "byte trades = 0;")
        w(0, "bool recent_fill = false;")
        w(0, "int record_pending = 0;")
        w(0, f"byte duplicates_left = {b.duplicate_budget};")
        w(0, f"byte foreign_left = {b.foreign_budget};")
        w(0, f"byte venue_cancels_left = {b.venue_cancel_budget};")
        w(0, f"byte cancels_left = {b.cancel_budget};")
        w(0, f"byte rejects_left = {b.reject_budget};")
        w(0, "")
        w(0, "/* ---- temporaries: hidden, not part of the state vector ---- */")
        w(0, "hidden byte h_ev;")
        w(0, "hidden byte h_kind;")
        w(0, "hidden byte h_oi;")
        w(0, "hidden byte h_fault;")
        w(0, "hidden int h_row;")
        w(0, "hidden int h_cum;")
        for ev in self.events:
            for p in ev.params:
                w(0, f"hidden {_hidden_type(p.type)} p_{ev.name}_{p.name};")
        for name in sorted({n for t in m.transitions for n, _ in t.lets}):
            w(0, f"hidden int l_{name};")
        for v in m.variables:
            w(0, f"hidden {_hidden_type(v.type)} n_{v.name};")
        for name in sorted({f"e_{em.output}_{a}" for t in m.transitions for em in t.emits for a, _ in em.args}):
            w(0, f"hidden int {name};")
        for name in ("entry_filled", "exited", "live_entries", "entry_quote", "exit_quote", "waiting"):
            w(0, f"hidden int agg_{name};")
        for name in self._property_names():
            w(0, f"hidden byte holds_{name};")
        w(0, "")
        w(0, "active proctype composed() {")
        w(1, "do")
        w(1, ":: atomic {")
        w(3, "if")
        for guard, assigns in self._actions():
            w(3, f":: {guard} ->")
            w(5, "; ".join(assigns))
        w(3, "fi;")
        w(3, "d_step {")
        self._body(4)
        w(3, "}")
        w(2, "}")
        w(1, "od")
        w(0, "}")
        return "\n".join(self.w.lines) + "\n"

    def _property_names(self) -> list[str]:
        return [*(inv.name for inv in self.m.invariants), *COMPOSED, "division_exact", "bounds",
                "venue_event_handled", "orders_fit"]

    # -- environment actions (model.py's policy and venue)

    def _actions(self) -> Iterator[tuple[str, list[str]]]:
        b = self.b

        def choose(ev: str, kind: str, oi: int | str = 0, fault: str = "false") -> list[str]:
            return [f"h_ev = EV_{ev}" if ev else "h_ev = EV_TICK", f"h_kind = {kind}", f"h_oi = {oi}",
                    f"h_fault = {fault}"]

        for lots in range(1, b.max_lots + 1):
            for leverage in b.leverages:
                yield f"trades < {b.max_trades}", [
                    *choose("ENTER", "K_POLICY"), "p_ENTER_order = next_ref",
                    f"p_ENTER_new_side = {_enum_const(SIDE, 'SHORT')}", f"p_ENTER_qty_lots = {lots}",
                    f"p_ENTER_px = {self.px_entry}", f"p_ENTER_new_leverage = {leverage}", "p_ENTER_exit_legs = 1",
                    "p_ENTER_new_leg_ratio_0 = 0", "p_ENTER_new_leg_ratio_1 = 0", "p_ENTER_probe_ok = true",
                    "p_ENTER_venue_position_lots = (position_lots < 0 -> -position_lots : position_lots)",
                    f"p_ENTER_own_fill_age_ms = (recent_fill -> 0 : {HOT_WINDOW_PASSED_MS})"]
        for qty in (0, 1):
            yield "true", [*choose("EXIT", "K_POLICY"), "p_EXIT_order = next_ref", f"p_EXIT_qty_lots = {qty}"]
        for name in ("entry_order", "exit_order"):
            live = " || ".join(f"({i} < n_orders && o_ref[{i}] == v_{name} && o_live[{i}])"
                               for i in range(self.max_orders))
            yield f"cancels_left > 0 && v_{name} != 0 && ({live})", [
                *choose("CANCEL", "K_POLICY"), f"p_CANCEL_order = v_{name}"]
        yield "record_pending != 0", choose("TRADE_WRITTEN", "K_POLICY")
        yield "recent_fill", choose("", "K_POLICY")
        for i in range(self.max_orders):
            here = f"{i} < n_orders"
            fresh = f"{here} && o_live[{i}] && !o_acked[{i}] && o_filled[{i}] == 0"
            yield fresh, [*choose("ACK", "K_VENUE", i), f"p_ACK_order = o_ref[{i}]"]
            yield f"{fresh} && rejects_left > 0", [*choose("REJECT", "K_VENUE", i, "true"),
                                                   f"p_REJECT_order = o_ref[{i}]"]
            open_ = f"{here} && o_live[{i}] && o_filled[{i}] < o_target[{i}]"
            yield open_, [*choose("FILL", "K_VENUE", i), f"h_cum = o_filled[{i}] + 1", *self._fill(i)]
            yield f"{open_} && o_target[{i}] != o_filled[{i}] + 1", [
                *choose("FILL", "K_VENUE", i), f"h_cum = o_target[{i}]", *self._fill(i)]
            yield (f"{open_} && (o_cancel_req[{i}] || venue_cancels_left > 0)",
                   [*choose("CANCELLED", "K_VENUE", i, f"!o_cancel_req[{i}]"), f"p_CANCELLED_order = o_ref[{i}]"])
            for cum in range(1, b.max_lots + 1):
                yield (f"duplicates_left > 0 && {here} && (o_sent[{i}] & {1 << (cum - 1)}) != 0",
                       [*choose("FILL", "K_REPEAT", i, "true"), f"h_cum = {cum}", *self._fill(i)])
        yield "foreign_left > 0", [
            *choose("FILL", "K_FOREIGN", 0, "true"), "p_FILL_order = FOREIGN_ORDER", "p_FILL_cum_lots = 1",
            f"p_FILL_cum_quote_usdt = {self.px_entry}", "p_FILL_cum_fee_usdt = 0"]

    def _fill(self, i: int) -> list[str]:
        entry = f"o_role[{i}] == {_enum_const(self.enums['Role'], 'ENTRY')}"
        return [f"p_FILL_order = o_ref[{i}]", "p_FILL_cum_lots = h_cum",
                f"p_FILL_cum_quote_usdt = h_cum * ({entry} -> {self.px_entry} : {self.px_exit})",
                f"p_FILL_cum_fee_usdt = h_cum * ({entry} -> {self.fee_entry} : {self.fee_exit})"]

    # -- one step

    def _body(self, n: int) -> None:
        w = self.w
        w(n, "/* the state being left satisfies every invariant */")
        self._invariants(n)
        w(n, "if")
        w(n, ":: h_ev == EV_TICK -> recent_fill = false  /* the clock lets the hot window pass */")
        w(n, ":: else ->")
        w(n + 1, "h_row = -1;")
        w(n + 1, "if")
        for ev in self.events:
            w(n + 1, f":: h_ev == EV_{ev.name} ->")
            self._select(n + 2, ev.name)
        w(n + 1, "fi;")
        w(n + 1, "if")
        w(n + 1, ":: h_row == -1 ->")
        w(n + 2, "holds_venue_event_handled = (h_kind == K_POLICY);  /* an unhandled command changes nothing */")
        w(n + 2, "assert(holds_venue_event_handled)")
        w(n + 1, ":: else ->")
        self._venue_after(n + 2)
        w(n + 2, "if")
        for t in self.m.transitions:
            if t.event in MODEL_EVENTS:
                w(n + 2, f":: h_row == {t.index} ->  /* {t.label} */")
                self._effect(n + 3, t)
        w(n + 2, "fi")
        w(n + 1, "fi")
        w(n, "fi")

    def _invariants(self, n: int) -> None:
        w = self.w
        ex = _Expr(self.scale, None)
        codes = [(inv.name, ex.expr(inv.expr)) for inv in self.m.invariants]
        self._obligations(n, ex)
        for name, code in codes:
            w(n, f"holds_{name} = {code};")
            w(n, f"assert(holds_{name});")
        self._composed(n)

    def _obligations(self, n: int, ex: _Expr) -> None:
        if ex.obligations:
            self.w(n, f"holds_division_exact = {' && '.join(ex.obligations)};")
            self.w(n, "assert(holds_division_exact);")
        ex.obligations.clear()

    def _composed(self, n: int) -> None:
        """checker.composed_violations, over the venue orders (the model's trades are SHORT)."""
        w = self.w
        role = self.enums["Role"]
        entry_role, exit_role = _enum_const(role, "ENTRY"), _enum_const(role, "EXIT")
        idx = range(self.max_orders)

        def total(cond: str, value: str) -> str:
            return " + ".join(f"({i} < n_orders && {cond.format(i=i)} -> {value.format(i=i)} : 0)" for i in idx)

        is_entry = "o_ref[{i}] == v_entry_order"
        is_exit = f"o_role[{{i}}] == {exit_role} && o_trade[{{i}}] == v_trade_seq"
        w(n, f"agg_entry_filled = {total(is_entry, 'o_filled[{i}]')};")
        w(n, f"agg_exited = {total(is_exit, 'o_filled[{i}]')};")
        w(n, f"agg_live_entries = {total(f'o_role[{{i}}] == {entry_role} && o_live[{{i}}]', '1')};")
        w(n, f"agg_entry_quote = {total(is_entry, 'o_quote[{i}]')};")
        w(n, f"agg_exit_quote = {total(is_exit, 'o_quote[{i}]')};")
        fee = self.b.fee_rate
        waiting = {"EXIT_REQUESTED": "entry_order", "ENTRY_CANCELLING": "entry_order", "EXIT_CANCELLING": "exit_order"}
        stuck = " || ".join(
            f"(slot_state == {_state_const(st)} && ("
            + " || ".join(f"({i} < n_orders && o_ref[{i}] == v_{ref} && o_live[{i}] && !o_cancel_req[{i}])"
                          for i in idx) + "))"
            for st, ref in waiting.items())
        w(n, f"agg_waiting = ({stuck});")
        checks = {
            "books_match_venue": "v_entry_filled_lots == agg_entry_filled && v_exited_lots == agg_exited",
            "one_entry_exposure": ("agg_live_entries <= 1 && (position_lots < 0 -> -position_lots : position_lots) "
                                   "<= v_entry_target_lots"),
            "booked_at_venue_prices": "v_entry_cost_usdt == agg_entry_quote && v_exit_cost_usdt == agg_exit_quote",
            "fees_match_venue": (f"v_fees_usdt * {fee.denominator} == (agg_entry_quote + agg_exit_quote) * "
                                 f"{fee.numerator}"),
            "record_before_next_trade": "record_pending == 0 || record_pending == v_trade_seq",
            "cancel_in_flight": "!agg_waiting",
            "closed_pnl_is_price_change": (
                f"!((slot_state == {_state_const('CLOSED')} || slot_state == "
                f"{_state_const('TRADE_TERMINAL_WRITTEN')}) && v_entry_filled_lots == agg_exited) || "
                "v_realised_pnl_usdt == agg_entry_quote - agg_exit_quote"),
        }
        if set(checks) != set(COMPOSED):
            raise PromelaError(f"checker.COMPOSED has invariants the export does not encode: "
                               f"{', '.join(sorted(set(COMPOSED) - set(checks)))}")
        for name in COMPOSED:
            w(n, f"holds_{name} = ({checks[name]});")
            w(n, f"assert(holds_{name});")

    def _select(self, n: int, event: str) -> None:
        """First enabled row: by priority, then declaration order (ExactMachine.enabled)."""
        w = self.w
        rows = sorted((t for t in self.m.transitions if t.event == event), key=lambda t: (-t.priority, t.index))
        all_states = {s.name for s in self.m.states}
        for t in rows:
            source = ("true" if set(t.sources) == all_states else
                      "(" + " || ".join(f"slot_state == {_state_const(s)}" for s in t.sources) + ")")
            ex = _Expr(self.scale, event)
            guard = ex.expr(t.guard) if t.guard is not None else "true"
            w(n, "if")
            w(n, f":: h_row == -1 && {source} ->")
            if ex.obligations:
                self._obligations(n + 1, ex)
            w(n + 1, f"if :: {guard} -> h_row = {t.index} :: else -> skip fi")
            w(n, ":: else -> skip")
            w(n, "fi;")
        w(n, "skip")

    def _venue_after(self, n: int) -> None:
        """model._venue_after: what the venue did by producing the event (whatever the slot books)."""
        w = self.w
        role = self.enums["Role"]
        w(n, "if")
        w(n, ":: h_kind == K_REPEAT -> duplicates_left--")
        w(n, ":: h_kind == K_FOREIGN -> foreign_left--")
        w(n, ":: h_kind == K_VENUE && h_ev == EV_ACK -> o_acked[h_oi] = true")
        w(n, ":: h_kind == K_VENUE && h_ev == EV_REJECT -> o_live[h_oi] = false; rejects_left--")
        w(n, ":: h_kind == K_VENUE && h_ev == EV_FILL ->")
        w(n + 1, f"position_lots = position_lots + (o_role[h_oi] == {_enum_const(role, 'ENTRY')} -> -1 : 1) * "
                 "(h_cum - o_filled[h_oi]);  /* the model's entries are SHORT */")
        w(n + 1, "o_filled[h_oi] = h_cum; o_quote[h_oi] = p_FILL_cum_quote_usdt; o_acked[h_oi] = true;")
        w(n + 1, "o_live[h_oi] = (h_cum < o_target[h_oi]); o_sent[h_oi] = o_sent[h_oi] | (1 << (h_cum - 1));")
        w(n + 1, "recent_fill = true")
        w(n, ":: h_kind == K_VENUE && h_ev == EV_CANCELLED ->")
        w(n + 1, "if :: h_fault -> venue_cancels_left-- :: else -> skip fi; o_live[h_oi] = false")
        w(n, ":: else -> skip")
        w(n, "fi;")

    def _effect(self, n: int, t: Transition) -> None:
        """ExactMachine.step: lets in order, effects and emits on the pre-state, bounds, then assignment; then
        model.apply's outputs and bookkeeping."""
        w = self.w
        ex = _Expr(self.scale, t.event)

        def assign(target: str, code: str) -> None:
            self._obligations(n, ex)  # checked before the statement that divides
            w(n, f"{target} = {code};")

        for name, e in t.lets:
            assign(f"l_{name}", ex.expr(e))
        emitted: list[tuple[str, dict[str, str]]] = []
        for name, e in t.effect:
            assign(f"n_{name}", ex.as_type(e, self.m.variable(name).type))
        for em in t.emits:
            out = next(o for o in self.m.outputs if o.name == em.output)
            types = {p.name: p.type for p in out.params}
            args: dict[str, str] = {}
            for a, e in em.args:
                assign(f"e_{em.output}_{a}", ex.as_type(e, types[a]))
                args[a] = f"e_{em.output}_{a}"
            emitted.append((em.output, args))
        bounds = [self._bound_check(name) for name, _ in t.effect]
        checks = [b for b in bounds if b]
        if checks:
            w(n, f"holds_bounds = {' && '.join(checks)};")
            w(n, "assert(holds_bounds);")
        for name, _ in t.effect:
            w(n, f"v_{name} = n_{name};")
        if t.dest is not None:
            w(n, f"slot_state = {_state_const(t.dest)};")
        for output, args in emitted:
            self._output(n, output, args)
        if t.event in ("ENTER", "EXIT") and t.outcome == "OK":
            w(n, "next_ref++;")
        if t.event == "ENTER" and t.outcome == "OK":
            w(n, "trades++;")
        if t.event == "CANCEL":
            w(n, "cancels_left--;")
        if t.event == "TRADE_WRITTEN":
            w(n, "record_pending = 0;")
        w(n, "skip")

    def _bound_check(self, name: str) -> str:
        v = self.m.variable(name)
        if not isinstance(v.type, NumType):
            return ""
        parts: list[str] = []
        for value, op in ((v.min, ">="), (v.max, "<=")):
            if value is None:
                continue
            assert isinstance(value, int | Fraction) and not isinstance(value, bool)
            scaled = Fraction(value) * (self.scale if _is_frac(v.type) else 1)
            if abs(scaled) <= INT_LIMIT:  # a wider bound cannot be left by a 32-bit int without overflow
                parts.append(f"n_{name} {op} {math.ceil(scaled) if op == '>=' else math.floor(scaled)}")
        return " && ".join(parts)

    def _output(self, n: int, output: str, args: dict[str, str]) -> None:
        """model._output: PLACE_ORDER appends a venue order, CANCEL_ORDER marks it, TRADE_CLOSED awaits
        the audit."""
        w = self.w
        if output == "PLACE_ORDER":
            w(n, "if")
            w(n, f":: {args['qty_lots']} > 0 ->")
            w(n + 1, "holds_orders_fit = (n_orders < MAX_ORDERS); assert(holds_orders_fit);")
            w(n + 1, f"o_ref[n_orders] = {args['order']}; o_role[n_orders] = {args['role']}; "
                     f"o_trade[n_orders] = v_trade_seq; o_target[n_orders] = {args['qty_lots']}; "
                     "o_live[n_orders] = true; n_orders++")
            w(n, ":: else -> skip")
            w(n, "fi;")
        elif output == "CANCEL_ORDER":
            for i in range(self.max_orders):
                w(n, f"if :: {i} < n_orders && o_ref[{i}] == {args['order']} -> o_cancel_req[{i}] = true "
                     ":: else -> skip fi;")
        elif output == "TRADE_CLOSED":
            w(n, f"record_pending = {args['trade_seq']};")
        else:
            raise PromelaError(f"output {output} is not modelled by the composed model")


def _ptype(t: Type) -> str:
    if isinstance(t, BoolType):
        return "bool"
    if isinstance(t, EnumType | RefType):
        return "byte"
    return "int"


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    return str(value)


def _hidden_type(t: Type) -> str:
    return "byte" if isinstance(t, BoolType) else _ptype(t)  # SPIN cannot hide bit variables


def export(slot: Machine, bounds: Bounds) -> str:
    """The composed model of `slot` within `bounds`, as Promela. Raises PromelaError when it cannot be exact."""
    return _Export(slot, bounds).text()


# ---------------------------------------------------------------------------------------------
# Running SPIN


@attrs.frozen
class SpinRun:
    """One `spin -a` + `cc` + `./pan` run and what pan reported."""

    states_stored: int
    depth_reached: int
    errors: int
    violated: tuple[str, ...]  # the properties whose assertion failed (holds_<name>)
    complete: bool  # pan searched the whole state space (no depth truncation, no error)
    seconds_spin: float
    seconds_cc: float
    seconds_pan: float
    output: str

    @property
    def seconds(self) -> float:
        """Time to verdict, end to end: generating the verifier, compiling it and running it."""
        return self.seconds_spin + self.seconds_cc + self.seconds_pan

    @property
    def states_per_s(self) -> float:
        return self.states_stored / self.seconds_pan if self.seconds_pan > 0 else 0.0


def spin_available() -> bool:
    return shutil.which("spin") is not None and (shutil.which("cc") or shutil.which("gcc")) is not None


PAN_DEPTH = 100_000  # the default profile's depth-first search reaches depth 53
PAN_MEMORY_MB = 4096  # pan stops (incomplete) rather than exhaust the machine: `deep` needs far more


def run_spin(model_text: str, workdir: Path, max_depth: int = PAN_DEPTH, memory_mb: int = PAN_MEMORY_MB,
             timeout_s: float = 600.0) -> SpinRun:
    """Write the model, generate and compile the verifier (exhaustive, no partial-order reduction, safety
    only, at most `memory_mb`) and run it. Raises RuntimeError when a tool fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "model.pml").write_text(model_text)
    cc = shutil.which("cc") or shutil.which("gcc") or "cc"

    def timed(cmd: list[str]) -> tuple[float, str]:
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s, check=False)
        seconds = time.perf_counter() - started
        if proc.returncode != 0 and cmd[0] != "./pan":
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return seconds, proc.stdout + proc.stderr

    seconds_spin, _ = timed(["spin", "-a", "model.pml"])
    seconds_cc, _ = timed([cc, "-O2", "-DNOREDUCE", "-DSAFETY", f"-DMEMLIM={memory_mb}", "-w", "-o", "pan", "pan.c"])
    seconds_pan, out = timed(["./pan", f"-m{max_depth}", "-w22"])
    stored = re.search(r"(\d+) states, stored", out)
    depth = re.search(r"depth reached (\d+)", out)
    errors = re.search(r"errors: (\d+)", out)
    if stored is None or errors is None:
        raise RuntimeError(f"could not read pan's output:\n{out}")
    violated = tuple(dict.fromkeys(re.findall(r"assertion violated holds_(\w+)", out)))
    truncated = any(note in out for note in ("max search depth too small", "Search not completed", "MEMLIM"))
    return SpinRun(int(stored.group(1)), int(depth.group(1)) if depth else 0, int(errors.group(1)), violated,
                   not truncated and int(errors.group(1)) == 0, seconds_spin, seconds_cc, seconds_pan, out)


__all__ = ["KNOWN_BOUNDS_FIELDS", "PromelaError", "SpinRun", "export", "max_orders_for", "run_spin", "scale_for",
           "spin_available", "unknown_bounds_in_use"]
