"""The compiled form of a machine spec (the IR): validated, typed, positioned, immutable.

Both back ends read only this: the Python generator (runtime machines and docs) and the exact
interpreter (model checker, conformance tests). Nothing here knows about YAML.
"""

from __future__ import annotations

import attrs

from pink_codegen.errors import Pos, SpecProblem
from pink_codegen.expr import TExpr, render
from pink_codegen.types import EnumType, ExactValue, Type

# The invariant catalogue of ARCHITECTURE.md: every spec invariant belongs to one of these.
CATALOGUE = (
    "no_double_entry",
    "no_leverage_inflation",
    "no_stranded_exit",
    "fill_identity",
    "true_fill_price",
    "single_book",
    "capital_consistency",
)


@attrs.frozen
class Variable:
    name: str
    type: Type
    init: ExactValue
    min: ExactValue | None
    max: ExactValue | None
    doc: str
    pos: Pos


@attrs.frozen
class Constant:
    name: str
    type: Type
    value: ExactValue
    doc: str
    pos: Pos


@attrs.frozen
class Param:
    name: str
    type: Type
    doc: str
    pos: Pos


@attrs.frozen
class Event:
    name: str
    kind: str  # command | venue | clock | audit | internal
    params: tuple[Param, ...]
    doc: str
    pos: Pos


@attrs.frozen
class Output:
    name: str
    params: tuple[Param, ...]
    doc: str
    pos: Pos


@attrs.frozen
class State:
    name: str
    doc: str
    final: bool
    was: str  # the name in the reference runtime, when it differs
    pos: Pos


@attrs.frozen
class Define:
    name: str
    expr: TExpr
    doc: str
    pos: Pos


@attrs.frozen
class Emit:
    output: str
    args: tuple[tuple[str, TExpr], ...]
    pos: Pos


@attrs.frozen
class Transition:
    index: int  # declaration order, 0-based; also the transition id in generated code
    sources: tuple[str, ...]
    source_text: str  # as written: "IDLE", "[A, B]" or "*"
    event: str
    guard: TExpr | None
    dest: str | None  # None: stay in the source state ("=")
    lets: tuple[tuple[str, TExpr], ...]
    effect: tuple[tuple[str, TExpr], ...]
    emits: tuple[Emit, ...]
    outcome: str
    priority: int
    doc: str
    pos: Pos

    @property
    def dest_text(self) -> str:
        return self.dest if self.dest is not None else "="

    @property
    def label(self) -> str:
        return f"transition {self.source_text} --{self.event}--> {self.dest_text}"

    @property
    def guard_text(self) -> str:
        return render(self.guard) if self.guard is not None else ""

    def dest_from(self, source: str) -> str:
        return self.dest if self.dest is not None else source


@attrs.frozen
class Invariant:
    name: str
    catalogue: str
    expr: TExpr
    doc: str
    pos: Pos


@attrs.frozen
class Machine:
    name: str
    doc: str
    file: str
    sha256: str
    enums: tuple[EnumType, ...]
    constants: tuple[Constant, ...]
    variables: tuple[Variable, ...]
    defines: tuple[Define, ...]
    states: tuple[State, ...]
    initial: str
    events: tuple[Event, ...]
    outputs: tuple[Output, ...]
    outcomes: tuple[tuple[str, str], ...]  # (name, doc)
    transitions: tuple[Transition, ...]
    invariants: tuple[Invariant, ...]
    warnings: tuple[SpecProblem, ...] = attrs.field(default=(), eq=False, repr=False)

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    def state(self, name: str) -> State:
        return next(s for s in self.states if s.name == name)

    def event(self, name: str) -> Event:
        return next(e for e in self.events if e.name == name)

    def variable(self, name: str) -> Variable:
        return next(v for v in self.variables if v.name == name)

    def transitions_for(self, source: str, event: str) -> list[Transition]:
        """Candidates in firing order: higher priority first, then declaration order."""
        rows = [t for t in self.transitions if t.event == event and source in t.sources]
        return sorted(rows, key=lambda t: (-t.priority, t.index))
