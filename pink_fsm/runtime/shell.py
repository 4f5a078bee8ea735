"""The asyncio runtime shell: the engine against an async venue port, in real (or injected) time.

Tasks: market feed, venue user stream, TTL sweep (every `sweep_s` on the clock), status writer. Every input is
applied to the engine and then one turn is executed under a lock, so turns never interleave: the engine
commits the audit, hands out the actions, and the shell awaits each venue call in order, feeding the answers
(place results, probe snapshots) back. A venue error never kills the shell: a failed probe is a probe error
(not provably flat, D8), a failed placement resolves through the router's reject path, a failed cancel is
retried by the router's TTL logic or the next sweep.

Start-up recovery reads the venue in the safe order (open orders FIRST, then positions: D9, then the wallet).
Shutdown (SIGINT/SIGTERM or the end of the run): `on_exit="flatten"` closes the position first and waits for
it (bounded); `keep` leaves it open and logs exactly what stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pink_fsm.kernel.values import ContractSpec, Symbol
from pink_fsm.ports import PlaceResult, RejectCode, Venue, VenueError
from pink_fsm.runtime.engine import (
    Engine,
    EngineAction,
    ProbeEntry,
    ReconcileRequest,
    SetLeverageAction,
    VenueSnapshot,
)
from pink_fsm.runtime.exec_router import CancelAttempt, ProbeGate, SendOrder
from pink_fsm.runtime.recovery import Recovery, recover

LOG = logging.getLogger("pink_fsm.runtime.shell")


class Clock(Protocol):
    """Where time comes from: the wall clock live, a virtual clock in tests."""

    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def recover_async(venue: Venue, symbols: list[Symbol], contracts: Mapping[Symbol, ContractSpec],
                        config: Any, snapshot: Mapping[str, Any] | None) -> Recovery:
    """Read open orders FIRST, then positions, then the wallet (D9), and recover a kernel from them."""
    open_orders = await venue.open_orders()
    positions = await venue.positions()
    wallet = await venue.balance_usdt()
    return recover(contracts, config, wallet, open_orders, positions, snapshot)


class Shell:
    def __init__(self, venue: Venue, engine: Engine, clock: Clock, *, symbols: list[Symbol],
                 sweep_s: float = 1.0, status_every_s: float = 1.0,
                 on_status: Callable[[Engine], None] | None = None) -> None:
        self.venue = venue
        self.engine = engine
        self.clock = clock
        self.symbols = symbols
        self.sweep_s = sweep_s
        self.status_every_s = status_every_s
        self.on_status = on_status
        self._turn = asyncio.Lock()
        self.venue_errors = 0
        self.stopped = asyncio.Event()
        self.end_reason = "stopped"

    # ------------------------------------------------------------------ run

    async def run(self, until_ms: int | None = None, on_exit: str = "keep", flatten_timeout_s: float = 60.0) -> str:
        """Run until `stop()` is called or the clock passes `until_ms`; returns why it stopped."""
        tasks = [
            asyncio.create_task(self._market(), name="market-feed"),
            asyncio.create_task(self._user_stream(), name="venue-events"),
            asyncio.create_task(self._sweep(until_ms), name="ttl-sweep"),
        ]
        if self.on_status is not None:
            tasks.append(asyncio.create_task(self._status(), name="status"))
        await self._execute()  # cancels decided at recovery
        stop_wait = asyncio.create_task(self.stopped.wait())
        done, _ = await asyncio.wait([*tasks, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        reason = self.end_reason
        for task in done:
            if task is not stop_wait and task.exception() is not None:
                reason = f"task {task.get_name()} failed: {task.exception()!r}"
                LOG.error("shell task %s failed: %r", task.get_name(), task.exception())
            elif task is not stop_wait:
                reason = f"{task.get_name()} ended"
        if on_exit == "flatten":
            await self._flatten(flatten_timeout_s, tasks)
        for task in [*tasks, stop_wait]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if not self.engine.kernel.flat:
            view = self.engine.slot_view()
            LOG.warning("position kept open (--on-exit keep): %s %s %s @ %s, slot state %s", view.side.name,
                        view.open_qty, view.symbol, view.entry_px, view.state)
        if self.on_status is not None:
            self.on_status(self.engine)
        return reason

    def stop(self) -> None:
        self.stopped.set()

    async def _flatten(self, timeout_s: float, tasks: list[asyncio.Task[Any]]) -> None:
        async with self._turn:
            self.engine.request_exit("on-exit flatten")
        await self._execute()
        deadline = time.monotonic() + timeout_s
        while not self.engine.kernel.flat and time.monotonic() < deadline and not all(t.done() for t in tasks):
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ tasks

    async def _market(self) -> None:
        async for quote in self.venue.market_stream(self.symbols):
            async with self._turn:
                self.engine.on_quotes(quote.ts_ms, [quote])
            await self._execute()

    async def _user_stream(self) -> None:
        async for frame in self.venue.user_stream():
            async with self._turn:
                self.engine.on_frame(frame)  # never raises on a bad frame: counted and recorded
            await self._execute()

    async def _sweep(self, until_ms: int | None) -> None:
        # The sweep outlives the end of the run: a flatten on exit still needs TTL expiries (a maker exit
        # escalates to MARKET only on a sweep).
        while True:
            await self.clock.sleep(self.sweep_s)
            now = self.clock.now_ms()
            async with self._turn:
                self.engine.on_timer(now)
            await self._execute()
            if until_ms is not None and now >= until_ms and not self.stopped.is_set():
                self.end_reason = "the run's duration is over"
                self.stopped.set()

    async def _status(self) -> None:
        assert self.on_status is not None
        while True:
            await asyncio.sleep(self.status_every_s)
            self.on_status(self.engine)

    # ------------------------------------------------------------------ one turn

    async def _execute(self) -> None:
        async with self._turn:
            while True:
                actions = self.engine.take_actions()
                if not actions:
                    return
                for action in actions:
                    await self._do(action)

    async def _do(self, action: EngineAction) -> None:
        engine, venue = self.engine, self.venue
        try:
            if isinstance(action, SendOrder):
                try:
                    result = await venue.place_order(action.request)
                except VenueError as exc:
                    # Outcome unknown: resolve as refused; should the order exist after all, its frames still
                    # route by the attempt's client id and the slot books every fill by identity (D3).
                    self.venue_errors += 1
                    result = PlaceResult(None, RejectCode.OTHER, f"venue error: {exc}")
                engine.on_place_result(action, result)
            elif isinstance(action, CancelAttempt):
                await venue.cancel_order(action.symbol, action.client_id)
            elif isinstance(action, SetLeverageAction):
                await venue.set_leverage(action.symbol, action.leverage)
            elif isinstance(action, ProbeEntry):
                engine.on_entry_probe(action, await self._probe())
            elif isinstance(action, ProbeGate):
                engine.on_gate_probe(action, await self._probe())
            elif isinstance(action, ReconcileRequest):
                truth = await self._probe()
                engine.on_reconcile(truth, await venue.balance_usdt() if truth.ok else None)
        except VenueError as exc:
            self.venue_errors += 1
            LOG.warning("venue error during %s: %s", type(action).__name__, exc)

    async def _probe(self) -> VenueSnapshot:
        try:
            orders = tuple(await self.venue.open_orders())  # FIRST (D9)
            positions = tuple(await self.venue.positions())
        except VenueError as exc:
            self.venue_errors += 1
            return VenueSnapshot(False, error=str(exc))
        return VenueSnapshot(True, orders, positions)
