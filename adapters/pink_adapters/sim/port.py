"""The simulated venue behind the runtime's asyncio `Venue` port.

Time belongs to a clock object, not to the port: anything with `now_ms()` and an async `sleep_until(ts_ms)`
(the `SimClock` protocol). Before every call the port brings the engine up to `clock.now_ms()`; the market
stream drives time forward by sleeping on the clock until the engine's next event. Three clocks are provided:

- `FreeRunningClock`: virtual time that jumps to whatever is awaited next (as fast as the CPU allows). Right when
  the market stream is the only sleeper, e.g. `pink run` replaying hours per second.
- `ManualClock`: virtual time moved only by a driver calling `advance_to(ts_ms)` (tests, fuzzers, replays of a
  counterexample), with every sleeper up to that time woken in time order.
- `ScaledWallClock`: wall time x `speed` (demos).

Example::

    clock = FreeRunningClock(config.start_ms)
    venue = SimVenuePort(SimEngine(config), clock)
    async for quote in venue.market_stream([FET]): ...

One consumer per stream: the market stream drives the engine's time, the user stream delivers the frames the
engine produced (fills happen when quotes arrive, so the user stream never needs to move time itself).
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from pink_adapters.sim.engine import SimEngine
from pink_fsm.kernel.values import ContractSpec, Symbol
from pink_fsm.ports import OrderRequest, PlaceResult, Quote, VenueError, VenueOrder, VenuePosition

__all__ = ["FreeRunningClock", "ManualClock", "ScaledWallClock", "SimClock", "SimVenuePort"]

# Quotes waiting for the market stream when nobody reads it: market data is lossy, the oldest go first.
MAX_PENDING_QUOTES = 100_000


@runtime_checkable
class SimClock(Protocol):
    """The time source the port (and the runtime around it) share."""

    def now_ms(self) -> int: ...

    async def sleep_until(self, ts_ms: int) -> None: ...


class FreeRunningClock:
    """Virtual time that jumps forward to each awaited time at once (never back), yielding to the loop once."""

    def __init__(self, start_ms: int) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    async def sleep_until(self, ts_ms: int) -> None:
        self._now_ms = max(self._now_ms, ts_ms)
        await asyncio.sleep(0)


class ManualClock:
    """Virtual time moved by a driver. `sleep_until` waits until `advance_to` reaches the time."""

    def __init__(self, start_ms: int) -> None:
        self._now_ms = start_ms
        self._seq = 0
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []

    def now_ms(self) -> int:
        return self._now_ms

    def next_wake_ms(self) -> int | None:
        """The earliest time a sleeper waits for (None when nobody sleeps)."""
        return self._sleepers[0][0] if self._sleepers else None

    async def sleep_until(self, ts_ms: int) -> None:
        if ts_ms <= self._now_ms:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (ts_ms, self._seq, future))
        await future

    def advance_to(self, ts_ms: int) -> None:
        """Move time to `ts_ms` (never back) and wake every sleeper due by then, earliest first."""
        self._now_ms = max(self._now_ms, ts_ms)
        while self._sleepers and self._sleepers[0][0] <= self._now_ms:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


class ScaledWallClock:
    """Virtual time = start_ms + wall time elapsed x speed (the loop's monotonic clock). For demos only."""

    def __init__(self, start_ms: int, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"ScaledWallClock.speed: must be > 0, got {speed}")
        self._start_ms = start_ms
        self._speed = speed
        self._t0_s: float | None = None

    def _elapsed_s(self) -> float:
        loop_time = asyncio.get_running_loop().time()
        if self._t0_s is None:
            self._t0_s = loop_time
        return loop_time - self._t0_s

    def now_ms(self) -> int:
        return self._start_ms + int(self._elapsed_s() * 1000 * self._speed)

    async def sleep_until(self, ts_ms: int) -> None:
        await asyncio.sleep(max(0.0, (ts_ms - self.now_ms()) / 1000 / self._speed))


class SimVenuePort:
    """`pink_fsm.ports.Venue` over a `SimEngine`. Engine errors become `VenueError`, as a real adapter's would."""

    def __init__(self, engine: SimEngine, clock: SimClock) -> None:
        self.engine = engine
        self.clock = clock
        self._quotes: deque[Quote] = deque(maxlen=MAX_PENDING_QUOTES)
        self._frames_ready = asyncio.Event()
        self._closed = False

    def sync(self) -> None:
        """Bring the engine up to the clock's time; new quotes queue for the market stream, new frames wake the
        user stream."""
        if self._closed:
            raise VenueError("the sim venue port is closed")
        now_ms = self.clock.now_ms()
        # At equal times too: quotes stamped exactly now (e.g. the first one, at start_ms) are still due.
        if now_ms >= self.engine.now_ms:
            self._quotes.extend(self.engine.advance(now_ms))
        self._frames_ready.set()

    async def contracts(self, symbols: list[Symbol]) -> dict[Symbol, ContractSpec]:
        listed = self.engine.contracts()
        unknown = [str(s) for s in symbols if s not in listed]
        if unknown:
            raise VenueError(f"not listed on the sim venue: {', '.join(unknown)}")
        return {s: listed[s] for s in symbols} if symbols else listed

    async def balance_usdt(self) -> Decimal:
        self.sync()
        return self.engine.balance_usdt()

    async def open_orders(self) -> list[VenueOrder]:
        self.sync()
        return self.engine.open_orders()

    async def positions(self) -> list[VenuePosition]:
        self.sync()
        return self.engine.positions()

    async def set_leverage(self, symbol: Symbol, leverage: int) -> None:
        self.sync()
        try:
            self.engine.set_leverage(symbol, leverage)
        except (KeyError, ValueError) as exc:
            raise VenueError(str(exc)) from None
        self._frames_ready.set()

    async def place_order(self, request: OrderRequest) -> PlaceResult:
        self.sync()
        result = self.engine.place_order(request)
        self._frames_ready.set()
        return result

    async def cancel_order(self, symbol: Symbol, client_id: str) -> bool:
        self.sync()
        cancelled = self.engine.cancel_order(symbol, client_id)
        self._frames_ready.set()
        return cancelled

    async def user_stream(self) -> AsyncIterator[Mapping[str, Any]]:
        """Frames as the engine produces them, in venue order; ends when the port closes."""
        while not self._closed:
            frames = self.engine.drain_frames()
            if not frames:
                self._frames_ready.clear()
                await self._frames_ready.wait()
                continue
            for frame in frames:
                yield frame

    async def market_stream(self, symbols: list[Symbol]) -> AsyncIterator[Quote]:
        """Quotes of `symbols` (all when empty) as time advances: sleeps on the clock until the engine's next
        event, then advances the engine to the clock's time. Ends when the feed is exhausted or the port closes."""
        wanted = set(symbols) or set(self.engine.contracts())
        while not self._closed:
            while self._quotes:
                quote = self._quotes.popleft()
                if quote.symbol in wanted:
                    yield quote
            next_ms = self.engine.next_event_ms()
            if next_ms is None:
                return
            await self.clock.sleep_until(next_ms)
            if not self._closed:
                self.sync()

    async def close(self) -> None:
        self._closed = True
        self._frames_ready.set()
