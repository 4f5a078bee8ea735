"""A scripted venue and a scripted policy for the runtime's deterministic scenario tests.

`ScriptedVenue` implements the `SyncVenue` protocol of `pink_fsm.runtime.sim_driver` with nothing decided by
chance: the test gives the quotes and their times, and says whether, when, at which price and how much an order
fills (partial fills, a fill racing a cancel, a fill the stream reports late), which post-only placements are
refused, when the venue cancels an order by itself and when a probe read fails with `VenueError`. Every frame it
emits has the field set of the embedded sim venue's BingX user-stream frames and is checked against
`normalise_frame` on the way out. Everything the venue received is kept in `log`, in order.

`ScriptedPolicy` returns decisions from a script (by scan time, or the next call), so a scenario never depends
on the reference policy's signals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs

from pink_fsm.kernel import ClientOrderId, ContractSpec, KernelConfig, Side, Symbol
from pink_fsm.kernel.normaliser import normalise_frame
from pink_fsm.ports import (
    HOLD,
    Action,
    Decision,
    MarketView,
    OrderRequest,
    OrderType,
    PlaceResult,
    Quote,
    RejectCode,
    SlotView,
    VenueError,
    VenueOrder,
    VenuePosition,
)
from pink_fsm.runtime.engine import AuditSink, Engine, EngineConfig
from pink_fsm.runtime.exec_router import ExecConfig
from pink_fsm.runtime.recovery import Recovery, recover
from pink_fsm.runtime.sim_driver import SimDriver

FET = Symbol.parse("FET-USDT")
BTC = Symbol.parse("BTC-USDT")
ZERO = Decimal(0)
WALLET = Decimal(10000)
MONEY_QUANTUM = Decimal("1e-8")  # the sim venue's fee rounding (8 decimals, half-even)
VENUE_ID_BASE = 1_800_000_000_000_000_000
TRADE_ID_BASE = 500_000_000


def contracts() -> dict[Symbol, ContractSpec]:
    return {
        FET: ContractSpec(FET, Decimal(1), Decimal("0.0001"), max_leverage=20),
        BTC: ContractSpec(BTC, Decimal("0.001"), Decimal("0.1"), max_leverage=50),
    }


def fmt(value: Decimal) -> str:
    return "0" if not value else format(value, "f")


def money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def quotes(symbol: Symbol, bid: str, ask: str, start_ms: int, end_ms: int, step_ms: int = 1_000) -> list[Quote]:
    """One quote every `step_ms` from `start_ms` to `end_ms` inclusive, all at the same touch."""
    b, a = Decimal(bid), Decimal(ask)
    return [Quote(t, symbol, b, a, (b + a) / 2) for t in range(start_ms, end_ms + 1, step_ms)]


@attrs.define
class VOrder:
    request: OrderRequest
    venue_id: str
    ref_px: Decimal  # the frames' `p`: the limit price, or a MARKET order's protective reference
    created_ms: int
    status: str = "NEW"
    filled_qty: Decimal = ZERO
    cum_quote_usdt: Decimal = ZERO
    cum_fee_usdt: Decimal = ZERO
    last_trade_id: str = "0"

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled_qty


@attrs.frozen
class Placed:
    """One placement as the venue received it (accepted or not)."""

    client_id: str
    order_type: str
    side: str
    qty: Decimal
    reduce_only: bool
    post_only: bool
    price_px: Decimal | None
    accepted: bool
    ts_ms: int


@attrs.frozen
class Cancelled:
    client_id: str
    found: bool
    ts_ms: int


class ScriptedVenue:
    """A synchronous venue whose every behaviour is scripted by the test (see the module docstring).

    Example::

        venue = ScriptedVenue(quotes(FET, "0.6090", "0.6092", 1_000, 60_000))
        venue.at(5_000, lambda: venue.fill("pink0_1_1", "100", "0.6092"))
    """

    def __init__(self, schedule: Iterable[Quote] = (), *, wallet_usdt: Decimal = WALLET,
                 specs: dict[Symbol, ContractSpec] | None = None) -> None:
        self._contracts = specs or contracts()
        self._schedule = sorted(schedule, key=lambda q: q.ts_ms)
        self._script: list[tuple[int, int, Callable[[], None]]] = []
        self._script_seq = 0
        self.now_ms = 0
        self.touch: dict[Symbol, Quote] = {}
        self.wallet_usdt = wallet_usdt
        self.initial_usdt = wallet_usdt
        self.pos_lots: dict[Symbol, int] = {}
        self.pos_cost_usdt: dict[Symbol, Decimal] = {}
        self.foreign_positions: list[VenuePosition] = []
        self.leverage: dict[Symbol, int] = {}
        self.orders: dict[str, VOrder] = {}
        self.log: list[Placed | Cancelled] = []
        self.reads: list[str] = []
        self.outbox: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self.max_abs_lots: dict[Symbol, int] = {}
        self.realised_usdt = ZERO
        self.fees_usdt = ZERO
        self._order_seq = 0
        self._trade_seq = 0
        # --- knobs the test sets
        self.hold_frames = False  # True: frames are held back (a lagging user stream) until `release()`
        self.reject_post_only: set[str] = set()  # client ids refused as POST_ONLY_WOULD_TAKE whatever the book
        self.fill_on_cancel: dict[str, tuple[str, str]] = {}  # client id -> (qty, px) that races our cancel
        self.fail_reads = 0  # the next N open_orders/positions reads raise VenueError
        self.positions_lag = False  # True: the REST positions read does not show our own position yet
        # client id -> (qty, px): the order had in fact filled, but the stream reports our cancel first (CANCELED,
        # nothing filled) and the fill after it (held back too while `hold_frames`)
        self.cancel_reported_before_fill: dict[str, tuple[str, str]] = {}
        self.on_read: dict[str, Callable[[], None]] = {}  # run once right after a read of that name
        self.market_fill_px: Callable[[OrderRequest, Quote], Decimal] = _touch_px
        self.market_ref_px: Callable[[OrderRequest, Quote], Decimal] = _touch_px
        self.market_fill_qty: Callable[[OrderRequest], Decimal] = lambda r: r.qty

    # ------------------------------------------------------------------ scripting (the test's side)

    def at(self, ts_ms: int, action: Callable[[], None]) -> None:
        """Run `action` when virtual time reaches `ts_ms` (after that instant's quotes)."""
        self._script_seq += 1
        self._script.append((ts_ms, self._script_seq, action))
        self._script.sort(key=lambda item: (item[0], item[1]))

    def fill(self, client_id: str, qty: str | Decimal, px: str | Decimal, *, is_maker: bool | None = None) -> None:
        """Execute `qty` of an open order at `px` (maker unless it is a MARKET order)."""
        o = self.orders[client_id]
        assert o.open, f"{client_id} is {o.status}"
        maker = o.request.order_type is OrderType.LIMIT if is_maker is None else is_maker
        self._execute(o, Decimal(qty), Decimal(px), maker)

    def venue_cancel(self, client_id: str, status: str = "CANCELED") -> None:
        """The venue ends an open order by itself (e.g. BingX expires it)."""
        o = self.orders[client_id]
        assert o.open
        self._finish(o, status)

    def inject(self, frame: Any) -> None:
        """Put any frame (even a malformed one) on the user stream as it is."""
        self.outbox.append(frame)

    def release(self) -> None:
        """The lagging stream catches up: held frames are delivered, in order."""
        self.hold_frames = False
        self.outbox.extend(self.held)
        self.held = []

    def add_foreign_position(self, symbol: Symbol, side: Side, qty: str, px: str) -> None:
        """A position opened by someone else on the account (only the positions read shows it)."""
        self.foreign_positions.append(VenuePosition(symbol, side, Decimal(qty), Decimal(px), 1))

    def placed(self) -> list[Placed]:
        return [e for e in self.log if isinstance(e, Placed)]

    def position_qty(self, symbol: Symbol = FET) -> Decimal:
        """Signed position (base units): > 0 long, < 0 short."""
        return self._contracts[symbol].lot_size * self.pos_lots.get(symbol, 0)

    # ------------------------------------------------------------------ SyncVenue

    def contracts(self) -> dict[Symbol, ContractSpec]:
        return dict(self._contracts)

    def next_event_ms(self) -> int | None:
        due = [t for t in (self._schedule[0].ts_ms if self._schedule else None,
                           self._script[0][0] if self._script else None) if t is not None]
        return min(due) if due else None

    def advance(self, to_ms: int) -> list[Quote]:
        assert to_ms >= self.now_ms, (to_ms, self.now_ms)
        out: list[Quote] = []
        while True:
            tq = self._schedule[0].ts_ms if self._schedule else None
            ts = self._script[0][0] if self._script else None
            if tq is not None and tq <= to_ms and (ts is None or tq <= ts):
                quote = self._schedule.pop(0)
                self.now_ms = quote.ts_ms
                self.touch[quote.symbol] = quote
                out.append(quote)
            elif ts is not None and ts <= to_ms:
                self.now_ms = ts
                _, _, action = self._script.pop(0)
                action()
            else:
                break
        self.now_ms = to_ms
        return out

    def place_order(self, request: OrderRequest) -> PlaceResult:
        reject = self._check(request)
        self.log.append(Placed(request.client_id, request.order_type.value, request.side, request.qty,
                               request.reduce_only, request.post_only, request.price_px, reject is None, self.now_ms))
        if reject is not None:
            return reject
        quote = self.touch[request.symbol]
        self._order_seq += 1
        ref_px = request.price_px if request.price_px is not None else self.market_ref_px(request, quote)
        o = VOrder(request, str(VENUE_ID_BASE + self._order_seq), ref_px, self.now_ms)
        self.orders[request.client_id] = o
        self._emit(self._order_frame(o, "NEW", ZERO))
        if request.order_type is OrderType.MARKET:
            qty = self.market_fill_qty(request)
            if qty > 0:
                self._execute(o, qty, self.market_fill_px(request, quote), False)
            if o.open:
                self._finish(o, "EXPIRED")  # what the book could not take expires, like the sim venue
        return PlaceResult(o.venue_id)

    def cancel_order(self, symbol: Symbol, client_id: str) -> bool:
        race = self.fill_on_cancel.pop(client_id, None)
        o = self.orders.get(client_id)
        misreport = self.cancel_reported_before_fill.pop(client_id, None)
        if misreport is not None and o is not None and o.open:
            self.log.append(Cancelled(client_id, True, self.now_ms))
            frame = self._order_frame(o, "CANCELED", ZERO)
            frame["o"]["X"] = "CANCELED"
            normalise_frame(frame)
            self.outbox.append(frame)
            self.fill(client_id, *misreport)
            return True
        if race is not None and o is not None and o.open:
            self.fill(client_id, *race)  # the fill reaches the venue first
        found = o is not None and o.open and o.request.symbol == symbol
        self.log.append(Cancelled(client_id, found, self.now_ms))
        if found:
            assert o is not None
            self._finish(o, "CANCELED")
        return found

    def set_leverage(self, symbol: Symbol, leverage: int) -> None:
        self.leverage[symbol] = leverage
        self._emit({"e": "ACCOUNT_CONFIG_UPDATE", "E": self.now_ms,
                    "ac": {"s": str(symbol), "l": leverage, "S": leverage, "mt": "cross"}})

    def open_orders(self) -> list[VenueOrder]:
        self._read("open_orders")
        out = [VenueOrder(cid, o.venue_id, o.request.symbol, o.request.side, o.request.order_type, o.request.qty,
                          o.filled_qty, o.request.price_px, o.request.reduce_only)
               for cid, o in self.orders.items() if o.open]
        self._after_read("open_orders")
        return out

    def positions(self) -> list[VenuePosition]:
        self._read("positions")
        out = list(self.foreign_positions)
        for symbol, lots in self.pos_lots.items():
            if lots and not self.positions_lag:
                qty = self._contracts[symbol].lot_size * abs(lots)
                out.append(VenuePosition(symbol, Side.LONG if lots > 0 else Side.SHORT, qty,
                                         self.pos_cost_usdt[symbol] / qty, self.leverage.get(symbol, 1)))
        self._after_read("positions")
        return out

    def balance_usdt(self) -> Decimal:
        self.reads.append("balance")
        return self.wallet_usdt

    def drain_frames(self) -> list[dict[str, Any]]:
        frames, self.outbox = self.outbox, []
        return frames

    # ------------------------------------------------------------------ internals

    def _read(self, name: str) -> None:
        self.reads.append(name)
        if self.fail_reads > 0:
            self.fail_reads -= 1
            raise VenueError(f"{name}: HTTP 503 from the scripted venue")

    def _after_read(self, name: str) -> None:
        hook = self.on_read.pop(name, None)
        if hook is not None:
            hook()

    def _check(self, r: OrderRequest) -> PlaceResult | None:
        if r.symbol not in self._contracts or r.symbol not in self.touch:
            return PlaceResult(None, RejectCode.INVALID, f"{r.symbol}: no quote")
        if r.client_id in self.orders:
            return PlaceResult(None, RejectCode.INVALID, f"client order id {r.client_id} already used")
        quote = self.touch[r.symbol]
        if r.post_only:
            assert r.price_px is not None
            crosses = r.price_px >= quote.ask_px if r.side == "BUY" else r.price_px <= quote.bid_px
            if crosses or r.client_id in self.reject_post_only:
                return PlaceResult(None, RejectCode.POST_ONLY_WOULD_TAKE,
                                   f"post-only {r.side} at {r.price_px} would take")
        if r.reduce_only:
            lots = self.pos_lots.get(r.symbol, 0)
            sign = 1 if r.side == "BUY" else -1
            if lots * sign >= 0 or self._contracts[r.symbol].lots(r.qty) > abs(lots):
                return PlaceResult(None, RejectCode.REDUCE_ONLY, f"reduce-only {r.side} {r.qty} would open")
        return None

    def _execute(self, o: VOrder, qty: Decimal, px: Decimal, is_maker: bool) -> None:
        assert 0 < qty <= o.remaining, (qty, o.remaining)
        symbol = o.request.symbol
        spec = self._contracts[symbol]
        lots = spec.lots(qty)
        fee = money(qty * px * (spec.maker_fee_rate if is_maker else spec.taker_fee_rate))
        realised = self._book(symbol, 1 if o.request.side == "BUY" else -1, lots, px)
        o.filled_qty += qty
        o.cum_quote_usdt += qty * px
        o.cum_fee_usdt += fee
        self._trade_seq += 1
        o.last_trade_id = str(TRADE_ID_BASE + self._trade_seq)
        o.status = "FILLED" if o.remaining == 0 else "PARTIALLY_FILLED"
        self.realised_usdt += realised
        self.fees_usdt += fee
        self.wallet_usdt += realised - fee
        self._emit(self._order_frame(o, "TRADE", realised))
        self._emit(self._account_frame(symbol, realised - fee))

    def _book(self, symbol: Symbol, sign: int, lots: int, px: Decimal) -> Decimal:
        spec = self._contracts[symbol]
        pos = self.pos_lots.get(symbol, 0)
        cost = self.pos_cost_usdt.get(symbol, ZERO)
        if pos == 0 or (pos > 0) == (sign > 0):
            pos += sign * lots
            cost += spec.qty(lots) * px
            realised = ZERO
        else:
            close = min(lots, abs(pos))
            released = cost if close == abs(pos) else money(cost * close / abs(pos))
            realised = (1 if pos > 0 else -1) * (spec.qty(close) * px - released)
            cost -= released
            pos += sign * close
            if lots > close:
                pos, cost = sign * (lots - close), spec.qty(lots - close) * px
        self.pos_lots[symbol], self.pos_cost_usdt[symbol] = pos, cost
        self.max_abs_lots[symbol] = max(self.max_abs_lots.get(symbol, 0), abs(pos))
        return realised

    def _finish(self, o: VOrder, status: str) -> None:
        o.status = status
        self._emit(self._order_frame(o, status, ZERO))

    def _emit(self, frame: dict[str, Any]) -> None:
        normalise_frame(frame)  # every frame this venue sends is a valid BingX frame
        (self.held if self.hold_frames else self.outbox).append(frame)

    def _order_frame(self, o: VOrder, execution: str, realised_usdt: Decimal) -> dict[str, Any]:
        r = o.request
        avg_px = o.cum_quote_usdt / o.filled_qty if o.filled_qty else ZERO
        return {"e": "ORDER_TRADE_UPDATE", "E": self.now_ms, "o": {
            "s": str(r.symbol), "c": r.client_id, "i": o.venue_id, "S": r.side, "o": r.order_type.value,
            "q": fmt(r.qty), "p": fmt(o.ref_px), "ap": fmt(avg_px), "x": execution, "X": o.status,
            "N": "USDT", "n": fmt(-o.cum_fee_usdt), "z": fmt(o.filled_qty), "T": self.now_ms,
            "t": o.last_trade_id, "ps": "BOTH", "rp": fmt(realised_usdt), "wt": "MARK_PRICE"}}

    def _account_frame(self, symbol: Symbol, change_usdt: Decimal) -> dict[str, Any]:
        spec = self._contracts[symbol]
        lots = self.pos_lots.get(symbol, 0)
        qty = spec.qty(abs(lots))
        entry_px = self.pos_cost_usdt[symbol] / qty if lots else ZERO
        wallet = fmt(self.wallet_usdt)
        return {"e": "ACCOUNT_UPDATE", "E": self.now_ms, "a": {"m": "ORDER", "B": [
            {"a": "USDT", "wb": wallet, "cw": wallet, "bc": fmt(change_usdt)}], "P": [
            {"s": str(symbol), "pa": fmt(spec.qty(lots)), "ep": fmt(entry_px), "up": "0", "mt": "cross",
             "ps": "BOTH"}]}}


def _touch_px(request: OrderRequest, quote: Quote) -> Decimal:
    return quote.ask_px if request.side == "BUY" else quote.bid_px


class ScriptedPolicy:
    """Decisions from a script: `(ts_ms, decision)` pairs, each returned once by the first scan at or after its
    time; `push(decision)` queues one for the next scan. Everything else is HOLD. Records what it saw."""

    def __init__(self, script: Sequence[tuple[int, Decision]] = ()) -> None:
        self.script = sorted(script, key=lambda item: item[0])
        self.queued: list[Decision] = []
        self.seen: list[tuple[int, SlotView]] = []
        self.returned: list[tuple[int, Decision]] = []
        self.closed: list[tuple[Symbol, Decimal]] = []

    def push(self, decision: Decision) -> None:
        self.queued.append(decision)

    def decide(self, market: MarketView, slot: SlotView) -> Decision:
        self.seen.append((market.ts_ms, slot))
        decision = HOLD
        if self.queued:
            decision = self.queued.pop(0)
        elif self.script and self.script[0][0] <= market.ts_ms:
            decision = self.script.pop(0)[1]
        if decision is not HOLD:
            self.returned.append((market.ts_ms, decision))
        return decision

    def on_trade_closed(self, symbol: Symbol, net_pnl_usdt: Decimal) -> None:
        self.closed.append((symbol, net_pnl_usdt))


def enter(side: Side = Side.SHORT, qty: str = "100", symbol: Symbol = FET, conviction: str = "3") -> Decision:
    return Decision(Action.ENTER, symbol, side, Decimal(qty), Decimal(conviction), reason="scripted entry")


def exit_(urgent: bool = False, qty: str | None = None) -> Decision:
    return Decision(Action.EXIT, qty=None if qty is None else Decimal(qty), urgent=urgent, reason="scripted exit")


# ------------------------------------------------------------------ building and driving engines


def start(venue: ScriptedVenue, policy: ScriptedPolicy, *, session: str = "0", exec_config: ExecConfig | None = None,
          audit: AuditSink | None = None) -> tuple[Engine, Recovery]:
    """Recover from the venue's truth - open orders FIRST, then positions, then the wallet (D9) - and build the
    engine, as the composition root does. Recovery's cancels are NOT sent here (see `restart`)."""
    engine, recovery, _ = _recover(venue, policy, session, exec_config, audit)
    return engine, recovery


def _recover(venue: ScriptedVenue, policy: ScriptedPolicy, session: str, exec_config: ExecConfig | None,
             audit: AuditSink | None) -> tuple[Engine, Recovery, list[VenueOrder]]:
    open_orders = venue.open_orders()
    positions = venue.positions()
    wallet = venue.balance_usdt()
    recovery = recover(venue.contracts(), KernelConfig(session=session), wallet, open_orders, positions, None)
    engine = Engine(recovery.kernel, policy, EngineConfig(exec=exec_config or ExecConfig()), audit,
                    perf_ns=lambda: 0)
    return engine, recovery, open_orders


def restart(venue: ScriptedVenue, policy: ScriptedPolicy, *, session: str,
            exec_config: ExecConfig | None = None) -> tuple[Engine, Recovery]:
    """A process restart against the same venue: recover, tell the engine which earlier-session orders it is
    about to cancel (and how much of each the adopted position already holds, as read at recovery), send the
    cancels, apply their frames. The composition root does not do this yet; this is what it needs to do."""
    engine, recovery, open_orders = _recover(venue, policy, session, exec_config, None)
    seen = {o.client_id: o.filled_qty for o in open_orders}
    engine.expect_recovered_orders({c.client_id.value: seen.get(c.client_id.value, ZERO) for c in recovery.cancels})
    for cancel in recovery.cancels:
        venue.cancel_order(cancel.symbol, cancel.client_id.value)
    for frame in venue.drain_frames():
        engine.on_frame(frame)
    return engine, recovery


def run_until(venue: ScriptedVenue, engine: Engine, end_ms: int) -> None:
    """Drive the engine with the production `SimDriver` until virtual time `end_ms`."""
    start_ms = engine.now_ms
    SimDriver(venue, engine).run(start_ms, end_ms - start_ms)


def client(session: str, ref: int, attempt: int | None = None) -> str:
    """The client id the runtime gives a working order (`<prefix><session>_<ref>`) or one of its attempts."""
    working = ClientOrderId(f"{KernelConfig().client_id_prefix}{session}_{ref}").value
    return working if attempt is None else f"{working}_{attempt}"
