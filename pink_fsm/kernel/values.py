"""Value types at the kernel's edge: parsed once, trusted inside. An invalid value cannot be constructed."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import attrs

from pink_fsm.fsm.types import Side

__all__ = [
    "ClientOrderId",
    "ContractSpec",
    "ExecId",
    "Side",
    "Symbol",
    "TradeId",
    "VenueOrderId",
    "parse_decimal",
]

QUOTE_ASSETS = ("USDT", "USDC")
# No price, quantity or amount on any contract comes near this; a larger number is a corrupt frame.
MAX_ABS_VALUE = Decimal("1e15")
_BASE = re.compile(r"^[A-Z0-9]{1,20}$")


def parse_decimal(raw: object, field: str, *, positive: bool = False, non_negative: bool = False) -> Decimal:
    """A finite Decimal from a venue or config value (str, int, Decimal; floats via their shortest repr).

    Raises ValueError naming the field: NaN, infinities, booleans, None and garbage never become numbers."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{field}: expected a number, got {raw!r}")
    try:
        value = Decimal(str(raw).strip()) if isinstance(raw, str | float) else Decimal(raw)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{field}: expected a number, got {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"{field}: expected a finite number, got {raw!r}")
    if abs(value) > MAX_ABS_VALUE or (value != 0 and value.adjusted() < -30):
        raise ValueError(f"{field}: {str(raw)[:40]} is outside any sane range (|x| <= {MAX_ABS_VALUE})")
    if positive and value <= 0:
        raise ValueError(f"{field}: must be > 0, got {value}")
    if non_negative and value < 0:
        raise ValueError(f"{field}: must be >= 0, got {value}")
    return value


@attrs.frozen(order=True, cache_hash=True)  # hashed on every quote lookup
class Symbol:
    """A perpetual contract, canonical `BASE-QUOTE` (BingX spelling). One normaliser for every spelling (D13):
    `Symbol.parse("FETUSDT") == Symbol.parse("fet-usdt") == Symbol.parse("FET-USDT")`."""

    base: str
    quote: str

    def __attrs_post_init__(self) -> None:
        if not _BASE.match(self.base) or self.quote not in QUOTE_ASSETS:
            raise ValueError(f"not a symbol: {self.base}-{self.quote}")

    @classmethod
    def parse(cls, raw: object) -> Symbol:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"symbol: expected text like FET-USDT, got {raw!r}")
        text = raw.strip().upper().replace("/", "-").replace("_", "-")
        if text.count("-") == 1:
            base, quote = text.split("-")
        else:
            quote = next((q for q in QUOTE_ASSETS if text.endswith(q) and len(text) > len(q)), "")
            base = text[: -len(quote)] if quote else ""
        if not base or quote not in QUOTE_ASSETS or not _BASE.match(base):
            raise ValueError(f"symbol: {raw!r} is not BASE-USDT (or BASE-USDC)")
        return cls(base, quote)

    def __str__(self) -> str:
        return f"{self.base}-{self.quote}"

    @property
    def compact(self) -> str:
        return f"{self.base}{self.quote}"


_CLIENT_ID = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_VENUE_ID = re.compile(r"^[0-9]{1,24}$")


@attrs.frozen
class ClientOrderId:
    """Our order id at the venue: 1-40 letters, digits or `_` (BingX's rule)."""

    value: str = attrs.field()

    @value.validator
    def _check(self, _: object, value: str) -> None:
        if not isinstance(value, str) or not _CLIENT_ID.match(value):
            raise ValueError(f"client order id: 1-40 letters, digits or _, got {value!r}")

    def __str__(self) -> str:
        return self.value


def _venue_id_text(raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(f"venue order id: digits only, got {raw!r}")
    return str(raw).strip()


@attrs.frozen
class VenueOrderId:
    """The venue's order id (BingX: a 19-digit integer, sent as text on the user stream)."""

    value: str = attrs.field(converter=_venue_id_text)

    @value.validator
    def _check(self, _: object, value: str) -> None:
        if not isinstance(value, str) or not _VENUE_ID.match(value):
            raise ValueError(f"venue order id: digits only, got {value!r}")

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class ExecId:
    """An execution's identity; frames without one get `<venue order id>:<cumulative qty>`."""

    value: str = attrs.field()

    @value.validator
    def _check(self, _: object, value: str) -> None:
        if not isinstance(value, str) or not 0 < len(value) <= 80 or not value.isprintable():
            raise ValueError(f"execution id: 1-80 printable characters, got {value!r}")


@attrs.frozen
class TradeId:
    value: str = attrs.field()

    @value.validator
    def _check(self, _: object, value: str) -> None:
        if not isinstance(value, str) or not _CLIENT_ID.match(value):
            raise ValueError(f"trade id: 1-40 letters, digits or _, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"contract {attribute.name}: must be a positive Decimal, got {value!r}")


@attrs.frozen
class ContractSpec:
    """What the kernel must know about a contract: lot and tick sizes, leverage cap, fee rates."""

    symbol: Symbol
    lot_size: Decimal = attrs.field(validator=_positive)
    tick_size: Decimal = attrs.field(validator=_positive)
    max_leverage: int = 20
    taker_fee_rate: Decimal = Decimal("0.0005")
    maker_fee_rate: Decimal = Decimal("0.0002")

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.max_leverage, int) or not 1 <= self.max_leverage <= 125:
            raise ValueError(f"contract max_leverage: 1-125, got {self.max_leverage!r}")

    def lots(self, qty: Decimal) -> int:
        """Exact lots of a base-asset quantity; ValueError when it is not a whole number of lots."""
        try:
            lots, rest = divmod(qty, self.lot_size)
        except ArithmeticError:
            raise ValueError(f"quantity {str(qty)[:40]} is not a usable number of lots") from None
        if rest != 0:
            raise ValueError(f"quantity {qty} is not a multiple of the lot size {self.lot_size}")
        return int(lots)

    def lots_floor(self, qty: Decimal) -> int:
        """Whole lots in a quantity, rounded down (for sizing); ValueError for an unusable quantity."""
        try:
            return int(qty // self.lot_size)
        except (ArithmeticError, ValueError, OverflowError):
            raise ValueError(f"quantity {str(qty)[:40]} is not a usable number of lots") from None

    def qty(self, lots: int) -> Decimal:
        return self.lot_size * lots
