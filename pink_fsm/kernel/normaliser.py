"""Turn raw venue frames (BingX user-stream shapes, already JSON-decoded) into typed venue events.

Everything is validated here, at the edge: a frame with a missing field, a string where a number belongs, NaN,
a negative quantity or an unknown symbol is refused with a message naming the field, and the kernel counts it.
The booked price of a fill is the venue's average fill price (`ap`) times the cumulative quantity (`z`), never
the order's price `p`, which for a MARKET order is only a protective bound (D2).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from pink_fsm.fsm.numbers import SPEC_CONTEXT
from pink_fsm.kernel.events import (
    AccountUpdate,
    FundingFee,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRef,
    OrderRejected,
    VenueEvent,
)
from pink_fsm.kernel.values import ClientOrderId, ExecId, Symbol, VenueOrderId, parse_decimal


class BadFrame(ValueError):
    """A venue frame that cannot be trusted; the message names the field."""


@attrs.frozen
class Normalised:
    events: tuple[VenueEvent, ...]


_FILL_STATUSES = {"PARTIALLY_FILLED", "FILLED"}
_END_STATUSES = {"CANCELED", "CANCELLED", "EXPIRED"}
_REJECT_STATUSES = {"FAILED", "REJECTED"}


def normalise_frame(frame: object) -> Normalised:
    """Typed events for one user-stream frame; BadFrame when it is malformed. Unknown event types give no
    events (the stream also carries listenKey and config frames)."""
    if not isinstance(frame, Mapping):
        raise BadFrame(f"frame: expected a JSON object, got {type(frame).__name__}")
    kind = frame.get("e")
    if not isinstance(kind, str) or not kind:
        raise BadFrame("e (event type): missing")
    ts_ms = _int(frame.get("E"), "E (event time)")
    if kind == "ORDER_TRADE_UPDATE":
        return Normalised(_order_update(_mapping(frame.get("o"), "o"), ts_ms))
    if kind == "ACCOUNT_UPDATE":
        return Normalised(_account_update(_mapping(frame.get("a"), "a"), ts_ms))
    return Normalised(())


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadFrame(f"{field}: expected an object, got {type(value).__name__}")
    return value


def _int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadFrame(f"{field}: expected an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise BadFrame(f"{field}: expected an integer, got {value!r}") from None
    if number < 0:
        raise BadFrame(f"{field}: must be >= 0, got {number}")
    return number


def _decimal(value: object, field: str, **checks: bool) -> Decimal:
    try:
        return parse_decimal(value, field, **checks)
    except ValueError as exc:
        raise BadFrame(str(exc)) from None


def _order_ref(o: Mapping[str, Any]) -> OrderRef:
    try:
        symbol = Symbol.parse(o.get("s"))
    except ValueError as exc:
        raise BadFrame(f"s: {exc}") from None
    raw_client = o.get("c") or ""
    raw_venue = o.get("i")
    try:
        client = ClientOrderId(str(raw_client)) if raw_client else None
        venue = VenueOrderId(raw_venue) if raw_venue not in (None, "", 0, "0") else None
    except ValueError as exc:
        raise BadFrame(str(exc)) from None
    if client is None and venue is None:
        raise BadFrame("c/i: the frame names no order (no client id, no order id)")
    return OrderRef(symbol, client, venue)


def _order_update(o: Mapping[str, Any], ts_ms: int) -> tuple[VenueEvent, ...]:
    ref = _order_ref(o)
    status = str(o.get("X") or "").upper()
    execution = str(o.get("x") or "").upper()
    if not status:
        raise BadFrame("X (order status): missing")
    if status not in _FILL_STATUSES | _END_STATUSES | _REJECT_STATUSES | {"NEW", "PENDING"}:
        raise BadFrame(f"X (order status): unknown status {status!r}")
    events: list[VenueEvent] = []
    cum_qty = _decimal(o.get("z", "0"), "z (cumulative filled qty)", non_negative=True)
    # A terminal frame also carries the final executed qty: book it first, so no fill can follow the cancel.
    if status in _FILL_STATUSES or (status in _END_STATUSES and cum_qty > 0) or execution == "TRADE":
        events.append(_fill(o, ref, ts_ms, cum_qty))
    if status in _END_STATUSES:
        events.append(OrderCancelled(ts_ms, ref, expired=status == "EXPIRED"))
    elif status in _REJECT_STATUSES:
        events.append(OrderRejected(ts_ms, ref, reason=str(o.get("r") or status)))
    elif status in ("NEW", "PENDING") and execution in ("NEW", ""):
        events.append(OrderAccepted(ts_ms, ref))
    return tuple(events)


def _fill(o: Mapping[str, Any], ref: OrderRef, ts_ms: int, cum_qty: Decimal) -> OrderFilled:
    if cum_qty <= 0:
        raise BadFrame("z (cumulative filled qty): a fill must have executed something")
    avg_px = _decimal(o.get("ap"), "ap (average fill price)", positive=True)
    fee_raw = o.get("n")
    # BingX reports the commission as a negative number when paid; the book counts fees paid as positive.
    fee = None if fee_raw in (None, "") else -_decimal(fee_raw, "n (commission)")
    # Without a venue trade id, the execution is named by order, cumulative qty and fee: the same execution
    # reported again with its settled fee is a new report, an exact repeat is not.
    exec_raw = o.get("t") or f"{ref.venue_id or ref.client_id}:{cum_qty.normalize()}:{fee_raw or '-'}"
    try:
        exec_id = ExecId(str(exec_raw))
    except ValueError as exc:
        raise BadFrame(str(exc)) from None
    is_maker = str(o.get("o") or "").upper() == "LIMIT"
    try:
        quote = SPEC_CONTEXT.multiply(cum_qty, avg_px)  # exact, or refused: never silently rounded
    except ArithmeticError:
        raise BadFrame(f"z x ap: {cum_qty} x {avg_px} has more digits than any venue sends") from None
    return OrderFilled(ts_ms, ref, exec_id, cum_qty, quote, fee, is_maker)


def _account_update(a: Mapping[str, Any], ts_ms: int) -> tuple[VenueEvent, ...]:
    balances = a.get("B") or []
    if not isinstance(balances, list):
        raise BadFrame("a.B: expected a list of balances")
    wallet: Decimal | None = None
    change: Decimal | None = None
    for entry in balances:
        entry = _mapping(entry, "a.B[]")
        if str(entry.get("a") or "").upper() == "USDT":
            wallet = _decimal(entry.get("wb"), "a.B[USDT].wb (wallet balance)", non_negative=True)
            if entry.get("bc") not in (None, ""):
                change = _decimal(entry.get("bc"), "a.B[USDT].bc (balance change)")
    events: list[VenueEvent] = [AccountUpdate(ts_ms, wallet if wallet else None)]
    if str(a.get("m") or "").upper() == "FUNDING_FEE" and change is not None:
        events.insert(0, FundingFee(ts_ms, None, change))
    return tuple(events)
