"""Emit the runtime module of a machine: a `transitions`-based machine over Decimals.

The output is deterministic (spec order, no timestamps) and already formatted. Spec text only ever
reaches the output through `repr()` (docs, guard text) or as identifiers the loader validated, and
expressions are emitted from typed trees, never copied as text: a spec cannot inject code.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from pink_codegen import __version__
from pink_codegen import expr as X
from pink_codegen.ir import Machine, Transition
from pink_codegen.types import BoolType, EnumType, ExactValue, NumType, RefType, Type


def _py_type(t: Type) -> str:
    if isinstance(t, BoolType):
        return "bool"
    if isinstance(t, EnumType):
        return t.name
    if isinstance(t, RefType):
        return "int"
    assert isinstance(t, NumType)
    return "int" if t.integral else "Decimal"


def _decimal_text(value: Fraction | int) -> str:
    f = Fraction(value)
    d = Decimal(f.numerator) / Decimal(f.denominator)
    if Fraction(d) != f:
        raise ValueError(f"literal {f} has no exact decimal form")
    return format(d, "f")


def _py_value(t: Type, value: ExactValue) -> str:
    if isinstance(t, BoolType):
        return "True" if value else "False"
    if isinstance(t, EnumType):
        return f"{t.name}.{value}"
    if isinstance(t, RefType):
        return repr(int(value))
    assert isinstance(t, NumType) and isinstance(value, int | Fraction)
    return repr(int(value)) if t.integral else f'Decimal("{_decimal_text(value)}")'


class _Literals:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._seen: dict[str, str] = {}

    def add(self, e: X.TExpr) -> str:
        if isinstance(e, X.StateTest):
            key = "frozenset({" + ", ".join(repr(s) for s in sorted(set(e.states))) + "})"
        else:
            assert isinstance(e, X.Lit) and isinstance(e.value, int | Fraction)
            key = f'Decimal("{_decimal_text(e.value)}")'
        if key not in self._seen:
            name = f"_K{len(self._seen)}"
            self._seen[key] = name
            self.lines.append(f"{name}: Final = {key}")
        return self._seen[key]


def _context(lits: _Literals) -> X.EmitContext:
    return X.EmitContext(
        target="runtime",
        var=lambda n: f"m.{n}",
        param=lambda n: f"k[{n!r}]",
        state="m.state",
        enum_value=lambda t, v: f"{t.name}.{v}",
        literal=lits.add,
        const=lambda n: n.upper(),
    )


def generate_python(m: Machine, source_path: str) -> str:
    lits = _Literals()
    cx = _context(lits)
    cls = m.class_name
    body: list[str] = []
    w = body.append

    # -- model
    w(f"class {cls}Model:")
    w(f'    """Variables of the {m.name} machine. `state` and `trigger` are bound by transitions."""')
    w("")
    w("    state: str")
    w("    trigger: Callable[..., bool]")
    w("")
    w("    def __init__(self) -> None:")
    for v in m.variables:
        w(f"        self.{v.name}: {_py_type(v.type)} = {_py_value(v.type, v.init)}")
    w("        self.outcome: str = \"OK\"")
    w("        self.fired: int = -1")
    w("        self.outbox: list[Emitted] = []")
    w("")
    w("")

    # -- guards and effects
    for t in m.transitions:
        body.extend(_transition_functions(m, t, cx, cls))

    # -- invariants
    for inv in m.invariants:
        w(f"def _invariant_{inv.name}(m: {cls}Model) -> bool:")
        w(f"    return bool({X.emit(inv.expr, cx)})")
        w("")
        w("")
    w(f"INVARIANT_CHECKS: Final[dict[str, Callable[[{cls}Model], bool]]] = {{")
    for inv in m.invariants:
        w(f"    {inv.name!r}: _invariant_{inv.name},")
    w("}")
    w("")

    # -- table as data
    w("TRANSITIONS: Final[tuple[TransitionRow, ...]] = (")
    for t in m.transitions:
        w("    TransitionRow(")
        w(f"        id={t.index},")
        w(f"        sources={tuple(t.sources)!r},")
        w(f"        event={t.event!r},")
        w(f"        guard={t.guard_text!r},")
        w(f"        dest={t.dest!r},")
        w(f"        effect={tuple((n, X.render(e)) for n, e in t.effect)!r},")
        w(f"        emits={tuple(em.output for em in t.emits)!r},")
        w(f"        outcome={t.outcome!r},")
        w(f"        priority={t.priority},")
        w(f"        doc={t.doc!r},")
        w(f"        line={t.pos.line},")
        w("    ),")
    w(")")
    w("")
    w("INVARIANTS: Final[tuple[InvariantRow, ...]] = (")
    for inv in m.invariants:
        w(f"    InvariantRow({inv.name!r}, {inv.catalogue!r}, {X.render(inv.expr)!r}, {inv.doc!r}),")
    w(")")
    w("")
    w("# transitions fires the first row whose guard holds, in the order rows were added: priority first,")
    w("# then spec order, exactly as the exact interpreter and the model checker do. Rows that stay (`=`)")
    w("# are internal transitions (dest None): no exit/enter of the state, like the spec says.")
    w("_CONFIG: Final[list[dict[str, Any]]] = [")
    for t in sorted(m.transitions, key=lambda t: (-t.priority, t.index)):
        sources = list(t.sources)
        cond = f"[_guard_{t.index}]" if t.guard is not None else "[]"
        w(f"    {{\"trigger\": {t.event!r}, \"source\": {sources!r}, \"dest\": {t.dest!r}, "
          f"\"conditions\": {cond}, \"before\": [_effect_{t.index}]}},")
    w("]")
    w("")

    # -- params
    w("PARAM_TYPES: Final[dict[str, dict[str, type]]] = {")
    for e in m.events:
        inner = ", ".join(f"{p.name!r}: {_py_type(p.type)}" for p in e.params)
        w(f"    {e.name!r}: {{{inner}}},")
    w("}")
    w("")
    w("")

    # -- machine class
    w(f"class {cls}Machine(GeneratedMachine[{cls}Model]):")
    w(f'    """The {m.name} machine generated from {source_path}. Fire events with the typed methods."""')
    w("")
    w(f"    NAME: ClassVar[str] = {m.name!r}")
    w("    SPEC_SHA256: ClassVar[str] = SPEC_SHA256")
    w(f"    STATES: ClassVar[tuple[str, ...]] = {tuple(s.name for s in m.states)!r}")
    w(f"    INITIAL: ClassVar[str] = {m.initial!r}")
    w("    TRANSITIONS: ClassVar[tuple[TransitionRow, ...]] = TRANSITIONS")
    w("    INVARIANTS: ClassVar[tuple[InvariantRow, ...]] = INVARIANTS")
    w(f"    VARIABLES: ClassVar[tuple[str, ...]] = {tuple(v.name for v in m.variables)!r}")
    w("    PARAM_TYPES: ClassVar[Mapping[str, Mapping[str, type]]] = PARAM_TYPES")
    w("")
    w(f"    def __init__(self, model: {cls}Model | None = None, check_invariants: bool = True) -> None:")
    w(f"        super().__init__(model or {cls}Model(), _CONFIG, INVARIANT_CHECKS, check_invariants)")
    for e in m.events:
        w("")
        params = "".join(f", {p.name}: {_py_type(p.type)}" for p in e.params)
        star = ", *" if e.params else ""
        w(f"    def {e.name.lower()}(self{star}{params}) -> Step:")
        w(f'        """{_docline(e.doc)}"""')
        args = ", ".join(f"{p.name}={p.name}" for p in e.params)
        w(f"        return self.fire({e.name!r}{', ' if args else ''}{args})")

    # -- header, imports, enums, constants, literals
    head: list[str] = []
    h = head.append
    h(f"# Code generated by pink-codegen {__version__} from {source_path} (sha256 {m.sha256}); DO NOT EDIT.")
    h("# Regenerate with: pink-codegen build")
    h(f'"""{_docline(m.doc)}"""')
    h("")
    h("from __future__ import annotations")
    h("")
    h("import enum")
    h("from collections.abc import Callable, Mapping")
    h("from decimal import Decimal")
    h("from typing import Any, ClassVar, Final, cast")
    h("")
    h("from transitions import EventData")
    h("")
    h("from pink_fsm.fsm.machine import (")
    h("    BoundViolation,")
    h("    Emitted,")
    h("    GeneratedMachine,")
    h("    InvariantRow,")
    h("    Step,")
    h("    TransitionRow,")
    h(")")
    h("from pink_fsm.fsm.numbers import SPEC_CONTEXT as _C")
    h("from pink_fsm.fsm.numbers import div_runtime as _div")
    h("from pink_fsm.fsm.numbers import floor_runtime as _floor")
    h("from pink_fsm.fsm.numbers import sign_runtime as _sign")
    h("from pink_fsm.fsm.types import SIDE_SIGN as _SIDE_SIGN")
    h("from pink_fsm.fsm.types import Side")
    h("")
    h("__all__ = [")
    for name in sorted((f"{cls}Machine", f"{cls}Model", f"{cls}State", f"{cls}Event", f"{cls}Outcome",
                        *(e.name for e in m.enums), "Side", "TRANSITIONS", "INVARIANTS")):
        h(f"    {name!r},")
    h("]")
    h("")
    h(f"MACHINE_NAME: Final = {m.name!r}")
    h(f"SPEC_SOURCE: Final = {source_path!r}")
    h(f"SPEC_SHA256: Final = {m.sha256!r}")
    h("")
    h("")
    for enum_name, members in (
        (f"{cls}State", [s.name for s in m.states]),
        (f"{cls}Event", [e.name for e in m.events]),
        (f"{cls}Outcome", [o for o, _ in m.outcomes]),
        *((e.name, list(e.values)) for e in m.enums),
    ):
        h(f"class {enum_name}(enum.Enum):")
        for member in members:
            h(f"    {member} = {member!r}")
        h("")
        h("")
    for c in m.constants:
        h(f"{c.name.upper()}: Final[{_py_type(c.type)}] = {_py_value(c.type, c.value)}")
    if m.constants:
        h("")
    literal_lines = lits.lines
    out = "\n".join(head) + ("\n".join(literal_lines) + "\n\n\n" if literal_lines else "\n") + "\n".join(body) + "\n"
    return _strip_unused_imports(out)


def _docline(text: str) -> str:
    """A docstring-safe single line (no quotes or backslashes that could end the string)."""
    cleaned = " ".join(text.split()).replace("\\", "/").replace('"""', "'''")
    return cleaned.rstrip('"')


def _bound_text(t: NumType, value: ExactValue, cx: X.EmitContext) -> str:
    if t.integral:
        return repr(int(value))
    return cx.literal(X.Lit(t, value))


def _transition_functions(m: Machine, t: Transition, cx: X.EmitContext, cls: str) -> list[str]:
    lines: list[str] = []
    w = lines.append
    uses_k = bool(t.lets or t.effect or t.emits)
    if t.guard is not None:
        w(f"def _guard_{t.index}(ed: EventData) -> bool:")
        guard_src = X.emit(t.guard, cx)
        if "m." in guard_src:
            w(f"    m = cast({cls}Model, ed.model)")
        if "k[" in guard_src:
            w("    k = ed.kwargs")
        w(f"    return bool({guard_src})")
        w("")
        w("")
    w(f"def _effect_{t.index}(ed: EventData) -> None:")
    w(f'    """{t.label} (line {t.pos.line})"""')
    src_lines: list[str] = []
    for name, e in t.lets:
        src_lines.append(f"    l_{name} = {X.emit(e, cx)}")
    for name, e in t.effect:
        src_lines.append(f"    v_{name}: {_py_type(m.variable(name).type)} = {X.emit(e, cx)}")
    for name, e in t.effect:
        v = m.variable(name)
        if isinstance(v.type, NumType) and v.min is not None and v.max is not None:
            if isinstance(e, X.Lit) and v.min <= e.value <= v.max:  # type: ignore[operator]
                continue  # a literal in bounds needs no run-time check
            lo, hi = _bound_text(v.type, v.min, cx), _bound_text(v.type, v.max, cx)
            src_lines.append(f"    if not {lo} <= v_{name} <= {hi}:")
            src_lines.append(f"        raise BoundViolation({m.name!r}, {name!r}, v_{name}, {lo}, {hi})")
    # Emit arguments read the pre-state, like every right-hand side: build them before assigning.
    for i, em in enumerate(t.emits):
        args = ", ".join(f"{a!r}: {X.emit(v, cx)}" for a, v in em.args)
        src_lines.append(f"    out_{i}: Emitted = ({em.output!r}, {{{args}}})")
    for name, _ in t.effect:
        src_lines.append(f"    m.{name} = v_{name}")
    for i, _ in enumerate(t.emits):
        src_lines.append(f"    m.outbox.append(out_{i})")
    w(f"    m = cast({cls}Model, ed.model)")
    if uses_k and any("k[" in line for line in src_lines):
        w("    k = ed.kwargs")
    lines.extend(src_lines)
    w(f"    m.outcome = {t.outcome!r}")
    w(f"    m.fired = {t.index}")
    w("")
    w("")
    return lines


def _strip_unused_imports(source: str) -> str:
    """Drop helper imports a machine does not use, so the output stays lint-clean."""
    header, _, rest = source.partition("\n__all__")
    optional = {
        "from pink_fsm.fsm.numbers import SPEC_CONTEXT as _C\n": "_C.",
        "from pink_fsm.fsm.numbers import div_runtime as _div\n": "_div(",
        "from pink_fsm.fsm.numbers import floor_runtime as _floor\n": "_floor(",
        "from pink_fsm.fsm.numbers import sign_runtime as _sign\n": "_sign(",
        "from pink_fsm.fsm.types import SIDE_SIGN as _SIDE_SIGN\n": "_SIDE_SIGN[",
        "    BoundViolation,\n": "BoundViolation(",
    }
    for line, marker in optional.items():
        if marker not in rest:
            header = header.replace(line, "")
    if "Decimal" not in rest.replace("from decimal import Decimal", ""):
        header = header.replace("from decimal import Decimal\n", "")
    return header + "\n__all__" + rest
