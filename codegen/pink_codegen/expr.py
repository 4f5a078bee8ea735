"""Spec expressions: a whitelisted subset of Python parsed with `ast`, type-checked, then emitted twice.

`check()` turns expression text into a typed tree (`TExpr`) or raises `ExprError` at the offending column.
From the same typed tree, `emit()` writes:

* exact Python (ints and Fractions) for the model checker and the reference interpreter, and
* runtime Python (ints and Decimals in an exact decimal context) for the generated machines.

What is allowed: names (variables, event parameters, constants, defines, lets, enum values), number and
boolean literals, `+ - * /`, unary `-`, comparisons, `and/or/not`, `x if c else y`, and the spec
functions in `FUNCTIONS`. Everything else (attributes, subscripts, lambdas, comprehensions, keyword
arguments, strings, other calls) is rejected before any code exists, so a spec cannot inject code.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from fractions import Fraction

import attrs

from pink_codegen.errors import did_you_mean
from pink_codegen.types import (
    BOOL,
    INT,
    SIDE,
    BoolType,
    EnumType,
    ExactValue,
    NumType,
    RefType,
    Type,
    render_exact,
)
from pink_fsm.fsm.numbers import div_exact

# Division results are rounded half-to-even to this many decimal places in both interpreters, so the
# model checker's Fractions and the runtime's Decimals agree bit for bit.
DIV_SCALE = 12

FUNCTIONS = {
    "min": "smallest of two or more numbers of one dimension",
    "max": "largest of two or more numbers of one dimension",
    "abs": "absolute value",
    "sign": "sign(side) is +1 for LONG, -1 for SHORT, 0 for NONE; sign(number) is -1, 0 or +1",
    "floor": "round a number down to a whole number of its dimension (lots, ms, ...)",
    "implies": "implies(a, b) is (not a) or b",
    "in_state": "in_state(A, B, ...) is true when the machine is in one of the named states",
}


# Deeper expressions are rejected: they are unreadable, and the compiled code would hit Python's limits.
MAX_DEPTH = 64


class ExprError(Exception):
    """A problem inside an expression; `lineno`/`col` are 1-based within the expression text.

    `suppressed` marks a follow-on error (a use of a name whose declaration already failed): the loader
    drops it so one mistake gives one message."""

    def __init__(self, message: str, lineno: int = 1, col: int = 1, suppressed: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno
        self.col = col
        self.suppressed = suppressed


# ---------------------------------------------------------------------------------------------
# Typed tree


@attrs.frozen
class TExpr:
    type: Type


@attrs.frozen
class Lit(TExpr):
    value: ExactValue
    polymorphic: bool = False  # a bare number literal adopts the dimension of what it meets


@attrs.frozen
class Ref(TExpr):
    kind: str  # "var" | "param" | "const" | "define" | "let"
    name: str
    target: TExpr | None = None  # the define's expression, or the constant's literal


@attrs.frozen
class EnumLit(TExpr):
    value: str


@attrs.frozen
class Unary(TExpr):
    op: str  # "-" | "not"
    operand: TExpr


@attrs.frozen
class Bin(TExpr):
    op: str  # "+" "-" "*" "/"
    left: TExpr
    right: TExpr


@attrs.frozen
class BoolOp(TExpr):
    op: str  # "and" | "or"
    values: tuple[TExpr, ...]


@attrs.frozen
class Cmp(TExpr):
    op: str  # "==" "!=" "<" "<=" ">" ">="
    left: TExpr
    right: TExpr


@attrs.frozen
class Call(TExpr):
    fn: str
    args: tuple[TExpr, ...]


@attrs.frozen
class StateTest(TExpr):
    states: tuple[str, ...]


@attrs.frozen
class IfExp(TExpr):
    test: TExpr
    body: TExpr
    orelse: TExpr


# ---------------------------------------------------------------------------------------------
# Scope


@attrs.define
class Scope:
    """Names visible to one expression."""

    variables: Mapping[str, Type]
    constants: Mapping[str, Lit]
    defines: Mapping[str, TExpr]
    enums: Mapping[str, EnumType]  # enum type name -> type
    states: frozenset[str]
    params: Mapping[str, Type] = attrs.field(factory=dict)
    lets: Mapping[str, TExpr] = attrs.field(factory=dict)
    allow_params: bool = True
    what: str = "expression"
    silent: frozenset[str] = frozenset()  # names whose declaration failed (already reported)
    param_events: Mapping[str, list[str]] = attrs.field(factory=dict)  # parameter name -> events having it

    def enum_types_with(self, value: str) -> list[EnumType]:
        return [e for e in self.enums.values() if value in e.values]

    def all_names(self) -> list[str]:
        names = [*self.variables, *self.constants, *self.defines, *self.params, *self.lets]
        for e in self.enums.values():
            names.extend(e.values)
        return names


# ---------------------------------------------------------------------------------------------
# Checking

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_OTHER_OPS = {ast.Pow: "**", ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<",
              ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.In: "in", ast.NotIn: "not in",
              ast.Is: "is", ast.IsNot: "is not"}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def source_text(text: str) -> str:
    """The text that is parsed: surrounding blanks removed and line breaks joined, so a `|` block works."""
    return " ".join(text.strip().splitlines())


def parse(text: str) -> ast.expr:
    source = source_text(text)
    if not source:
        raise ExprError("the expression is empty")
    for col, ch in enumerate(source, start=1):
        if ch == "#":  # there are no strings in the language, so every # would start a Python comment
            raise ExprError("'#' would start a comment and silently drop the rest of the expression; put notes "
                            "in 'doc'", 1, col)
        if not ch.isascii():
            raise ExprError(f"character {ch!r} is not ASCII; expressions are written in plain ASCII", 1, col)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error in expression: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except (RecursionError, MemoryError):
        raise ExprError(f"expression nested too deeply (more than {MAX_DEPTH} levels); split it with defines") \
            from None
    depth = _depth(tree.body)
    if depth > MAX_DEPTH:
        raise ExprError(f"expression nested too deeply ({depth} levels, at most {MAX_DEPTH}); split it with "
                        f"defines")
    return tree.body


def _depth(node: ast.AST) -> int:
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(current))
    return deepest


def check(text: str, scope: Scope, expected: Type | None = None) -> TExpr:
    """Parse and type-check `text`; if `expected` is given the result must have that type."""
    source = source_text(text)
    node = parse(source)
    checker = _Checker(source, scope)
    result = checker.expr(node, expected)
    if expected is not None:
        result = _coerce(result, expected, node, f"{scope.what} must be {_describe(expected)}")
    return result


def _describe(t: Type) -> str:
    if isinstance(t, BoolType):
        return "a condition (bool)"
    return f"of type {t}"


def _err(node: ast.AST, message: str) -> ExprError:
    return ExprError(message, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1)


def _coerce(e: TExpr, want: Type, node: ast.AST, message: str) -> TExpr:
    """Adopt a polymorphic literal into `want`, or check that `e` already has type `want`."""
    if e.type == want:
        return e
    if isinstance(e, Lit) and e.polymorphic and isinstance(want, NumType):
        value = e.value
        assert isinstance(value, int | Fraction)
        if want.integral and Fraction(value).denominator != 1:
            raise _err(node, f"{message}, but {render_exact(value)} is not a whole number")
        return Lit(want, int(value) if want.integral else Fraction(value))
    if isinstance(want, NumType) and isinstance(e.type, NumType):
        if want.dim == e.type.dim and not want.integral and e.type.integral:
            return e  # an integral value fits a fractional slot of the same dimension
        if want.dim == e.type.dim and want.integral:
            raise _err(node, f"{message}, but this value can be fractional; wrap it in floor(...)")
    raise _err(node, f"{message}, got {e.type}")


def _unify_numeric(a: TExpr, b: TExpr, node: ast.AST, what: str) -> tuple[TExpr, TExpr, NumType]:
    """Operands of + - comparisons min max: same dimension; a bare literal adopts the other side."""
    joiner = "with" if what == "compare" else "and"
    if not isinstance(a.type, NumType) or not isinstance(b.type, NumType):
        raise _err(node, f"type error: cannot {what} {a.type} {joiner} {b.type}")
    at, bt = a.type, b.type
    if isinstance(a, Lit) and a.polymorphic and not (isinstance(b, Lit) and b.polymorphic):
        a = _coerce(a, NumType(bt.dim, bt.integral and Fraction(_num(a)).denominator == 1), node, "")
    elif isinstance(b, Lit) and b.polymorphic and not (isinstance(a, Lit) and a.polymorphic):
        b = _coerce(b, NumType(at.dim, at.integral and Fraction(_num(b)).denominator == 1), node, "")
    assert isinstance(a.type, NumType) and isinstance(b.type, NumType)
    if a.type.dim != b.type.dim:
        raise _err(node, f"type error: cannot {what} {a.type} {joiner} {b.type}")
    return a, b, NumType(a.type.dim, a.type.integral and b.type.integral)


def _num(e: Lit) -> int | Fraction:
    assert isinstance(e.value, int | Fraction) and not isinstance(e.value, bool)
    return e.value


class _Checker:
    def __init__(self, source: str, scope: Scope) -> None:
        self.source = source
        self.scope = scope

    def expr(self, node: ast.expr, expected: Type | None = None) -> TExpr:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise _err(node, f"'{_node_text(self.source, node)}' is not allowed in a spec expression "
                             f"({type(node).__name__}); use names, numbers, arithmetic, comparisons, "
                             f"and/or/not, 'x if c else y' and {', '.join(FUNCTIONS)}")
        result: TExpr = method(node, expected)
        return result

    # -- leaves

    def _Constant(self, node: ast.Constant, expected: Type | None) -> TExpr:
        value = node.value
        if isinstance(value, bool):
            return Lit(BOOL, value)
        if isinstance(value, int):
            return Lit(INT, value, polymorphic=True)
        if isinstance(value, float):
            text = ast.get_source_segment(self.source, node) or repr(value)
            return Lit(NumType("num", False), Fraction(text.replace("_", "")), polymorphic=True)
        raise _err(node, f"literal {value!r} is not allowed; only numbers and True/False are")

    def _Name(self, node: ast.Name, expected: Type | None) -> TExpr:
        name = node.id
        s = self.scope
        if name in s.lets:
            return Ref(s.lets[name].type, "let", name, s.lets[name])
        if name in s.params:
            if not s.allow_params:
                raise _err(node, f"event parameter '{name}' cannot be used in {s.what}")
            return Ref(s.params[name], "param", name)
        if name in s.variables:
            return Ref(s.variables[name], "var", name)
        if name in s.constants:
            lit = s.constants[name]
            return Ref(lit.type, "const", name, lit)
        if name in s.defines:
            return Ref(s.defines[name].type, "define", name, s.defines[name])
        if name == "NO_ORDER":
            return Lit(RefType(), 0)
        if name in ("True", "False"):
            return Lit(BOOL, name == "True")
        candidates = s.enum_types_with(name)
        if candidates:
            if isinstance(expected, EnumType) and expected in candidates:
                return EnumLit(expected, name)
            if len(candidates) == 1:
                return EnumLit(candidates[0], name)
            names = ", ".join(f"{c.name}.{name}" for c in candidates)
            raise _err(node, f"'{name}' is a value of several enums; write one of {names}")
        if name in s.states:
            raise _err(node, f"'{name}' is a state; test states with in_state({name})")
        if name in s.silent:
            raise ExprError("", suppressed=True)
        if name in s.param_events:
            if not s.allow_params:
                raise _err(node, f"event parameter '{name}' cannot be used in {s.what}")
            events = ", ".join(s.param_events[name])
            raise _err(node, f"'{name}' is a parameter of {events}, not of this event")
        kind = "value" if name[:1].isupper() else "variable"
        raise _err(node, f"unknown {kind} '{name}'{did_you_mean(name, s.all_names())}")

    def _Attribute(self, node: ast.Attribute, expected: Type | None) -> TExpr:
        # Only `Enum.VALUE`, to disambiguate values shared by several enums.
        if isinstance(node.value, ast.Name) and node.value.id in self.scope.enums:
            enum = self.scope.enums[node.value.id]
            if node.attr not in enum.values:
                raise _err(node, f"'{node.attr}' is not a value of {enum.name}"
                                 f"{did_you_mean(node.attr, enum.values)}")
            return EnumLit(enum, node.attr)
        raise _err(node, f"'{_node_text(self.source, node)}': attribute access is not allowed in a spec "
                         f"expression (only Enum.VALUE)")

    # -- operators

    def _UnaryOp(self, node: ast.UnaryOp, expected: Type | None) -> TExpr:
        operand = self.expr(node.operand)
        if isinstance(node.op, ast.Not):
            operand = _coerce(operand, BOOL, node.operand, "'not' needs a condition (bool)")
            return Unary(BOOL, "not", operand)
        if isinstance(node.op, ast.USub):
            if not isinstance(operand.type, NumType):
                raise _err(node, f"type error: cannot negate {operand.type}")
            if isinstance(operand, Lit):
                return Lit(operand.type, -_num(operand), operand.polymorphic)
            return Unary(operand.type, "-", operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        raise _err(node, "operator '~' is not allowed in a spec expression")

    def _BinOp(self, node: ast.BinOp, expected: Type | None) -> TExpr:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise _err(node, f"operator '{_OTHER_OPS.get(type(node.op), '?')}' is not allowed; use + - * /")
        left = self.expr(node.left)
        right = self.expr(node.right)
        if isinstance(left, Lit) and left.polymorphic and isinstance(right, Lit) and right.polymorphic:
            return _fold(op, left, right, node)  # 60 * 1000 stays a bare number that can become ms
        if op in "+-":
            left, right, t = _unify_numeric(left, right, node, "add" if op == "+" else "subtract")
            return Bin(t, op, left, right)
        if not isinstance(left.type, NumType) or not isinstance(right.type, NumType):
            verb = "multiply" if op == "*" else "divide"
            raise _err(node, f"type error: cannot {verb} {left.type} and {right.type}")
        if op == "*":
            return Bin(_mul_type(left.type, right.type, node), op, left, right)
        if isinstance(right, Lit) and _num(right) == 0:
            raise _err(node, "division by zero")
        return Bin(_div_type(left.type, right.type, node), op, left, right)

    def _BoolOp(self, node: ast.BoolOp, expected: Type | None) -> TExpr:
        op = "and" if isinstance(node.op, ast.And) else "or"
        values = tuple(
            _coerce(self.expr(v), BOOL, v, f"operands of '{op}' must be conditions (bool)") for v in node.values
        )
        return BoolOp(BOOL, op, values)

    def _Compare(self, node: ast.Compare, expected: Type | None) -> TExpr:
        parts: list[TExpr] = []
        left_node = node.left
        left = self.expr(left_node)
        for op_node, right_node in zip(node.ops, node.comparators, strict=True):
            op = _CMPOPS.get(type(op_node))
            if op is None:
                raise _err(node, f"comparison '{_OTHER_OPS.get(type(op_node), '?')}' is not allowed; use == != < "
                                 f"<= > >= (and in_state(...) for states)")
            right = self.expr(right_node, left.type if isinstance(left.type, EnumType) else None)
            if isinstance(right.type, EnumType) and isinstance(left_node, ast.Name) and isinstance(left, EnumLit):
                left = self.expr(left_node, right.type)
            parts.append(self._compare_pair(op, left, right, node))
            left, left_node = right, right_node
        if len(parts) == 1:
            return parts[0]
        return BoolOp(BOOL, "and", tuple(parts))

    def _compare_pair(self, op: str, left: TExpr, right: TExpr, node: ast.AST) -> TExpr:
        if isinstance(left.type, NumType) or isinstance(right.type, NumType):
            left, right, _ = _unify_numeric(left, right, node, "compare")
            return Cmp(BOOL, op, left, right)
        if left.type != right.type:
            raise _err(node, f"type error: cannot compare {left.type} with {right.type}")
        if op not in ("==", "!="):
            raise _err(node, f"type error: {left.type} values can only be compared with == and !=")
        return Cmp(BOOL, op, left, right)

    def _IfExp(self, node: ast.IfExp, expected: Type | None) -> TExpr:
        test = _coerce(self.expr(node.test), BOOL, node.test, "the condition of 'x if c else y' must be a bool")
        body = self.expr(node.body, expected)
        orelse = self.expr(node.orelse, expected if expected is not None else body.type)
        if isinstance(body.type, NumType) or isinstance(orelse.type, NumType):
            body, orelse, t = _unify_numeric(body, orelse, node, "choose between")
            return IfExp(t, test, body, orelse)
        if isinstance(body, EnumLit) and isinstance(orelse.type, EnumType):
            body = EnumLit(orelse.type, body.value) if body.value in orelse.type.values else body
        if body.type != orelse.type:
            raise _err(node, f"type error: the branches of 'x if c else y' have types {body.type} and "
                             f"{orelse.type}")
        return IfExp(body.type, test, body, orelse)

    def _Call(self, node: ast.Call, expected: Type | None) -> TExpr:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = _node_text(self.source, node.func)
            hint = did_you_mean(name, FUNCTIONS) if isinstance(node.func, ast.Name) else ""
            raise _err(node, f"call to '{name}' is not allowed; spec functions are "
                             f"{', '.join(FUNCTIONS)}{hint}")
        if node.keywords:
            raise _err(node, f"{node.func.id}() takes no keyword arguments")
        fn = node.func.id
        if fn == "in_state":
            return self._in_state(node)
        args = [self.expr(a) for a in node.args]
        if fn in ("min", "max"):
            if len(args) < 2:
                raise _err(node, f"{fn}() needs at least two arguments")
            # Anchor on the first argument that is not a bare literal; literals adopt its dimension.
            anchor = next((a for a in args if not (isinstance(a, Lit) and a.polymorphic)), args[0])
            unified = [_unify_numeric(anchor, a, node, f"take {fn} of")[1] for a in args]
            integral = all(isinstance(a.type, NumType) and a.type.integral for a in unified)
            assert isinstance(anchor.type, NumType)
            return Call(NumType(anchor.type.dim, integral), fn, tuple(unified))
        if len(args) != (2 if fn == "implies" else 1):
            raise _err(node, f"{fn}() takes {2 if fn == 'implies' else 1} argument(s), got {len(args)}")
        if fn == "implies":
            a = _coerce(args[0], BOOL, node.args[0], "implies() takes conditions")
            b = _coerce(args[1], BOOL, node.args[1], "implies() takes conditions")
            return Call(BOOL, fn, (a, b))
        arg = args[0]
        if fn == "sign":
            if arg.type == SIDE or (isinstance(arg.type, NumType)):
                return Call(INT, fn, (arg,))
            raise _err(node, f"sign() takes a side or a number, got {arg.type}")
        if not isinstance(arg.type, NumType):
            raise _err(node, f"{fn}() takes a number, got {arg.type}")
        if fn == "floor":
            return Call(NumType(arg.type.dim, True), fn, (arg,))
        return Call(arg.type, fn, (arg,))  # abs

    def _in_state(self, node: ast.Call) -> TExpr:
        if not node.args:
            raise _err(node, "in_state() needs at least one state name")
        names: list[str] = []
        for a in node.args:
            if not isinstance(a, ast.Name):
                raise _err(a, "in_state() takes state names")
            if a.id not in self.scope.states:
                raise _err(a, f"unknown state '{a.id}'{did_you_mean(a.id, self.scope.states)}")
            names.append(a.id)
        return StateTest(BOOL, tuple(names))


def _fold(op: str, a: Lit, b: Lit, node: ast.AST) -> Lit:
    x, y = Fraction(_num(a)), Fraction(_num(b))
    if op == "/":
        if y == 0:
            raise _err(node, "division by zero")
        value = div_exact(x, y)
    else:
        value = x + y if op == "+" else x - y if op == "-" else x * y
    integral = value.denominator == 1 and op != "/"
    return Lit(NumType("num", integral), int(value) if integral else value, polymorphic=True)


def _mul_type(a: NumType, b: NumType, node: ast.AST) -> NumType:
    integral = a.integral and b.integral
    if a.dim == "num":
        return NumType(b.dim, integral)
    if b.dim == "num":
        return NumType(a.dim, integral)
    if {a.dim, b.dim} == {"qty", "price"}:
        return NumType("money", False)
    raise _err(node, f"type error: cannot multiply {a} by {b} (only qty x price gives money; "
                     f"scale by plain numbers otherwise)")


def _div_type(a: NumType, b: NumType, node: ast.AST) -> NumType:
    if a.dim == b.dim:
        return NumType("num", False)
    if b.dim == "num":
        return NumType(a.dim, False)
    if a.dim == "money" and b.dim == "qty":
        return NumType("price", False)
    if a.dim == "money" and b.dim == "price":
        return NumType("qty", False)
    raise _err(node, f"type error: cannot divide {a} by {b}")


def _node_text(source: str, node: ast.AST) -> str:
    return ast.get_source_segment(source, node) or type(node).__name__


# ---------------------------------------------------------------------------------------------
# Emission


@attrs.define
class EmitContext:
    """How names and literals are spelled in one target. Literals are hoisted into a pool."""

    target: str  # "exact" | "runtime"
    var: Callable[[str], str]
    param: Callable[[str], str]
    state: str
    enum_value: Callable[[EnumType, str], str]
    literal: Callable[[TExpr], str]
    let: Callable[[str], str] = attrs.field(default=lambda name: f"l_{name}")
    const: Callable[[str], str] | None = None  # None: inline the constant's value


def emit(e: TExpr, cx: EmitContext) -> str:
    exact = cx.target == "exact"
    if isinstance(e, Lit):
        if isinstance(e.value, bool):
            return "True" if e.value else "False"
        if isinstance(e.type, RefType) or (isinstance(e.type, NumType) and e.type.integral):
            return repr(int(e.value))
        return cx.literal(e)
    if isinstance(e, EnumLit):
        return cx.enum_value(e.type if isinstance(e.type, EnumType) else SIDE, e.value)
    if isinstance(e, Ref):
        if e.kind == "var":
            return cx.var(e.name)
        if e.kind == "param":
            return cx.param(e.name)
        if e.kind == "let":
            return cx.let(e.name)
        assert e.target is not None
        if e.kind == "const" and cx.const is not None:
            return cx.const(e.name)
        return f"({emit(e.target, cx)})" if e.kind == "define" else emit(e.target, cx)
    if isinstance(e, Unary):
        inner = emit(e.operand, cx)
        if e.op == "not":
            return f"(not {inner})"
        if exact or _integral(e.type):
            return f"(-{inner})"
        return f"_C.minus({inner})"
    if isinstance(e, Bin):
        left, right = emit(e.left, cx), emit(e.right, cx)
        if e.op == "/":
            return f"{'div_exact' if exact else '_div'}({left}, {right})"
        if exact or _integral(e.type):
            return f"({left} {e.op} {right})"
        method = {"+": "add", "-": "subtract", "*": "multiply"}[e.op]
        return f"_C.{method}({left}, {right})"
    if isinstance(e, BoolOp):
        return "(" + f" {e.op} ".join(emit(v, cx) for v in e.values) + ")"
    if isinstance(e, Cmp):
        return f"({emit(e.left, cx)} {e.op} {emit(e.right, cx)})"
    if isinstance(e, IfExp):
        return f"({emit(e.body, cx)} if {emit(e.test, cx)} else {emit(e.orelse, cx)})"
    if isinstance(e, StateTest):
        return f"({cx.state} in {cx.literal(e)})"
    if isinstance(e, Call):
        args = [emit(a, cx) for a in e.args]
        if e.fn in ("min", "max"):
            return f"{e.fn}({', '.join(args)})"
        if e.fn == "implies":
            return f"((not {args[0]}) or {args[1]})"
        if e.fn == "abs":
            return f"abs({args[0]})" if exact or _integral(e.type) else f"_C.abs({args[0]})"
        if e.fn == "floor":
            if _integral(e.args[0].type):
                return args[0]
            return f"{'floor_exact' if exact else '_floor'}({args[0]})"
        if e.fn == "sign":
            if e.args[0].type == SIDE:
                return f"{'SIDE_SIGN_EXACT' if exact else '_SIDE_SIGN'}[{args[0]}]"
            return f"{'sign_exact' if exact else '_sign'}({args[0]})"
    raise AssertionError(f"cannot emit {e!r}")


def _integral(t: Type) -> bool:
    return isinstance(t, NumType) and t.integral


def names_used(e: TExpr, kind: str) -> set[str]:
    """Names of the given Ref kind used by `e`, looking through defines and lets."""
    out: set[str] = set()

    def walk(x: TExpr) -> None:
        if isinstance(x, Ref):
            if x.kind == kind:
                out.add(x.name)
            if x.target is not None and x.kind in ("define", "let"):
                walk(x.target)
        for child in _children(x):
            walk(child)

    walk(e)
    return out


def literals_in(e: TExpr) -> list[Lit]:
    """Number literals in `e` (used to pick interesting values when searching for guard overlaps)."""
    out: list[Lit] = []

    def walk(x: TExpr) -> None:
        if isinstance(x, Lit) and isinstance(x.type, NumType):
            out.append(x)
        if isinstance(x, Ref) and x.target is not None:
            walk(x.target)
        for child in _children(x):
            walk(child)

    walk(e)
    return out


def _children(x: TExpr) -> tuple[TExpr, ...]:
    if isinstance(x, Unary):
        return (x.operand,)
    if isinstance(x, Bin | Cmp):
        return (x.left, x.right)
    if isinstance(x, BoolOp):
        return x.values
    if isinstance(x, Call):
        return x.args
    if isinstance(x, IfExp):
        return (x.test, x.body, x.orelse)
    return ()


def render(e: TExpr) -> str:
    """Canonical spec text of a typed expression (docs, explain)."""
    if isinstance(e, Lit):
        if isinstance(e.value, bool):
            return "true" if e.value else "false"
        if isinstance(e.type, RefType):
            return "NO_ORDER"
        from pink_codegen.types import render_exact

        return render_exact(e.value)
    if isinstance(e, EnumLit):
        return e.value
    if isinstance(e, Ref):
        return e.name
    if isinstance(e, Unary):
        return f"not {_paren(e.operand)}" if e.op == "not" else f"-{_paren(e.operand)}"
    if isinstance(e, Bin):
        return f"{_paren(e.left)} {e.op} {_paren(e.right)}"
    if isinstance(e, BoolOp):
        return f" {e.op} ".join(_paren(v) for v in e.values)
    if isinstance(e, Cmp):
        return f"{render(e.left)} {e.op} {render(e.right)}"
    if isinstance(e, IfExp):
        return f"{_paren(e.body)} if {render(e.test)} else {_paren(e.orelse)}"
    if isinstance(e, StateTest):
        return f"in_state({', '.join(e.states)})"
    if isinstance(e, Call):
        return f"{e.fn}({', '.join(render(a) for a in e.args)})"
    raise AssertionError(e)


def _paren(e: TExpr) -> str:
    text = render(e)
    return f"({text})" if isinstance(e, Bin | BoolOp | Cmp | IfExp) else text
