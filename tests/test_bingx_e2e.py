"""End to end: the asyncio runtime shell and engine trade through `BingXVenue` against the BingX loopback server
(REST + gzip websockets on 127.0.0.1, sim engine behind it) at a high speed factor, and the kernel's capital ends
equal to the loopback's wallet."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

from policies_example import TimeoutPolicy
from test_bingx_helpers import ENV, FAST, FET, KEY, SECRET, T0

from pink_adapters.bingx import build_bingx_venue
from pink_adapters.bingx.loopback import LoopbackServer
from pink_adapters.sim import ScaledWallClock, SimConfig, SimEngine, default_symbols
from pink_fsm.kernel.kernel import KernelConfig
from pink_fsm.runtime.engine import Engine, EngineConfig
from pink_fsm.runtime.shell import Shell, recover_async

SPEED = 300.0  # simulated seconds per wall second
DURATION_MS = 15 * 60_000


def test_shell_trades_through_the_adapter_and_capital_equals_the_loopback_wallet() -> None:
    async def scenario() -> dict[str, Any]:
        sim = SimEngine(SimConfig(symbols=default_symbols(["FET-USDT"]), seed=11, start_ms=T0))
        clock = ScaledWallClock(T0, SPEED)

        class ShellClock:  # as in pink_fsm.runtime.app.run_sim_realtime
            def now_ms(self) -> int:
                return clock.now_ms()

            async def sleep(self, seconds: float) -> None:
                await clock.sleep_until(clock.now_ms() + int(seconds * 1000 * SPEED))

        async with LoopbackServer(sim, clock, api_key=KEY, api_secret=SECRET) as server:
            venue = build_bingx_venue(server.bingx_section(**FAST), environ=ENV)
            contracts = await venue.contracts([FET])
            recovery = await recover_async(venue, [FET], contracts, KernelConfig(), None)
            engine = Engine(recovery.kernel, TimeoutPolicy(hold_ms=60_000, leverage="0.5"), EngineConfig())
            engine.apply_recovery(recovery)
            shell = Shell(venue, engine, ShellClock(), symbols=[FET], sweep_s=1.0 / SPEED)
            reason = await shell.run(until_ms=T0 + DURATION_MS, on_exit="flatten", flatten_timeout_s=10.0)
            await venue.close()
            return {"reason": reason, "summary": engine.summary(), "flat": engine.kernel.flat,
                    "capital": engine.kernel.capital_usdt, "wallet": sim.balance_usdt(),
                    "fills": len(sim.fills), "venue_errors": shell.venue_errors, "bad": engine.metrics.bad_frames,
                    "unsent": server.stats.frames_unsent, "auth_failures": server.stats.auth_failures}

    out = asyncio.run(scenario())
    summary = out["summary"]
    assert out["reason"] == "the run's duration is over", out
    assert out["flat"] and summary["trades"] >= 3 and out["fills"] >= 6, out
    assert summary["invariant_failures"] == 0 and summary["halted"] == "", summary
    assert (out["bad"], out["unsent"], out["auth_failures"], out["venue_errors"]) == (0, 0, 0, 0), out
    assert out["capital"] == out["wallet"] != D(10000), out
