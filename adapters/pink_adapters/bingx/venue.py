"""`BingXVenue`: the runtime's `Venue` port over BingX USDT-M perpetual swaps (REST v2 + websockets).

REST: aiohttp, every private call signed (wire.signed_query), `X-BX-APIKEY` header, `timestamp` on BingX's clock
(offset learnt from `server/time`, re-learnt on a timestamp error) and `recvWindow`. A client-side pacer keeps
below `requests_per_s`; HTTP 429/418 and code 100410 back off (doubling, jitter, `Retry-After`) up to
`max_retries`. A 5xx or lost response to a placement is an unknown outcome: the adapter asks BingX for the order
by client id and answers with what it finds.

User stream: a background pump owns the websocket: listenKey created on first use, extended every
`keepalive_s`, re-created after `listenKeyExpired` or a 404; reconnects with backoff after any drop; answers
`Ping` with `Pong`. After a reconnect it reconciles the gap over REST (orders it placed that changed while the
socket was down, then the wallet) and hands the venue's truth on as frames. A placement waits (bounded) for the
stream to be connected: no order is sent whose fills could not be seen. Frames are handed on as BingX sent them;
what cannot be decoded is handed on as a frame without an event type, which the kernel's normaliser counts.

Market stream: `<SYMBOL>@bookTicker` subscriptions on the market websocket, one `Quote` per push (last_px is the
mid: bookTicker carries no last trade).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import aiohttp
import attrs
import websockets
from websockets.asyncio.client import ClientConnection, connect
from yarl import URL

from pink_adapters.bingx.config import BingXConfig, BingXCredentials
from pink_adapters.bingx.wire import (
    BingXError,
    Decoded,
    classify_reject,
    decode_frame,
    is_rate_limit,
    is_timestamp_error,
    signed_query,
)
from pink_fsm.kernel.values import ContractSpec, Side, Symbol, parse_decimal
from pink_fsm.ports import (
    OrderRequest,
    OrderType,
    PlaceResult,
    Quote,
    RejectCode,
    VenueError,
    VenueOrder,
    VenuePosition,
)

__all__ = ["BingXStats", "BingXVenue", "build_bingx_venue"]

LOG = logging.getLogger("pink_adapters.bingx")

SWAP = "/openApi/swap/v2"
LISTEN_KEY_PATH = "/openApi/user/auth/userDataStream"
MAX_TRACKED_ORDERS = 2_000  # orders placed this session whose state the adapter follows for gap reconciliation
MAX_QUOTE_QUEUE = 10_000
_LISTEN_KEY = re.compile(r"^[A-Za-z0-9]{8,128}$")
_FINAL = frozenset({"FILLED", "CANCELED", "CANCELLED", "EXPIRED", "FAILED", "REJECTED"})
_CLOSED = object()


@attrs.define
class BingXStats:
    """Counters an operator (or a test) can read."""

    rest_requests: int = 0
    rest_retries: int = 0
    rate_limited: int = 0
    listen_keys_created: int = 0
    keepalives: int = 0
    user_connects: int = 0
    market_connects: int = 0
    pongs_sent: int = 0
    bad_user_frames: int = 0
    bad_market_frames: int = 0
    frames_dropped: int = 0
    reconciled_frames: int = 0


@attrs.define
class _Tracked:
    symbol: Symbol
    cum_qty: Decimal = Decimal(0)
    final: bool = False


def build_bingx_venue(section: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> BingXVenue:
    """The venue for `pink run --venue bingx`: `section` is the `[bingx]` table (base_url, ws_url,
    market_ws_url, recv_window_ms, ...); credentials come from PINK_BINGX_API_KEY / PINK_BINGX_API_SECRET."""
    return BingXVenue(BingXConfig.from_mapping(section), environ=environ)


def _dec(raw: object, field: str, **checks: bool) -> Decimal:
    try:
        return parse_decimal(raw, field, **checks)
    except ValueError as exc:
        raise VenueError(f"BingX answer: {exc}") from None


def _int(raw: object, field: str) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise VenueError(f"BingX answer: {field}: expected an integer, got {str(raw)[:40]!r}") from None


class _Pacer:
    """At most `rate` requests per second (evenly spaced); a 429 pushes the next slot out."""

    def __init__(self, rate: float) -> None:
        self._gap_s = 1.0 / rate
        self._next_s = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next_s > now:
                await asyncio.sleep(self._next_s - now)
            self._next_s = max(now, self._next_s) + self._gap_s

    def hold(self, seconds: float) -> None:
        self._next_s = max(self._next_s, time.monotonic() + seconds)


class BingXVenue:
    """`pink_fsm.ports.Venue` over BingX. One consumer per stream; `close()` ends both streams."""

    def __init__(self, config: BingXConfig, *, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self._credentials = BingXCredentials.from_env(environ)
        self.stats = BingXStats()
        self._session: aiohttp.ClientSession | None = None
        self._pacer = _Pacer(config.requests_per_s)
        self._offset_ms: int | None = None
        self._contracts: dict[Symbol, ContractSpec] = {}
        self._orders: OrderedDict[str, _Tracked] = OrderedDict()
        self._listen_key: str | None = None
        self._frames: asyncio.Queue[Any] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._stream_ready = asyncio.Event()
        self._user_ws: ClientConnection | None = None
        self._market_ws: ClientConnection | None = None
        self._closed = asyncio.Event()

    def __repr__(self) -> str:
        return f"BingXVenue(base_url={self.config.base_url!r}, credentials=<redacted>)"

    # ------------------------------------------------------------------ REST plumbing

    def _now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + (self._offset_ms or 0)

    def _http(self) -> aiohttp.ClientSession:
        if self._closed.is_set():
            raise VenueError("the BingX venue is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeouts.request_s))
        return self._session

    def _backoff_s(self, attempt: int) -> float:
        t = self.config.timeouts
        base_s: float = min(t.backoff_max_s, t.backoff_min_s * 2.0 ** min(attempt, 30))
        return base_s * (0.5 + random.random() / 2)

    async def sync_time(self) -> int:
        """Learn BingX's clock offset from `server/time` (the signature's timestamp must be within
        recvWindow of it); returns the offset in ms."""
        before_ms = time.time_ns() // 1_000_000
        data = await self._call("GET", f"{SWAP}/server/time", {}, signed=False)
        after_ms = time.time_ns() // 1_000_000
        server_ms = _int(data.get("serverTime") if isinstance(data, Mapping) else None, "serverTime")
        self._offset_ms = server_ms - (before_ms + after_ms) // 2
        return self._offset_ms

    async def _send(self, method: str, path: str, params: Mapping[str, object], signed: bool) -> tuple[int, str,
                                                                                                         float | None]:
        """One HTTP exchange; (status, body text, Retry-After seconds)."""
        session = self._http()
        headers = {"X-BX-APIKEY": self._credentials.api_key}
        if signed:
            query = signed_query({**params, "timestamp": self._now_ms(), "recvWindow": self.config.recv_window_ms},
                                 self._credentials.secret)
        else:
            query = "&".join(f"{k}={v}" for k, v in params.items())
        url = URL(f"{self.config.base_url}{path}" + (f"?{query}" if query else ""), encoded=True)
        await self._pacer.wait()
        self.stats.rest_requests += 1
        try:
            async with session.request(method, url, headers=headers) as response:
                text = await response.text()
                retry_after = response.headers.get("Retry-After")
                wait_s = float(retry_after) if retry_after and retry_after.isdigit() else None
                return response.status, text, wait_s
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = self._credentials.redact(f"{type(exc).__name__}: {exc}")[:300]
            raise BingXError(path, f"no answer ({detail})") from None

    async def _request(self, method: str, path: str, params: Mapping[str, object], *, signed: bool = True,
                       retry_unknown: bool = True) -> Any:
        """The decoded JSON body of a successful exchange, retried on rate limits (always) and on 5xx or
        transport errors (when `retry_unknown`: idempotent requests only)."""
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                status, text, retry_after_s = await self._send(method, path, params, signed)
            except BingXError:
                if not retry_unknown or last:
                    raise
                self.stats.rest_retries += 1
                await asyncio.sleep(self._backoff_s(attempt))
                continue
            if is_rate_limit(0, status):
                self.stats.rate_limited += 1
                wait_s = retry_after_s if retry_after_s is not None else self._backoff_s(attempt)
                self._pacer.hold(wait_s)
                if last:
                    raise BingXError(path, "rate limited; backing off", http_status=status)
                self.stats.rest_retries += 1
                continue
            if status >= 500:
                if not retry_unknown or last:
                    raise BingXError(path, "server error", http_status=status)
                self.stats.rest_retries += 1
                await asyncio.sleep(self._backoff_s(attempt))
                continue
            return self._body(path, status, text)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _body(self, path: str, status: int, text: str) -> Any:
        try:
            body = json.loads(text, parse_float=Decimal) if text.strip() else {}
        except ValueError:
            raise BingXError(path, f"answer is not JSON ({self._credentials.redact(text[:120])!r})",
                             http_status=status) from None
        if status >= 400:
            msg = body.get("msg", "") if isinstance(body, Mapping) else ""
            code = body.get("code", 0) if isinstance(body, Mapping) else 0
            raise BingXError(path, self._credentials.redact(str(msg) or "HTTP error"),
                             code=code if isinstance(code, int) else 0, http_status=status)
        return body

    async def _call(self, method: str, path: str, params: Mapping[str, object], *, signed: bool = True,
                    retry_unknown: bool = True) -> Any:
        """`data` of a `{code, msg, data}` envelope; BingXError for a non-zero code. Busy (100410) backs off and
        retries; a timestamp error re-learns the clock offset and retries once."""
        resynced = False
        for attempt in range(self.config.max_retries + 1):
            body = await self._request(method, path, params, signed=signed, retry_unknown=retry_unknown)
            if not isinstance(body, Mapping) or "code" not in body:
                raise BingXError(path, "answer without the {code, msg, data} envelope")
            try:
                code = int(body["code"])
            except (TypeError, ValueError):
                raise BingXError(path, f"envelope code {str(body['code'])[:20]!r} is not a number") from None
            if code == 0:
                return body.get("data")
            msg = self._credentials.redact(str(body.get("msg", "")))[:500]
            if is_rate_limit(code, 200) and attempt < self.config.max_retries:
                self.stats.rate_limited += 1
                self.stats.rest_retries += 1
                self._pacer.hold(self._backoff_s(attempt))
                continue
            if signed and not resynced and is_timestamp_error(code, msg):
                resynced = True
                await self.sync_time()
                continue
            raise BingXError(path, msg, code=code, http_status=200)
        raise BingXError(path, "still busy after retries", code=100410, http_status=200)

    async def _private(self, method: str, path: str, params: Mapping[str, object], *,
                       retry_unknown: bool = True) -> Any:
        if self._offset_ms is None:
            await self.sync_time()
        return await self._call(method, path, params, retry_unknown=retry_unknown)

    # ------------------------------------------------------------------ the Venue port: REST

    async def contracts(self, symbols: list[Symbol]) -> dict[Symbol, ContractSpec]:
        """Contract specs from `quote/contracts`: lot = 10^-quantityPrecision, tick = 10^-pricePrecision, max
        leverage = min(maxLongLeverage, maxShortLeverage), maker/taker fee rates."""
        data = await self._call("GET", f"{SWAP}/quote/contracts", {}, signed=False)
        if not isinstance(data, list):
            raise VenueError("BingX quote/contracts: expected a list of contracts")
        listed: dict[Symbol, ContractSpec] = {}
        for entry in data:
            spec = self._contract(entry)
            if spec is not None:
                listed[spec.symbol] = spec
        self._contracts.update(listed)
        unknown = [str(s) for s in symbols if s not in listed]
        if unknown:
            raise VenueError(f"not listed on BingX (quote/contracts): {', '.join(unknown)}")
        return {s: listed[s] for s in symbols} if symbols else listed

    @staticmethod
    def _contract(entry: object) -> ContractSpec | None:
        if not isinstance(entry, Mapping):
            return None
        try:
            symbol = Symbol.parse(entry.get("symbol"))
        except ValueError:
            return None  # a quote asset the runtime does not trade
        name = f"contracts[{symbol}]"
        qty_dp = _int(entry.get("quantityPrecision"), f"{name}.quantityPrecision")
        px_dp = _int(entry.get("pricePrecision"), f"{name}.pricePrecision")
        max_lev = min(_int(entry.get("maxLongLeverage", 1), f"{name}.maxLongLeverage"),
                      _int(entry.get("maxShortLeverage", 1), f"{name}.maxShortLeverage"))
        taker = _dec(entry.get("takerFeeRate", entry.get("feeRate")), f"{name}.takerFeeRate", non_negative=True)
        maker = _dec(entry.get("makerFeeRate", entry.get("feeRate")), f"{name}.makerFeeRate")
        try:
            return ContractSpec(symbol, Decimal(1).scaleb(-qty_dp), Decimal(1).scaleb(-px_dp),
                                max(1, min(125, max_lev)), taker, maker)
        except ValueError as exc:
            raise VenueError(f"BingX {name}: {exc}") from None

    async def balance_usdt(self) -> Decimal:
        """The USDT wallet balance (`user/balance` data.balance.balance): what the kernel's capital tracks."""
        data = await self._private("GET", f"{SWAP}/user/balance", {})
        balance = data.get("balance") if isinstance(data, Mapping) else None
        if isinstance(balance, list):  # the v3 shape: one entry per asset
            balance = next((b for b in balance if isinstance(b, Mapping) and b.get("asset") == "USDT"), None)
        if not isinstance(balance, Mapping):
            raise VenueError("BingX user/balance: no USDT balance in the answer")
        return _dec(balance.get("balance"), "user/balance balance", non_negative=True)

    async def positions(self) -> list[VenuePosition]:
        """Open positions; side from positionSide (LONG/SHORT), or from the sign of positionAmt for BOTH."""
        data = await self._private("GET", f"{SWAP}/user/positions", {})
        if not isinstance(data, list):
            raise VenueError("BingX user/positions: expected a list")
        out: list[VenuePosition] = []
        for entry in data:
            if not isinstance(entry, Mapping):
                raise VenueError("BingX user/positions: an entry is not an object")
            amount = _dec(entry.get("positionAmt"), "positionAmt")
            if amount == 0:
                continue
            ps = str(entry.get("positionSide", "")).upper()
            side = Side.LONG if ps == "LONG" or (ps == "BOTH" and amount > 0) else Side.SHORT
            if ps not in ("LONG", "SHORT", "BOTH"):
                raise VenueError(f"BingX user/positions: positionSide {ps!r} is not LONG, SHORT or BOTH")
            try:
                symbol = Symbol.parse(entry.get("symbol"))
            except ValueError as exc:
                raise VenueError(f"BingX user/positions: {exc}") from None
            out.append(VenuePosition(symbol, side, abs(amount), _dec(entry.get("avgPrice"), "avgPrice", positive=True),
                                     _int(str(entry.get("leverage", 1)).rstrip("Xx"), "leverage")))
        return out

    async def open_orders(self) -> list[VenueOrder]:
        data = await self._private("GET", f"{SWAP}/trade/openOrders", {})
        orders = data.get("orders") if isinstance(data, Mapping) else None
        if not isinstance(orders, list):
            raise VenueError("BingX trade/openOrders: expected data.orders to be a list")
        return [self._venue_order(o) for o in orders]

    @staticmethod
    def _venue_order(o: object) -> VenueOrder:
        if not isinstance(o, Mapping):
            raise VenueError("BingX order: expected an object")
        kind = str(o.get("type", "")).upper()
        side = str(o.get("side", "")).upper()
        ps = str(o.get("positionSide", "BOTH")).upper()
        if side not in ("BUY", "SELL"):
            raise VenueError(f"BingX order: side {side!r} is not BUY or SELL")
        closes_hedge_leg = (side, ps) in (("SELL", "LONG"), ("BUY", "SHORT"))
        reduce_raw = o.get("reduceOnly", False)
        reduce_only = closes_hedge_leg or reduce_raw is True or str(reduce_raw).lower() == "true"
        price_raw = o.get("price")
        price = None
        if kind != "MARKET" and price_raw not in (None, "", "0", 0):
            price = _dec(price_raw, "order price", positive=True)
        try:
            symbol = Symbol.parse(o.get("symbol"))
        except ValueError as exc:
            raise VenueError(f"BingX order: {exc}") from None
        return VenueOrder(str(o.get("clientOrderId") or o.get("clientOrderID") or ""), str(o.get("orderId", "")),
                          symbol, side, OrderType.MARKET if kind == "MARKET" else OrderType.LIMIT,
                          _dec(o.get("origQty"), "origQty", non_negative=True),
                          _dec(o.get("executedQty", "0"), "executedQty", non_negative=True), price, reduce_only)

    async def set_leverage(self, symbol: Symbol, leverage: int) -> None:
        """`trade/leverage` for side BOTH (one-way mode) or LONG and SHORT (hedge mode)."""
        sides = ("BOTH",) if self.config.position_mode == "one_way" else ("LONG", "SHORT")
        for side in sides:
            await self._private("POST", f"{SWAP}/trade/leverage",
                                {"symbol": str(symbol), "side": side, "leverage": int(leverage)})

    def _position_side(self, request: OrderRequest) -> str:
        if self.config.position_mode == "one_way":
            return "BOTH"
        buying = request.side == "BUY"
        return "LONG" if buying != request.reduce_only else "SHORT"

    async def place_order(self, request: OrderRequest) -> PlaceResult:
        """MARKET or LIMIT (timeInForce PostOnly for post-only, else GTC), clientOrderID, reduceOnly in one-way
        mode. A refusal comes back as a RejectCode; auth and busy errors raise. An unknown outcome (5xx, no
        answer) is resolved by asking for the order by client id."""
        await self._ensure_user_stream()
        params: dict[str, object] = {"symbol": str(request.symbol), "side": request.side,
                                     "positionSide": self._position_side(request), "type": request.order_type.value,
                                     "quantity": request.qty, "clientOrderID": request.client_id}
        if request.order_type is OrderType.LIMIT:
            if request.price_px is None:
                return PlaceResult(None, RejectCode.INVALID, "a LIMIT order needs a price")
            params["price"] = request.price_px
            params["timeInForce"] = "PostOnly" if request.post_only else "GTC"
        if request.reduce_only and self.config.position_mode == "one_way":
            params["reduceOnly"] = True
        path = f"{SWAP}/trade/order"
        try:
            data = await self._private("POST", path, params, retry_unknown=False)
        except BingXError as exc:
            if exc.outcome_unknown:
                return await self._resolve_unknown(request, exc)
            reject = classify_reject(exc.code, exc.msg) if exc.code else None
            if reject is None:
                raise
            return PlaceResult(None, reject, f"BingX code {exc.code}: {exc.msg}")
        order = data.get("order") if isinstance(data, Mapping) else None
        venue_id = order.get("orderId") if isinstance(order, Mapping) else None
        if venue_id in (None, "", 0):
            raise BingXError(path, "accepted without an orderId", http_status=200)
        self._track(request.client_id, request.symbol)
        return PlaceResult(str(venue_id))

    async def _resolve_unknown(self, request: OrderRequest, cause: BingXError) -> PlaceResult:
        LOG.warning("bingx_place_outcome_unknown", extra={"client_id": request.client_id, "error": str(cause)})
        order = await self._query_order(request.symbol, request.client_id)
        if order is None:
            raise BingXError(cause.path, f"{cause.msg}; no order {request.client_id} exists at BingX",
                             http_status=cause.http_status)
        self._track(request.client_id, request.symbol)
        return PlaceResult(str(order.get("orderId")))

    async def _query_order(self, symbol: Symbol, client_id: str) -> Mapping[str, Any] | None:
        """`trade/order` by clientOrderId; None when BingX does not know it."""
        try:
            data = await self._private("GET", f"{SWAP}/trade/order",
                                       {"symbol": str(symbol), "clientOrderId": client_id})
        except BingXError as exc:
            if exc.code in (80016, 109414):
                return None
            raise
        order = data.get("order") if isinstance(data, Mapping) else None
        return order if isinstance(order, Mapping) else None

    async def cancel_order(self, symbol: Symbol, client_id: str) -> bool:
        """Cancel by clientOrderID; False when BingX does not know the order (80016: filled, cancelled, never)."""
        try:
            await self._private("DELETE", f"{SWAP}/trade/order", {"symbol": str(symbol), "clientOrderID": client_id})
        except BingXError as exc:
            if exc.code in (80016, 109414):
                return False
            raise
        return True

    # ------------------------------------------------------------------ user stream

    def _track(self, client_id: str, symbol: Symbol) -> None:
        self._orders[client_id] = _Tracked(symbol)
        while len(self._orders) > MAX_TRACKED_ORDERS:
            self._orders.popitem(last=False)

    def _observe(self, frame: object) -> None:
        """Remember how far each tracked order got, so a reconnect knows what it missed."""
        if not isinstance(frame, Mapping) or frame.get("e") != "ORDER_TRADE_UPDATE":
            return
        o = frame.get("o")
        tracked = self._orders.get(str(o.get("c") or "")) if isinstance(o, Mapping) else None
        if tracked is None or not isinstance(o, Mapping):
            return
        with contextlib.suppress(ValueError):
            tracked.cum_qty = max(tracked.cum_qty, parse_decimal(o.get("z", "0"), "z"))
        tracked.final = tracked.final or str(o.get("X", "")).upper() in _FINAL

    def _enqueue(self, frame: object) -> None:
        assert self._frames is not None
        if self._frames.qsize() >= self.config.max_pending_frames:
            self.stats.frames_dropped += 1
            LOG.error("bingx_user_frame_dropped", extra={"pending": self._frames.qsize()})
            return
        self._observe(frame)
        self._frames.put_nowait(frame)

    async def _ensure_user_stream(self) -> None:
        if self._pump is None:
            self._frames = asyncio.Queue()
            self._pump = asyncio.create_task(self._run_user_stream(), name="bingx-user-stream")
        if not self._stream_ready.is_set():
            try:
                await asyncio.wait_for(self._stream_ready.wait(), self.config.timeouts.stream_ready_s)
            except TimeoutError:
                raise VenueError("BingX user stream is not connected: refusing to place an order whose fills "
                                 "could not be seen") from None

    async def user_stream(self) -> AsyncIterator[Mapping[str, Any]]:
        """Frames in venue order until `close()`; reconnects and reconciles by itself."""
        if self._pump is None:
            self._frames = asyncio.Queue()
            self._pump = asyncio.create_task(self._run_user_stream(), name="bingx-user-stream")
        assert self._frames is not None
        while True:
            item = await self._frames.get()
            if item is _CLOSED:
                return
            yield item

    async def _run_user_stream(self) -> None:
        attempt = 0
        connected_before = False
        while not self._closed.is_set():
            try:
                key = await self._get_listen_key()
                url = f"{self.config.ws_url}?listenKey={key}"
                async with connect(url, open_timeout=self.config.timeouts.ws_open_s, ping_interval=None,
                                   max_size=None, compression=None) as ws:
                    self._user_ws = ws
                    self.stats.user_connects += 1
                    attempt = 0
                    if connected_before:
                        await self._reconcile_gap()
                    connected_before = True
                    self._stream_ready.set()
                    await self._read_user(ws)
            except asyncio.CancelledError:
                raise
            except websockets.exceptions.InvalidStatus as exc:
                LOG.warning("bingx_user_stream_refused", extra={"status": exc.response.status_code})
                self._listen_key = None  # an unknown or expired key: make a new one
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException, VenueError) as exc:
                level = logging.DEBUG if self._closed.is_set() else logging.WARNING
                LOG.log(level, "bingx_user_stream_down", extra={"error": self._credentials.redact(repr(exc))[:300]})
            except Exception as exc:  # the pump must outlive anything a socket or a server can do
                LOG.error("bingx_user_stream_error", extra={"error": self._credentials.redact(repr(exc))[:300]})
            finally:
                self._stream_ready.clear()
                self._user_ws = None
            if self._closed.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self._backoff_s(attempt))
            attempt += 1
        if self._frames is not None:
            self._frames.put_nowait(_CLOSED)

    async def _read_user(self, ws: ClientConnection) -> None:
        keepalive = asyncio.create_task(self._keepalive(ws), name="bingx-listen-key-keepalive")
        try:
            while True:
                message = await asyncio.wait_for(ws.recv(), self.config.timeouts.ws_idle_s)
                decoded = decode_frame(message)
                if decoded.kind == "ping":
                    await self._pong(ws, decoded)
                    continue
                frame = self._frame_of(decoded)
                self._enqueue(frame)
                if isinstance(frame, Mapping) and frame.get("e") == "listenKeyExpired":
                    LOG.warning("bingx_listen_key_expired")
                    self._listen_key = None
                    return
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keepalive

    def _frame_of(self, decoded: Decoded) -> Any:
        if decoded.kind == "json" and isinstance(decoded.payload, Mapping):
            return decoded.payload
        self.stats.bad_user_frames += 1
        reason = decoded.reason or f"not a JSON object ({type(decoded.payload).__name__})"
        # No event type: the normaliser refuses and counts it; the excerpt lands in the audit log.
        return {"pink_undecodable": reason, "raw_excerpt": str(decoded.payload)[:200]}

    async def _pong(self, ws: ClientConnection, decoded: Decoded) -> None:
        if isinstance(decoded.payload, Mapping):
            await ws.send(json.dumps({"pong": decoded.payload.get("ping"), "time": decoded.payload.get("time")}))
        else:
            await ws.send("Pong")
        self.stats.pongs_sent += 1

    async def _keepalive(self, ws: ClientConnection) -> None:
        """Extend the listenKey every keepalive_s; a key BingX no longer knows ends the connection."""
        while True:
            await asyncio.sleep(self.config.timeouts.keepalive_s)
            key = self._listen_key
            if key is None:
                continue
            try:
                await self._request("PUT", LISTEN_KEY_PATH, {"listenKey": key}, signed=False)
                self.stats.keepalives += 1
            except BingXError as exc:
                LOG.warning("bingx_listen_key_keepalive_failed", extra={"error": str(exc)})
                if exc.http_status == 404:
                    self._listen_key = None
                    await ws.close()
                    return

    async def _get_listen_key(self) -> str:
        if self._listen_key is not None:
            return self._listen_key
        body = await self._request("POST", LISTEN_KEY_PATH, {}, signed=False)
        key = body.get("listenKey") if isinstance(body, Mapping) else None
        if not isinstance(key, str) and isinstance(body, Mapping) and isinstance(body.get("data"), Mapping):
            key = body["data"].get("listenKey")  # tolerate an enveloped answer
        if not isinstance(key, str) or not _LISTEN_KEY.match(key):
            raise VenueError("BingX userDataStream: no usable listenKey in the answer")
        self.stats.listen_keys_created += 1
        self._listen_key = key
        return key

    async def _reconcile_gap(self) -> None:
        """After a reconnect: the venue's truth for every tracked order that may have moved while the socket
        was down (as ORDER_TRADE_UPDATE frames), then the wallet (ACCOUNT_UPDATE). Marked `pink_source`."""
        now_ms = self._now_ms()
        for client_id, tracked in list(self._orders.items()):
            if tracked.final:
                continue
            order = await self._query_order(tracked.symbol, client_id)
            if order is None:
                continue
            frame = self._frame_from_order(order, client_id, tracked.symbol, now_ms)
            z = _dec(order.get("executedQty", "0"), "executedQty", non_negative=True)
            status = str(order.get("status", "")).upper()
            if z > tracked.cum_qty or status in _FINAL:
                self.stats.reconciled_frames += 1
                self._enqueue(frame)
        wallet = await self.balance_usdt()
        self.stats.reconciled_frames += 1
        self._enqueue({"e": "ACCOUNT_UPDATE", "E": now_ms, "pink_source": "rest_reconcile",
                       "a": {"m": "RECONCILE", "B": [{"a": "USDT", "wb": format(wallet, "f"),
                                                      "cw": format(wallet, "f")}], "P": []}})

    @staticmethod
    def _frame_from_order(order: Mapping[str, Any], client_id: str, symbol: Symbol, now_ms: int) -> dict[str, Any]:
        status = str(order.get("status", "")).upper()
        z = str(order.get("executedQty", "0"))
        commission = order.get("commission")
        return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "pink_source": "rest_reconcile", "o": {
            "s": str(symbol), "c": client_id, "i": str(order.get("orderId", "")), "S": order.get("side"),
            "o": order.get("type"), "q": order.get("origQty"), "p": order.get("price"),
            "ap": order.get("avgPrice"), "x": "TRADE" if status in ("FILLED", "PARTIALLY_FILLED") else status,
            "X": status, "N": "USDT", "n": "" if commission in (None, "") else str(commission), "z": z,
            "ps": order.get("positionSide", "BOTH")}}

    # ------------------------------------------------------------------ market stream

    async def market_stream(self, symbols: list[Symbol]) -> AsyncIterator[Quote]:
        """Quotes from `<SYMBOL>@bookTicker` pushes; reconnects and resubscribes with backoff until `close()`."""
        wanted = list(symbols) or list(self._contracts)
        if not wanted:
            raise VenueError("market_stream: name the symbols (or call contracts() first)")
        attempt = 0
        while not self._closed.is_set():
            try:
                async with connect(self.config.market_ws_url, open_timeout=self.config.timeouts.ws_open_s,
                                   ping_interval=None, max_size=None, compression=None) as ws:
                    self._market_ws = ws
                    self.stats.market_connects += 1
                    for symbol in wanted:
                        await ws.send(json.dumps({"id": uuid.uuid4().hex, "reqType": "sub",
                                                  "dataType": f"{symbol}@bookTicker"}))
                    attempt = 0
                    while True:
                        decoded = decode_frame(await asyncio.wait_for(ws.recv(), self.config.timeouts.ws_idle_s))
                        if decoded.kind == "ping":
                            await self._pong(ws, decoded)
                            continue
                        quote = self._quote_of(decoded)
                        if quote is not None:
                            yield quote
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                level = logging.DEBUG if self._closed.is_set() else logging.WARNING
                LOG.log(level, "bingx_market_stream_down", extra={"error": repr(exc)[:300]})
            finally:
                self._market_ws = None
            if self._closed.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self._backoff_s(attempt))
            attempt += 1

    def _quote_of(self, decoded: Decoded) -> Quote | None:
        payload = decoded.payload
        if decoded.kind != "json" or not isinstance(payload, Mapping):
            self.stats.bad_market_frames += 1
            return None
        if "dataType" not in payload or payload.get("data") is None:
            code = payload.get("code", 0)
            if code not in (0, "0"):
                LOG.warning("bingx_market_error", extra={"code": code, "msg": str(payload.get("msg", ""))[:200]})
            return None  # a subscription ack
        data = payload["data"]
        if not str(payload["dataType"]).endswith("@bookTicker") or not isinstance(data, Mapping):
            return None
        try:
            bid = parse_decimal(data.get("b"), "b (bid)", positive=True)
            ask = parse_decimal(data.get("a"), "a (ask)", positive=True)
            ts_ms = int(str(data.get("E")))
            symbol = Symbol.parse(data.get("s"))
        except ValueError as exc:
            self.stats.bad_market_frames += 1
            LOG.warning("bingx_bad_market_frame", extra={"error": str(exc)[:200]})
            return None
        return Quote(ts_ms, symbol, bid, ask, (bid + ask) / 2)

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """End both streams, drop the listenKey (best effort) and the HTTP session."""
        if self._closed.is_set():
            return
        key = self._listen_key
        if key is not None and self._session is not None:
            with contextlib.suppress(VenueError):
                await self._request("DELETE", LISTEN_KEY_PATH, {"listenKey": key}, signed=False, retry_unknown=False)
        self._closed.set()
        for ws in (self._user_ws, self._market_ws):
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()
        if self._pump is not None:
            try:
                await asyncio.wait_for(self._pump, self.config.timeouts.ws_open_s)
            except (TimeoutError, asyncio.CancelledError):
                self._pump.cancel()
            except Exception as exc:  # already logged by the pump
                LOG.debug("bingx_pump_ended", extra={"error": repr(exc)[:200]})
        if self._frames is not None:
            self._frames.put_nowait(_CLOSED)
        if self._session is not None:
            await self._session.close()
            self._session = None
