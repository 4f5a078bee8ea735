"""The exact-number interpreter of a machine's IR (ints and Fractions).

This is the reference semantics: the model checker explores it and the conformance tests compare the
generated `transitions` machines against it step by step. Guards, effects and invariants are compiled
once into small Python functions from the same typed trees the runtime generator uses, so evaluating
a step costs a few dictionary reads, not a tree walk.

Semantics of one step, shared with the generated runtime:
1. candidates = transitions from the current state on the event, by priority then declaration order;
2. the first whose guard holds fires (none: the event is unhandled in this state);
3. lets are evaluated in order, then every effect right-hand side on the pre-state (simultaneous
   assignment), then emits; variables are assigned; the state changes;
4. bounds of the assigned variables are checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import attrs

from pink_codegen import expr as X
from pink_codegen.ir import Machine, Transition
from pink_codegen.types import EnumType, ExactValue, NumType
from pink_fsm.fsm.numbers import div_exact, floor_exact, sign_exact
from pink_fsm.fsm.types import SIDE_SIGN_EXACT

Vars = dict[str, ExactValue]
Params = Mapping[str, ExactValue]
Emitted = tuple[tuple[str, dict[str, ExactValue]], ...]


class BoundError(Exception):
    """A variable left its declared [min, max] range."""

    def __init__(self, variable: str, value: ExactValue, lo: ExactValue | None, hi: ExactValue | None) -> None:
        super().__init__(f"variable '{variable}' = {value} is outside its bounds [{lo}, {hi}]")
        self.variable = variable


@attrs.frozen
class ExactStep:
    transition: Transition
    source: str
    dest: str
    vars: Vars
    outcome: str
    emits: Emitted


class _Pool:
    """Literals hoisted out of compiled code (Fractions, state sets)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, value: Any) -> str:
        self.items.append(value)
        return f"K[{len(self.items) - 1}]"


def exact_context(pool: _Pool) -> X.EmitContext:
    def literal(e: X.TExpr) -> str:
        if isinstance(e, X.StateTest):
            return pool.add(frozenset(e.states))
        assert isinstance(e, X.Lit)
        return pool.add(Fraction(e.value) if not isinstance(e.value, bool) else e.value)

    return X.EmitContext(
        target="exact",
        var=lambda n: f"V[{n!r}]",
        param=lambda n: f"P[{n!r}]",
        state="S",
        enum_value=lambda _t, v: repr(v),
        literal=literal,
    )


class ExactMachine:
    """Run a machine's IR over exact numbers."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        pool = _Pool()
        cx = exact_context(pool)
        lines: list[str] = []
        for t in machine.transitions:
            guard = X.emit(t.guard, cx) if t.guard is not None else "True"
            lines.append(f"def g_{t.index}(S, V, P):\n    return {guard}\n")
            body = [f"    l_{name} = {X.emit(e, cx)}" for name, e in t.lets]
            updates = ", ".join(f"{name!r}: {X.emit(e, cx)}" for name, e in t.effect)
            emits = ", ".join(
                f"({em.output!r}, {{{', '.join(f'{a!r}: {X.emit(v, cx)}' for a, v in em.args)}}})" for em in t.emits
            )
            body.append(f"    return {{{updates}}}, ({emits}{',' if t.emits else ''})")
            lines.append(f"def e_{t.index}(S, V, P):\n" + "\n".join(body) + "\n")
        for inv in machine.invariants:
            lines.append(f"def i_{inv.name}(S, V):\n    return {X.emit(inv.expr, cx)}\n")
        namespace: dict[str, Any] = {
            "K": pool.items,
            "div_exact": div_exact,
            "floor_exact": floor_exact,
            "sign_exact": sign_exact,
            "SIDE_SIGN_EXACT": SIDE_SIGN_EXACT,
        }
        # The source is generated from validated, typed trees only (identifiers checked by the loader).
        exec(compile("\n".join(lines), f"<exact:{machine.name}>", "exec"), namespace)
        self.source = "\n".join(lines)
        self._guards: dict[int, Callable[..., bool]] = {t.index: namespace[f"g_{t.index}"] for t in machine.transitions}
        self._effects: dict[int, Callable[..., tuple[Vars, Emitted]]] = {
            t.index: namespace[f"e_{t.index}"] for t in machine.transitions
        }
        self.invariant_fns: dict[str, Callable[[str, Vars], bool]] = {
            inv.name: namespace[f"i_{inv.name}"] for inv in machine.invariants
        }
        self._table: dict[tuple[str, str], list[Transition]] = {}
        for s in machine.states:
            for e in machine.events:
                rows = machine.transitions_for(s.name, e.name)
                if rows:
                    self._table[(s.name, e.name)] = rows
        self._bounds = {
            v.name: (v.min, v.max) for v in machine.variables if isinstance(v.type, NumType)
        }

    def initial(self) -> tuple[str, Vars]:
        return self.machine.initial, {v.name: v.init for v in self.machine.variables}

    def handles(self, state: str, event: str) -> bool:
        return (state, event) in self._table

    def enabled(self, state: str, vars: Vars, event: str, params: Params) -> Transition | None:
        for t in self._table.get((state, event), ()):
            if self._guards[t.index](state, vars, params):
                return t
        return None

    def step(self, state: str, vars: Vars, event: str, params: Params) -> ExactStep | None:
        """Fire `event`; None when no transition is enabled (the event is unhandled here)."""
        t = self.enabled(state, vars, event, params)
        if t is None:
            return None
        updates, emits = self._effects[t.index](state, vars, params)
        new_vars = dict(vars)
        for name, value in updates.items():
            bounds = self._bounds.get(name)
            if bounds is not None:
                lo, hi = bounds
                if (lo is not None and value < lo) or (hi is not None and value > hi):  # type: ignore[operator]
                    raise BoundError(name, value, lo, hi)
            new_vars[name] = value
        return ExactStep(t, state, t.dest_from(state), new_vars, t.outcome, emits)

    def violated(self, state: str, vars: Vars) -> list[str]:
        """Names of the invariants that do not hold in (state, vars)."""
        return [name for name, fn in self.invariant_fns.items() if not fn(state, vars)]


def exact_param(t: Any, value: Any) -> ExactValue:
    """Convert a runtime-typed value (Decimal, Enum member) to its exact form."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return Fraction(*value.as_integer_ratio())
    if isinstance(t, EnumType) and hasattr(value, "name"):
        return str(value.name)
    assert isinstance(value, int | Fraction | bool | str)
    return value
