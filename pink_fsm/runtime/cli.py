"""`pink run` and `pink status`: the runtime's commands (mounted on the `pink` app in pink_fsm/cli.py)."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pink_fsm.runtime.app import RunError, RunResult, run_live, run_sim, run_sim_realtime
from pink_fsm.runtime.config import ConfigError, RunConfig, load_config
from pink_fsm.runtime.engine import Engine

HOUR_MS = 3_600_000


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(code)


class _Stop:
    """SIGINT/SIGTERM ask the run to stop at the next instant; a second signal aborts at once."""

    def __init__(self) -> None:
        self.requested = ""

    def __call__(self) -> bool:
        return bool(self.requested)

    @contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, _frame: FrameType | None) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = signal.Signals(signum).name

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def run_command(
    venue: Annotated[str | None, typer.Option(
        "--venue", help="sim (the embedded deterministic venue, default) or bingx (REST + websockets, wall "
                        "clock; credentials from PINK_BINGX_API_KEY / PINK_BINGX_API_SECRET; [bingx] config "
                        "table, docs/bingx.md).")] = None,
    symbols: Annotated[str | None, typer.Option(
        "--symbols", metavar="LIST", help="Comma-separated symbols, e.g. BTC-USDT,ETH-USDT (default BTC-USDT). "
                                         "The sim lists BTC, ETH, SOL, FET and XRP against USDT.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the simulated feed and venue (default 7).")
                    ] = None,
    duration: Annotated[str | None, typer.Option(
        "--duration", metavar="D", help="Simulated time to run, e.g. 24h, 90m, 1h30m (default 24h).")] = None,
    speed: Annotated[str | None, typer.Option(
        "--speed", help="max (virtual clock, deterministic, as fast as possible; default) or a real-time "
                        "multiple such as 1x or 60x (the asyncio shell, as against a live venue).")] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", metavar="SPEC", help="'reference' (default), an entry point of group pink_fsm.policies, or "
                                         "pkg.module:Class.")] = None,
    audit: Annotated[Path | None, typer.Option(
        "--audit", metavar="PATH", help="Audit log file (default <run-dir>/audit.duckdb).")] = None,
    run_dir: Annotated[Path | None, typer.Option(
        "--run-dir", metavar="DIR", help="Where status, snapshot and audit files go (default ./pink-runs).")] = None,
    on_exit: Annotated[str | None, typer.Option(
        "--on-exit", help="At the end or on SIGINT/SIGTERM: keep (default) leaves an open position and says so; "
                          "flatten closes it first.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", help="TOML configuration (see docs/run.md); flags and PINK_* environment "
                                         "variables override it.")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print only the summary as JSON on stdout.")] = False,
) -> None:
    """Run the trading runtime: kernel, exec router and policy against a venue, then print a summary.

    The default runs the reference policy (a reference, not trading advice) on the embedded simulated venue
    for 24 simulated hours; it finishes by itself in seconds.
    """
    overrides: dict[str, object] = {
        "venue": venue, "symbols": symbols, "seed": seed, "duration": duration if duration else None,
        "speed": speed, "policy": policy, "audit": audit, "run_dir": run_dir, "on_exit": on_exit,
    }
    if duration is None and config is None:
        overrides["duration"] = "24h"
    try:
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    stop = _Stop()
    err = Console(stderr=True)
    try:
        with stop.installed(), _progress(err, json_only or not err.is_terminal) as progress:
            if cfg.venue == "bingx":
                result = run_live(cfg, stop=stop)
            elif cfg.speed_factor is not None:
                result = run_sim_realtime(cfg, stop=stop)
            else:
                result = run_sim(cfg, progress=progress, stop=stop)
    except (ConfigError, RunError) as exc:
        raise _fail(str(exc)) from None
    if json_only:
        typer.echo(json.dumps(result.summary, indent=2, sort_keys=True, default=str))
        return
    _print_summary(Console(), result, stop.requested)


@contextmanager
def _progress(console: Console, quiet: bool) -> Iterator[Any]:
    if quiet:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("simulating", total=1, info="")

        def update(done_ms: int, total_ms: int, engine: Engine) -> None:
            s = engine.summary()
            info = (f"{done_ms / HOUR_MS:.1f}/{total_ms / HOUR_MS:.1f} h  trades {s['trades']}  "
                    f"net {float(s['net_pnl_usdt']):+.2f} USDT  {s['slot_state']}")
            bar.update(task, completed=done_ms, total=total_ms, info=info)

        yield update


def _money(text: object) -> str:
    return f"{float(str(text)):+,.2f}"


def _print_summary(console: Console, result: RunResult, stopped_by: str) -> None:
    s = result.summary
    cfg = result.config
    table = Table(title=f"pink run: {cfg.venue} venue, {', '.join(map(str, cfg.symbols))}, seed {cfg.seed}, "
                        f"policy {cfg.policy}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("simulated", f"{s['simulated_hours']:.2f} h in {s['wall_s']:.2f} s ({s['sim_hours_per_s']:.0f} h/s)"),
        ("trades", str(s["trades"])),
        ("win rate", f"{100 * s['win_rate']:.1f} %"),
        ("gross PnL", f"{_money(s['gross_pnl_usdt'])} USDT"),
        ("fees", f"{_money(s['fees_usdt'])} USDT"),
        ("net PnL", f"{_money(s['net_pnl_usdt'])} USDT"),
        ("funding", f"{_money(s['funding_usdt'])} USDT"),
        ("max drawdown", f"{float(s['max_drawdown_usdt']):,.2f} USDT"),
        ("capital (kernel)", f"{float(s['capital_usdt']):,.2f} USDT"),
        ("wallet (venue)", f"{float(s['venue_wallet_usdt']):,.2f} USDT"),
        ("orders sent / cancels", f"{s['orders_sent']} / {s['cancels_sent']}"),
        ("decision -> order p50 / p99",
         f"{s['decision_to_order_p50_ms']:.3f} / {s['decision_to_order_p99_ms']:.3f} ms"),
        ("invariant checks run / failed", f"{s['invariant_checks']:,} / {s['invariant_failures']}"),
        ("frames (bad)", f"{s['frames']} ({s['bad_frames']})"),
        ("slot state at the end", s["slot_state"] + (" (position open, kept)" if s["open_position"] else "")),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    states = Table(title="transitions per state", title_justify="left")
    states.add_column("machine")
    states.add_column("state")
    states.add_column("entered", justify="right")
    for machine, key in (("slot", "slot_transitions"), ("router", "router_transitions")):
        for state, count in s[key].items():
            states.add_row(machine, state, str(count))
    console.print(states)
    if s["open_position"]:
        console.print(f"[yellow]note:[/yellow] the position stays open (--on-exit {cfg.on_exit}); "
                      f"run with --on-exit flatten to close it at the end.")
    if stopped_by:
        console.print(f"stopped by {stopped_by} before the end of the simulated period")
    if s["halted"]:
        console.print(f"[red]kernel halted:[/red] {s['halted']}")
    console.print(f"status: {s['status_path']}" + (f"   audit: {s['audit_path']}" if s.get("audit_path") else ""))


def status_command(
    run_dir: Annotated[Path, typer.Option("--run-dir", metavar="DIR", help="The run directory.")] = Path("pink-runs"),
    status_file: Annotated[Path | None, typer.Option(
        "--file", metavar="FILE", help="A status file (default <run-dir>/status.json).")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print the status JSON as it is.")] = False,
) -> None:
    """Print the live status of a running (or the last finished) `pink run`: the slot, working orders, audit
    health and the running summary. The runtime rewrites the file atomically while it runs."""
    path = status_file or run_dir / "status.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(f"{path}: no status file; start a run with `pink run` (or pass --run-dir / --file)") from None
    except (OSError, ValueError) as exc:
        raise _fail(f"{path}: unreadable status file ({exc})") from None
    if json_only:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    _print_status(Console(), data, path)


def _print_status(console: Console, data: Mapping[str, Any], path: Path) -> None:
    slot = data.get("slot", {})
    s = data.get("summary", {})
    table = Table(title=f"pink status ({path}): {data.get('phase')} (pid {data.get('pid')})", title_justify="left")
    table.add_column("field")
    table.add_column("value", justify="right")
    rows = [
        ("venue / symbols", f"{data.get('venue')} / {', '.join(data.get('symbols', []))}"),
        ("progress", f"{100 * float(data.get('progress', 0)):.1f} %"),
        ("slot state", str(slot.get("state"))),
        ("position", f"{slot.get('side')} {slot.get('open_qty')} {slot.get('symbol') or ''} @ {slot.get('entry_px')}"),
        ("unrealised PnL", f"{slot.get('unrealised_pnl_usdt')} USDT"),
        ("entries allowed", str(slot.get("entries_allowed"))),
        ("working orders", ", ".join(f"{w['client_id']} {w['role']} {w['router_state']}"
                                     for w in data.get("working_orders", [])) or "none"),
        ("audit", f"{'healthy' if data.get('audit', {}).get('healthy') else 'NOT WRITABLE'}, "
                  f"{data.get('audit', {}).get('failures', 0)} failed commits"),
        ("trades / net PnL", f"{s.get('trades')} / {s.get('net_pnl_usdt')} USDT"),
        ("capital", f"{s.get('capital_usdt')} USDT"),
        ("invariant checks run / failed", f"{s.get('invariant_checks')} / {s.get('invariant_failures')}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def config_template() -> RunConfig:
    return load_config(None, {}, environ={})
