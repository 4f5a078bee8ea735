"""The BingX adapter against the BingX loopback server on 127.0.0.1 (never the internet): signing, every REST
call, error-code mapping, the user stream (fills, reconnects, listenKey expiry, bad frames, Ping/Pong), the
market stream, rate limits and 5xx, and that credentials never leak."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_bingx_helpers import ENV, FET, KEY, SECRET, T0, collect, limit, market, stack, wait_for

from pink_adapters.bingx import (
    BingXConfig,
    BingXConfigError,
    BingXCredentials,
    BingXError,
    BingXVenue,
    build_bingx_venue,
    classify_reject,
    decode_frame,
    sign,
    signed_query,
)
from pink_adapters.bingx.wire import API_KEY_ENV, API_SECRET_ENV, encode_frame
from pink_fsm.kernel.events import AccountUpdate, OrderCancelled, OrderFilled
from pink_fsm.kernel.normaliser import BadFrame, normalise_frame
from pink_fsm.kernel.values import Side, Symbol
from pink_fsm.ports import RejectCode, Venue, VenueError

# ------------------------------------------------------------------ signing and configuration


def test_signature_matches_the_reference_test_vector() -> None:
    secret = "mheO6dR8ovSsxZQCOYEFCtelpuxcWGTfHw7te326y6jOwq5WpvFQ9JNljoTwBXZGv5It07m9RXSPpDQEK2w"
    query = "symbol=BTC-USDT&timestamp=1667872120843&side=LONG&leverage=6"
    assert sign(secret, query) == "4f581ecdb1fa09b9d6e57886b6f70cffed17f82b93399722939e49a38edec2bf"
    signed = signed_query({"symbol": "BTC-USDT", "leverage": 6, "side": "LONG", "timestamp": 1667872120843}, secret)
    raw, _, signature = signed.partition("&signature=")
    assert raw == "leverage=6&side=LONG&symbol=BTC-USDT&timestamp=1667872120843"  # sorted, raw text
    assert signature == sign(secret, raw)
    assert signed_query({"qty": D("0.10"), "reduceOnly": True}, secret).startswith("qty=0.10&reduceOnly=true&")
    with pytest.raises(ValueError, match="only letters"):
        signed_query({"clientOrderID": "a&b=c"}, secret)


def test_missing_credentials_name_the_environment_variable() -> None:
    with pytest.raises(BingXConfigError, match=API_KEY_ENV):
        BingXCredentials.from_env({})
    with pytest.raises(BingXConfigError, match=API_SECRET_ENV):
        BingXCredentials.from_env({API_KEY_ENV: KEY})
    with pytest.raises(BingXConfigError, match=API_KEY_ENV):
        BingXVenue(BingXConfig(), environ={API_SECRET_ENV: SECRET})


def test_config_refuses_secrets_unknown_keys_and_bad_values_naming_the_key() -> None:
    with pytest.raises(BingXConfigError, match="environment only"):
        BingXConfig.from_mapping({"api_secret": "x"})
    with pytest.raises(BingXConfigError, match="unknown key 'base_ur'"):
        BingXConfig.from_mapping({"base_ur": "http://127.0.0.1:1"})
    with pytest.raises(BingXConfigError, match="ws_url"):
        BingXConfig.from_mapping({"ws_url": "http://nope"})
    with pytest.raises(BingXConfigError, match="position_mode"):
        BingXConfig.from_mapping({"position_mode": "both"})
    config = BingXConfig.from_mapping({"recv_window_ms": 7000, "timeouts": {"keepalive_s": 60}, "ws_idle_s": 9})
    assert (config.recv_window_ms, config.timeouts.keepalive_s, config.timeouts.ws_idle_s) == (7000, 60, 9)
    assert config.base_url == "https://open-api.bingx.com"


@pytest.mark.parametrize(("code", "msg", "expected"), [
    (101400, "", RejectCode.POST_ONLY_WOULD_TAKE),
    (80014, "PostOnly order would immediately match", RejectCode.POST_ONLY_WOULD_TAKE),
    (101290, "", RejectCode.REDUCE_ONLY),
    (101204, "Insufficient margin", RejectCode.INSUFFICIENT_MARGIN),
    (80012, '{"Code":101253,"Msg":"margin is not enough"}', RejectCode.INSUFFICIENT_MARGIN),
    (100202, "insufficient balance", RejectCode.INSUFFICIENT_MARGIN),
    (110425, "the minimum nominal value of the order must be greater than 2u", RejectCode.INVALID),
    (80014, "Invalid parameters", RejectCode.INVALID),
    (100421, "This pair is currently restricted from API trading", RejectCode.INVALID),
    (80001, "request failed", RejectCode.OTHER),
    (123456, "something new", RejectCode.OTHER),
    (80012, "service unavailable", None),
    (100001, "Signature verification failed", None),
    (100413, "Incorrect apiKey", None),
    (100410, "system busy", None),
    (100500, "internal error", None),
])
def test_every_venue_code_maps_to_a_reject_code_or_a_venue_error(code: int, msg: str,
                                                                  expected: RejectCode | None) -> None:
    assert classify_reject(code, msg) is expected


# ------------------------------------------------------------------ REST round trips


def test_every_rest_call_round_trips_against_the_loopback(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            venue = s.venue
            assert isinstance(venue, Venue)
            spec = (await venue.contracts([FET]))[FET]
            assert spec == s.engine.contracts()[FET]  # lot, tick, max leverage, fee rates
            with pytest.raises(VenueError, match="not listed"):
                await venue.contracts([Symbol.parse("DOGE-USDT")])
            assert await venue.balance_usdt() == D(10000)
            await venue.set_leverage(FET, 3)
            assert s.engine.leverage(FET) == 3
            with pytest.raises(BingXError, match="code 80014"):
                await venue.set_leverage(FET, 500)
            # A resting post-only LIMIT: open orders show it, cancel by client id, a second cancel finds nothing.
            assert (await venue.place_order(limit("rest1", "BUY", "100", "0.6300", post_only=True))).accepted
            [order] = await venue.open_orders()
            assert (order.client_id, order.side, order.qty, order.price_px, order.reduce_only) == (
                "rest1", "BUY", D(100), D("0.6300"), False)
            assert order.venue_id == s.engine.open_orders()[0].venue_id
            assert await venue.cancel_order(FET, "rest1") is True
            assert await venue.cancel_order(FET, "rest1") is False
            assert await venue.open_orders() == []
            # MARKET in, reduce-only MARKET out: positions and the wallet follow the engine.
            placed = await venue.place_order(market("in1", "BUY", "200"))
            assert placed.accepted and placed.venue_id is not None and placed.venue_id.isdigit()
            [position] = await venue.positions()
            assert (position.symbol, position.side, position.qty, position.leverage) == (FET, Side.LONG, D(200), 3)
            assert position.entry_px == s.engine.positions()[0].entry_px
            assert (await venue.place_order(market("out1", "SELL", "200", reduce_only=True))).accepted
            assert await venue.positions() == []
            assert await venue.balance_usdt() == s.engine.balance_usdt() < D(10000)
            assert s.server.stats.auth_failures == 0

    asyncio.run(scenario())


def test_placement_refusals_map_to_reject_codes(tmp_path: Path) -> None:
    async def scenario() -> dict[str, RejectCode]:
        async with stack(tmp_path) as s:
            out = {}
            for name, request in {
                "post_only": limit("p1", "BUY", "100", "0.6501", post_only=True),  # at the ask: would take
                "reduce_only": market("r1", "SELL", "100", reduce_only=True),  # nothing to reduce
                "margin": market("m1", "BUY", "10000000"),
                "notional": market("n1", "BUY", "1"),
                "tick": limit("t1", "BUY", "100", "0.64505"),
            }.items():
                result = await s.venue.place_order(request)
                assert result.venue_id is None and result.reject_reason.startswith("BingX code")
                out[name] = result.reject_code
            assert s.engine.open_orders() == [] and s.engine.positions() == []
            return out

    assert asyncio.run(scenario()) == {
        "post_only": RejectCode.POST_ONLY_WOULD_TAKE, "reduce_only": RejectCode.REDUCE_ONLY,
        "margin": RejectCode.INSUFFICIENT_MARGIN, "notional": RejectCode.INVALID, "tick": RejectCode.INVALID}


def test_wrong_signature_wrong_key_and_stale_timestamp_get_the_real_error_codes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            wrong_secret = build_bingx_venue(s.server.bingx_section(), environ={**ENV, API_SECRET_ENV: "not-it"})
            wrong_key = build_bingx_venue(s.server.bingx_section(), environ={**ENV, API_KEY_ENV: "someone-else"})
            try:
                with pytest.raises(BingXError) as signature:
                    await wrong_secret.balance_usdt()
                assert signature.value.code == 100001
                with pytest.raises(BingXError) as key:
                    await wrong_key.positions()
                assert key.value.code == 100413
            finally:
                await wrong_secret.close()
                await wrong_key.close()
            stale_ms = time.time_ns() // 1_000_000 - 6_000
            query = signed_query({"timestamp": stale_ms}, SECRET)
            async with aiohttp.ClientSession() as http, http.get(
                    f"{s.server.base_url}/openApi/swap/v2/user/balance?{query}", headers={"X-BX-APIKEY": KEY}) as r:
                body = await r.json()
            assert body["code"] == 109400 and "timestamp" in body["msg"]
            assert s.server.stats.auth_failures == 2

    asyncio.run(scenario())


def test_adapter_follows_the_server_clock_when_the_host_clock_is_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            s.server.faults.skew_ms = 60_000  # BingX's clock a minute ahead of ours
            assert await s.venue.balance_usdt() == D(10000)
            offset_ms = await s.venue.sync_time()
            assert 59_000 < offset_ms < 61_000
            s.server.faults.skew_ms = -30_000  # the clock moved under us: the timestamp error re-syncs once
            assert await s.venue.balance_usdt() == D(10000)

    asyncio.run(scenario())


def test_rate_limits_back_off_and_5xx_retries_only_what_is_safe(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            await s.venue.balance_usdt()
            s.server.faults.rate_limit_next = 2
            assert (await s.venue.place_order(market("rl1", "BUY", "100"))).accepted
            assert s.venue.stats.rate_limited == 2
            s.server.faults.fail_next = 1
            assert len(await s.venue.positions()) == 1  # an idempotent GET is retried after a 503
            s.server.faults.fail_next = 1  # a placement's 503: outcome unknown, asked by client id, not found
            with pytest.raises(BingXError, match="no order x5 exists"):
                await s.venue.place_order(market("x5", "BUY", "100"))
            s.server.faults.rate_limit_next = 10
            with pytest.raises(BingXError, match="HTTP 429"):
                await s.venue.balance_usdt()
            s.server.faults.rate_limit_next = 0

    asyncio.run(scenario())


# ------------------------------------------------------------------ user stream


def test_user_stream_delivers_gzip_frames_that_the_normaliser_accepts(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        async with stack(tmp_path) as s:
            frames: list[Any] = []
            task = collect(s.venue, frames)
            assert (await s.venue.place_order(limit("f1", "BUY", "100", "0.6450"))).accepted
            await s.advance(10_000)  # the ask drops to 0.6402: the resting BUY fills at its own price
            await wait_for(lambda: any(f.get("e") == "ACCOUNT_UPDATE" for f in frames))
            await s.venue.close()
            await asyncio.wait_for(task, 3)
            return frames

    frames = asyncio.run(scenario())
    events = [e for f in frames for e in normalise_frame(f).events]
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert len(fills) == 1
    assert fills[0].ref.client_id is not None
    assert (fills[0].ref.client_id.value, fills[0].cum_qty, fills[0].cum_quote_usdt) == ("f1", D(100), D("64.5"))


def test_reconnect_after_a_drop_reconciles_the_fill_missed_meanwhile(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        async with stack(tmp_path, backoff_min_s=0.3, backoff_max_s=0.3) as s:
            frames: list[Any] = []
            task = collect(s.venue, frames)
            assert (await s.venue.place_order(limit("g1", "BUY", "100", "0.6450"))).accepted
            assert await s.server.drop_user_streams() == 1
            await wait_for(lambda: s.server.stats.user_connects == 1 and not s.server._user_clients())
            await s.advance(10_000)  # fills while nobody listens: the frames are lost, as on BingX
            assert s.server.stats.frames_unsent >= 2
            await wait_for(lambda: s.venue.stats.reconciled_frames >= 2)
            assert s.server.stats.user_connects == 2 and s.server.stats.listen_keys_created == 1
            # The stream works again after the reconnect.
            assert (await s.venue.place_order(limit("g2", "SELL", "100", "0.6550", reduce_only=True))).accepted
            await s.advance(10_000)
            await wait_for(lambda: any(f.get("o", {}).get("c") == "g2" and f["o"]["X"] == "FILLED" for f in frames))
            await s.venue.close()
            await asyncio.wait_for(task, 3)
            return frames

    frames = asyncio.run(scenario())
    reconciled = [f for f in frames if f.get("pink_source") == "rest_reconcile"]
    assert [f["e"] for f in reconciled] == ["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]
    fill = next(e for e in normalise_frame(reconciled[0]).events if isinstance(e, OrderFilled))
    assert fill.ref.client_id is not None
    assert (fill.ref.client_id.value, fill.cum_qty, fill.cum_quote_usdt, fill.cum_fee_usdt) == (
        "g1", D(100), D("64.5"), D("0.0129"))
    [wallet] = normalise_frame(reconciled[1]).events
    assert isinstance(wallet, AccountUpdate) and wallet.wallet_usdt == D("9999.9871")


def test_listen_key_expired_makes_a_new_key_and_reconnects(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        async with stack(tmp_path) as s:
            frames: list[Any] = []
            task = collect(s.venue, frames)
            assert (await s.venue.place_order(limit("k1", "BUY", "100", "0.6300"))).accepted
            assert await s.server.expire_listen_keys() == 1
            await wait_for(lambda: s.server.stats.user_connects == 2)
            assert s.server.stats.listen_keys_created == 2 and s.venue.stats.listen_keys_created == 2
            assert await s.venue.cancel_order(FET, "k1")
            await wait_for(lambda: any(f.get("o", {}).get("X") == "CANCELED" for f in frames))
            await s.venue.close()
            await asyncio.wait_for(task, 3)
            return frames

    frames = asyncio.run(scenario())
    assert [f["e"] for f in frames if f.get("e") == "listenKeyExpired"] == ["listenKeyExpired"]
    assert normalise_frame(frames[-1]).events and isinstance(normalise_frame(frames[-1]).events[0], OrderCancelled)


def test_keepalive_extends_the_listen_key_and_pings_get_pongs(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path, ping_interval_s=0.05, keepalive_s=0.1) as s:
            frames: list[Any] = []
            task = collect(s.venue, frames)
            await wait_for(lambda: s.server.stats.keepalives >= 2 and s.server.stats.pongs >= 5)
            assert s.server.stats.user_connects == 1  # never dropped for a missing Pong
            assert s.venue.stats.pongs_sent >= 5 and frames == []  # heartbeats are not frames
            await s.venue.close()
            await asyncio.wait_for(task, 3)

    asyncio.run(scenario())


def test_bad_frames_are_handed_on_and_the_stream_survives(tmp_path: Path) -> None:
    good = encode_frame({"e": "ORDER_TRADE_UPDATE", "E": T0, "o": {"s": "FET-USDT", "c": "z1", "i": "7", "X": "NEW",
                                                                      "x": "NEW", "z": "0"}})
    garbage: list[bytes | str] = [b"\x00\xff\xfe garbage", b"plain text, not gzip", encode_frame({"e": "X"})[:12],
               gzip.compress(b"{not json"), gzip.compress(b"[1, 2, 3]"), "text frame}"]

    async def scenario() -> list[Any]:
        async with stack(tmp_path) as s:
            frames: list[Any] = []
            task = collect(s.venue, frames)
            await wait_for(lambda: bool(s.server._user_clients()))
            for message in [*garbage, good]:
                assert s.server.push_raw(message) == 1
            await wait_for(lambda: len(frames) == len(garbage) + 1)
            assert s.venue.stats.bad_user_frames == len(garbage) and s.server.stats.user_connects == 1
            await s.venue.close()
            await asyncio.wait_for(task, 3)
            return frames

    frames = asyncio.run(scenario())
    for frame in frames[:-1]:
        with pytest.raises(BadFrame, match="e \\(event type\\)"):
            normalise_frame(frame)
    assert frames[-1]["o"]["c"] == "z1"
    assert [decode_frame(m).kind for m in garbage] == ["bad", "bad", "bad", "bad", "json", "bad"]
    assert decode_frame(encode_frame("Ping")).kind == "ping"


def test_market_stream_yields_the_engine_quotes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with stack(tmp_path) as s:
            quotes = []

            async def read() -> None:
                async for quote in s.venue.market_stream([FET]):
                    quotes.append(quote)

            task = asyncio.create_task(read())
            await wait_for(lambda: s.server.stats.market_connects == 1 and any(
                c.symbols for c in s.server._clients))
            await s.advance(20_000)
            await wait_for(lambda: len(quotes) == 2)
            assert [(q.ts_ms - T0, q.bid_px, q.ask_px) for q in quotes] == [
                (10_000, D("0.6400"), D("0.6402")), (20_000, D("0.6600"), D("0.6602"))]
            assert quotes[0].last_px == D("0.6401")
            await s.venue.close()
            await asyncio.wait_for(task, 3)

    asyncio.run(scenario())


# ------------------------------------------------------------------ secrets


def test_credentials_never_appear_in_reprs_exceptions_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    async def echo_key(request: aiohttp.web.Request) -> aiohttp.web.Response:
        key = request.headers.get("X-BX-APIKEY", "")
        return aiohttp.web.json_response({"code": 100413, "msg": f"Incorrect apiKey {key} for secret {SECRET}"})

    async def scenario() -> None:
        async with stack(tmp_path, backoff_min_s=0.01) as s:
            texts.extend([repr(s.venue), str(s.venue), repr(BingXCredentials.from_env(ENV))])
            frames: list[Any] = []
            task = collect(s.venue, frames)
            await s.venue.balance_usdt()
            await wait_for(lambda: s.server.stats.user_connects == 1)
            s.server.faults.fail_next = 1
            with pytest.raises(BingXError) as unknown:
                await s.venue.place_order(market("s1", "BUY", "100"))
            texts.append(str(unknown.value))
            await s.server.drop_user_streams()
            await wait_for(lambda: s.server.stats.user_connects == 2)
            await s.venue.close()
            await asyncio.wait_for(task, 3)
        app = aiohttp.web.Application()
        app.router.add_get("/openApi/swap/v2/server/time", echo_key)
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        venue = build_bingx_venue({"base_url": f"http://127.0.0.1:{port}"}, environ=ENV)
        try:
            with pytest.raises(BingXError) as echoed:
                await venue.balance_usdt()
            texts.extend([str(echoed.value), repr(echoed.value), echoed.value.msg])
            assert "Incorrect apiKey <redacted>" in str(echoed.value)
            unreachable = build_bingx_venue({"base_url": "http://127.0.0.1:9", "max_retries": 0}, environ=ENV)
            with pytest.raises(BingXError) as refused:
                await unreachable.balance_usdt()
            texts.append(str(refused.value))
            await unreachable.close()
        finally:
            await venue.close()
            await runner.cleanup()

    asyncio.run(scenario())
    records = [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert records  # warnings were logged (drop, unknown outcome)
    for text in [*texts, *records, caplog.text]:
        assert KEY not in text and SECRET not in text
