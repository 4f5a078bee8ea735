"""`pink run` put together: configuration -> venue -> recovery -> engine -> driver -> summary and files.

This module is the composition root of the runtime; it is the one place that imports the adapters.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from pink_fsm.kernel import persistence
from pink_fsm.kernel.values import ContractSpec, Symbol
from pink_fsm.policy.loader import PolicyLoadError, load_policy
from pink_fsm.ports import Policy, Venue, VenueError
from pink_fsm.runtime.audit_sink import DuckDbAudit
from pink_fsm.runtime.config import ConfigError, RunConfig, parse_duration_ms
from pink_fsm.runtime.engine import AuditSink, Engine, EngineConfig
from pink_fsm.runtime.recovery import Recovery, recover
from pink_fsm.runtime.shell import Clock as ShellClock
from pink_fsm.runtime.shell import Shell, WallClock, recover_async
from pink_fsm.runtime.sim_driver import ProgressFn, SimDriver, SimOutcome, SyncVenue

LOG = logging.getLogger("pink_fsm.runtime")


class RunError(RuntimeError):
    """The run could not start (bad config, venue refused, audit unusable); the message says what to do."""


@attrs.frozen
class RunResult:
    config: RunConfig
    outcome: SimOutcome
    summary: dict[str, Any]
    recovery: Recovery
    engine_latencies_ms: list[float] = attrs.field(factory=list)  # decision -> order, each entry


def build_sim_venue(config: RunConfig) -> SyncVenue:
    """The embedded simulated venue for the run's symbols, seeded by the run's seed."""
    from pink_adapters.sim.config import FeedParams, SimConfig, default_symbols
    from pink_adapters.sim.engine import SimEngine

    options = dict(config.sim)
    where = "[sim]"
    if "remote" in options:
        from pink_adapters.sim.remote import RemoteSimVenue

        if len(options) > 1:
            raise ConfigError(f"{where} remote: the venue process owns its configuration; remove the other "
                              f"[sim] keys ({', '.join(sorted(k for k in options if k != 'remote'))})")
        try:
            return RemoteSimVenue(str(options["remote"]))
        except VenueError as exc:
            raise RunError(str(exc)) from None
    try:
        symbols = default_symbols(str(s) for s in config.symbols)
    except ValueError as exc:
        raise ConfigError(f"[run] symbols: {exc}") from None
    kwargs: dict[str, Any] = {"symbols": symbols, "seed": config.seed}
    feed: dict[str, Any] = {}
    for key, raw in options.items():
        if key == "quote_interval":
            kwargs["quote_interval_ms"] = parse_duration_ms(raw, f"{where} quote_interval")
        elif key in ("initial_balance_usdt", "funding_rate_max_abs"):
            try:
                kwargs[key] = Decimal(str(raw))
            except ArithmeticError:
                raise ConfigError(f"{where} {key}: expected a number, got {raw!r}") from None
        elif key in ("start_ms", "default_leverage"):
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ConfigError(f"{where} {key}: expected an integer, got {raw!r}")
            kwargs[key] = raw
        elif key == "replay":
            kwargs["replay_path"] = Path(str(raw))
        elif key in ("annual_vol", "drift_annual", "jumps_per_day", "jump_sigma", "half_spread_ticks"):
            feed[key] = raw
        else:
            known = ("remote, quote_interval, initial_balance_usdt, funding_rate_max_abs, start_ms, default_leverage, "
                     "replay, annual_vol, drift_annual, jumps_per_day, jump_sigma, half_spread_ticks")
            raise ConfigError(f"{where}: unknown key '{key}'; known keys: {known}")
    try:
        if feed:
            kwargs["feed"] = FeedParams(**feed)
        return SimEngine(SimConfig(**kwargs))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def build_policy(config: RunConfig) -> Policy:
    options = dict(config.policy_config)
    if config.policy == "reference" and "universe" not in options:
        options["universe"] = [str(s) for s in config.symbols]
    try:
        return load_policy(config.policy, options)
    except PolicyLoadError as exc:
        raise ConfigError(f"[run] policy / [policy]: {exc}") from None


def recover_from(venue: SyncVenue, config: RunConfig, contracts: Mapping[Symbol, ContractSpec],
                 snapshot: Mapping[str, Any] | None) -> Recovery:
    """Read the venue in the safe order (open orders, then positions, then the wallet: D9) and recover."""
    open_orders = venue.open_orders()
    positions = venue.positions()
    wallet = venue.balance_usdt()
    try:
        return recover(contracts, config.kernel, wallet, open_orders, positions, snapshot)
    except ValueError as exc:
        raise RunError(f"recovery: {exc}") from None


def next_session(run_dir: Path) -> str:
    """A new session id per start in this run directory (client order ids stay unique across restarts)."""
    path = run_dir / "session"
    try:
        previous = int(path.read_text(encoding="utf-8").strip() or "0")
    except (OSError, ValueError):
        previous = 0
    run_dir.mkdir(parents=True, exist_ok=True)
    session = previous + 1
    tmp = path.with_name(".session.tmp")
    tmp.write_text(str(session), encoding="utf-8")
    os.replace(tmp, path)
    return f"r{session}"


def load_snapshot(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        LOG.warning("snapshot %s unreadable (%s): recovering from the venue alone", path, exc)
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write, flush, fsync, then rename: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def status_of(engine: Engine, config: RunConfig, phase: str, done_ms: int, total_ms: int) -> dict[str, Any]:
    """The live status snapshot (`pink status` prints it)."""
    view = engine.slot_view()
    return {
        "phase": phase,
        "pid": os.getpid(),
        "venue": config.venue,
        "symbols": [str(s) for s in config.symbols],
        "sim_time_ms": engine.now_ms,
        "progress": (done_ms / total_ms) if total_ms else 1.0,
        "slot": {
            "state": view.state, "symbol": str(view.symbol) if view.symbol else None, "side": view.side.name,
            "open_qty": str(view.open_qty), "entry_px": str(view.entry_px),
            "unrealised_pnl_usdt": str(view.unrealised_pnl_usdt), "entries_allowed": view.entries_allowed,
            "exit_pending": view.exit_pending,
        },
        "working_orders": [
            {"client_id": w.working_id, "role": w.command.role, "router_state": w.machine.state,
             "attempts": len(w.attempts)} for w in engine.router.active()
        ],
        "audit": {"healthy": engine.audit.healthy, "failures": engine.metrics.audit_failures,
                  "path": str(config.audit_file)},
        "summary": engine.summary(),
    }


@contextmanager
def audit_for(config: RunConfig, recovery: Recovery, enabled: bool) -> Iterator[DuckDbAudit | None]:
    """The run's audit log, opened after recovery: a checkpoint of the recovered kernel starts it, one of the
    final kernel ends it. A log in use or damaged stops the run before any trading (never a silent new log)."""
    if not enabled:
        yield None
        return
    from pink_fsm.audit import AuditError, AuditLog, RunInfo
    from pink_fsm.generated.router import SPEC_SHA256 as ROUTER_SHA
    from pink_fsm.generated.slot import SPEC_SHA256 as SLOT_SHA

    kernel = recovery.kernel
    info = RunInfo(kernel.contracts, kernel.account.anchor_usdt, config.kernel, config.public(),
                   {"pink-fsm": _version()}, config.seed, {"slot": SLOT_SHA, "router": ROUTER_SHA})
    config.audit_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        log = AuditLog.open(config.audit_file, info)
    except AuditError as exc:
        raise RunError(f"audit log: {exc}; the runtime refuses to trade without its audit log") from None
    sink = DuckDbAudit(log, kernel)
    try:
        log.checkpoint(persistence.snapshot(kernel), "start")
        log.commit()
        yield sink
        log.checkpoint(persistence.snapshot(sink.kernel), "end")
        log.commit()
    finally:
        log.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pink-fsm")
    except PackageNotFoundError:
        return "source"


async def _drive_shell(venue: Venue, engine: Engine, clock: ShellClock, config: RunConfig, recovery: Recovery,
                      audit: DuckDbAudit | None, start_ms: int, sweep_s: float,
                      stop: Callable[[], bool] | None) -> RunResult:
    """Run the asyncio shell until the duration is over or a signal stops it, then summarise (both the
    real-time simulation and the live venue come through here)."""
    import asyncio

    def status(eng: Engine) -> None:
        done = max(0, clock.now_ms() - start_ms)
        write_json_atomic(config.status_file, status_of(eng, config, "running", done, config.duration_ms))
        if eng.kernel.flat:  # a restart restores only a flat snapshot; keep the latest one on disk
            write_json_atomic(config.snapshot_file, persistence.snapshot(eng.kernel))

    shell = Shell(venue, engine, clock, symbols=list(config.symbols), sweep_s=sweep_s, on_status=status)

    async def watch_stop() -> None:  # SIGINT/SIGTERM (see the CLI) end the run like its duration does
        while stop is not None and not stop():
            await asyncio.sleep(0.1)
        shell.end_reason = "stopped by a signal"
        shell.stop()

    watcher = asyncio.create_task(watch_stop()) if stop is not None else None
    wall0 = time.perf_counter()
    reason = await shell.run(until_ms=start_ms + config.duration_ms, on_exit=config.on_exit)
    if watcher is not None:
        watcher.cancel()
    wallet = await venue.balance_usdt()
    wall_s = time.perf_counter() - wall0
    outcome = SimOutcome(start_ms, start_ms + config.duration_ms, max(0, engine.now_ms - start_ms), wall_s,
                         engine.kernel.flat and config.on_exit == "flatten", "")
    summary = _finish(engine, config, outcome, wallet, audit)
    summary["shell_stop_reason"] = reason
    summary["venue_errors"] = shell.venue_errors
    return RunResult(config, outcome, summary, recovery, _latencies(engine))


def run_sim_realtime(config: RunConfig, audit: bool = True, stop: Callable[[], bool] | None = None) -> RunResult:
    """The simulated venue behind the async venue port, driven by the asyncio shell in scaled real time
    (`--speed 1x` or `60x`): the same engine as the virtual-clock driver, the shell a live venue uses."""
    import asyncio

    from pink_adapters.sim.port import ScaledWallClock, SimVenuePort

    speed = config.speed_factor
    assert speed is not None
    factor: float = speed
    sim = build_sim_venue(config)
    start_ms = sim.next_event_ms() or 0
    sim_clock = ScaledWallClock(start_ms, factor)
    venue = SimVenuePort(sim, sim_clock)  # type: ignore[arg-type]

    class ScaledShellClock:
        def now_ms(self) -> int:
            return sim_clock.now_ms()

        async def sleep(self, seconds: float) -> None:
            await sim_clock.sleep_until(sim_clock.now_ms() + int(seconds * 1000 * factor))

    async def main() -> RunResult:
        contracts = await venue.contracts(list(config.symbols))
        recovery = await recover_async(venue, list(config.symbols), contracts, config.kernel, None)
        with audit_for(config, recovery, audit) as sink:
            return await trade(recovery, sink)

    async def trade(recovery: Recovery, sink: DuckDbAudit | None) -> RunResult:
        engine = Engine(recovery.kernel, build_policy(config), EngineConfig(exec=config.exec), sink)
        engine.apply_recovery(recovery)
        try:
            return await _drive_shell(venue, engine, ScaledShellClock(), config, recovery, sink, start_ms,
                                      1.0 / factor, stop)
        finally:
            await venue.close()

    return asyncio.run(main())


def run_live(config: RunConfig, audit: bool = True, stop: Callable[[], bool] | None = None) -> RunResult:
    """`pink run --venue bingx`: the asyncio shell against the BingX adapter on the wall clock, for
    `config.duration_ms` or until SIGINT/SIGTERM. Credentials come from the environment (the adapter reads
    PINK_BINGX_API_KEY and PINK_BINGX_API_SECRET); the venue outlives this process, so every start takes a new
    session id and resumes from a flat snapshot when there is one."""
    import asyncio

    from pink_adapters.bingx import build_bingx_venue

    config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, session=next_session(config.run_dir)))
    try:
        venue = build_bingx_venue(dict(config.bingx))
    except ValueError as exc:  # BingXConfigError is a ConfigError: it names the key or the variable
        raise ConfigError(str(exc)) from None
    clock = WallClock()

    async def main() -> RunResult:
        try:
            contracts = await venue.contracts(list(config.symbols))
            recovery = await recover_async(venue, list(config.symbols), contracts, config.kernel,
                                           load_snapshot(config.snapshot_file))
        except VenueError as exc:
            await venue.close()
            raise RunError(f"BingX: {exc}") from None
        except ValueError as exc:
            await venue.close()
            raise RunError(f"recovery: {exc}") from None
        try:
            with audit_for(config, recovery, audit) as sink:
                return await trade(recovery, sink)
        finally:
            await venue.close()

    async def trade(recovery: Recovery, sink: DuckDbAudit | None) -> RunResult:
        engine = Engine(recovery.kernel, build_policy(config), EngineConfig(exec=config.exec), sink)
        engine.apply_recovery(recovery)
        return await _drive_shell(venue, engine, clock, config, recovery, sink, clock.now_ms(), 1.0, stop)

    return asyncio.run(main())


def _finish(engine: Engine, config: RunConfig, outcome: SimOutcome, wallet_usdt: Decimal,
            audit: AuditSink | None) -> dict[str, Any]:
    summary = engine.summary()
    summary.update({
        "simulated_hours": outcome.simulated_ms / 3_600_000,
        "wall_s": outcome.wall_s,
        "sim_hours_per_s": (outcome.simulated_ms / 3_600_000) / outcome.wall_s if outcome.wall_s > 0 else 0.0,
        "venue_wallet_usdt": str(wallet_usdt),
        "on_exit": config.on_exit,
        "flattened": outcome.flattened,
        "stopped_early": outcome.stopped_early,
        "audit_path": str(config.audit_file) if audit is not None else None,
        "status_path": str(config.status_file),
        "seed": config.seed,
        "speed": config.speed,
    })
    final = status_of(engine, config, "finished", config.duration_ms, config.duration_ms)
    final["summary"] = summary
    write_json_atomic(config.status_file, final)
    write_json_atomic(config.snapshot_file, persistence.snapshot(engine.kernel))
    return summary


def run_sim(config: RunConfig, progress: ProgressFn | None = None, audit: bool = True,
            stop: Callable[[], bool] | None = None) -> RunResult:
    """A whole simulated run: it finishes by itself after `config.duration_ms` of simulated time."""
    venue = build_sim_venue(config)
    snapshot: Mapping[str, Any] | None = None
    if "remote" in config.sim:
        # A venue that outlives this process: resume against it like against an exchange. A new session id
        # keeps this run's client order ids apart from the earlier runs' (their orders are cancelled).
        config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, session=next_session(config.run_dir)))
        snapshot = load_snapshot(config.snapshot_file)
    try:
        contracts = {s: c for s, c in venue.contracts().items() if s in config.symbols}
    except VenueError as exc:
        raise RunError(f"venue: {exc}") from None
    missing = [str(s) for s in config.symbols if s not in contracts]
    if missing:
        raise ConfigError(f"[run] symbols: {', '.join(missing)} not listed by the venue")
    policy = build_policy(config)
    recovery = recover_from(venue, config, contracts, snapshot)
    with audit_for(config, recovery, audit) as sink:
        return _run_sim(config, venue, policy, recovery, sink, progress, stop)


def _run_sim(config: RunConfig, venue: SyncVenue, policy: Policy, recovery: Recovery, audit: DuckDbAudit | None,
             progress: ProgressFn | None, stop: Callable[[], bool] | None) -> RunResult:
    engine = Engine(recovery.kernel, policy, EngineConfig(exec=config.exec), audit)
    engine.apply_recovery(recovery)
    total_ms = config.duration_ms

    def report(done_ms: int, total: int, eng: Engine) -> None:
        if progress is not None:
            progress(done_ms, total, eng)
        write_json_atomic(config.status_file, status_of(eng, config, "running", done_ms, total))
        if eng.kernel.flat:  # a restart restores only a flat snapshot; keep the latest one on disk
            write_json_atomic(config.snapshot_file, persistence.snapshot(eng.kernel))

    driver = SimDriver(venue, engine, report, stop=stop)
    start_ms = venue.next_event_ms() or 0
    outcome = driver.run(start_ms, total_ms, config.on_exit)
    summary = _finish(engine, config, outcome, venue.balance_usdt(), audit)
    return RunResult(config, outcome, summary, recovery, _latencies(engine))


def _latencies(engine: Engine) -> list[float]:
    return [ns / 1e6 for ns in engine.metrics.decision_to_order_ns]
