"""The ports of the runtime: what a venue adapter and a policy must provide, and the values crossing them.

Adapters (`pink_adapters.sim`, `pink_adapters.bingx`) implement `Venue`; strategies implement `Policy`. The
values here are plain, frozen and Decimal-valued: prices carry `_px`, quantities `qty` (base-asset units) or
`_lots`, money `_usdt`. User-stream frames cross the port raw (JSON-decoded BingX shapes): the kernel's
normaliser is the one place that validates them, whatever venue produced them.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import attrs

from pink_fsm.kernel.values import ContractSpec, Side, Symbol

# ------------------------------------------------------------------ market data


@attrs.frozen
class Quote:
    """One market observation of one symbol (top of book and last trade)."""

    ts_ms: int
    symbol: Symbol
    bid_px: Decimal
    ask_px: Decimal
    last_px: Decimal

    @property
    def mid_px(self) -> Decimal:
        return (self.bid_px + self.ask_px) / 2


# ------------------------------------------------------------------ orders, positions, account


class OrderType(enum.Enum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


@attrs.frozen
class OrderRequest:
    """One order as sent to the venue. `side` is the venue side ("BUY" | "SELL"); `price_px` is set for LIMIT
    orders only. A post-only LIMIT that would take liquidity is rejected by the venue, never filled."""

    client_id: str
    symbol: Symbol
    side: str
    order_type: OrderType
    qty: Decimal
    price_px: Decimal | None = None
    post_only: bool = False
    reduce_only: bool = False


class RejectCode(enum.Enum):
    """Why the venue refused a placement, mapped by the adapter from the venue's own error codes."""

    NONE = "NONE"
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE"  # a post-only LIMIT would have crossed the book
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    REDUCE_ONLY = "REDUCE_ONLY"  # a reduce-only order would open or enlarge a position
    INVALID = "INVALID"  # qty/price/symbol refused (min notional, precision, unknown symbol)
    OTHER = "OTHER"


@attrs.frozen
class PlaceResult:
    """The venue's synchronous answer to a placement: its order id, or why it refused the request (then no
    order exists at the venue). Fills, acks and later cancels arrive on the user stream, never here."""

    venue_id: str | None
    reject_code: RejectCode = RejectCode.NONE
    reject_reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.venue_id is not None and self.reject_code is RejectCode.NONE


@attrs.frozen
class VenueOrder:
    """An order the venue shows as open."""

    client_id: str
    venue_id: str
    symbol: Symbol
    side: str  # "BUY" | "SELL"
    order_type: OrderType
    qty: Decimal
    filled_qty: Decimal
    price_px: Decimal | None
    reduce_only: bool


@attrs.frozen
class VenuePosition:
    """A position the venue shows (one-way mode: one per symbol)."""

    symbol: Symbol
    side: Side  # LONG | SHORT
    qty: Decimal  # > 0, base-asset units
    entry_px: Decimal
    leverage: int


class VenueError(Exception):
    """The venue did not answer or answered with an error (transport, auth, rate limit). A probe that raises
    this is a probe error: the runtime treats the venue as not provably flat (D8)."""


@runtime_checkable
class Venue(Protocol):
    """The venue port used by the asyncio runtime shell. Every method may raise `VenueError`."""

    async def contracts(self, symbols: list[Symbol]) -> dict[Symbol, ContractSpec]: ...

    async def balance_usdt(self) -> Decimal: ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def positions(self) -> list[VenuePosition]: ...

    async def set_leverage(self, symbol: Symbol, leverage: int) -> None: ...

    async def place_order(self, request: OrderRequest) -> PlaceResult: ...

    async def cancel_order(self, symbol: Symbol, client_id: str) -> bool: ...

    def user_stream(self) -> AsyncIterator[Mapping[str, Any]]:
        """Raw user-stream frames (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE) in venue order."""
        ...

    def market_stream(self, symbols: list[Symbol]) -> AsyncIterator[Quote]: ...

    async def close(self) -> None: ...


# ------------------------------------------------------------------ policy


class Action(enum.Enum):
    HOLD = "HOLD"
    ENTER = "ENTER"
    EXIT = "EXIT"


@attrs.frozen
class SlotView:
    """What the policy may know about the slot. `state` is the slot machine's state name; `ts_ms` is when the
    view last changed (the runtime reuses an unchanged view; the scan's time is `MarketView.ts_ms`)."""

    ts_ms: int
    state: str
    flat: bool
    entries_allowed: bool  # not frozen, not halted, no order in flight
    symbol: Symbol | None
    side: Side
    open_qty: Decimal
    entry_px: Decimal  # VWAP of the entry fills; 0 when flat
    entry_ts_ms: int  # when the current trade's first entry fill arrived; 0 when flat
    unrealised_pnl_usdt: Decimal
    capital_usdt: Decimal
    exit_pending: bool  # an exit is already being worked


@attrs.frozen
class MarketView:
    """The latest quotes of the universe, and the quote that triggered this scan."""

    ts_ms: int
    quotes: Mapping[Symbol, Quote]
    trigger: Symbol


@attrs.frozen
class Decision:
    """What the policy wants. ENTER needs symbol, side, qty (base units) and conviction (the strategy's
    leverage, mapped by the kernel to an integer exchange leverage, D10); EXIT may carry a qty (None closes the
    active leg) and `urgent` (pre-empt a resting maker exit)."""

    action: Action
    symbol: Symbol | None = None
    side: Side = Side.NONE
    qty: Decimal | None = None
    conviction: Decimal = Decimal(1)
    urgent: bool = False
    reason: str = ""


HOLD = Decision(Action.HOLD)


@runtime_checkable
class Policy(Protocol):
    """A strategy. `decide` must be pure and fast: no I/O, no clock (use `market.ts_ms`), no unseeded
    randomness. `on_trade_closed` gives feedback (net PnL of a finished trade) for adaptive sizing."""

    def decide(self, market: MarketView, slot: SlotView) -> Decision: ...

    def on_trade_closed(self, symbol: Symbol, net_pnl_usdt: Decimal) -> None: ...
