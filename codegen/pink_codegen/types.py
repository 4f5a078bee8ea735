"""The spec language's types: dimensioned numbers, booleans, enums and order references.

Numbers carry a dimension so that a spec cannot add lots to prices or multiply PnL by leverage by
accident: `qty * price` is money, `money / qty` is a price, `qty + price` is a type error. Integral
numbers (lots, counts, milliseconds) are Python ints in both interpreters; the others are exact
Fractions in the model checker and Decimals in the runtime.
"""

from __future__ import annotations

from fractions import Fraction

import attrs

DIMENSIONS = ("qty", "price", "money", "time", "num")


@attrs.frozen
class NumType:
    dim: str
    integral: bool

    def __str__(self) -> str:
        for name, t in SCALAR_TYPES.items():
            if t == self:
                return name
        return f"{self.dim}{'' if self.integral else ' (fractional)'}"


@attrs.frozen
class BoolType:
    def __str__(self) -> str:
        return "bool"


@attrs.frozen
class EnumType:
    name: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


@attrs.frozen
class RefType:
    """An order reference: an opaque integer identity; 0 is NO_ORDER. Only == and != apply."""

    def __str__(self) -> str:
        return "order_ref"


Type = NumType | BoolType | EnumType | RefType

QTY = NumType("qty", True)
PRICE = NumType("price", False)
MONEY = NumType("money", False)
RATIO = NumType("num", False)
INT = NumType("num", True)
TIME_MS = NumType("time", True)
BOOL = BoolType()
ORDER_REF = RefType()
SIDE = EnumType("Side", ("NONE", "LONG", "SHORT"))

# Names a spec may write in `type:`. Machine-level `enums:` add their own names.
SCALAR_TYPES: dict[str, Type] = {
    "qty": QTY,
    "price": PRICE,
    "money": MONEY,
    "ratio": RATIO,
    "int": INT,
    "time_ms": TIME_MS,
    "bool": BOOL,
    "order_ref": ORDER_REF,
    "side": SIDE,
}


ExactValue = int | Fraction | bool | str


def is_numeric(t: Type) -> bool:
    return isinstance(t, NumType)


def exact_from_literal(t: Type, raw: object) -> ExactValue:
    """Convert a YAML literal to the exact value of type `t`; raise ValueError with a reason."""
    if isinstance(t, BoolType):
        if isinstance(raw, bool):
            return raw
        raise ValueError(f"expected true or false, got {describe(raw)}")
    if isinstance(t, EnumType):
        if isinstance(raw, str) and raw in t.values:
            return raw
        raise ValueError(f"expected one of {', '.join(t.values)}, got {describe(raw)}")
    if isinstance(t, RefType):
        if raw == "NO_ORDER" or raw == 0:
            return 0
        raise ValueError(f"an order_ref can only start as NO_ORDER, got {describe(raw)}")
    assert isinstance(t, NumType)
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"expected a number, got {describe(raw)}")
    try:
        value = Fraction(str(raw))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"expected a number, got {describe(raw)}") from None
    if t.integral:
        if value.denominator != 1:
            raise ValueError(f"{t} values are whole numbers, got {render_exact(value)}")
        return int(value)
    return value


def describe(value: object) -> str:
    """A user-facing description of a YAML value (never an internal repr)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def render_exact(value: ExactValue) -> str:
    """Human text of an exact value (docs, counterexamples)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        # Show a terminating decimal exactly when there is one.
        den = value.denominator
        twos = fives = 0
        while den % 2 == 0:
            den //= 2
            twos += 1
        while den % 5 == 0:
            den //= 5
            fives += 1
        if den == 1:
            places = max(twos, fives)
            scaled = value * 10**places
            sign = "-" if scaled < 0 else ""
            digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
            return f"{sign}{digits[:-places]}.{digits[-places:]}"
        return f"{value.numerator}/{value.denominator}"
    return str(value)
