"""The deterministic simulation driver: the engine against a synchronous venue on a virtual clock.

There is no waiting: the clock jumps to the next thing that is due (a quote, a funding time, a TTL deadline),
so hours of trading simulate in seconds, and the same seed gives the same run, frame for frame. The order of
one instant is fixed: the venue advances (resting orders match the new quotes), its frames are applied, the
policy scans the quotes, the TTL sweep runs, then the actions are executed until the turn is quiet; each
action's frames are applied before the next action runs.

The asyncio shell (`shell.py`) drives the very same engine against the async venue port when time is real.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

import attrs

from pink_fsm.kernel.values import ContractSpec, Symbol
from pink_fsm.ports import OrderRequest, PlaceResult, Quote, VenueError, VenueOrder, VenuePosition
from pink_fsm.runtime.engine import (
    Engine,
    EngineAction,
    ProbeEntry,
    ReconcileRequest,
    SetLeverageAction,
    VenueSnapshot,
)
from pink_fsm.runtime.exec_router import CancelAttempt, ProbeGate, SendOrder

LOG = logging.getLogger("pink_fsm.runtime.sim")
FLATTEN_GRACE_MS = 30 * 60_000  # how long `--on-exit flatten` may keep working the exit after the end


class SyncVenue(Protocol):
    """What the simulation driver needs of a venue (the sim engine provides it)."""

    def contracts(self) -> dict[Symbol, ContractSpec]: ...

    def next_event_ms(self) -> int | None: ...

    def advance(self, to_ms: int) -> list[Quote]: ...

    def place_order(self, request: OrderRequest) -> PlaceResult: ...

    def cancel_order(self, symbol: Symbol, client_id: str) -> bool: ...

    def set_leverage(self, symbol: Symbol, leverage: int) -> None: ...

    def open_orders(self) -> list[VenueOrder]: ...

    def positions(self) -> list[VenuePosition]: ...

    def balance_usdt(self) -> Decimal: ...

    def drain_frames(self) -> list[dict[str, Any]]: ...


ProgressFn = Callable[[int, int, Engine], None]
"""progress(simulated ms done, simulated ms total, engine)."""


@attrs.frozen
class SimOutcome:
    start_ms: int
    end_ms: int
    simulated_ms: int
    wall_s: float
    flattened: bool
    stopped_early: str  # "" or why the run stopped before its end


class SimDriver:
    def __init__(self, venue: SyncVenue, engine: Engine, progress: ProgressFn | None = None,
                 progress_every_s: float = 0.2, stop: Callable[[], bool] | None = None) -> None:
        self.venue = venue
        self.engine = engine
        self.progress = progress
        self.progress_every_s = progress_every_s
        self.stop = stop or (lambda: False)

    def run(self, start_ms: int, duration_ms: int, on_exit: str = "keep") -> SimOutcome:
        if on_exit not in ("keep", "flatten"):
            raise ValueError(f"on_exit: 'keep' or 'flatten', got {on_exit!r}")
        wall0 = time.perf_counter()
        end_ms = start_ms + duration_ms
        stopped = self._loop(end_ms, start_ms, duration_ms)
        flattened = False
        if on_exit == "flatten" and not self.engine.kernel.flat:
            flattened = self._flatten(self.engine.now_ms)
        self._report(start_ms, duration_ms, force=True)
        return SimOutcome(start_ms, end_ms, max(0, self.engine.now_ms - start_ms), time.perf_counter() - wall0,
                          flattened, stopped)

    # ------------------------------------------------------------------ the loop

    def _loop(self, end_ms: int, start_ms: int, duration_ms: int, until: Callable[[], bool] | None = None) -> str:
        engine, venue = self.engine, self.venue
        last_report = time.perf_counter()
        self._execute()
        while True:
            if self.stop():
                return "stopped"
            if until is not None and until():
                return ""
            due = [t for t in (venue.next_event_ms(), engine.next_timer_ms()) if t is not None]
            if not due:
                return "the venue's feed ended"
            t = max(min(due), engine.now_ms)
            if t > end_ms:
                return ""
            quotes = venue.advance(t)
            self._frames()
            if quotes:
                self._scan(quotes)
            timer = engine.next_timer_ms()
            if timer is not None and timer <= t:
                engine.on_timer(t)
            self._execute()
            if self.progress is not None and time.perf_counter() - last_report >= self.progress_every_s:
                last_report = time.perf_counter()
                self._report(start_ms, duration_ms)

    def _scan(self, quotes: list[Quote]) -> None:
        # One policy scan per instant, with every symbol's quote of that instant.
        batch: list[Quote] = []
        for quote in quotes:
            if batch and quote.ts_ms != batch[0].ts_ms:
                self.engine.on_quotes(batch[0].ts_ms, batch)
                self._execute()
                batch = []
            batch.append(quote)
        self.engine.on_quotes(batch[0].ts_ms, batch)

    def _frames(self) -> None:
        for frame in self.venue.drain_frames():
            self.engine.on_frame(frame)

    def _execute(self) -> None:
        while True:
            actions = self.engine.take_actions()
            if not actions:
                return
            for action in actions:
                self._do(action)
                self._frames()

    def _do(self, action: EngineAction) -> None:
        engine, venue = self.engine, self.venue
        if isinstance(action, SendOrder):
            engine.on_place_result(action, venue.place_order(action.request))
        elif isinstance(action, CancelAttempt):
            venue.cancel_order(action.symbol, action.client_id)
        elif isinstance(action, SetLeverageAction):
            venue.set_leverage(action.symbol, action.leverage)
        elif isinstance(action, ProbeEntry):
            engine.on_entry_probe(action, self.probe())
        elif isinstance(action, ProbeGate):
            engine.on_gate_probe(action, self.probe())
        elif isinstance(action, ReconcileRequest):
            truth = self.probe()
            engine.on_reconcile(truth, venue.balance_usdt() if truth.ok else None)

    def probe(self) -> VenueSnapshot:
        """Open orders FIRST, then positions (D9). A venue error is a failed probe, never a crash: the engine
        then treats the venue as not provably flat (D8)."""
        try:
            orders = tuple(self.venue.open_orders())
            positions = tuple(self.venue.positions())
        except VenueError as exc:
            LOG.warning("venue probe failed (not provably flat): %s", exc)
            return VenueSnapshot(False, error=str(exc))
        return VenueSnapshot(True, orders, positions)

    def _flatten(self, now_ms: int) -> bool:
        engine = self.engine
        engine.request_exit("on-exit flatten")
        self._execute()
        self._loop(now_ms + FLATTEN_GRACE_MS, now_ms, FLATTEN_GRACE_MS, until=lambda: engine.kernel.flat)
        return engine.kernel.flat

    def _report(self, start_ms: int, duration_ms: int, force: bool = False) -> None:
        if self.progress is not None:
            done = min(duration_ms, max(0, self.engine.now_ms - start_ms))
            self.progress(done if not force else max(done, 0), duration_ms, self.engine)
