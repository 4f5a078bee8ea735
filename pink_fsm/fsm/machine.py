"""Runtime support for generated machines: the table-as-data types, the step result and the base class.

A generated module (`pink_fsm/generated/<name>.py`) defines a model class holding the spec's
variables, guard and effect functions, the transition table as data, and a subclass of
`GeneratedMachine` that wires them into a `transitions.Machine` (no auto transitions, guards as
conditions, effects as `before` callbacks, rows ordered by priority then declaration).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

import attrs
from transitions import Machine, MachineError

Emitted = tuple[str, dict[str, Any]]


@attrs.frozen
class TransitionRow:
    """One row of a machine's transition table, as written in the spec."""

    id: int
    sources: tuple[str, ...]
    event: str
    guard: str  # spec text; "" means always
    dest: str | None  # None: stay in the source state
    effect: tuple[tuple[str, str], ...]
    emits: tuple[str, ...]
    outcome: str
    priority: int
    doc: str
    line: int

    def dest_from(self, source: str) -> str:
        return self.dest if self.dest is not None else source


@attrs.frozen
class InvariantRow:
    name: str
    catalogue: str
    expr: str
    doc: str


@attrs.frozen
class Step:
    """What one event did: the row that fired, the states, the outcome and the emitted events."""

    event: str
    source: str
    dest: str
    transition_id: int
    outcome: str
    emitted: tuple[Emitted, ...]


@attrs.frozen
class MachineSnapshot:
    """A machine's full state: enough to restore it exactly."""

    machine: str
    spec_sha256: str
    state: str
    vars: dict[str, Any]


class UnhandledEvent(Exception):
    """No row of the table takes this event in this state (or every guard was false)."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: event {event} is not handled in state {state} (no row matches; "
                         f"see docs/machines/{machine}.md)")
        self.machine = machine
        self.state = state
        self.event = event


class InvariantViolation(AssertionError):
    """A spec invariant failed after a step. The machine must stop: its book can no longer be trusted."""

    def __init__(self, machine: str, names: list[str], state: str, step: Step | None) -> None:
        after = f" after {step.event} (transition #{step.transition_id})" if step else ""
        super().__init__(f"{machine}: invariant(s) {', '.join(names)} violated in state {state}{after}")
        self.machine = machine
        self.names = names
        self.state = state


class BoundViolation(AssertionError):
    """A variable left its declared [min, max] range."""

    def __init__(self, machine: str, variable: str, value: object, lo: object, hi: object) -> None:
        super().__init__(f"{machine}: variable '{variable}' = {value} is outside its bounds [{lo}, {hi}]")
        self.variable = variable


class EventParamError(TypeError):
    """An event was fired with missing, unknown or wrongly typed parameters."""


ModelT = TypeVar("ModelT")


class GeneratedMachine(Generic[ModelT]):
    """Base of every generated machine class; subclasses set the class attributes below."""

    NAME: ClassVar[str]
    SPEC_SHA256: ClassVar[str]
    STATES: ClassVar[tuple[str, ...]]
    INITIAL: ClassVar[str]
    TRANSITIONS: ClassVar[tuple[TransitionRow, ...]]
    INVARIANTS: ClassVar[tuple[InvariantRow, ...]]
    VARIABLES: ClassVar[tuple[str, ...]]
    PARAM_TYPES: ClassVar[Mapping[str, Mapping[str, type]]]

    def __init__(self, model: ModelT, config: list[dict[str, Any]],
                 invariant_checks: Mapping[str, Callable[[ModelT], bool]], check_invariants: bool = True) -> None:
        self.model = model
        self.check_invariants = check_invariants
        self._invariant_checks = invariant_checks
        self.machine = Machine(
            model=model,
            states=list(self.STATES),
            transitions=config,
            initial=self.INITIAL,
            auto_transitions=False,
            send_event=True,
        )

    @property
    def state(self) -> str:
        state: str = getattr(self.model, "state")  # noqa: B009 - bound by transitions at run time
        return state

    def fire(self, event: str, **params: Any) -> Step:
        """Apply one event. Raises UnhandledEvent (nothing changed), EventParamError, InvariantViolation."""
        self._check_params(event, params)
        m: Any = self.model
        source: str = m.state
        m.outbox = []
        m.fired = -1
        try:
            m.trigger(event, **params)
        except MachineError:
            raise UnhandledEvent(self.NAME, source, event) from None
        if m.fired < 0:
            raise UnhandledEvent(self.NAME, source, event)
        step = Step(event, source, m.state, m.fired, m.outcome, tuple(m.outbox))
        if self.check_invariants:
            violated = self.violated_invariants()
            if violated:
                raise InvariantViolation(self.NAME, violated, m.state, step)
        return step

    def violated_invariants(self) -> list[str]:
        return [name for name, check in self._invariant_checks.items() if not check(self.model)]

    def _check_params(self, event: str, params: Mapping[str, Any]) -> None:
        spec = self.PARAM_TYPES.get(event)
        if spec is None:
            raise EventParamError(f"{self.NAME}: unknown event {event!r}; events are {', '.join(self.PARAM_TYPES)}")
        if params.keys() != spec.keys():
            missing = sorted(spec.keys() - params.keys())
            extra = sorted(params.keys() - spec.keys())
            raise EventParamError(f"{self.NAME}: event {event} needs parameters {sorted(spec)}; "
                                  f"missing {missing}, unexpected {extra}")
        for name, expected in spec.items():
            value = params[name]
            if type(value) is not expected and not (expected is Decimal and isinstance(value, Decimal)):
                raise EventParamError(f"{self.NAME}: event {event} parameter '{name}' must be "
                                      f"{expected.__name__}, got {type(value).__name__} {value!r}")

    def vars(self) -> dict[str, Any]:
        return {name: getattr(self.model, name) for name in self.VARIABLES}

    def snapshot(self) -> MachineSnapshot:
        return MachineSnapshot(self.NAME, self.SPEC_SHA256, self.state, self.vars())

    def restore(self, snap: MachineSnapshot) -> None:
        """Put the machine into a snapshotted state; refuses snapshots of another spec version."""
        if snap.machine != self.NAME or snap.spec_sha256 != self.SPEC_SHA256:
            raise ValueError(f"snapshot is of {snap.machine} spec {snap.spec_sha256[:12]}, this is {self.NAME} "
                             f"spec {self.SPEC_SHA256[:12]}; restore with the same spec version")
        if snap.state not in self.STATES or set(snap.vars) != set(self.VARIABLES):
            raise ValueError(f"snapshot of {self.NAME} has an unknown state or a different variable set")
        for name, value in snap.vars.items():
            setattr(self.model, name, value)
        self.machine.set_state(snap.state, model=self.model)


def enum_value(value: Any) -> Any:
    """An enum member's name, anything else unchanged (for rendering variables)."""
    return value.name if isinstance(value, enum.Enum) else value
