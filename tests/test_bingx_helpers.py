"""Shared set-up of the BingX adapter tests: a loopback server on 127.0.0.1 over a replayed sim engine, and an
adapter pointed at it with fast timings. Never the internet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from test_sim_helpers import FET, T0, replay_engine

from pink_adapters.bingx import BingXVenue, build_bingx_venue
from pink_adapters.bingx.loopback import LoopbackServer
from pink_adapters.bingx.wire import API_KEY_ENV, API_SECRET_ENV
from pink_adapters.sim import ManualClock, SimEngine
from pink_fsm.ports import OrderRequest, OrderType

__all__ = ["ENV", "FET", "KEY", "SECRET", "T0", "Stack", "collect", "limit", "market", "stack", "wait_for"]

KEY = "loopbackKEY0123456789abcdef"
SECRET = "loopbackSECRETzyxwvutsrqponmlkjihgfedcba9876"
ENV = {API_KEY_ENV: KEY, API_SECRET_ENV: SECRET}
FAST = {"backoff_min_s": 0.01, "backoff_max_s": 0.05, "request_s": 3.0, "ws_open_s": 3.0, "ws_idle_s": 5.0,
        "stream_ready_s": 3.0, "requests_per_s": 100.0}
# FET quotes every 10 s: bid/ask. A BUY LIMIT at 0.6450 rests at T0 and fills on the second quote.
PRICES = [("0.6499", "0.6501"), ("0.6400", "0.6402"), ("0.6600", "0.6602"), ("0.6500", "0.6502"),
          ("0.6300", "0.6302"), ("0.6500", "0.6502")]


class Stack:
    def __init__(self, engine: SimEngine, clock: ManualClock, server: LoopbackServer, venue: BingXVenue) -> None:
        self.engine, self.clock, self.server, self.venue = engine, clock, server, venue

    async def advance(self, dt_ms: int) -> None:
        self.clock.advance_to(self.clock.now_ms() + dt_ms)
        for _ in range(5):
            await asyncio.sleep(0)


@asynccontextmanager
async def stack(tmp_path: Path, env: dict[str, str] | None = None, ping_interval_s: float = 5.0,
                prices: Sequence[tuple[str, str]] = PRICES, **section: Any) -> AsyncIterator[Stack]:
    engine = replay_engine(tmp_path, prices)
    clock = ManualClock(T0)
    async with LoopbackServer(engine, clock, api_key=KEY, api_secret=SECRET, ping_interval_s=ping_interval_s) as server:
        venue = build_bingx_venue(server.bingx_section(**{**FAST, **section}), environ=ENV if env is None else env)
        try:
            yield Stack(engine, clock, server, venue)
        finally:
            await venue.close()


def limit(client_id: str, side: str, qty: str, px: str, **kw: Any) -> OrderRequest:
    return OrderRequest(client_id, FET, side, OrderType.LIMIT, D(qty), D(px), **kw)


def market(client_id: str, side: str, qty: str, **kw: Any) -> OrderRequest:
    return OrderRequest(client_id, FET, side, OrderType.MARKET, D(qty), **kw)


async def wait_for(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def collect(venue: BingXVenue, into: list[Any]) -> asyncio.Task[None]:
    async def run() -> None:
        async for frame in venue.user_stream():
            into.append(frame)

    return asyncio.create_task(run())

