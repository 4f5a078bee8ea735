"""The simulated venue behind the asyncio `Venue` port: clocks drive time, streams deliver quotes and frames."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from test_sim_helpers import BTC, FET, T0, assert_frames_normalise, buy, fet, write_replay

from pink_adapters.sim import FreeRunningClock, ManualClock, SimConfig, SimEngine, SimVenuePort, default_symbols
from pink_fsm.ports import Quote, Venue, VenueError


def test_port_implements_the_venue_protocol() -> None:
    engine = SimEngine(SimConfig(symbols=default_symbols(["FET-USDT"])))
    assert isinstance(SimVenuePort(engine, FreeRunningClock(T0)), Venue)


def test_free_running_clock_streams_quotes_and_fills_reach_the_user_stream() -> None:
    async def scenario() -> tuple[list[Quote], list[dict[str, Any]]]:
        engine = SimEngine(SimConfig(seed=4, symbols=default_symbols(["FET-USDT", "BTC-USDT"]), end_ms=T0 + 600_000))
        clock = FreeRunningClock(T0)
        venue = SimVenuePort(engine, clock)
        assert set(await venue.contracts([FET])) == {FET}
        with pytest.raises(VenueError, match="not listed"):
            await venue.contracts([FET.parse("DOGE-USDT")])
        frames: list[dict[str, Any]] = []

        async def listen() -> None:
            async for frame in venue.user_stream():
                frames.append(dict(frame))

        listener = asyncio.create_task(listen())
        quotes = []
        async for quote in venue.market_stream([FET]):
            quotes.append(quote)
            if len(quotes) == 3:
                assert (await venue.place_order(buy("e1", "1000"))).accepted
            assert quote.ts_ms == clock.now_ms()
        await asyncio.sleep(0)
        assert (await venue.positions())[0].qty == D(1000)
        assert await venue.balance_usdt() < D(10000)
        await venue.close()
        await listener
        return quotes, frames

    quotes, frames = asyncio.run(scenario())
    assert [q.ts_ms for q in quotes] == [T0 + 10_000 * k for k in range(61)]
    assert all(q.symbol == FET for q in quotes)
    assert [f["o"]["x"] for f in frames if f["e"] == "ORDER_TRADE_UPDATE"] == ["NEW", "TRADE"]
    assert_frames_normalise(frames)


def test_manual_clock_moves_only_when_the_driver_says(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        path = write_replay(tmp_path / "t.csv", [(0, "FET-USDT", "0.6499", "0.6501"),
                                                 (30_000, "FET-USDT", "0.6400", "0.6402"),
                                                 (60_000, "BTC-USDT", "42000.0", "42000.2")])
        config = SimConfig(symbols=(fet(), default_symbols(["BTC-USDT"])[0]), replay_path=path, start_ms=T0)
        clock = ManualClock(T0)
        venue = SimVenuePort(SimEngine(config), clock)
        seen: list[int] = []

        async def consume() -> None:
            async for quote in venue.market_stream([]):
                seen.append(quote.ts_ms - T0)

        task = asyncio.create_task(consume())
        for _ in range(3):
            await asyncio.sleep(0)
        assert seen == [0] and clock.next_wake_ms() == T0 + 30_000
        clock.advance_to(T0 + 29_999)
        await asyncio.sleep(0)
        assert seen == [0]
        clock.advance_to(T0 + 90_000)
        await task  # the replay is exhausted: the stream ends
        assert {p.symbol for p in await venue.positions()} == set()
        with pytest.raises(VenueError, match=r"1\.\.50"):
            await venue.set_leverage(FET, 99)
        await venue.close()
        with pytest.raises(VenueError, match="closed"):
            await venue.open_orders()
        return seen

    assert asyncio.run(scenario()) == [0, 30_000, 60_000]
    assert BTC != FET
