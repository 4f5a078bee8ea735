"""Number semantics shared by the generated machines (Decimal) and the model checker (Fraction).

The spec language promises that both interpreters compute the same values. Addition, subtraction,
multiplication and negation are exact in both: Fractions are exact by nature, and the runtime's
Decimal context (`SPEC_CONTEXT`) traps `Inexact`, so a result that would need rounding raises
instead of drifting. Division is the one rounding operation: both sides compute the exact quotient
and round it half-to-even to `DIV_SCALE` decimal places.
"""

from __future__ import annotations

import math
from decimal import (
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Clamped,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Underflow,
)
from fractions import Fraction

DIV_SCALE = 12
_DIV_UNIT = 10**DIV_SCALE

# 60 significant digits hold any product of in-bounds spec values; a result that needs more raises
# decimal.Inexact (never a silent rounding).
SPEC_CONTEXT = Context(
    prec=60,
    rounding=ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    traps=[InvalidOperation, DivisionByZero, Overflow, Underflow, Inexact, Rounded, Clamped],
)


def div_runtime(a: Decimal | int, b: Decimal | int) -> Decimal:
    """a / b rounded half-to-even to DIV_SCALE places, computed exactly (no double rounding)."""
    q = _as_fraction(a) / _as_fraction(b)
    return Decimal(round(q * _DIV_UNIT)).scaleb(-DIV_SCALE, SPEC_CONTEXT)


def div_exact(a: int | Fraction, b: int | Fraction) -> Fraction:
    """The model checker's a / b: the same rounding as `div_runtime`, over Fractions."""
    return Fraction(round(Fraction(a) / Fraction(b) * _DIV_UNIT), _DIV_UNIT)


def floor_runtime(x: Decimal | int) -> int:
    if isinstance(x, int):
        return x
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


def floor_exact(x: int | Fraction) -> int:
    return math.floor(x)


def sign_runtime(x: Decimal | int) -> int:
    return (x > 0) - (x < 0)


def sign_exact(x: int | Fraction) -> int:
    return (x > 0) - (x < 0)


def _as_fraction(x: Decimal | int) -> Fraction:
    if isinstance(x, int):
        return Fraction(x)
    return Fraction(*x.as_integer_ratio())


def to_exact(x: Decimal | int | Fraction) -> int | Fraction:
    """A runtime number as the model checker's exact value (for conformance comparisons)."""
    if isinstance(x, Decimal):
        f = _as_fraction(x)
        return f
    return x


def bankers_round(x: Decimal | Fraction) -> int:
    """Round half to even (D10: conviction -> integer exchange leverage)."""
    if isinstance(x, Decimal):
        return int(x.to_integral_value(rounding=ROUND_HALF_EVEN))
    return round(x)
