"""`pink bench` area `runtime`: simulated speed and decision-to-order latency of `pink run`'s default scenario.

Each round runs the whole runtime (engine + exec router + reference policy + kernel) against the embedded sim
venue on the virtual clock, the way `pink run` does (audit log off: it is measured on its own in the `audit`
area, and once more here with it on as `sim_hours_per_s_audited`), for `SIM_HOURS` simulated hours of one
symbol; a second scenario trades five symbols. The baseline measured in the same run is the sim venue alone
(its feed and matching for the same simulated span), so `runtime_over_venue` says what the runtime itself costs.

Keys named by the issue: `runtime.sim_hours_per_s` (median over rounds; target >= 100, checked as
`wall_ms_per_sim_hour` <= 10) and `runtime.decision_to_order_p99_ms` (policy decision -> order handed to the
venue port, pooled over the rounds; target <= 1 ms).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Final

from pink_fsm.bench.runner import Area, Figures, ProgressFn, Settings, Target
from pink_fsm.runtime.app import build_sim_venue, run_sim
from pink_fsm.runtime.config import RunConfig, load_config

SIM_HOURS: Final = 24
SIM_HOURS_QUICK: Final = 6
SIM_HOURS_PER_S_TARGET: Final = 100
DECISION_P99_TARGET_MS: Final = 1.0
FIVE_SYMBOLS: Final = "BTC-USDT,ETH-USDT,SOL-USDT,FET-USDT,XRP-USDT"


def _config(run_dir: Path, hours: int, symbols: str, seed: int) -> RunConfig:
    return load_config(None, {"duration": f"{hours}h", "run_dir": str(run_dir), "symbols": symbols,
                              "seed": seed}, environ={})


def _venue_only_s(config: RunConfig) -> float:
    venue = build_sim_venue(config)
    start = venue.next_event_ms() or 0
    end = start + config.duration_ms
    t0 = time.perf_counter()
    while True:
        due = venue.next_event_ms()
        if due is None or due > end:
            break
        venue.advance(due)
        venue.drain_frames()
    return time.perf_counter() - t0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(settings: Settings, progress: ProgressFn) -> Figures:
    hours = SIM_HOURS_QUICK if settings.mode == "quick" else SIM_HOURS
    rounds = max(3, settings.repeats // 3)
    speeds: list[float] = []
    five: list[float] = []
    audited: list[float] = []
    audited_latencies_ms: list[float] = []
    venue_s: list[float] = []
    latencies_ms: list[float] = []
    trades = 0
    with tempfile.TemporaryDirectory(prefix="pink-bench-runtime-") as tmp:
        for i in range(rounds):
            progress(f"round {i + 1}/{rounds}", i, rounds)
            one = _config(Path(tmp) / "one", hours, "BTC-USDT", settings.seed + i)
            venue_s.append(_venue_only_s(one))
            result = run_sim(one, audit=False)
            speeds.append(hours / result.outcome.wall_s)
            latencies_ms.extend(result.engine_latencies_ms)
            trades += int(result.summary["trades"])
            many = run_sim(_config(Path(tmp) / "five", hours, FIVE_SYMBOLS, settings.seed + i), audit=False)
            audited_cfg = _config(Path(tmp) / f"audited{i}", hours, "BTC-USDT", settings.seed + i)
            with_audit = run_sim(audited_cfg, audit=True)
            audited.append(hours / with_audit.outcome.wall_s)
            audited_latencies_ms.extend(with_audit.engine_latencies_ms)
            five.append(hours / many.outcome.wall_s)
            latencies_ms.extend(many.engine_latencies_ms)
        progress("done", rounds, rounds)
    median_speed = statistics.median(speeds)
    venue_speed = hours / statistics.median(venue_s)
    return {
        "sim_hours_per_s": round(median_speed, 1),
        "sim_hours_per_s_max": round(max(speeds), 1),
        "wall_ms_per_sim_hour": round(1000 / median_speed, 3),
        "sim_hours_per_s_5_symbols": round(statistics.median(five), 1),
        "sim_hours_per_s_audited": round(statistics.median(audited), 1),
        "venue_only_sim_hours_per_s": round(venue_speed, 1),
        "runtime_over_venue": round(venue_speed / median_speed, 2),
        "decision_to_order_p50_ms": round(_percentile(latencies_ms, 0.50), 4),
        "decision_to_order_p99_ms": round(_percentile(latencies_ms, 0.99), 4),
        "decisions_sampled": len(latencies_ms),
        "decision_to_order_p50_ms_audited": round(_percentile(audited_latencies_ms, 0.50), 4),
        "decision_to_order_p99_ms_audited": round(_percentile(audited_latencies_ms, 0.99), 4),
        "trades_per_round": round(trades / rounds, 1),
        "simulated_hours_per_round": hours,
    }


AREA: Final = Area(
    name="runtime",
    doc="pink run's default scenario on the embedded sim venue (virtual clock)",
    run=run,
    figure_docs={
        "sim_hours_per_s": "simulated hours per wall second, one symbol (median over rounds)",
        "sim_hours_per_s_max": "best round",
        "wall_ms_per_sim_hour": "wall milliseconds per simulated hour (1000 / sim_hours_per_s)",
        "sim_hours_per_s_5_symbols": "the same with five symbols quoted and scanned",
        "sim_hours_per_s_audited": "one symbol with the DuckDB audit log on (pink run's default)",
        "venue_only_sim_hours_per_s": "baseline: the sim venue's feed and matching alone, same span",
        "runtime_over_venue": "how many times the venue alone is faster than the whole runtime",
        "decision_to_order_p50_ms": "policy decision -> entry order handed to the venue port (median)",
        "decision_to_order_p99_ms": "the same, 99th percentile (pooled over the rounds)",
        "decisions_sampled": "entry decisions that led to an order",
        "decision_to_order_p50_ms_audited": "the same with the audit log on: the durable commit that must precede "
                                            "the order (D12) dominates it",
        "decision_to_order_p99_ms_audited": "99th percentile with the audit log on",
        "trades_per_round": "round trips per one-symbol round",
        "simulated_hours_per_round": "simulated span of each round",
    },
    targets=(
        Target("wall_ms_per_sim_hour", round(1000 / SIM_HOURS_PER_S_TARGET, 3),
               f"at least {SIM_HOURS_PER_S_TARGET} simulated hours per wall second (one symbol)"),
        Target("decision_to_order_p99_ms", DECISION_P99_TARGET_MS, "p99 decision -> order within 1 ms"),
    ),
)
