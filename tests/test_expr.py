"""The expression language: dimensions, literal adoption, and the two interpreters' shared number semantics."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pink_codegen import expr as X
from pink_codegen.types import BOOL, INT, MONEY, PRICE, QTY, RATIO, SIDE, TIME_MS, EnumType, NumType
from pink_fsm.fsm.numbers import DIV_SCALE, div_exact, div_runtime, floor_exact, floor_runtime

SCOPE = X.Scope(
    variables={"lots": QTY, "px": PRICE, "cash_usdt": MONEY, "ratio": RATIO, "n": INT, "now_ms": TIME_MS,
               "side": SIDE, "flag": BOOL},
    constants={},
    defines={},
    enums={"Side": SIDE, "Role": EnumType("Role", ("ENTRY", "EXIT", "NONE"))},
    states=frozenset({"IDLE", "BUSY"}),
)


@pytest.mark.parametrize(("text", "expected"), [
    ("lots * px", MONEY),
    ("px * lots", MONEY),
    ("cash_usdt / lots", PRICE),
    ("cash_usdt / px", NumType("qty", False)),
    ("cash_usdt / cash_usdt", RATIO),
    ("floor(lots * ratio)", QTY),
    ("lots + 1", QTY),
    ("now_ms + 60 * 1000", TIME_MS),
    ("min(lots, 5)", QTY),
    ("sign(side) * (cash_usdt - lots * px)", MONEY),
    ("lots > 0 and in_state(IDLE)", BOOL),
    ("px if flag else 0", PRICE),
    ("side == LONG", BOOL),
    ("Role.NONE == Role.ENTRY", BOOL),
])
def test_types(text: str, expected: object) -> None:
    assert X.check(text, SCOPE).type == expected


@pytest.mark.parametrize(("text", "message"), [
    ("lots + px", "cannot add qty and price"),
    ("lots * lots", "cannot multiply qty by qty"),
    ("cash_usdt * px", "cannot multiply money by price"),
    ("side == 1", "cannot compare Side with int"),
    ("side < LONG", "can only be compared with == and !="),
    ("lots and flag", "operands of 'and' must be conditions"),
    ("NONE == NONE", "'NONE' is a value of several enums"),
    ("in_state(IDEL)", "unknown state 'IDEL'; did you mean 'IDLE'?"),
    ("lot > 0", "unknown variable 'lot'; did you mean 'lots'?"),
    ("IDLE", "'IDLE' is a state"),
    ("lots ** 2", "operator '**' is not allowed"),
    ("lots in (1, 2)", "comparison 'in' is not allowed"),
    ("1 / 0", "division by zero"),
])
def test_type_errors(text: str, message: str) -> None:
    with pytest.raises(X.ExprError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        X.check(text, SCOPE)


def test_fractional_value_into_a_whole_number_slot_needs_floor() -> None:
    with pytest.raises(X.ExprError, match=r"wrap it in floor"):
        X.check("lots * ratio", SCOPE, QTY)
    assert X.check("floor(lots * ratio)", SCOPE, QTY).type == QTY


def test_bare_literal_arithmetic_folds_and_adopts_a_dimension() -> None:
    e = X.check("60 * 1000", SCOPE)
    assert isinstance(e, X.Lit) and e.value == 60_000 and e.polymorphic


decimals = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False, allow_infinity=False,
                       places=8)


@given(a=decimals, b=decimals.filter(lambda d: d != 0))
def test_division_rounds_identically_in_both_interpreters(a: Decimal, b: Decimal) -> None:
    runtime = div_runtime(a, b)
    exact = div_exact(Fraction(a), Fraction(b))
    assert Fraction(runtime) == exact
    assert exact.denominator <= 10**DIV_SCALE
    assert abs(exact - Fraction(a) / Fraction(b)) <= Fraction(1, 2 * 10**DIV_SCALE)


def test_division_ties_round_half_to_even() -> None:
    tiny = Decimal(10) ** -(DIV_SCALE + 1)
    assert div_runtime(Decimal(5) * tiny, Decimal(1)) == 0          # ...0005 -> 0 (even)
    assert div_runtime(Decimal(15) * tiny, Decimal(1)) == Decimal(2) * tiny * 10  # ...0015 -> ...002


@given(x=decimals)
def test_floor_agrees(x: Decimal) -> None:
    assert floor_runtime(x) == floor_exact(Fraction(x))


def test_runtime_arithmetic_never_rounds_silently() -> None:
    from decimal import Inexact

    from pink_fsm.fsm.numbers import SPEC_CONTEXT

    with pytest.raises(Inexact):
        SPEC_CONTEXT.multiply(Decimal("1." + "1" * 40), Decimal("1." + "1" * 40))
