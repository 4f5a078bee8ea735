"""Whole-machine checks that run after a clean load.

* every state is reachable from the initial state (guards ignored: a state no row leads to is dead);
* every non-final state has a way out (a row to another state);
* every event is handled somewhere; outputs, outcomes, defines and variables are used (warnings);
* no two rows from one state on one event are duplicates, and no two rows of equal priority can both
  fire: a bounded witness search evaluates both guards over interesting values of the names they read
  (bounds, 0, 1, 2, the literals they mention and their neighbours) and reports the first assignment
  under which both hold. Disjointness is therefore shown within that domain; the message gives the
  witness, so an overlap report is never a false alarm.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterable
from fractions import Fraction

from pink_codegen import expr as X
from pink_codegen.errors import Problems
from pink_codegen.ir import Machine, Transition
from pink_codegen.types import BoolType, EnumType, ExactValue, NumType, RefType, Type, render_exact

WITNESS_BUDGET = 40_000


def check_machine(m: Machine, p: Problems) -> None:
    _reachability(m, p)
    _ways_out(m, p)
    _usage(m, p)
    _totality(m, p)
    _duplicates_and_overlaps(m, p)


def _reachability(m: Machine, p: Problems) -> None:
    if not m.initial:
        return
    seen = {m.initial}
    queue = deque([m.initial])
    while queue:
        s = queue.popleft()
        for t in m.transitions:
            if s in t.sources:
                d = t.dest_from(s)
                if d not in seen:
                    seen.add(d)
                    queue.append(d)
    for st in m.states:
        if st.name not in seen:
            p.error(st.pos, f"state {st.name}", f"unreachable: no transition path leads here from the initial "
                                              f"state {m.initial}")


def _ways_out(m: Machine, p: Problems) -> None:
    for s in m.states:
        if s.final:
            continue
        leaves = any(s.name in t.sources and t.dest_from(s.name) != s.name for t in m.transitions)
        if not leaves:
            p.error(s.pos, f"state {s.name}", "no way out: no transition leaves this state; add one or mark it "
                                              "'final: true'")


def _usage(m: Machine, p: Problems) -> None:
    handled = {t.event for t in m.transitions}
    for e in m.events:
        if e.name not in handled:
            p.error(e.pos, f"event {e.name}", "never handled: no transition takes this event; remove it or add "
                                              "a transition")
    emitted = {em.output for t in m.transitions for em in t.emits}
    for o in m.outputs:
        if o.name not in emitted:
            p.warning(o.pos, f"output {o.name}", "declared but never emitted")
    assigned = {name for t in m.transitions for name, _ in t.effect}
    for v in m.variables:
        if v.name not in assigned:
            p.warning(v.pos, f"variable {v.name}", "never assigned by any transition; make it a constant")


def _totality(m: Machine, p: Problems) -> None:
    """A venue event can arrive in any state: every non-final state must say what it does with it."""
    for e in m.events:
        if e.kind != "venue":
            continue
        for s in m.states:
            if not s.final and not any(t.event == e.name and s.name in t.sources for t in m.transitions):
                p.error(e.pos, f"event {e.name}", f"venue event not handled in state {s.name}: venue events can "
                                                  f"arrive in any state; add a row (a '*' row with an outcome is "
                                                  f"enough)")


_NEGATION = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_EXCLUSIVE = {frozenset(p) for p in (("<", "=="), ("<", ">"), (">", "=="))} | {
    frozenset((op, neg)) for op, neg in _NEGATION.items()
}


def _atoms(g: X.TExpr | None) -> list[tuple[str, str, str] | tuple[str, str]]:
    """Top-level conjuncts of a guard in a canonical form: (op, left, right) or ("bool", text)."""
    if g is None:
        return []
    parts = list(g.values) if isinstance(g, X.BoolOp) and g.op == "and" else [g]
    out: list[tuple[str, str, str] | tuple[str, str]] = []
    for c in parts:
        if isinstance(c, X.Cmp):
            left, right, op = X.render(c.left), X.render(c.right), c.op
            if left > right:
                left, right, op = right, left, _FLIP[op]
            out.append((op, left, right))
        elif isinstance(c, X.Unary) and c.op == "not":
            out.append(("not", X.render(c.operand)))
        else:
            out.append(("is", X.render(c)))
    return out


def _structurally_disjoint(a: X.TExpr | None, b: X.TExpr | None) -> bool:
    """True when one conjunct of `a` contradicts one conjunct of `b` (a proof of exclusivity)."""
    for x in _atoms(a):
        for y in _atoms(b):
            if len(x) == 2 and len(y) == 2:
                if x[1] == y[1] and {x[0], y[0]} == {"is", "not"}:
                    return True
                continue
            if len(x) == 3 and len(y) == 3 and x[1:] == y[1:] and frozenset((x[0], y[0])) in _EXCLUSIVE:
                return True
            if (len(x) == 3 and len(y) == 3 and x[0] == y[0] == "==" and x[1] == y[1] and x[2] != y[2]
                    and _is_constant_text(x[2]) and _is_constant_text(y[2])):
                return True
    return False


def _is_constant_text(text: str) -> bool:
    return text.isupper() or text.replace(".", "", 1).lstrip("-").isdigit()


def _duplicates_and_overlaps(m: Machine, p: Problems) -> None:
    from pink_codegen.exact import ExactMachine

    exact = ExactMachine(m)
    reported: set[tuple[int, int]] = set()
    verdicts: dict[tuple[int, int], dict[str, ExactValue] | None] = {}
    for s in m.states:
        for e in m.events:
            rows = m.transitions_for(s.name, e.name)
            for a, b in itertools.combinations(rows, 2):
                first, second = sorted((a, b), key=lambda t: t.index)
                key = (first.index, second.index)
                if key in reported:
                    continue
                if first.guard_text == second.guard_text and first.priority == second.priority:
                    reported.add(key)
                    p.error(second.pos, second.label, f"duplicate of {first.label} (line {first.pos.line}): both "
                                                      f"take {e.name} in state {s.name} with the same guard")
                    continue
                if first.priority != second.priority or _structurally_disjoint(first.guard, second.guard):
                    continue
                uses_state = any(
                    isinstance(g, X.TExpr) and _uses_state(g) for g in (first.guard, second.guard)
                )
                if key not in verdicts or uses_state:
                    verdicts[key] = _witness(m, exact, s.name, e.name, first, second)
                witness = verdicts[key]
                if witness is not None:
                    reported.add(key)
                    shown = ", ".join(f"{k}={_show(v)}" for k, v in witness.items())
                    when = f"both guards hold when {shown}" if shown else "both guards always hold"
                    p.error(second.pos, second.label,
                            f"overlaps {first.label} (line {first.pos.line}) in state {s.name}: {when}; make the "
                            f"guards exclusive or give the row that must win a higher 'priority'")


def _uses_state(g: X.TExpr) -> bool:
    return "in_state(" in X.render(g)


def _show(v: ExactValue) -> str:
    return render_exact(v) if not isinstance(v, str) else v


def _witness(m: Machine, exact: object, state: str, event: str, a: Transition,
             b: Transition) -> dict[str, ExactValue] | None:
    from pink_codegen.exact import ExactMachine

    assert isinstance(exact, ExactMachine)
    guards = [g for g in (a.guard, b.guard) if g is not None]
    var_names: set[str] = set()
    param_names: set[str] = set()
    literals: list[Fraction] = []
    for g in guards:
        var_names |= X.names_used(g, "var")
        param_names |= X.names_used(g, "param")
        literals.extend(Fraction(lit.value) for lit in X.literals_in(g) if not isinstance(lit.value, bool)
                        and isinstance(lit.value, int | Fraction))
    ev = m.event(event)
    param_types = {pp.name: pp.type for pp in ev.params}
    domains: list[tuple[str, str, list[ExactValue]]] = []
    for name in sorted(var_names):
        v = m.variable(name)
        domains.append(("var", name, _candidates(v.type, v.min, v.max, literals)))
    for name in sorted(param_names):
        domains.append(("param", name, _candidates(param_types[name], None, None, literals)))
    _, base_vars = exact.initial()
    guard_fns = [exact._guards[a.index], exact._guards[b.index]]
    sizes = [len(d[2]) for d in domains]
    total = 1
    for size in sizes:
        total *= size
    combos: Iterable[tuple[ExactValue, ...]]
    if total <= WITNESS_BUDGET:
        combos = itertools.product(*(d[2] for d in domains))
    else:
        rng = random.Random(0)  # fixed seed: the same spec always gets the same verdict
        combos = (tuple(rng.choice(d[2]) for d in domains) for _ in range(WITNESS_BUDGET))
    for combo in combos:
        vars_ = dict(base_vars)
        params: dict[str, ExactValue] = {}
        for (kind, name, _), value in zip(domains, combo, strict=True):
            (vars_ if kind == "var" else params)[name] = value
        try:
            if all(fn(state, vars_, params) for fn in guard_fns):
                return {name: value for (_, name, _), value in zip(domains, combo, strict=True)}
        except (ZeroDivisionError, ArithmeticError):
            continue
    return None


def _candidates(t: Type, lo: ExactValue | None, hi: ExactValue | None, literals: list[Fraction]) -> list[ExactValue]:
    if isinstance(t, BoolType):
        return [False, True]
    if isinstance(t, EnumType):
        return list(t.values)
    if isinstance(t, RefType):
        return [0, 1, 2]
    assert isinstance(t, NumType)
    raw: set[Fraction] = {Fraction(0), Fraction(1), Fraction(2), Fraction(-1)}
    for lit in literals:
        raw |= {lit - 1, lit, lit + 1}
    # Values that linear guards single out: `qty * 3 == 60` holds at 20, `qty / 3 == 20` at 60.
    for a in literals[:12]:
        for b in literals[:12]:
            raw |= {a + b, a - b, a * b}
            if b != 0:
                raw.add(a / b)
    if lo is not None:
        raw.add(Fraction(lo))
    if hi is not None:
        raw.add(Fraction(hi))
    out: list[ExactValue] = []
    for value in sorted(raw):
        if lo is not None and value < lo:  # type: ignore[operator]
            continue
        if hi is not None and value > hi:  # type: ignore[operator]
            continue
        if t.integral:
            if value.denominator == 1:
                out.append(int(value))
        else:
            out.append(value)
    return out
