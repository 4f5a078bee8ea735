"""A BingX loopback server on 127.0.0.1: the BingX wire protocol in front of a `SimEngine`.

REST (the endpoints `BingXVenue` uses, `{code, msg, data}` envelopes, HMAC-SHA256 signatures and timestamps
checked like BingX), the listenKey lifecycle, and one websocket path `/swap-market` serving user data
(`?listenKey=`) and market data (`{"reqType": "sub", "dataType": "FET-USDT@bookTicker"}`). Every server frame is
gzip-compressed; `Ping` is sent every `ping_interval_s` and a client that misses `max_missed_pongs` in a row is
disconnected. Venue time belongs to a sim clock (`ScaledWallClock` for demos and fast tests, `ManualClock` for
step-by-step tests); the signature timestamp window uses the wall clock, like BingX's.

Fault knobs for tests: `faults.fail_next` (HTTP 503 answers), `faults.rate_limit_next` (HTTP 429),
`faults.frame_delay_s` (each user-stream message waits), `faults.skew_ms` (server clock offset),
`drop_user_streams()`, `expire_listen_keys()`, `push_raw()` (arbitrary bytes to user-stream clients).

Run it for a demo (credentials from the same environment variables the adapter reads)::

    export PINK_BINGX_API_KEY=demo-key PINK_BINGX_API_SECRET=demo-secret
    python -m pink_adapters.bingx.loopback --port 8765 --symbols FET-USDT,BTC-USDT

Codes marked [ASSUMED] in `wire.py` (post-only, reduce-only) are this server's choice, not BingX's documented ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import attrs
from aiohttp import WSMsgType, web

from pink_adapters.bingx.config import BingXConfigError, BingXCredentials
from pink_adapters.bingx.wire import encode_frame, sign
from pink_adapters.sim.config import SimConfig, default_symbols
from pink_adapters.sim.engine import SimEngine, SimOrder
from pink_adapters.sim.port import ScaledWallClock, SimClock
from pink_fsm.kernel.values import ContractSpec, Symbol
from pink_fsm.ports import OrderRequest, OrderType, Quote, RejectCode

__all__ = ["LoopbackFaults", "LoopbackServer", "LoopbackStats", "main"]

LOG = logging.getLogger("pink_adapters.bingx.loopback")
SWAP = "/openApi/swap/v2"
LISTEN_KEY_PATH = "/openApi/user/auth/userDataStream"
WS_PATH = "/swap-market"
MAX_CLIENT_QUEUE = 100_000  # messages waiting for one websocket client; a user client beyond it is disconnected
MAX_FUTURE_TIMESTAMP_MS = 1_000  # a request stamped further ahead of the server clock is refused
DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class LoopbackFaults:
    """Faults a test switches on; each counter is consumed one request at a time."""

    fail_next: int = 0  # the next N REST requests answer HTTP 503 with a non-JSON body
    rate_limit_next: int = 0  # the next N REST requests answer HTTP 429
    frame_delay_s: float = 0.0  # every user-stream message waits this long before it is sent
    skew_ms: int = 0  # the server clock runs this far ahead of the wall clock


@attrs.define
class LoopbackStats:
    requests: int = 0
    auth_failures: int = 0
    listen_keys_created: int = 0
    keepalives: int = 0
    user_connects: int = 0
    market_connects: int = 0
    pongs: int = 0
    frames_sent: int = 0
    frames_unsent: int = 0  # produced while no user-stream client with a valid listenKey was connected


@attrs.define(eq=False)
class _Client:
    ws: web.WebSocketResponse
    listen_key: str | None
    queue: asyncio.Queue[bytes] = attrs.field(factory=lambda: asyncio.Queue(MAX_CLIENT_QUEUE))
    symbols: set[Symbol] = attrs.field(factory=set)
    unanswered_pings: int = 0


def _fmt(value: Decimal) -> str:
    return "0" if not value else format(value, "f")


def _precision(step: Decimal, what: str) -> int:
    places = -step.normalize().as_tuple().exponent  # type: ignore[operator]
    if places < 0 or Decimal(1).scaleb(-places) != step:
        raise ValueError(f"{what} {step} is not 10^-n: BingX lists sizes as a number of decimals")
    return places


def _envelope(data: Any = None, code: int = 0, msg: str = "") -> web.Response:
    body = {"code": code, "msg": msg, "data": {} if data is None else data, "timestamp": time.time_ns() // 1_000_000}
    return web.json_response(body, dumps=lambda v: json.dumps(v, default=str))


class _Refused(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class LoopbackServer:
    """The server. `async with LoopbackServer(engine, clock, api_key=..., api_secret=...) as server:` starts it
    on an ephemeral port; `server.bingx_section()` is the `[bingx]` table pointing at it."""

    def __init__(self, engine: SimEngine, clock: SimClock, *, api_key: str, api_secret: str,
                 host: str = "127.0.0.1", port: int = 0, ping_interval_s: float = 5.0, max_missed_pongs: int = 3,
                 listen_key_ttl_s: float = 3600.0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"LoopbackServer.host: loopback addresses only, got {host!r}")
        self.engine = engine
        self.clock = clock
        self.faults = LoopbackFaults()
        self.stats = LoopbackStats()
        self._api_key = api_key
        self._secret = api_secret
        self._host = host
        self._port = port
        self._ping_interval_s = ping_interval_s
        self._max_missed_pongs = max_missed_pongs
        self._listen_key_ttl_s = listen_key_ttl_s
        self._listen_keys: dict[str, float] = {}  # key -> expiry (monotonic s)
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._driver: asyncio.Task[None] | None = None
        self._book_seq = 0
        self._contracts_json = [self._contract_json(c) for c in engine.contracts().values()]

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._faults_middleware])
        app.router.add_get(f"{SWAP}/server/time", self._server_time)
        app.router.add_get(f"{SWAP}/quote/contracts", self._quote_contracts)
        app.router.add_get(f"{SWAP}/user/balance", self._signed(self._balance))
        app.router.add_get(f"{SWAP}/user/positions", self._signed(self._positions))
        app.router.add_get(f"{SWAP}/trade/openOrders", self._signed(self._open_orders))
        app.router.add_post(f"{SWAP}/trade/order", self._signed(self._place))
        app.router.add_get(f"{SWAP}/trade/order", self._signed(self._query))
        app.router.add_delete(f"{SWAP}/trade/order", self._signed(self._cancel))
        app.router.add_post(f"{SWAP}/trade/leverage", self._signed(self._set_leverage))
        app.router.add_get(f"{SWAP}/trade/leverage", self._signed(self._get_leverage))
        app.router.add_post(LISTEN_KEY_PATH, self._listen_key_create)
        app.router.add_put(LISTEN_KEY_PATH, self._listen_key_extend)
        app.router.add_delete(LISTEN_KEY_PATH, self._listen_key_delete)
        app.router.add_get(WS_PATH, self._websocket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets, "the site listens on a socket"
        self._port = int(sockets[0].getsockname()[1])
        self.sync()
        self._driver = asyncio.create_task(self._drive(), name="bingx-loopback-clock")

    async def stop(self) -> None:
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
        for client in list(self._clients):
            with contextlib.suppress(Exception):
                await client.ws.close()
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host}:{self._port}{WS_PATH}"

    market_ws_url = ws_url

    def bingx_section(self, **extra: Any) -> dict[str, Any]:
        """The `[bingx]` table that points the adapter at this server."""
        return {"base_url": self.base_url, "ws_url": self.ws_url, "market_ws_url": self.market_ws_url, **extra}

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ venue time

    def server_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.faults.skew_ms

    def sync(self) -> None:
        """Bring the engine up to the clock: quotes go to market subscribers, frames to user streams."""
        now_ms = self.clock.now_ms()
        quotes = self.engine.advance(now_ms) if now_ms >= self.engine.now_ms else []
        self._broadcast_quotes(quotes)
        self._push_frames()

    async def _drive(self) -> None:
        while True:
            next_ms = self.engine.next_event_ms()
            if next_ms is None:
                return
            await self.clock.sleep_until(next_ms)
            self.sync()

    # ------------------------------------------------------------------ pushing

    def _user_clients(self) -> list[_Client]:
        return [c for c in self._clients if c.listen_key is not None and self._key_valid(c.listen_key)]

    def _push_frames(self) -> None:
        frames = self.engine.drain_frames()
        if not frames:
            return
        clients = self._user_clients()
        if not clients:
            self.stats.frames_unsent += len(frames)
            return
        for frame in frames:
            self._send_user(clients, encode_frame(frame))

    def _send_user(self, clients: Sequence[_Client], message: bytes) -> None:
        for client in clients:
            try:
                client.queue.put_nowait(message)
                self.stats.frames_sent += 1
            except asyncio.QueueFull:
                LOG.warning("loopback_user_client_too_slow")
                self._spawn(client.ws.close(), "close-slow-client")

    def push_raw(self, message: bytes | str) -> int:
        """Send `message` exactly as given (no gzip) to every user-stream client; how many got it."""
        data = message.encode() if isinstance(message, str) else message
        clients = self._user_clients()
        self._send_user(clients, data)
        return len(clients)

    def _broadcast_quotes(self, quotes: Sequence[Quote]) -> None:
        for quote in quotes:
            listeners = [c for c in self._clients if quote.symbol in c.symbols]
            if not listeners:
                continue
            self._book_seq += 1
            depth = self.engine.config.symbol_config(quote.symbol)
            qty = _fmt(depth.contract.qty(depth.depth_lots))
            message = encode_frame({"code": 0, "dataType": f"{quote.symbol}@bookTicker", "data": {
                "e": "bookTicker", "u": self._book_seq, "E": quote.ts_ms, "T": quote.ts_ms, "s": str(quote.symbol),
                "b": _fmt(quote.bid_px), "B": qty, "a": _fmt(quote.ask_px), "A": qty}})
            for client in listeners:
                with contextlib.suppress(asyncio.QueueFull):  # market data is lossy
                    client.queue.put_nowait(message)

    async def drop_user_streams(self) -> int:
        """Close every user-stream connection (the listenKeys stay valid); how many were closed."""
        clients = [c for c in self._clients if c.listen_key is not None]
        for client in clients:
            await client.ws.close(code=1011, message=b"dropped by the loopback fault knob")
        return len(clients)

    async def expire_listen_keys(self) -> int:
        """Expire every listenKey: its clients get `listenKeyExpired` and nothing after it."""
        keys = [k for k in self._listen_keys if self._key_valid(k)]
        for key in keys:
            frame = encode_frame({"e": "listenKeyExpired", "E": self.clock.now_ms(), "listenKey": key})
            self._send_user([c for c in self._clients if c.listen_key == key], frame)
            self._listen_keys[key] = 0.0
        return len(keys)

    # ------------------------------------------------------------------ websocket

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        key = request.query.get("listenKey")
        if key is not None and not self._key_valid(key):
            return web.json_response({"code": 100413, "msg": "listenKey does not exist or has expired"}, status=404)
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 16, compress=False)
        await ws.prepare(request)
        client = _Client(ws, key)
        self._clients.add(client)
        if key is None:
            self.stats.market_connects += 1
        else:
            self.stats.user_connects += 1
        writer = self._spawn(self._writer(client), "loopback-ws-writer")
        pinger = self._spawn(self._pinger(client), "loopback-ws-pinger")
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_client_text(client, message.data)
        finally:
            self._clients.discard(client)
            writer.cancel()
            pinger.cancel()
        return ws

    def _on_client_text(self, client: _Client, text: str) -> None:
        if text.strip() == "Pong":
            client.unanswered_pings = 0
            self.stats.pongs += 1
            return
        try:
            request = json.loads(text)
            data_type = str(request["dataType"])
            symbol = Symbol.parse(data_type.split("@", 1)[0])
            if request.get("reqType") not in ("sub", "unsub") or not data_type.endswith("@bookTicker"):
                raise ValueError(data_type)
        except (ValueError, KeyError, TypeError):
            client.queue.put_nowait(encode_frame({"code": 100400, "msg": "invalid subscription",
                                                  "timestamp": self.server_ms()}))
            return
        if request["reqType"] == "sub":
            client.symbols.add(symbol)
        else:
            client.symbols.discard(symbol)
        client.queue.put_nowait(encode_frame({"id": request.get("id", ""), "code": 0, "msg": "", "dataType": "",
                                              "data": None}))

    async def _writer(self, client: _Client) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not client.ws.closed:
                message = await client.queue.get()
                if client.listen_key is not None and self.faults.frame_delay_s > 0:
                    await asyncio.sleep(self.faults.frame_delay_s)
                await client.ws.send_bytes(message)

    async def _pinger(self, client: _Client) -> None:
        ping = encode_frame("Ping")
        while not client.ws.closed:
            await asyncio.sleep(self._ping_interval_s)
            if client.unanswered_pings >= self._max_missed_pongs:
                LOG.warning("loopback_client_missed_pongs")
                await client.ws.close(code=1008, message=b"no Pong")
                return
            client.unanswered_pings += 1
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(ping)

    # ------------------------------------------------------------------ listenKey

    def _key_valid(self, key: str) -> bool:
        return self._listen_keys.get(key, 0.0) > time.monotonic()

    def _api_key_ok(self, request: web.Request) -> bool:
        given = request.headers.get("X-BX-APIKEY", "")
        ok = hmac.compare_digest(given.encode(), self._api_key.encode())
        if not ok:
            self.stats.auth_failures += 1
        return ok

    async def _listen_key_create(self, request: web.Request) -> web.StreamResponse:
        if not self._api_key_ok(request):
            return _envelope(code=100413, msg="Incorrect apiKey")
        key = secrets.token_hex(32)
        self._listen_keys[key] = time.monotonic() + self._listen_key_ttl_s
        self.stats.listen_keys_created += 1
        return web.json_response({"listenKey": key})  # not enveloped (reference section 5)

    async def _listen_key_extend(self, request: web.Request) -> web.StreamResponse:
        key = request.query.get("listenKey", "")
        if not self._api_key_ok(request):
            return _envelope(code=100413, msg="Incorrect apiKey")
        if not self._key_valid(key):
            return web.Response(status=404)
        self._listen_keys[key] = time.monotonic() + self._listen_key_ttl_s
        self.stats.keepalives += 1
        return web.Response(status=200)

    async def _listen_key_delete(self, request: web.Request) -> web.StreamResponse:
        key = request.query.get("listenKey", "")
        if not self._api_key_ok(request):
            return _envelope(code=100413, msg="Incorrect apiKey")
        if self._listen_keys.pop(key, None) is None:
            return web.Response(status=404)
        return web.Response(status=200)

    # ------------------------------------------------------------------ REST plumbing

    @web.middleware
    async def _faults_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == WS_PATH:
            return await handler(request)
        self.stats.requests += 1
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return web.Response(status=503, text="Service Unavailable")
        if self.faults.rate_limit_next > 0:
            self.faults.rate_limit_next -= 1
            return web.json_response({"code": 100410, "msg": "rate limit exceeded"}, status=429)
        return await handler(request)

    def _verify(self, request: web.Request) -> dict[str, str]:
        """The request's parameters after BingX's checks: API key, signature over the query string as received
        (minus `signature`, values URL-decoded, in received order), timestamp within recvWindow."""
        if not self._api_key_ok(request):
            raise _Refused(100413, "Incorrect apiKey")
        pairs: list[tuple[str, str]] = []
        signature: str | None = None
        raw = request.rel_url.raw_query_string
        for part in raw.split("&") if raw else []:
            key, _, value = part.partition("=")
            if key == "signature":
                signature = value
            else:
                pairs.append((unquote(key), unquote(value)))
        if not signature:
            self.stats.auth_failures += 1
            raise _Refused(100412, "Null signature")
        expected = sign(self._secret, "&".join(f"{k}={v}" for k, v in pairs))
        if not hmac.compare_digest(expected, signature):
            self.stats.auth_failures += 1
            raise _Refused(100001, "Signature verification failed")
        params = dict(pairs)
        try:
            ts_ms = int(params["timestamp"])
            window_ms = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except (KeyError, ValueError):
            raise _Refused(109400, "Null timestamp or timestamp mismatch") from None
        if not 0 < window_ms <= MAX_RECV_WINDOW_MS:
            raise _Refused(109400, f"recvWindow must be in (0, {MAX_RECV_WINDOW_MS}]")
        now_ms = self.server_ms()
        if ts_ms - now_ms > MAX_FUTURE_TIMESTAMP_MS or now_ms - ts_ms > window_ms:
            raise _Refused(109400, f"timestamp is invalid: {ts_ms} is outside recvWindow {window_ms} of {now_ms}")
        return params

    def _signed(self, handler: Callable[[dict[str, str]], Any]) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                params = self._verify(request)
                self.sync()
                data = handler(params)
                self._push_frames()
            except _Refused as refused:
                return _envelope(code=refused.code, msg=refused.msg)
            return _envelope(data)
        return wrapped

    # ------------------------------------------------------------------ public endpoints

    async def _server_time(self, request: web.Request) -> web.StreamResponse:
        return _envelope({"serverTime": self.server_ms()})

    async def _quote_contracts(self, request: web.Request) -> web.StreamResponse:
        return _envelope(self._contracts_json)

    def _contract_json(self, c: ContractSpec) -> dict[str, Any]:
        spec = self.engine.config.symbol_config(c.symbol)
        return {"contractId": str(100 + self.engine.config.symbols.index(spec)), "symbol": str(c.symbol),
                "size": _fmt(c.lot_size), "quantityPrecision": str(_precision(c.lot_size, f"{c.symbol} lot")),
                "pricePrecision": str(_precision(c.tick_size, f"{c.symbol} tick")), "feeRate": _fmt(c.taker_fee_rate),
                "makerFeeRate": _fmt(c.maker_fee_rate), "takerFeeRate": _fmt(c.taker_fee_rate), "tradeMinLimit": "0",
                "tradeMinQuantity": _fmt(c.lot_size), "tradeMinUSDT": _fmt(spec.min_notional_usdt),
                "maxLongLeverage": str(c.max_leverage), "maxShortLeverage": str(c.max_leverage), "currency": "USDT",
                "asset": c.symbol.base, "status": "1", "apiStateOpen": "true", "apiStateClose": "true"}

    # ------------------------------------------------------------------ private endpoints

    def _symbol(self, params: Mapping[str, str]) -> Symbol:
        try:
            symbol = Symbol.parse(params.get("symbol"))
        except ValueError:
            raise _Refused(80014, f"Invalid parameters, symbol {params.get('symbol')!r}") from None
        if symbol not in self.engine.contracts():
            raise _Refused(80014, f"Invalid parameters, symbol {symbol} is not listed")
        return symbol

    def _mark_px(self, symbol: Symbol) -> Decimal | None:
        quote = self.engine.quote(symbol)
        return None if quote is None else quote.mid_px

    def _balance(self, params: Mapping[str, str]) -> Any:
        wallet = self.engine.balance_usdt()
        unrealised = sum((self._unrealised(p.symbol, p.side.name, p.qty, p.entry_px)
                          for p in self.engine.positions()), Decimal(0))
        available = self.engine.available_usdt()
        realised = self.engine.ledger().realised_pnl_usdt
        return {"balance": {"asset": "USDT", "balance": _fmt(wallet), "equity": _fmt(wallet + unrealised),
                            "unrealizedProfit": _fmt(unrealised), "realisedProfit": _fmt(realised),
                            "availableMargin": _fmt(available), "usedMargin": _fmt(wallet - available),
                            "freezedMargin": "0"}}

    def _unrealised(self, symbol: Symbol, side: str, qty: Decimal, entry_px: Decimal) -> Decimal:
        mark = self._mark_px(symbol)
        if mark is None:
            return Decimal(0)
        return (mark - entry_px) * qty * (1 if side == "LONG" else -1)

    def _positions(self, params: Mapping[str, str]) -> Any:
        out = []
        for p in self.engine.positions():
            mark = self._mark_px(p.symbol) or p.entry_px
            out.append({"positionId": str(1_700_000_000_000_000_000 + self.engine.config.symbols.index(
                            self.engine.config.symbol_config(p.symbol))),
                        "symbol": str(p.symbol), "currency": "USDT", "positionAmt": _fmt(p.qty),
                        "availableAmt": _fmt(p.qty), "positionSide": p.side.name, "isolated": False,
                        "avgPrice": _fmt(p.entry_px), "leverage": p.leverage,
                        "unrealizedProfit": _fmt(self._unrealised(p.symbol, p.side.name, p.qty, p.entry_px)),
                        "markPrice": _fmt(mark), "positionValue": _fmt(mark * p.qty), "onlyOnePosition": True,
                        "updateTime": self.engine.now_ms})
        return out

    def _order_json(self, o: SimOrder) -> dict[str, Any]:
        status = "CANCELLED" if o.status == "CANCELED" else o.status  # REST spells it with two Ls (reference 4.4)
        return {"symbol": str(o.symbol), "orderId": int(o.venue_id), "side": o.side, "positionSide": "BOTH",
                "type": o.order_type, "origQty": _fmt(o.qty), "price": _fmt(o.price_px or o.ref_px),
                "executedQty": _fmt(o.filled_qty), "avgPrice": _fmt(o.avg_px),
                "cumQuote": _fmt(o.filled_qty * o.avg_px),
                "stopPrice": "", "profit": "", "commission": _fmt(-o.fee_usdt), "status": status,
                "time": o.created_ms, "updateTime": o.updated_ms, "clientOrderId": o.client_id,
                "leverage": f"{self.engine.leverage(o.symbol)}X", "workingType": "MARK_PRICE",
                "timeInForce": "PostOnly" if o.post_only else ("GTC" if o.order_type == "LIMIT" else ""),
                "reduceOnly": o.reduce_only}

    def _open_orders(self, params: Mapping[str, str]) -> Any:
        orders = []
        for venue_order in self.engine.open_orders():
            sim_order = self.engine.order(venue_order.client_id)
            assert sim_order is not None, "an open order is known by its client id"
            orders.append(self._order_json(sim_order))
        return {"orders": orders}

    def _client_id(self, params: Mapping[str, str]) -> str:
        return params.get("clientOrderID") or params.get("clientOrderId") or ""

    def _place(self, params: Mapping[str, str]) -> Any:
        symbol = self._symbol(params)
        side, kind = params.get("side", ""), params.get("type", "")
        if side not in ("BUY", "SELL"):
            raise _Refused(80014, f"Invalid parameters, side {side!r}")
        if kind not in ("MARKET", "LIMIT"):
            raise _Refused(80014, f"Invalid parameters, type {kind!r} (the loopback serves MARKET and LIMIT)")
        if params.get("positionSide", "BOTH") != "BOTH":
            raise _Refused(80014, "Invalid parameters, positionSide: the account is in one-way mode (BOTH)")
        tif = params.get("timeInForce", "GTC")
        if tif not in ("GTC", "PostOnly"):
            raise _Refused(80014, f"Invalid parameters, timeInForce {tif!r}")
        try:
            qty = Decimal(params["quantity"])
            price = Decimal(params["price"]) if "price" in params else None
        except (KeyError, ArithmeticError):
            raise _Refused(80014, "Invalid parameters, quantity/price") from None
        client_id = self._client_id(params) or f"loopback{secrets.token_hex(6)}"
        request = OrderRequest(client_id, symbol, side, OrderType(kind), qty, price, post_only=tif == "PostOnly",
                               reduce_only=params.get("reduceOnly", "false").lower() == "true")
        result = self.engine.place_order(request)
        if not result.accepted:
            raise _Refused(*self._reject_code(result.reject_code, result.reject_reason))
        return {"order": {"symbol": str(symbol), "orderId": int(result.venue_id or 0), "side": side,
                          "positionSide": "BOTH", "type": kind, "clientOrderID": client_id,
                          "workingType": "MARK_PRICE"}}

    @staticmethod
    def _reject_code(code: RejectCode, reason: str) -> tuple[int, str]:
        if code is RejectCode.POST_ONLY_WOULD_TAKE:
            return 101400, f"PostOnly order would take liquidity, rejected: {reason}"  # [ASSUMED code]
        if code is RejectCode.REDUCE_ONLY:
            return 101290, f"ReduceOnly order would increase the position: {reason}"  # [ASSUMED code]
        if code is RejectCode.INSUFFICIENT_MARGIN:
            return 101204, f"Insufficient margin: {reason}"
        if code is RejectCode.INVALID and "notional" in reason:
            return 110425, f"the minimum nominal value of the order must be greater than 2u: {reason}"
        if code is RejectCode.INVALID:
            return 80014, f"Invalid parameters, {reason}"
        return 80001, f"request failed: {reason}"

    def _find(self, params: Mapping[str, str]) -> SimOrder:
        symbol = self._symbol(params)
        client_id = self._client_id(params)
        order = self.engine.order(client_id) if client_id else None
        if order is None and params.get("orderId"):
            order = next((o for o in [*self.engine.order_history(), *(
                self.engine.order(v.client_id) for v in self.engine.open_orders())]
                if o is not None and o.venue_id == params["orderId"]), None)
        if order is None or order.symbol != symbol:
            raise _Refused(80016, "order not exist")
        return order

    def _query(self, params: Mapping[str, str]) -> Any:
        return {"order": self._order_json(self._find(params))}

    def _cancel(self, params: Mapping[str, str]) -> Any:
        order = self._find(params)
        if not self.engine.cancel_order(order.symbol, order.client_id):
            raise _Refused(80016, "order not exist")
        final = self.engine.order(order.client_id)
        assert final is not None
        return {"order": self._order_json(final)}

    def _set_leverage(self, params: Mapping[str, str]) -> Any:
        symbol = self._symbol(params)
        if params.get("side") not in ("LONG", "SHORT", "BOTH"):
            raise _Refused(80014, f"Invalid parameters, side {params.get('side')!r}")
        try:
            leverage = int(params.get("leverage", ""))
            self.engine.set_leverage(symbol, leverage)
        except ValueError as exc:
            raise _Refused(80014, f"Invalid parameters, leverage: {exc}") from None
        return {"leverage": leverage, "symbol": str(symbol)}

    def _get_leverage(self, params: Mapping[str, str]) -> Any:
        symbol = self._symbol(params)
        leverage = self.engine.leverage(symbol)
        cap = self.engine.contracts()[symbol].max_leverage
        return {"longLeverage": leverage, "shortLeverage": leverage, "maxLongLeverage": cap, "maxShortLeverage": cap}


# ------------------------------------------------------------------ demo entry point


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pink_adapters.bingx.loopback",
                                     description="A BingX loopback server on 127.0.0.1 backed by the sim engine.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: an ephemeral one)")
    parser.add_argument("--symbols", default="FET-USDT", help="comma-separated, e.g. FET-USDT,BTC-USDT")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--speed", type=float, default=1.0, help="venue time x wall time (keep 1 for pink run)")
    parser.add_argument("--quote-interval-ms", type=int, default=1000)
    parser.add_argument("--balance-usdt", default="10000")
    parser.add_argument("--ping-interval-s", type=float, default=5.0)
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace, credentials: BingXCredentials) -> None:
    start_ms = time.time_ns() // 1_000_000
    start_ms -= start_ms % args.quote_interval_ms
    config = SimConfig(symbols=default_symbols(s for s in args.symbols.split(",") if s), seed=args.seed,
                       start_ms=start_ms, quote_interval_ms=args.quote_interval_ms,
                       initial_balance_usdt=Decimal(args.balance_usdt))
    clock = ScaledWallClock(start_ms, args.speed)
    server = LoopbackServer(SimEngine(config), clock, api_key=credentials.api_key, api_secret=credentials.secret,
                            port=args.port, ping_interval_s=args.ping_interval_s)
    await server.start()
    print(f"BingX loopback on 127.0.0.1:{server.port} ({args.symbols}, seed {args.seed}, speed {args.speed}x)\n"
          f"[bingx]\nbase_url = \"{server.base_url}\"\nws_url = \"{server.ws_url}\"\n"
          f"market_ws_url = \"{server.market_ws_url}\"", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        credentials = BingXCredentials.from_env()
        default_symbols(s for s in args.symbols.split(",") if s)
    except (BingXConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(args, credentials))
    return 0


if __name__ == "__main__":
    sys.exit(main())
