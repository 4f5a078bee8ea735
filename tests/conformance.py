"""Drive a generated machine and the exact interpreter of its IR side by side.

Parameters are chosen by type, biased towards the values the machine currently holds (the live order
ids, the filled lots +/- 1, ...) so random walks reach deep states instead of bouncing off guards.
The chooser is pluggable: Hypothesis `data.draw` (shrinkable failures) or a seeded `random.Random`.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import attrs

from pink_codegen.build import load_specs
from pink_codegen.exact import BoundError, ExactMachine, Vars
from pink_codegen.ir import Machine
from pink_codegen.types import BoolType, EnumType, ExactValue, NumType, RefType, Type
from pink_fsm.fsm.machine import BoundViolation, GeneratedMachine, UnhandledEvent
from pink_fsm.fsm.types import Side

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
Choose = Callable[[Sequence[T]], T]


def machines() -> dict[str, Machine]:
    return {m.name: m for m, _ in load_specs(ROOT / "spec", ROOT)}


def generated_class(m: Machine) -> type[GeneratedMachine[Any]]:
    module = importlib.import_module(f"pink_fsm.generated.{m.name}")
    cls: type[GeneratedMachine[Any]] = getattr(module, f"{m.class_name}Machine")
    return cls


def to_runtime(m: Machine, t: Type, value: ExactValue) -> Any:
    if isinstance(t, EnumType):
        if t.name == "Side":
            return Side[str(value)]
        module = importlib.import_module(f"pink_fsm.generated.{m.name}")
        return getattr(module, t.name)[value]
    if isinstance(t, NumType) and not t.integral:
        f = Fraction(value)  # type: ignore[arg-type]
        return Decimal(f.numerator) / Decimal(f.denominator)
    return value


def to_exact(value: Any) -> ExactValue:
    if isinstance(value, Decimal):
        return Fraction(*value.as_integer_ratio())
    if isinstance(value, enum.Enum):
        return str(value.name)
    assert isinstance(value, int | Fraction | bool | str)
    return value


_GRID = [Fraction(n, 4) for n in range(0, 41)]


def choose_value(t: Type, vars_: Vars, m: Machine, choose: Choose[Any]) -> ExactValue:
    """A parameter value of type t: a small fixed set, or one derived from the machine's variables."""
    if isinstance(t, BoolType):
        return bool(choose([True, True, True, False]))
    if isinstance(t, EnumType):
        return str(choose(list(t.values)))
    same = [vars_[v.name] for v in m.variables if v.type == t or (isinstance(t, NumType) and isinstance(v.type, NumType)
                                                              and v.type.dim == t.dim)]
    if isinstance(t, RefType):
        return int(choose([0, 1, 2, 3, 4, *same, *same]))
    assert isinstance(t, NumType)
    if t.dim == "time":
        fixed: list[ExactValue] = [0, 4999, 5000, 10**6, 10**6]
        derived = [v + d for v in same for d in (0, 1, 1000, 60_000)]  # type: ignore[operator]
    elif t.integral:
        fixed = [0, 0, 0, 1, 2, 3, 5, 8, -1]
        derived = [v + d for v in same for d in (-1, 0, 1, 2)]  # type: ignore[operator]
    else:
        fixed = [*_GRID[:9], Fraction(1, 100_000_000), Fraction(-1, 4)]
        derived = [v + d for v in same for d in (Fraction(0), Fraction(1, 4), Fraction(5, 2))]  # type: ignore[operator]
    pool = fixed + derived if derived else fixed
    value = choose(pool)
    if t.integral:
        return int(value)
    return Fraction(value)


@attrs.define
class Pair:
    """One generated machine and the exact interpreter, kept in lockstep."""

    ir: Machine
    exact: ExactMachine
    gen: GeneratedMachine[Any]
    state: str
    vars: Vars
    fired: set[int] = attrs.field(factory=set)

    @classmethod
    def new(cls, ir: Machine) -> Pair:
        exact = ExactMachine(ir)
        state, vars_ = exact.initial()
        gen = generated_class(ir)(check_invariants=False)
        return cls(ir, exact, gen, state, vars_)

    def random_event(self, choose: Choose[Any], tries: int = 8,
                     fired_count: dict[int, int] | None = None) -> tuple[str, dict[str, ExactValue]]:
        """A random event. Usually (3 in 4) its parameters are the candidate (of `tries`) that enables a
        row with outcome OK, so walks get past the guards into deep states; with `fired_count` the
        candidate whose row fired least so far wins (coverage-guided), and most steps (2 in 3) first try an
        event with a never-fired row from this state: a candidate that fires such a row is taken."""
        events = list(self.ir.events)
        if fired_count is not None and choose([True, True, False]):
            # Steer towards events that still have a never-fired row from this state. When no candidate enables
            # one (its guard needs variables this walk does not hold), take an ordinary step instead of
            # repeating a refused event: a walk would otherwise stay where it is.
            fresh = [e for e in events if any(t.index not in fired_count
                                               for t in self.ir.transitions_for(self.state, e.name))]
            if fresh:
                steered = choose(fresh)
                for _ in range(tries if steered.params else 1):
                    params = {p.name: choose_value(p.type, self.vars, self.ir, choose) for p in steered.params}
                    row = self.exact.enabled(self.state, self.vars, steered.name, params)
                    if row is not None and row.index not in fired_count:
                        return steered.name, params
        event = choose(events)
        candidates = [
            {p.name: choose_value(p.type, self.vars, self.ir, choose) for p in event.params}
            for _ in range(tries if event.params else 1)
        ]
        if choose([True, True, True, False]):
            best: tuple[int, dict[str, ExactValue]] | None = None
            for params in candidates:
                row = self.exact.enabled(self.state, self.vars, event.name, params)
                if row is None or row.outcome != "OK":
                    continue
                seen = fired_count.get(row.index, 0) if fired_count is not None else 0
                if best is None or seen < best[0]:
                    best = (seen, params)
            if best is not None:
                return event.name, best[1]
        return event.name, candidates[0]

    def step(self, event: str, params: dict[str, ExactValue]) -> str:
        """Apply the event to both; assert they agree; return a short description of what happened."""
        ev = self.ir.event(event)
        runtime_params = {p.name: to_runtime(self.ir, p.type, params[p.name]) for p in ev.params}
        exact_step = exact_error = None
        try:
            exact_step = self.exact.step(self.state, self.vars, event, params)
        except BoundError as exc:
            exact_error = exc.variable
        try:
            gen_step = self.gen.fire(event, **runtime_params)
        except UnhandledEvent:
            assert exact_step is None and exact_error is None, f"generated: unhandled, exact: {exact_step}"
            self._compare_vars()
            return "unhandled"
        except BoundViolation as exc:
            assert exact_error == exc.variable, f"generated: bound {exc.variable}, exact: {exact_error or exact_step}"
            self._compare_vars()
            return f"bound:{exc.variable}"
        assert exact_error is None, f"exact: bound {exact_error}, generated: {gen_step}"
        assert exact_step is not None, f"exact: unhandled, generated fired #{gen_step.transition_id}"
        assert gen_step.transition_id == exact_step.transition.index, (gen_step, exact_step.transition.index)
        assert gen_step.dest == exact_step.dest == self.gen.state
        assert gen_step.outcome == exact_step.outcome
        gen_emits = [(name, {k: to_exact(v) for k, v in args.items()}) for name, args in gen_step.emitted]
        assert gen_emits == [(name, dict(args)) for name, args in exact_step.emits]
        self.state, self.vars = exact_step.dest, exact_step.vars
        self.fired.add(exact_step.transition.index)
        self._compare_vars()
        return f"#{exact_step.transition.index}"

    def _compare_vars(self) -> None:
        assert self.gen.state == self.state
        for name, value in self.vars.items():
            got = to_exact(getattr(self.gen.model, name))
            assert got == value, f"variable {name}: generated {got!r}, exact {value!r}"
        assert sorted(self.gen.violated_invariants()) == sorted(self.exact.violated(self.state, self.vars))
