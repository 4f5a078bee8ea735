"""Load a machine spec (YAML) into the IR, with every problem reported at its line and column.

The loader reads sections in dependency order (enums, constants, variables, defines, states, events,
outputs, outcomes, transitions, invariants), checks names and types as it goes and collects all the
problems of a file before raising. Structural checks over the whole machine (reachability, ways out,
duplicate and overlapping transitions) live in `checks.py` and run after a clean load.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from pink_codegen import expr as X
from pink_codegen.errors import Pos, Problems, SpecError, SpecProblem, did_you_mean
from pink_codegen.ir import (
    CATALOGUE,
    Constant,
    Define,
    Emit,
    Event,
    Invariant,
    Machine,
    Output,
    Param,
    State,
    Transition,
    Variable,
)
from pink_codegen.types import (
    BOOL,
    SCALAR_TYPES,
    SIDE,
    EnumType,
    ExactValue,
    NumType,
    Type,
    describe,
    exact_from_literal,
    render_exact,
)
from pink_codegen.yamlsrc import YNode, load_located

UPPER_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
LOWER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ENUM_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
MACHINE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")

# Lower-case names that generated code or the spec language already uses.
RESERVED = (
    set(keyword.kwlist)
    | set(keyword.softkwlist)
    | set(X.FUNCTIONS)
    | {"state", "trigger", "machine", "model", "outbox", "outcome", "vars", "self", "cls", "none", "true", "false"}
)

TOP_KEYS = (
    "machine", "doc", "enums", "constants", "variables", "defines", "states", "initial",
    "events", "outputs", "outcomes", "transitions", "invariants",
)
REQUIRED_TOP = ("machine", "doc", "states", "initial", "events", "transitions")
EVENT_KINDS = ("command", "venue", "clock", "audit", "internal")


# Names the generated module defines itself; enum types and (upper-cased) constants must not shadow them.
RESERVED_TYPE_NAMES = {
    "Decimal", "Any", "Final", "ClassVar", "Callable", "Mapping", "EventData", "Emitted", "GeneratedMachine",
    "InvariantRow", "Step", "TransitionRow", "BoundViolation", "Side",
}
RESERVED_CONSTANTS = {"machine_name", "spec_source", "spec_sha256", "transitions", "invariants",
                      "invariant_checks", "param_types"}


def _label(node: YNode | None) -> str:
    """How a row's from/event/to is shown in messages."""
    if node is None:
        return "?"
    if node.is_list:
        return f"[{', '.join(str(i.value) for i in node.value if i.is_scalar)}]"
    return str(node.value) if node.is_scalar and node.value is not None else "?"


def _show(value: ExactValue | None) -> str:
    return "none" if value is None else render_exact(value)


def load_machine(path: Path, display_name: str | None = None) -> Machine:
    """Load and validate one machine file; raises SpecError listing every problem found."""
    name = display_name or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError([_problem(Pos(name, 1, 1), f"cannot read spec file: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([_problem(Pos(name, line, col), f"spec files are UTF-8; byte 0x{raw[exc.start]:02X} here "
                                                        f"is not")]) from None
    return load_machine_text(text, name, hashlib.sha256(raw).hexdigest())


def load_machine_text(text: str, file: str, sha256: str | None = None) -> Machine:
    root = load_located(text, file)
    digest = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _Loader(file, digest, text).load(root)


def _problem(pos: Pos, message: str) -> SpecProblem:
    return SpecProblem(pos, "", message)


class _Loader:
    def __init__(self, file: str, sha256: str, text: str) -> None:
        self.file = file
        self.text = text
        self.sha256 = sha256
        self.p = Problems()
        self.enums: dict[str, EnumType] = {"Side": SIDE}
        self.constants: dict[str, Constant] = {}
        self.variables: dict[str, Variable] = {}
        self.defines: dict[str, Define] = {}
        self.states: dict[str, State] = {}
        self.events: dict[str, Event] = {}
        self.outputs: dict[str, Output] = {}
        self.outcomes: dict[str, str] = {}
        self.all_params: dict[str, Type] = {}
        # Names whose declaration failed: later uses are not reported again (one mistake, one error).
        self.broken: set[str] = set()
        self.broken_sections: set[str] = set()  # sections that are not even a mapping: their names are unknown
        self.broken_outputs: set[str] = set()  # outputs with a bad parameter list: their emits are not checked
        # Parameter name -> events declaring it, read ahead so defines and other events can say so.
        self.param_events: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ helpers

    def _map(self, node: YNode, context: str, what: str) -> dict[str, YNode] | None:
        if not node.is_map:
            self.p.error(node.pos, context, f"{what} must be a mapping (name: value)")
            return None
        value: dict[str, YNode] = node.value
        return value

    def _keys(self, node: YNode, context: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> bool:
        ok = True
        for key in node.value:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.p.error(node.key_pos[key], context, f"unknown key '{key}'{hint or ''}"
                             f"{'' if hint else '; allowed keys: ' + ', '.join(allowed)}")
                ok = False
        for key in required:
            if key not in node.value:
                self.p.error(node.pos, context, f"missing required key '{key}'")
                ok = False
        return ok

    def _str(self, node: YNode | None, context: str, what: str) -> str | None:
        if node is None:
            return None
        if not isinstance(node.value, str) or node.value == "":
            self.p.error(node.pos, context, f"'{what}' must be a non-empty text, got {describe(node.value)}")
            return None
        return node.value

    def _ref(self, node: YNode, context: str, what: str) -> str | None:
        """A scalar that names something (a state, event, outcome): a plain name, not a list or mapping."""
        if not isinstance(node.value, str) or not node.value:
            self.p.error(node.pos, context, f"'{what}' must be a name, got {describe(node.value)}")
            return None
        return node.value

    def _doc(self, node: dict[str, YNode], parent: YNode, context: str) -> str:
        doc = node.get("doc")
        if doc is None:
            self.p.error(parent.pos, context, "missing 'doc': say why this exists (cite a defect id if one applies)")
            return ""
        text = self._str(doc, context, "doc")
        return " ".join(text.split()) if text else ""

    def _name(self, pos: Pos, context: str, name: str, pattern: re.Pattern[str], what: str) -> bool:
        if not isinstance(name, str) or not pattern.match(name):
            style = {
                UPPER_NAME.pattern: "UPPER_SNAKE_CASE (A-Z, 0-9, _; starting with a letter; at most 64)",
                LOWER_NAME.pattern: "lower_snake_case (a-z, 0-9, _; starting with a letter; at most 64)",
                ENUM_TYPE_NAME.pattern: "CamelCase (A-Z, a-z, 0-9; starting with a capital)",
                MACHINE_NAME.pattern: "lower_snake_case (at most 41 characters)",
            }[pattern.pattern]
            self.p.error(pos, context, f"bad {what} name {name!r}: must be {style}")
            return False
        if pattern is UPPER_NAME and name in ("TRUE", "FALSE", "NULL"):
            self.p.error(pos, context, f"bad {what} name '{name}': YAML reads {name} as a "
                                       f"{'null' if name == 'NULL' else 'boolean'} where a name is expected; "
                                       f"choose another name")
            return False
        if pattern is LOWER_NAME and name in RESERVED:
            self.p.error(pos, context, f"bad {what} name '{name}': it is reserved (Python keyword, spec "
                                       f"function or generated attribute); choose another name")
            return False
        return True

    def _named_map(self, pos: Pos, context: str, name: str, value: YNode, what: str, article: str) -> bool:
        """A lower_snake entry whose value is a mapping."""
        return self._name(pos, context, name, LOWER_NAME, what) and self._map(value, context, article) is not None

    def _type(self, node: YNode | None, context: str, parent: YNode) -> Type | None:
        if node is None:
            self.p.error(parent.pos, context, "missing required key 'type'")
            return None
        name = node.value
        if isinstance(name, str) and name in SCALAR_TYPES:
            return SCALAR_TYPES[name]
        if isinstance(name, str) and name in self.enums:
            return self.enums[name]
        known = [*SCALAR_TYPES, *self.enums]
        if not isinstance(name, str):
            self.p.error(node.pos, context, f"a type is a name ({', '.join(known)}), got {describe(name)}")
            return None
        if name in self.broken:
            return None
        hint = did_you_mean(name, known)
        self.p.error(node.pos, context, f"unknown type '{name}'{hint or '; types are ' + ', '.join(known)}")
        return None

    def _literal(self, t: Type, node: YNode, context: str, what: str) -> ExactValue | None:
        if not node.is_scalar:
            self.p.error(node.pos, context, f"{what}: expected a single value, got {describe(node.value)}")
            return None
        try:
            return exact_from_literal(t, node.value)
        except ValueError as exc:
            self.p.error(node.pos, context, f"{what}: {exc}")
            return None

    def _scope(self, params: dict[str, Type] | None = None, lets: dict[str, X.TExpr] | None = None,
               what: str = "expression") -> X.Scope:
        return X.Scope(
            variables={n: v.type for n, v in self.variables.items()},
            constants={n: X.Lit(c.type, c.value) for n, c in self.constants.items()},
            defines={n: d.expr for n, d in self.defines.items()},
            enums=self.enums,
            states=frozenset(self.states),
            params=params if params is not None else self.all_params,
            lets=lets or {},
            allow_params=params is not None,
            what=what,
            silent=frozenset(self.broken),
            param_events=self.param_events,
        )

    def _expr(self, node: YNode, context: str, scope: X.Scope, expected: Type | None) -> X.TExpr | None:
        value = node.value
        if isinstance(value, bool):
            text = "True" if value else "False"
        elif isinstance(value, int | str):
            text = str(value)
        else:
            self.p.error(node.pos, context, f"{scope.what} must be an expression, got {describe(value)}")
            return None
        try:
            return X.check(text, scope, expected)
        except X.ExprError as exc:
            if not exc.suppressed:
                self.p.error(self._expr_pos(node, X.source_text(text), exc), context, exc.message)
            return None

    def _expr_pos(self, node: YNode, parsed: str, exc: X.ExprError) -> Pos:
        """Map a column of the parsed expression to the file. Folding and joining change only blanks, so
        the n-th non-blank character of the parsed text is the n-th non-blank of the scalar's source."""
        if exc.lineno != 1 or node.span == (0, 0):
            return node.pos
        wanted = sum(1 for ch in parsed[: max(exc.col - 1, 0)] if not ch.isspace())
        start, end = node.span
        if node.style in ("|", ">"):
            start = self.text.find("\n", start, end) + 1  # skip the block indicator line
        elif node.style in ("'", '"'):
            start += 1
        seen = 0
        for index in range(start, end):
            if self.text[index].isspace():
                continue
            if seen == wanted:
                line = self.text.count("\n", 0, index) + 1
                col = index - (self.text.rfind("\n", 0, index) + 1) + 1
                return Pos(node.pos.file, line, col)
            seen += 1
        return node.pos

    # ------------------------------------------------------------------ sections

    def load(self, root: YNode) -> Machine:
        top = self._map(root, "", "a machine spec")
        if top is None:
            self.p.raise_if_errors()
            raise AssertionError
        self._keys(root, "", TOP_KEYS, REQUIRED_TOP)
        given_name = self._str(top.get("machine"), "machine", "machine")
        machine_name = given_name or "machine"
        named_ok = given_name is not None and self._name(top["machine"].pos, "machine", given_name, MACHINE_NAME,
                                                         "machine")
        if named_ok and machine_name in RESERVED:
            self.p.error(top["machine"].pos, "machine", f"bad machine name '{machine_name}': it is reserved "
                                                        f"(Python keyword or spec word); choose another name")
        doc = self._str(top.get("doc"), "machine", "doc") or ""
        self._prescan_params(top.get("events"))
        for section, reader in (
            ("enums", self._enums),
            ("constants", self._constants),
            ("variables", self._variables),
            ("defines", self._defines),
            ("states", self._states),
            ("events", self._events),
            ("outputs", self._outputs),
            ("outcomes", self._outcomes),
        ):
            if section in top:
                reader(top[section])
        self.outcomes.setdefault("OK", "the event was applied as the transition says")
        initial = self._initial(top.get("initial"))
        transitions = self._transitions(top["transitions"]) if "transitions" in top else []
        invariants = self._invariants(top["invariants"]) if "invariants" in top else []
        self.p.raise_if_errors()
        machine = Machine(
            name=machine_name,
            doc=" ".join(doc.split()),
            file=self.file,
            sha256=self.sha256,
            enums=tuple(e for n, e in self.enums.items() if n != "Side"),
            constants=tuple(self.constants.values()),
            variables=tuple(self.variables.values()),
            defines=tuple(self.defines.values()),
            states=tuple(self.states.values()),
            initial=initial,
            events=tuple(self.events.values()),
            outputs=tuple(self.outputs.values()),
            outcomes=tuple(self.outcomes.items()),
            transitions=tuple(transitions),
            invariants=tuple(invariants),
        )
        from pink_codegen.checks import check_machine

        check_machine(machine, self.p)
        self.p.raise_if_errors()
        return attrs.evolve(machine, warnings=tuple(self.p.warnings))

    def _prescan_params(self, events: YNode | None) -> None:
        if events is None or not events.is_map:
            return
        for ev_name, ev in events.value.items():
            params = ev.value.get("params") if ev.is_map else None
            if params is not None and params.is_map:
                for pname in params.value:
                    self.param_events.setdefault(pname, []).append(str(ev_name))

    def _each(self, node: YNode, section: str, fn: Callable[[str, YNode, Pos], None],
              registry: Mapping[str, object]) -> None:
        entries = self._map(node, section, f"'{section}'")
        if entries is None:
            self.broken_sections.add(section)
            return
        for name, value in entries.items():
            fn(name, value, node.key_pos[name])
            if name not in registry:
                self.broken.add(name)

    def _enums(self, node: YNode) -> None:
        def one(name: str, value: YNode, pos: Pos) -> None:
            context = f"enum {name}"
            if not self._name(pos, context, name, ENUM_TYPE_NAME, "enum"):
                return
            if name in self.enums or name in SCALAR_TYPES:
                self.p.error(pos, context, f"enum '{name}' is already defined (Side is built in)")
                return
            if name in RESERVED_TYPE_NAMES:
                self.p.error(pos, context, f"bad enum name '{name}': generated code already uses it; choose another")
                return
            if not value.is_list or not value.value:
                self.p.error(value.pos, context, "an enum is a non-empty list of UPPER_SNAKE values")
                return
            values: list[str] = []
            for item in value.value:
                if self._name(item.pos, context, item.value, UPPER_NAME, "enum value"):
                    if item.value in values:
                        self.p.error(item.pos, context, f"duplicate enum value '{item.value}'")
                    values.append(item.value)
            self.enums[name] = EnumType(name, tuple(values))

        self._each(node, "enums", one, self.enums)

    def _constants(self, node: YNode) -> None:
        def one(name: str, value: YNode, pos: Pos) -> None:
            context = f"constant {name}"
            if not self._named_map(pos, context, name, value, "constant", "a constant"):
                return
            if name in RESERVED_CONSTANTS:
                self.p.error(pos, context, f"bad constant name '{name}': generated code already defines "
                                           f"{name.upper()}; choose another")
                return
            self._keys(value, context, ("type", "value", "doc"), ("value",))
            t = self._type(value.value.get("type"), context, value)
            doc = self._doc(value.value, value, context)
            if t is None or "value" not in value.value:
                return
            v = self._literal(t, value.value["value"], context, "value")
            if v is not None:
                self.constants[name] = Constant(name, t, v, doc, pos)

        self._each(node, "constants", one, self.constants)

    def _variables(self, node: YNode) -> None:
        def one(name: str, value: YNode, pos: Pos) -> None:
            context = f"variable {name}"
            if not self._named_map(pos, context, name, value, "variable", "a variable"):
                return
            if name in self.constants:
                self.p.error(pos, context, f"'{name}' is already a constant")
                return
            self._keys(value, context, ("type", "init", "min", "max", "doc"), ("init",))
            fields = value.value
            t = self._type(fields.get("type"), context, value)
            doc = self._doc(fields, value, context)
            if t is None:
                return
            lo = hi = None
            if isinstance(t, NumType):
                for bound in ("min", "max"):
                    if bound not in fields:
                        self.p.error(value.pos, context, f"missing '{bound}': numeric variables are bounded "
                                                         f"(the model checker and the runtime both enforce it)")
                lo = self._literal(t, fields["min"], context, "min") if "min" in fields else None
                hi = self._literal(t, fields["max"], context, "max") if "max" in fields else None
                if lo is not None and hi is not None and lo > hi:  # type: ignore[operator]
                    self.p.error(fields["min"].pos, context, f"min {_show(lo)} is above max {_show(hi)}")
            else:
                for bound in ("min", "max"):
                    if bound in fields:
                        self.p.error(fields[bound].pos, context, f"'{bound}' applies to numeric variables only")
            if "init" not in fields:
                return
            init = self._literal(t, fields["init"], context, "init")
            if init is None:
                return
            bounds_ok = lo is None or hi is None or lo <= hi  # type: ignore[operator]
            if bounds_ok and ((lo is not None and init < lo) or (hi is not None and init > hi)):  # type: ignore[operator]
                self.p.error(fields["init"].pos, context, f"init {_show(init)} is outside [{_show(lo)}, {_show(hi)}]")
            self.variables[name] = Variable(name, t, init, lo, hi, doc, pos)

        self._each(node, "variables", one, self.variables)

    def _defines(self, node: YNode) -> None:
        def one(name: str, value: YNode, pos: Pos) -> None:
            context = f"define {name}"
            if not self._name(pos, context, name, LOWER_NAME, "define"):
                return
            if name in self.variables or name in self.constants:
                self.p.error(pos, context, f"'{name}' is already a variable or constant")
                return
            if self._map(value, context, "a define") is None:
                return
            self._keys(value, context, ("expr", "doc"), ("expr",))
            doc = self._doc(value.value, value, context)
            if "expr" not in value.value:
                return
            e = self._expr(value.value["expr"], context, self._scope(what="a define"), None)
            if e is not None:
                self.defines[name] = Define(name, e, doc, pos)

        self._each(node, "defines", one, self.defines)

    def _states(self, node: YNode) -> None:
        def one(name: str, value: YNode, pos: Pos) -> None:
            context = f"state {name}"
            if not self._name(pos, context, name, UPPER_NAME, "state"):
                return
            if self._map(value, context, "a state") is None:
                return
            self._keys(value, context, ("doc", "final", "was"))
            doc = self._doc(value.value, value, context)
            final_node = value.value.get("final")
            final = False
            if final_node is not None:
                if not isinstance(final_node.value, bool):
                    self.p.error(final_node.pos, context, "'final' must be true or false")
                else:
                    final = final_node.value
            was = self._str(value.value.get("was"), context, "was") or ""
            self.states[name] = State(name, doc, final, was, pos)

        self._each(node, "states", one, self.states)

    def _params(self, node: YNode | None, context: str) -> tuple[Param, ...]:
        if node is None:
            return ()
        entries = self._map(node, context, "'params'")
        if entries is None:
            return ()
        params: list[Param] = []
        for pname, pnode in entries.items():
            ppos = node.key_pos[pname]
            if not self._name(ppos, context, pname, LOWER_NAME, "parameter"):
                continue
            if pname in self.variables or pname in self.constants or pname in self.defines:
                self.p.error(ppos, context, f"parameter '{pname}' has the name of a variable, constant or "
                                           f"define; rename one of them so expressions stay unambiguous")
                continue
            if pnode.is_map:
                self._keys(pnode, f"{context} param {pname}", ("type", "doc"))
                t = self._type(pnode.value.get("type"), f"{context} param {pname}", pnode)
                pdoc = self._str(pnode.value.get("doc"), context, "doc") or ""
            else:
                t = self._type(pnode, context, pnode)
                pdoc = ""
            if t is None:
                self.broken.add(pname)
                continue
            if pname in self.all_params and self.all_params[pname] != t:
                others = [e for e in self.param_events.get(pname, []) if e != context.removeprefix("event ")]
                self.p.error(ppos, context, f"parameter '{pname}' is {self.all_params[pname]} in event "
                                            f"{others[0] if others else '?'}; one name, one type across a machine")
                continue
            self.all_params[pname] = t
            params.append(Param(pname, t, pdoc, ppos))
        return tuple(params)

    def _events(self, node: YNode) -> None:
        def one(name: str, value: YNode, pos: Pos) -> None:
            context = f"event {name}"
            if not self._name(pos, context, name, UPPER_NAME, "event"):
                return
            if self._map(value, context, "an event") is None:
                return
            self._keys(value, context, ("kind", "params", "doc"))
            doc = self._doc(value.value, value, context)
            kind = "command"
            if "kind" in value.value:
                kind_node = value.value["kind"]
                if self._ref(kind_node, context, "kind") is None:
                    pass
                elif kind_node.value not in EVENT_KINDS:
                    hint = did_you_mean(str(kind_node.value), EVENT_KINDS)
                    self.p.error(kind_node.pos, context, f"unknown event kind {describe(kind_node.value)}"
                                                         f"{hint or '; kinds are ' + ', '.join(EVENT_KINDS)}")
                else:
                    kind = kind_node.value
            self.events[name] = Event(name, kind, self._params(value.value.get("params"), context), doc, pos)

        self._each(node, "events", one, self.events)

    def _outputs(self, node: YNode) -> None:
        def one(name: str, value: YNode, pos: Pos) -> None:
            context = f"output {name}"
            if not self._name(pos, context, name, UPPER_NAME, "output"):
                return
            if self._map(value, context, "an output") is None:
                return
            self._keys(value, context, ("params", "doc"))
            doc = self._doc(value.value, value, context)
            params: list[Param] = []
            pnode = value.value.get("params")
            if pnode is not None and self._map(pnode, context, "'params'") is not None:
                for pname, pval in pnode.value.items():
                    ppos = pnode.key_pos[pname]
                    if self._name(ppos, context, pname, LOWER_NAME, "parameter"):
                        # `name: type` or, as for events, `name: {type: ..., doc: ...}`
                        pdoc = ""
                        if pval.is_map:
                            self._keys(pval, f"{context} param {pname}", ("type", "doc"))
                            t = self._type(pval.value.get("type"), context, pval)
                            pdoc = self._str(pval.value.get("doc"), context, "doc") or ""
                        else:
                            t = self._type(pval, context, pval)
                        if t is not None:
                            params.append(Param(pname, t, pdoc, ppos))
                            continue
                    self.broken_outputs.add(name)
            elif pnode is not None:
                self.broken_outputs.add(name)
            self.outputs[name] = Output(name, tuple(params), doc, pos)

        self._each(node, "outputs", one, self.outputs)

    def _outcomes(self, node: YNode) -> None:
        def one(name: str, value: YNode, pos: Pos) -> None:
            context = f"outcome {name}"
            if self._name(pos, context, name, UPPER_NAME, "outcome"):
                if not isinstance(value.value, str) or not value.value.strip():
                    self.p.error(value.pos, context, f"an outcome needs a one-line description, got "
                                                     f"{describe(value.value)}")
                    return
                self.outcomes[name] = " ".join(value.value.split())

        self._each(node, "outcomes", one, self.outcomes)

    def _initial(self, node: YNode | None) -> str:
        if node is None:
            return ""
        name = self._ref(node, "initial", "initial") or ""
        if name in self.broken:
            return name
        if name and name not in self.states:
            self.p.error(node.pos, "initial", f"unknown state '{name}'{did_you_mean(name, self.states)}")
        elif name and self.states[name].final:
            self.p.error(node.pos, "initial", f"the initial state '{name}' cannot be final")
        return name

    # ------------------------------------------------------------------ transitions

    def _transitions(self, node: YNode) -> list[Transition]:
        if not node.is_list:
            self.p.error(node.pos, "transitions", "'transitions' must be a list of rows")
            return []
        out: list[Transition] = []
        for row_number, row in enumerate(node.value, start=1):
            # `event: [A, B]` is shorthand for one row per event, each checked against its own params.
            events = row.value.get("event") if row.is_map else None
            if events is not None and events.is_list:
                if not events.value:
                    self.p.error(events.pos, f"transition #{row_number}", "'event' lists no event")
                seen_events: set[object] = set()
                for ev in events.value:
                    if ev.is_scalar and ev.value in seen_events:
                        self.p.error(ev.pos, f"transition #{row_number}", f"event '{ev.value}' is listed twice")
                        continue
                    if ev.is_scalar:
                        seen_events.add(ev.value)
                    expanded = YNode({**row.value, "event": ev}, row.pos, row.key_pos, row.style)
                    t = self._transition(len(out), row_number, expanded)
                    if t is not None:
                        out.append(t)
                continue
            t = self._transition(len(out), row_number, row)
            if t is not None:
                out.append(t)
        return out

    def _sources(self, row: dict[str, YNode], context: str) -> tuple[tuple[str, ...], str] | None:
        node = row.get("from")
        if node is None:
            return None
        non_final = [s for s, st in self.states.items() if not st.final]
        if node.value == "*":
            excluded: list[str] = []
            if "except" in row:
                exc_node = row["except"]
                items = exc_node.value if exc_node.is_list else [exc_node]
                if not items:
                    self.p.error(exc_node.pos, context, "'except' names no state; drop it or list states")
                for item in items:
                    name = self._ref(item, context, "except")
                    if name is None:
                        continue
                    if name in excluded:
                        self.p.error(item.pos, context, f"state '{name}' is listed twice in 'except'")
                        continue
                    if name not in self.states and name not in self.broken:
                        self.p.error(item.pos, context, f"unknown state '{name}'{did_you_mean(name, self.states)}")
                    excluded.append(name)
            text = "*" if not excluded else f"* except [{', '.join(excluded)}]"
            return tuple(s for s in non_final if s not in excluded), text
        if "except" in row:
            self.p.error(row["except"].pos, context, "'except' only goes with from: \"*\"")
        items = node.value if node.is_list else [node]
        names: list[str] = []
        if not items:
            self.p.error(node.pos, context, "'from' names no state")
        for item in items:
            name = self._ref(item, context, "from")
            if name is None or name in self.broken:
                continue
            if name not in self.states:
                self.p.error(item.pos, context, f"unknown state '{name}'{did_you_mean(name, self.states)}")
                continue
            if name in names:
                self.p.error(item.pos, context, f"state '{name}' is listed twice in 'from'")
                continue
            if self.states[name].final:
                self.p.error(item.pos, context, f"state '{name}' is final: no transition may leave it")
                continue
            names.append(name)
        if not names:
            return None
        text = names[0] if len(names) == 1 and not node.is_list else f"[{', '.join(names)}]"
        return tuple(names), text

    def _transition(self, index: int, row_number: int, row_node: YNode) -> Transition | None:
        if not row_node.is_map:
            self.p.error(row_node.pos, f"transition #{row_number}", "a transition is a mapping with from, event, "
                                                                   "to, doc (and guard, let, effect, emit, ...)")
            return None
        row: dict[str, YNode] = row_node.value
        frm = row.get("from")
        ev = row.get("event")
        to = row.get("to")
        context = f"transition {_label(frm)} --{_label(ev)}--> {_label(to)}"
        self._keys(row_node, context,
                   ("from", "except", "event", "guard", "to", "let", "effect", "emit", "outcome", "priority", "doc"),
                   ("from", "event", "to"))
        doc = self._doc(row, row_node, context)
        sources = self._sources(row, context)
        event: Event | None = None
        ev_name = self._ref(ev, context, "event") if ev is not None else None
        if ev_name is not None:
            if ev_name in self.events:
                event = self.events[ev_name]
            elif ev_name not in self.broken and ev is not None:
                self.p.error(ev.pos, context, f"unknown event '{ev_name}'{did_you_mean(ev_name, self.events)}")
        dest: str | None = None
        to_name = self._ref(to, context, "to") if to is not None else None
        if to_name is None:
            to = None
        elif to_name == "=":
            dest = None
        elif to_name in self.states:
            dest = to_name
        elif to_name not in self.broken and to is not None:
            hint = did_you_mean(to_name, self.states)
            self.p.error(to.pos, context, f"unknown state '{to_name}'{hint or '; use =  to stay in the source state'}")
        priority = 0
        if "priority" in row:
            pnode = row["priority"]
            if isinstance(pnode.value, bool) or not isinstance(pnode.value, int):
                self.p.error(pnode.pos, context, "'priority' must be a whole number (higher fires first)")
            else:
                priority = pnode.value
        outcome = "OK"
        if "outcome" in row:
            onode = row["outcome"]
            oname = self._ref(onode, context, "outcome")
            if oname is not None and oname in self.outcomes:
                outcome = oname
            elif oname is not None and oname not in self.broken and "outcomes" not in self.broken_sections:
                hint = did_you_mean(oname, self.outcomes) or "; declare it under 'outcomes'"
                self.p.error(onode.pos, context, f"unknown outcome '{oname}'{hint}")
        if event is None or sources is None or to is None:
            return None
        params = {p.name: p.type for p in event.params}
        guard = None
        if "guard" in row:
            guard = self._expr(row["guard"], context, self._scope(params, what="a guard"), BOOL)
        lets: dict[str, X.TExpr] = {}
        if "let" in row:
            lnode = row["let"]
            if self._map(lnode, context, "'let'") is not None:
                for lname, lexpr in lnode.value.items():
                    lpos = lnode.key_pos[lname]
                    if not self._name(lpos, context, lname, LOWER_NAME, "let"):
                        continue
                    if lname in self.variables or lname in params or lname in self.constants or lname in self.defines:
                        self.p.error(lpos, context, f"let '{lname}' hides a variable, parameter, constant or "
                                                    f"define of that name; rename it")
                        continue
                    e = self._expr(lexpr, context, self._scope(params, lets, what="a let"), None)
                    if e is not None:
                        lets[lname] = e
        effect: list[tuple[str, X.TExpr]] = []
        if "effect" in row:
            enode = row["effect"]
            if self._map(enode, context, "'effect'") is not None:
                for vname, vexpr in enode.value.items():
                    vpos = enode.key_pos[vname]
                    if vname not in self.variables and (vname in self.broken or "variables" in self.broken_sections):
                        continue
                    if vname not in self.variables:
                        what = "a constant" if vname in self.constants else "a define" if vname in self.defines else ""
                        msg = (f"cannot assign '{vname}': it is {what}" if what else
                               f"unknown variable '{vname}'{did_you_mean(vname, self.variables)}")
                        self.p.error(vpos, context, msg)
                        continue
                    var = self.variables[vname]
                    e = self._expr(vexpr, context, self._scope(params, lets, what=f"the value of '{vname}'"), var.type)
                    if e is None:
                        continue
                    if (isinstance(e, X.Lit) and isinstance(var.type, NumType) and var.min is not None
                            and var.max is not None and not var.min <= e.value <= var.max):  # type: ignore[operator]
                        self.p.error(vexpr.pos, context, f"{_show(e.value)} is outside the bounds of '{vname}' "
                                                         f"[{_show(var.min)}, {_show(var.max)}]")
                        continue
                    effect.append((vname, e))
        emits = self._emits(row.get("emit"), context, params, lets)
        return Transition(
            index=index,
            sources=sources[0],
            source_text=sources[1],
            event=event.name,
            guard=guard,
            dest=dest,
            lets=tuple(lets.items()),
            effect=tuple(effect),
            emits=tuple(emits),
            outcome=outcome,
            priority=priority,
            doc=doc,
            pos=row_node.pos,
        )

    def _emits(self, node: YNode | None, context: str, params: dict[str, Type],
               lets: dict[str, X.TExpr]) -> list[Emit]:
        if node is None:
            return []
        if not node.is_list:
            self.p.error(node.pos, context, "'emit' is a list: - OUTPUT: {param: expr, ...}")
            return []
        out: list[Emit] = []
        for item in node.value:
            if item.is_scalar:
                name, args_node = item.value, None
            elif item.is_map and len(item.value) == 1:
                name, args_node = next(iter(item.value.items()))
            else:
                self.p.error(item.pos, context, "each emit is 'OUTPUT' or 'OUTPUT: {param: expr, ...}'")
                continue
            if name not in self.outputs:
                if name not in self.broken and "outputs" not in self.broken_sections:
                    hint = did_you_mean(str(name), self.outputs) or "; declare it under 'outputs'"
                    self.p.error(item.pos, context, f"unknown output '{name}'{hint}")
                continue
            output = self.outputs[name]
            given: dict[str, YNode] = {}
            if args_node is not None and args_node.value is not None:
                if self._map(args_node, context, f"the arguments of {name}") is None:
                    continue
                given = args_node.value
            args: list[tuple[str, X.TExpr]] = []
            for p in output.params:
                if p.name not in given:
                    if name not in self.broken_outputs:
                        self.p.error(item.pos, context, f"emit {name}: missing argument '{p.name}'")
                    continue
                e = self._expr(given[p.name], context, self._scope(params, lets, what=f"argument '{p.name}' of {name}"),
                               p.type)
                if e is not None:
                    args.append((p.name, e))
            for extra in given:
                if name in self.broken_outputs:
                    break  # its parameter list is already reported as broken
                if extra not in {p.name for p in output.params}:
                    self.p.error(args_node.key_pos[extra] if args_node else item.pos, context,
                                 f"emit {name}: unknown argument '{extra}'"
                                 f"{did_you_mean(extra, [p.name for p in output.params])}")
            out.append(Emit(name, tuple(args), item.pos))
        return out

    # ------------------------------------------------------------------ invariants

    def _invariants(self, node: YNode) -> list[Invariant]:
        out: list[Invariant] = []
        entries = self._map(node, "invariants", "'invariants'")
        if entries is None:
            return out
        for name, value in entries.items():
            pos = node.key_pos[name]
            context = f"invariant {name}"
            if not self._named_map(pos, context, name, value, "invariant", "an invariant"):
                continue
            self._keys(value, context, ("catalogue", "expr", "doc"), ("catalogue", "expr"))
            doc = self._doc(value.value, value, context)
            cat_node = value.value.get("catalogue")
            if cat_node is not None and self._ref(cat_node, context, "catalogue") is None:
                continue
            if cat_node is not None and cat_node.value not in CATALOGUE:
                self.p.error(cat_node.pos, context, f"unknown catalogue name '{cat_node.value}'"
                                                    f"{did_you_mean(str(cat_node.value), CATALOGUE)}; the catalogue "
                                                    f"is {', '.join(CATALOGUE)}")
                continue
            if "expr" not in value.value or cat_node is None:
                continue
            e = self._expr(value.value["expr"], context, self._scope(what="an invariant"), BOOL)
            if e is not None:
                out.append(Invariant(name, cat_node.value, e, doc, pos))
        return out


__all__ = ["load_machine", "load_machine_text"]
