"""The simulated venue's engine: a deterministic, synchronous BingX-like USDT-M perpetual venue in virtual time.

Nothing here reads a clock, a socket or an unseeded random source: time moves only when the caller calls
`advance(to_ms)`, and the same config gives the same quotes and the same user-stream frames, byte for byte.

Example::

    engine = SimEngine(SimConfig(seed=1, symbols=default_symbols(["FET-USDT"])))
    engine.advance(engine.now_ms)                      # the first quote
    engine.place_order(OrderRequest("e1", FET, "BUY", OrderType.MARKET, Decimal("100")))
    frames = engine.drain_frames()                    # NEW, TRADE ..., ACCOUNT_UPDATE

Model (see docs/sim.md): one-way mode, one net position per symbol on one cross wallet in USDT. A taker order
walks a synthetic book of `depth_lots` per level, each level one tick worse; a resting LIMIT fills at its own
price when a later quote crosses it, at most `resting_lots_per_quote` per quote and side. Prices and quantities
are integers (ticks, lots) inside, Decimal at the edge; money is Decimal and exact.
"""

from __future__ import annotations

import random
import sys
from collections import deque
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Any, TypeVar

import attrs

from pink_adapters.sim.config import SimConfig, SimSymbol
from pink_adapters.sim.feed import Tick, _rng_from_state, _rng_state, make_feed
from pink_adapters.sim.lifecycle import OrderLifecycles
from pink_fsm.kernel.values import ClientOrderId, ContractSpec, Side, Symbol
from pink_fsm.ports import OrderRequest, OrderType, PlaceResult, Quote, RejectCode, VenueOrder, VenuePosition

__all__ = ["SimEngine", "SimFill", "SimFunding", "SimLedger", "SimOrder", "SimOverflow"]

SNAPSHOT_VERSION = 1
ZERO = Decimal(0)
MONEY_QUANTUM = Decimal("1e-8")  # fees and funding are rounded to 8 decimals, half-even, like BingX
DERIVED_PX_QUANTUM = Decimal("1e-10")  # average and entry prices that do not terminate
FUNDING_RATE_DECIMALS = 6
# Exact arithmetic for money; a division is the only rounding and is always quantised explicitly.
_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
VENUE_ID_BASE = 1_800_000_000_000_000_000  # venue order ids are 19-digit numbers, like BingX's
TRADE_ID_BASE = 500_000_000
NO_BUY = -1  # `max_buy_ticks` when no BUY rests
NO_SELL = sys.maxsize  # `min_sell_ticks` when no SELL rests

# Order statuses, as BingX spells them on the user stream (X).
NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED = "NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"
FINAL_STATUSES = frozenset({FILLED, CANCELED, EXPIRED})
LIQUIDATION = "LIQUIDATION"
_T = TypeVar("_T")


class SimOverflow(RuntimeError):
    """A bound of the venue was hit (e.g. frames piled up because nobody called `drain_frames`)."""


# ------------------------------------------------------------------ values shown to callers


@attrs.frozen
class SimOrder:
    """An order as the venue knows it (open or final). `ref_px` is the `p` of the frames: the limit price, or
    for a MARKET order the quote price used as protective reference."""

    client_id: str
    venue_id: str
    symbol: Symbol
    side: str
    order_type: str  # MARKET | LIMIT | LIQUIDATION
    qty: Decimal
    price_px: Decimal | None
    ref_px: Decimal
    post_only: bool
    reduce_only: bool
    status: str
    filled_qty: Decimal
    avg_px: Decimal
    fee_usdt: Decimal
    created_ms: int
    updated_ms: int


@attrs.frozen
class SimFill:
    """One execution. `realised_pnl_usdt` is qty x price change of the closed part (never x leverage)."""

    ts_ms: int
    trade_id: str
    venue_id: str
    client_id: str
    symbol: Symbol
    side: str
    qty: Decimal
    px: Decimal
    fee_usdt: Decimal
    realised_pnl_usdt: Decimal
    is_maker: bool


@attrs.frozen
class SimFunding:
    """One funding payment; `amount_usdt` < 0 is paid by the account."""

    ts_ms: int
    symbol: Symbol
    rate: Decimal
    mark_px: Decimal
    amount_usdt: Decimal


@attrs.frozen
class SimLedger:
    """The wallet's exact decomposition: wallet = initial + realised - fees + funding + insurance."""

    initial_usdt: Decimal
    realised_pnl_usdt: Decimal
    fees_usdt: Decimal
    funding_usdt: Decimal
    insurance_usdt: Decimal  # shortfalls the venue absorbed so that the wallet never goes below zero
    wallet_usdt: Decimal


# ------------------------------------------------------------------ mutable venue state


@attrs.define
class _Order:
    seq: int
    client_id: str
    venue_id: str
    index: int
    side: str
    sign: int
    order_type: str
    qty_lots: int
    px_ticks: int | None
    ref_px: Decimal
    post_only: bool
    reduce_only: bool
    created_ms: int
    updated_ms: int
    status: str = NEW
    filled_lots: int = 0
    cum_quote_usdt: Decimal = ZERO
    cum_fee_usdt: Decimal = ZERO
    last_trade_id: str = "0"

    @property
    def remaining_lots(self) -> int:
        return self.qty_lots - self.filled_lots


class _Sym:
    """Per-symbol venue state: the last quote (as ticks and as Quote), resting orders, the position."""

    __slots__ = ("ask_ticks", "bid_ticks", "contract", "index", "leverage", "liq_ticks", "lot", "max_buy_ticks",
                 "min_sell_ticks", "pos_cost_usdt", "pos_lots", "quote", "resting", "spec", "symbol", "tick")

    def __init__(self, index: int, spec: SimSymbol, leverage: int) -> None:
        self.index = index
        self.spec = spec
        self.contract: ContractSpec = spec.contract
        self.symbol = spec.symbol
        self.lot = spec.contract.lot_size
        self.tick = spec.contract.tick_size
        self.bid_ticks = 0
        self.ask_ticks = 0
        self.quote: Quote | None = None
        self.resting: list[_Order] = []
        self.max_buy_ticks = NO_BUY
        self.min_sell_ticks = NO_SELL
        self.pos_lots = 0  # signed: > 0 long, < 0 short
        self.pos_cost_usdt = ZERO  # entry cost of the open quantity (qty x VWAP), exact
        self.leverage = min(leverage, spec.contract.max_leverage)
        self.liq_ticks = NO_BUY  # long: liquidate when bid <= this; short: when ask >= this

    def px(self, ticks: int) -> Decimal:
        return self.tick * ticks

    def qty(self, lots: int) -> Decimal:
        return self.lot * lots

    def reducible_lots(self, sign: int) -> int:
        """Lots an order of this sign can close without opening or enlarging the position."""
        pos = self.pos_lots
        return abs(pos) if pos and (pos > 0) != (sign > 0) else 0


def _fmt(value: Decimal) -> str:
    return "0" if not value else format(value, "f")


def _derived_px(quote_usdt: Decimal, qty: Decimal) -> Decimal:
    """quote / qty, exact when it terminates within DERIVED_PX_QUANTUM, else rounded half-even to it."""
    value = _CTX.divide(quote_usdt, qty)
    return value if value.as_tuple().exponent >= -10 else value.quantize(DERIVED_PX_QUANTUM, context=_CTX)  # type: ignore[operator]


def _money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN, context=_CTX)


class SimEngine:
    """The venue. Synchronous and in virtual time only; see the module docstring and docs/sim.md."""

    def __init__(self, config: SimConfig) -> None:
        if not isinstance(config, SimConfig):
            raise TypeError(f"SimEngine: expected a SimConfig, got {type(config).__name__}")
        self.config = config
        self._feed = make_feed(config)
        self._syms = [_Sym(i, s, config.default_leverage) for i, s in enumerate(config.symbols)]
        self._by_symbol = {s.symbol: s for s in self._syms}
        self._funding_rngs = [random.Random(f"pink-sim:{config.seed}:{s.symbol}:funding") for s in config.symbols]
        self._now_ms = config.start_ms
        interval = config.funding_interval_ms
        self._next_funding_ms = (config.start_ms // interval + 1) * interval
        self._wallet_usdt = config.initial_balance_usdt
        self._realised_usdt = ZERO
        self._fees_usdt = ZERO
        self._funding_usdt = ZERO
        self._insurance_usdt = ZERO
        self._open: dict[str, _Order] = {}  # by client id; liquidations never rest, so never appear here
        self._history: deque[_Order] = deque(maxlen=config.max_history)
        self._fills: deque[SimFill] = deque(maxlen=config.max_history)
        self._fundings: deque[SimFunding] = deque(maxlen=config.max_history)
        self._outbox: list[dict[str, Any]] = []
        self._order_seq = 0
        self._trade_seq = 0
        # Every accepted order runs the declared venue model (spec/venue.yaml) alongside: each report the sim
        # emits must be the one the spec's row emits (VenueSpecBreach otherwise).
        self._lifecycles = OrderLifecycles()

    # ------------------------------------------------------------------ time and market data

    @property
    def now_ms(self) -> int:
        return self._now_ms

    def contracts(self) -> dict[Symbol, ContractSpec]:
        return {s.symbol: s.contract for s in self._syms}

    def quote(self, symbol: Symbol) -> Quote | None:
        """The latest quote of a symbol (None before its first)."""
        return self._sym(symbol).quote

    def next_event_ms(self) -> int | None:
        """When the next quote or funding happens; None once a replay feed (or `end_ms`) is exhausted."""
        ts_ms = self._feed.peek_ts()
        return None if ts_ms is None else min(ts_ms, self._next_funding_ms)

    def advance(self, to_ms: int) -> list[Quote]:
        """Move virtual time to `to_ms`: every quote with ts <= to_ms in time order, each matched against the
        resting orders of its symbol, and funding at its times (after the quotes of the same millisecond)."""
        if to_ms < self._now_ms:
            raise ValueError(f"advance: time goes forward only (now {self._now_ms}, asked {to_ms})")
        quotes: list[Quote] = []
        feed, syms = self._feed, self._syms
        while True:
            ts_ms = feed.peek_ts()
            if ts_ms is None or ts_ms > to_ms:
                break
            if self._next_funding_ms < ts_ms:
                self._fund()
                continue
            self._now_ms = ts_ms
            for tick in feed.pop():
                self._on_tick(syms[tick.sym_index], tick)
                quotes.append(tick.quote)
        while self._next_funding_ms <= to_ms:
            self._fund()
        self._now_ms = to_ms
        return quotes

    def _on_tick(self, st: _Sym, tick: Tick) -> None:
        bid, ask = tick.bid_ticks, tick.ask_ticks
        st.bid_ticks, st.ask_ticks, st.quote = bid, ask, tick.quote
        # Integer comparisons only, unless an order can fill or the position is at its bankruptcy price.
        if ask <= st.max_buy_ticks or bid >= st.min_sell_ticks:
            self._match(st)
        pos = st.pos_lots
        if pos and ((pos > 0 and bid <= st.liq_ticks) or (pos < 0 and ask >= st.liq_ticks)):
            self._liquidate(st)

    # ------------------------------------------------------------------ account

    def balance_usdt(self) -> Decimal:
        """The wallet balance: initial + realised PnL - fees + funding (+ insurance cover, normally 0)."""
        return self._wallet_usdt

    def available_usdt(self) -> Decimal:
        """Wallet minus the margin of open positions and of open orders that can open exposure."""
        used = ZERO
        for st in self._syms:
            if st.pos_lots:
                used += _CTX.divide(st.pos_cost_usdt, st.leverage)
        for o in self._open.values():
            if not o.reduce_only and o.px_ticks is not None:
                st = self._syms[o.index]
                used += _CTX.divide(st.qty(o.remaining_lots) * st.px(o.px_ticks), st.leverage)
        return _money(self._wallet_usdt - used)

    def ledger(self) -> SimLedger:
        return SimLedger(self.config.initial_balance_usdt, self._realised_usdt, self._fees_usdt, self._funding_usdt,
                         self._insurance_usdt, self._wallet_usdt)

    def set_leverage(self, symbol: Symbol, leverage: int) -> None:
        """Set the symbol's exchange leverage (1..max_leverage); ValueError otherwise."""
        st = self._sym(symbol)
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= st.contract.max_leverage:
            raise ValueError(f"set_leverage {symbol}: leverage must be an integer in 1..{st.contract.max_leverage}, "
                             f"got {leverage!r}")
        st.leverage = leverage
        self._emit({"e": "ACCOUNT_CONFIG_UPDATE", "E": self._now_ms,
                    "ac": {"s": str(symbol), "l": leverage, "S": leverage, "mt": "cross"}})

    def leverage(self, symbol: Symbol) -> int:
        return self._sym(symbol).leverage

    def positions(self) -> list[VenuePosition]:
        return [VenuePosition(st.symbol, Side.LONG if st.pos_lots > 0 else Side.SHORT, st.qty(abs(st.pos_lots)),
                              _derived_px(st.pos_cost_usdt, st.qty(abs(st.pos_lots))), st.leverage)
                for st in self._syms if st.pos_lots]

    def open_orders(self) -> list[VenueOrder]:
        return [self._venue_order(o) for o in sorted(self._open.values(), key=lambda o: o.seq)]

    def order_history(self) -> list[SimOrder]:
        """Final orders (filled, cancelled, expired, liquidations), oldest first; at most max_history."""
        return [self._sim_order(o) for o in self._history]

    def order(self, client_id: str) -> SimOrder | None:
        """An open order by client id, else the latest final one with that id, else None."""
        if client_id in self._open:
            return self._sim_order(self._open[client_id])
        for o in reversed(self._history):
            if o.client_id == client_id:
                return self._sim_order(o)
        return None

    @property
    def fills(self) -> list[SimFill]:
        return list(self._fills)

    @property
    def fundings(self) -> list[SimFunding]:
        return list(self._fundings)

    def drain_frames(self) -> list[dict[str, Any]]:
        """User-stream frames produced since the last drain, in venue order."""
        frames, self._outbox = self._outbox, []
        return frames

    # ------------------------------------------------------------------ orders

    def place_order(self, request: OrderRequest) -> PlaceResult:
        """Validate and accept (venue id, NEW frame, immediate taker fills) or refuse (no order, no frames)."""
        checked = self._check(request)
        if isinstance(checked, PlaceResult):
            return checked
        st, lots, px_ticks, ref_px, crosses = checked
        self._order_seq += 1
        o = _Order(self._order_seq, request.client_id, str(VENUE_ID_BASE + self._order_seq), st.index,
                   request.side, 1 if request.side == "BUY" else -1, request.order_type.value, lots, px_ticks, ref_px,
                   request.post_only, request.reduce_only, self._now_ms, self._now_ms)
        self._open[o.client_id] = o
        self._lifecycles.accepted(o.seq, market=px_ticks is None, post_only=o.post_only, reduce_only=o.reduce_only,
                                  lots=lots)
        self._emit(self._order_frame(o, NEW, NEW, ZERO))
        self._lifecycles.reported(o.seq, "ack", NEW, 0)
        if px_ticks is None:
            self._walk(st, o, None)
            if o.status not in FINAL_STATUSES:
                # The synthetic book has max_depth_levels levels; what is left after them expires.
                self._finish(o, EXPIRED)
        else:
            if crosses:
                self._walk(st, o, px_ticks)
            if o.status not in FINAL_STATUSES:
                st.resting.append(o)
                self._refresh_resting(st)
        return PlaceResult(o.venue_id)

    def _refuse(self, code: RejectCode, reason: str) -> PlaceResult:
        return PlaceResult(None, code, reason)

    def _check(self, r: OrderRequest) -> PlaceResult | tuple[_Sym, int, int | None, Decimal, bool]:
        """The venue's validation, in BingX's order; a refusal leaves no trace (no order, no frame)."""
        invalid = RejectCode.INVALID
        st = self._by_symbol.get(r.symbol)
        if st is None:
            return self._refuse(invalid, f"symbol {r.symbol} is not listed")
        try:
            ClientOrderId(r.client_id)
        except ValueError as exc:
            return self._refuse(invalid, str(exc))
        if r.client_id in self._open:
            return self._refuse(invalid, f"client order id {r.client_id} is already used by an open order")
        if r.side not in ("BUY", "SELL"):
            return self._refuse(invalid, f"side must be BUY or SELL, got {r.side!r}")
        if not isinstance(r.order_type, OrderType):
            return self._refuse(invalid, f"order type must be MARKET or LIMIT, got {r.order_type!r}")
        if not isinstance(r.qty, Decimal) or not r.qty.is_finite() or r.qty <= 0:
            return self._refuse(invalid, f"quantity must be a positive Decimal, got {r.qty!r}")
        try:
            lots = st.contract.lots(r.qty)
        except ValueError as exc:
            return self._refuse(invalid, str(exc))
        if len(self._open) >= self.config.max_open_orders:
            return self._refuse(RejectCode.OTHER, f"at most {self.config.max_open_orders} open orders")
        if st.quote is None:
            return self._refuse(invalid, f"{r.symbol} has no quote yet (advance the venue first)")
        px_ticks: int | None = None
        if r.order_type is OrderType.LIMIT:
            px = r.price_px
            if not isinstance(px, Decimal) or not px.is_finite() or px <= 0:
                return self._refuse(invalid, f"a LIMIT order needs a positive Decimal price, got {px!r}")
            ticks, rest = divmod(px, st.tick)
            if rest != 0:
                return self._refuse(invalid, f"price {px} is not a multiple of the tick {st.tick}")
            px_ticks = int(ticks)
        elif r.post_only:
            return self._refuse(invalid, "post-only applies to LIMIT orders only")
        sign = 1 if r.side == "BUY" else -1
        ref_ticks = px_ticks if px_ticks is not None else (st.ask_ticks if sign > 0 else st.bid_ticks)
        ref_px = st.px(ref_ticks)
        if st.qty(lots) * ref_px < st.spec.min_notional_usdt:
            return self._refuse(invalid, f"notional {st.qty(lots) * ref_px} is below the minimum "
                                         f"{st.spec.min_notional_usdt} USDT")
        crosses = px_ticks is not None and (px_ticks >= st.ask_ticks if sign > 0 else px_ticks <= st.bid_ticks)
        if r.post_only and crosses:
            return self._refuse(RejectCode.POST_ONLY_WOULD_TAKE,
                                f"post-only {r.side} at {ref_px} would take (bid {st.quote.bid_px}, ask "
                                f"{st.quote.ask_px})")
        if r.reduce_only and lots > st.reducible_lots(sign):
            return self._refuse(RejectCode.REDUCE_ONLY, f"reduce-only {r.side} {r.qty} would open or enlarge the "
                                                        f"position ({st.qty(st.pos_lots)} {r.symbol})")
        opening_lots = 0 if r.reduce_only else lots - st.reducible_lots(sign)
        if opening_lots > 0:
            need_usdt = st.qty(opening_lots) * ref_px
            limit_usdt = self.available_usdt() * st.leverage
            if need_usdt > limit_usdt:
                return self._refuse(RejectCode.INSUFFICIENT_MARGIN,
                                    f"margin is not enough: notional {need_usdt} > available x leverage {limit_usdt}")
        return st, lots, px_ticks, ref_px, crosses

    def cancel_order(self, symbol: Symbol, client_id: str) -> bool:
        """Cancel an open order; False when it is unknown or already final. The CANCELED frame carries the final
        cumulative qty, average price and commission, so no fill can follow it."""
        o = self._open.get(client_id)
        if o is None or self._syms[o.index].symbol != symbol:
            return False
        self._finish(o, CANCELED)
        return True

    # ------------------------------------------------------------------ matching

    def _walk(self, st: _Sym, o: _Order, limit_ticks: int | None) -> None:
        """A taker execution: one fill per synthetic level, each level one tick worse, up to the limit price."""
        step = o.sign
        level = st.ask_ticks if step > 0 else st.bid_ticks
        depth = st.spec.depth_lots
        for _ in range(self.config.max_depth_levels):
            lots = min(o.remaining_lots, depth)
            if o.reduce_only:
                lots = min(lots, st.reducible_lots(o.sign))
            if lots <= 0 or level <= 0:
                break
            if limit_ticks is not None and (level - limit_ticks) * step > 0:
                break
            self._execute(st, o, lots, level, is_maker=False)
            level += step

    def _match(self, st: _Sym) -> None:
        """Fill resting orders crossed by the latest quote at their own price, best price first, then by time;
        each side gets `resting_lots_per_quote` of liquidity per quote."""
        buys = sorted((o for o in st.resting if o.sign > 0 and st.ask_ticks <= (o.px_ticks or 0)),
                      key=lambda o: (-(o.px_ticks or 0), o.seq))
        sells = sorted((o for o in st.resting if o.sign < 0 and st.bid_ticks >= (o.px_ticks or 0)),
                       key=lambda o: (o.px_ticks or 0, o.seq))
        for side_orders in (buys, sells):
            liquidity_lots = st.spec.resting_lots_per_quote
            for o in side_orders:
                if liquidity_lots <= 0:
                    break
                if o.status in FINAL_STATUSES:  # expired by an earlier fill of this quote
                    continue
                lots = min(o.remaining_lots, liquidity_lots)
                if o.reduce_only:
                    lots = min(lots, st.reducible_lots(o.sign))
                if lots <= 0:
                    self._finish(o, EXPIRED)
                    continue
                liquidity_lots -= lots
                assert o.px_ticks is not None
                self._execute(st, o, lots, o.px_ticks, is_maker=True)
        self._refresh_resting(st)

    def _refresh_resting(self, st: _Sym) -> None:
        st.resting = [o for o in st.resting if o.status not in FINAL_STATUSES]
        st.max_buy_ticks = max((o.px_ticks or 0 for o in st.resting if o.sign > 0), default=NO_BUY)
        st.min_sell_ticks = min((o.px_ticks or 0 for o in st.resting if o.sign < 0), default=NO_SELL)

    def _execute(self, st: _Sym, o: _Order, lots: int, px_ticks: int, *, is_maker: bool) -> None:
        """One execution: book the position, charge the fee, emit ORDER_TRADE_UPDATE then ACCOUNT_UPDATE."""
        assert 0 < lots <= o.remaining_lots, "fill_identity: an execution never exceeds the order's remaining qty"
        if o.reduce_only:
            assert lots <= st.reducible_lots(o.sign), "a reduce-only execution never opens or enlarges a position"
        px = st.px(px_ticks)
        qty = st.qty(lots)
        notional_usdt = qty * px
        rate = st.contract.maker_fee_rate if is_maker else st.contract.taker_fee_rate
        fee_usdt = ZERO if o.order_type == LIQUIDATION else _money(notional_usdt * rate)
        realised_usdt = self._book_position(st, o.sign, lots, px)
        o.filled_lots += lots
        o.cum_quote_usdt += notional_usdt
        o.cum_fee_usdt += fee_usdt
        o.updated_ms = self._now_ms
        self._trade_seq += 1
        o.last_trade_id = str(TRADE_ID_BASE + self._trade_seq)
        o.status = FILLED if o.remaining_lots == 0 else PARTIALLY_FILLED
        self._realised_usdt += realised_usdt
        self._fees_usdt += fee_usdt
        change_usdt = self._credit(realised_usdt - fee_usdt)
        self._fills.append(SimFill(self._now_ms, o.last_trade_id, o.venue_id, o.client_id, st.symbol, o.side, qty,
                                   px, fee_usdt, realised_usdt, is_maker))
        self._emit(self._order_frame(o, "CALCULATED" if o.order_type == LIQUIDATION else "TRADE", o.status,
                                     realised_usdt))
        if o.order_type != LIQUIDATION:  # the venue's own closing order is not a placed order
            self._lifecycles.reported(o.seq, "match", o.status, o.filled_lots, lots)
        self._emit(self._account_frame("ORDER", change_usdt, st))
        if o.status == FILLED:
            self._close_order(o)
        self._after_position_change(st)

    def _book_position(self, st: _Sym, sign: int, lots: int, px: Decimal) -> Decimal:
        """Apply an execution to the net position; the realised PnL of the part it closes (qty x price change)."""
        pos = st.pos_lots
        if pos == 0 or (pos > 0) == (sign > 0):
            st.pos_lots += sign * lots
            st.pos_cost_usdt += st.qty(lots) * px
            return ZERO
        close_lots = min(lots, abs(pos))
        # The closed part releases its share of the entry cost; the last close releases exactly what is left,
        # so a round trip's realised PnL sums to exactly side x (exit quote - entry quote).
        if close_lots == abs(pos):
            released_usdt = st.pos_cost_usdt
        else:
            released_usdt = _money(_CTX.divide(st.pos_cost_usdt * close_lots, abs(pos)))
        pos_sign = 1 if pos > 0 else -1
        realised_usdt = pos_sign * (st.qty(close_lots) * px - released_usdt)
        st.pos_cost_usdt -= released_usdt
        st.pos_lots += sign * close_lots
        open_lots = lots - close_lots
        if open_lots:
            assert st.pos_lots == 0
            st.pos_lots = sign * open_lots
            st.pos_cost_usdt = st.qty(open_lots) * px
        return realised_usdt

    def _credit(self, amount_usdt: Decimal) -> Decimal:
        """Apply a wallet change; a loss beyond the wallet is absorbed by the venue's insurance (the wallet never
        goes below zero, as on a real venue). Returns the change actually applied."""
        wallet_usdt = self._wallet_usdt + amount_usdt
        if wallet_usdt < 0:
            self._insurance_usdt -= wallet_usdt
            amount_usdt -= wallet_usdt
            wallet_usdt = ZERO
        self._wallet_usdt = wallet_usdt
        return amount_usdt

    def _after_position_change(self, st: _Sym) -> None:
        # A reduce-only order that can no longer reduce anything expires (BingX cancels it when the position
        # closes); one that can still reduce a part stays and is clamped when it fills.
        for o in list(st.resting):
            if o.reduce_only and o.status not in FINAL_STATUSES and st.reducible_lots(o.sign) == 0:
                self._finish(o, EXPIRED)
        self._refresh_resting(st)
        self._refresh_liquidation()

    def _refresh_liquidation(self) -> None:
        """Each position's bankruptcy price in ticks (the price at which its loss equals the whole wallet);
        other positions' unrealised PnL is not counted (see docs/sim.md, limits)."""
        wallet_usdt = self._wallet_usdt
        for st in self._syms:
            pos = st.pos_lots
            if not pos:
                st.liq_ticks = NO_BUY
                continue
            qty_ticks = st.qty(abs(pos)) * st.tick
            if pos > 0:
                bankrupt = _CTX.divide(st.pos_cost_usdt - wallet_usdt, qty_ticks)
                st.liq_ticks = int(bankrupt.to_integral_value(ROUND_CEILING)) if bankrupt > 0 else NO_BUY
            else:
                bankrupt = _CTX.divide(st.pos_cost_usdt + wallet_usdt, qty_ticks)
                st.liq_ticks = int(bankrupt.to_integral_value(ROUND_FLOOR))

    def _liquidate(self, st: _Sym) -> None:
        """Close the whole position at its bankruptcy price (no fee): the loss never exceeds the wallet."""
        self._order_seq += 1
        sign = -1 if st.pos_lots > 0 else 1
        lots = abs(st.pos_lots)
        px_ticks = max(st.liq_ticks, 1)
        o = _Order(self._order_seq, "", str(VENUE_ID_BASE + self._order_seq), st.index, "BUY" if sign > 0 else "SELL",
                   sign, LIQUIDATION, lots, px_ticks, st.px(px_ticks), False, True, self._now_ms, self._now_ms)
        self._execute(st, o, lots, px_ticks, is_maker=False)

    def _finish(self, o: _Order, status: str) -> None:
        assert status in (CANCELED, EXPIRED) and o.status not in FINAL_STATUSES
        o.status = status
        o.updated_ms = self._now_ms
        self._close_order(o)
        self._emit(self._order_frame(o, status, status, ZERO))
        self._lifecycles.reported(o.seq, "cancel" if status == CANCELED else "expire", status, o.filled_lots)
        self._refresh_resting(self._syms[o.index])

    def _close_order(self, o: _Order) -> None:
        if self._open.get(o.client_id) is o:
            del self._open[o.client_id]
        self._history.append(o)

    # ------------------------------------------------------------------ funding

    def _fund(self) -> None:
        """Funding at `_next_funding_ms`: every symbol draws its rate (so the rate stream does not depend on the
        positions); a position pays qty x mark x rate when long and the rate is positive, and receives otherwise."""
        self._now_ms = self._next_funding_ms
        max_abs = float(self.config.funding_rate_max_abs)
        scale = 10**FUNDING_RATE_DECIMALS
        for st, rng in zip(self._syms, self._funding_rngs, strict=True):
            rate = Decimal(round(rng.uniform(-max_abs, max_abs) * scale)).scaleb(-FUNDING_RATE_DECIMALS)
            if not st.pos_lots or st.quote is None:
                continue
            mark_px = _CTX.divide(st.bid_ticks + st.ask_ticks, 2) * st.tick
            amount_usdt = _money(-(st.qty(st.pos_lots) * mark_px * rate))
            self._funding_usdt += amount_usdt
            applied_usdt = self._credit(amount_usdt)
            self._fundings.append(SimFunding(self._now_ms, st.symbol, rate, mark_px, amount_usdt))
            # BingX's cross-margin funding frame carries the balance only (no P, no symbol).
            self._emit({"e": "ACCOUNT_UPDATE", "E": self._now_ms, "a": {"m": "FUNDING_FEE", "B": [
                {"a": "USDT", "wb": _fmt(self._wallet_usdt), "cw": _fmt(self._wallet_usdt),
                 "bc": _fmt(applied_usdt)}], "P": []}})
        self._next_funding_ms += self.config.funding_interval_ms
        self._refresh_liquidation()

    # ------------------------------------------------------------------ frames

    def _emit(self, frame: dict[str, Any]) -> None:
        if len(self._outbox) >= self.config.max_outbox_frames:
            raise SimOverflow(f"the outbox holds {len(self._outbox)} frames (max_outbox_frames); call drain_frames()")
        self._outbox.append(frame)

    def _order_frame(self, o: _Order, execution: str, status: str, realised_usdt: Decimal) -> dict[str, Any]:
        st = self._syms[o.index]
        filled = st.qty(o.filled_lots)
        avg_px = _derived_px(o.cum_quote_usdt, filled) if o.filled_lots else ZERO
        return {"e": "ORDER_TRADE_UPDATE", "E": self._now_ms, "o": {
            "s": str(st.symbol), "c": o.client_id, "i": o.venue_id, "S": o.side, "o": o.order_type,
            "q": _fmt(st.qty(o.qty_lots)), "p": _fmt(o.ref_px), "ap": _fmt(avg_px), "x": execution, "X": status,
            "N": "USDT", "n": _fmt(-o.cum_fee_usdt), "z": _fmt(filled), "T": self._now_ms, "t": o.last_trade_id,
            "ps": "BOTH", "rp": _fmt(realised_usdt), "wt": "MARK_PRICE"}}

    def _account_frame(self, reason: str, change_usdt: Decimal, st: _Sym) -> dict[str, Any]:
        wallet = _fmt(self._wallet_usdt)
        qty = st.qty(abs(st.pos_lots))
        if st.pos_lots:
            mark_px = _CTX.divide(st.bid_ticks + st.ask_ticks, 2) * st.tick
            sign = 1 if st.pos_lots > 0 else -1
            entry_px, unrealised = _derived_px(st.pos_cost_usdt, qty), _money(sign * (qty * mark_px - st.pos_cost_usdt))
        else:
            entry_px, unrealised = ZERO, ZERO
        return {"e": "ACCOUNT_UPDATE", "E": self._now_ms, "a": {"m": reason, "B": [
            {"a": "USDT", "wb": wallet, "cw": wallet, "bc": _fmt(change_usdt)}], "P": [
            {"s": str(st.symbol), "pa": _fmt(st.qty(st.pos_lots)), "ep": _fmt(entry_px), "up": _fmt(unrealised),
             "mt": "cross", "ps": "BOTH"}]}}

    # ------------------------------------------------------------------ views

    def _sym(self, symbol: Symbol) -> _Sym:
        st = self._by_symbol.get(symbol)
        if st is None:
            raise KeyError(f"{symbol} is not listed on this venue ({', '.join(map(str, self._by_symbol))})")
        return st

    def _venue_order(self, o: _Order) -> VenueOrder:
        st = self._syms[o.index]
        return VenueOrder(o.client_id, o.venue_id, st.symbol, o.side, OrderType(o.order_type), st.qty(o.qty_lots),
                          st.qty(o.filled_lots), None if o.px_ticks is None else st.px(o.px_ticks), o.reduce_only)

    def _sim_order(self, o: _Order) -> SimOrder:
        st = self._syms[o.index]
        filled = st.qty(o.filled_lots)
        return SimOrder(o.client_id, o.venue_id, st.symbol, o.side, o.order_type, st.qty(o.qty_lots),
                        None if o.px_ticks is None else st.px(o.px_ticks), o.ref_px, o.post_only, o.reduce_only,
                        o.status, filled, _derived_px(o.cum_quote_usdt, filled) if o.filled_lots else ZERO,
                        o.cum_fee_usdt, o.created_ms, o.updated_ms)

    # ------------------------------------------------------------------ snapshot / restore

    def snapshot(self) -> dict[str, Any]:
        """The full venue truth as JSON-able data (Decimals as strings); `SimEngine.restore(config, snapshot)`
        continues exactly as if the engine had never stopped."""
        return {
            "version": SNAPSHOT_VERSION,
            "config": self.config.fingerprint(),
            "now_ms": self._now_ms,
            "next_funding_ms": self._next_funding_ms,
            "money": {k: str(v) for k, v in (("wallet", self._wallet_usdt), ("realised", self._realised_usdt),
                                              ("fees", self._fees_usdt), ("funding", self._funding_usdt),
                                              ("insurance", self._insurance_usdt))},
            "counters": {"order_seq": self._order_seq, "trade_seq": self._trade_seq},
            "feed": self._feed.state(),
            "funding_rngs": [_rng_state(r) for r in self._funding_rngs],
            "symbols": [_sym_state(st) for st in self._syms],
            "open": [_to_json(o) for o in sorted(self._open.values(), key=lambda o: o.seq)],
            "history": [_to_json(o) for o in self._history],
            "fills": [_to_json(f) for f in self._fills],
            "fundings": [_to_json(f) for f in self._fundings],
            "outbox": list(self._outbox),
        }

    @classmethod
    def restore(cls, config: SimConfig, snapshot: dict[str, Any]) -> SimEngine:
        """An engine in exactly the state of `snapshot`, which must come from the same config."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {snapshot.get('version')!r}: this engine reads {SNAPSHOT_VERSION}")
        if snapshot.get("config") != config.fingerprint():
            raise ValueError("snapshot was taken under a different SimConfig (fingerprints differ); restore it with "
                             "the config it was taken with")
        engine = cls(config)
        engine._now_ms = int(snapshot["now_ms"])
        engine._next_funding_ms = int(snapshot["next_funding_ms"])
        money = snapshot["money"]
        engine._wallet_usdt, engine._realised_usdt = Decimal(money["wallet"]), Decimal(money["realised"])
        engine._fees_usdt, engine._funding_usdt = Decimal(money["fees"]), Decimal(money["funding"])
        engine._insurance_usdt = Decimal(money["insurance"])
        engine._order_seq = int(snapshot["counters"]["order_seq"])
        engine._trade_seq = int(snapshot["counters"]["trade_seq"])
        engine._feed.set_state(snapshot["feed"])
        for rng, saved in zip(engine._funding_rngs, snapshot["funding_rngs"], strict=True):
            rng.setstate(_rng_from_state(saved))
        for st, saved in zip(engine._syms, snapshot["symbols"], strict=True):
            _set_sym_state(st, saved)
        for raw in snapshot["open"]:
            o = _from_json(_Order, raw)
            engine._open[o.client_id] = o
            engine._lifecycles.resume(o.seq, market=o.px_ticks is None, post_only=o.post_only,
                                      reduce_only=o.reduce_only, lots=o.qty_lots, filled_lots=o.filled_lots,
                                      status=o.status)
            engine._syms[o.index].resting.append(o)
        engine._history.extend(_from_json(_Order, raw) for raw in snapshot["history"])
        engine._fills.extend(_from_json(SimFill, raw) for raw in snapshot["fills"])
        engine._fundings.extend(_from_json(SimFunding, raw) for raw in snapshot["fundings"])
        engine._outbox = list(snapshot["outbox"])
        for st in engine._syms:
            engine._refresh_resting(st)
        engine._refresh_liquidation()
        return engine


def _sym_state(st: _Sym) -> dict[str, Any]:
    q = st.quote
    return {"bid_ticks": st.bid_ticks, "ask_ticks": st.ask_ticks, "pos_lots": st.pos_lots,
            "pos_cost_usdt": str(st.pos_cost_usdt), "leverage": st.leverage,
            "quote": None if q is None else [q.ts_ms, str(q.bid_px), str(q.ask_px), str(q.last_px)]}


def _set_sym_state(st: _Sym, saved: dict[str, Any]) -> None:
    st.bid_ticks, st.ask_ticks = int(saved["bid_ticks"]), int(saved["ask_ticks"])
    st.pos_lots, st.pos_cost_usdt = int(saved["pos_lots"]), Decimal(saved["pos_cost_usdt"])
    st.leverage = int(saved["leverage"])
    q = saved["quote"]
    st.quote = None if q is None else Quote(int(q[0]), st.symbol, Decimal(q[1]), Decimal(q[2]), Decimal(q[3]))


def _to_json(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in attrs.fields(type(value)):
        v = getattr(value, f.name)
        out[f.name] = str(v) if isinstance(v, Decimal | Symbol) else v
    return out


def _from_json(cls: type[_T], raw: dict[str, Any]) -> _T:
    kwargs: dict[str, Any] = {}
    for f in attrs.fields(cls):  # type: ignore[arg-type]
        v = raw[f.name]
        kind = str(f.type)
        if v is not None and "Decimal" in kind:
            v = Decimal(v)
        elif v is not None and "Symbol" in kind:
            v = Symbol.parse(v)
        kwargs[f.name] = v
    return cls(**kwargs)

