"""The asyncio shell against the sim venue's async port: the same engine, real asyncio tasks, scaled time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pink_fsm.runtime.app import run_sim_realtime
from pink_fsm.runtime.config import load_config


def test_shell_trades_on_the_async_port_and_keeps_the_books_equal(tmp_path: Path) -> None:
    # 3 simulated hours at 7200x real time: about 1.5 s of wall time on real asyncio tasks.
    cfg = load_config(None, {"duration": "3h", "speed": "7200x", "run_dir": str(tmp_path), "seed": 11,
                             "on_exit": "flatten"}, environ={})
    result = run_sim_realtime(cfg)
    s = result.summary
    assert s["quotes"] > 500 and s["orders_sent"] > 0
    assert s["invariant_failures"] == 0 and not s["halted"] and s["bad_frames"] == 0
    assert s["venue_errors"] == 0
    assert not s["open_position"], "--on-exit flatten must leave the slot flat"
    assert abs(Decimal(s["capital_usdt"]) - Decimal(s["venue_wallet_usdt"])) <= Decimal("1e-6")
    assert (tmp_path / "status.json").exists() and (tmp_path / "kernel-snapshot.json").exists()


def test_sigint_stops_a_real_time_run_gracefully(tmp_path: Path) -> None:
    """SIGINT ends `pink run --speed 60x` at once: the summary is printed, the books are equal, exit code 0."""
    import json
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", "from pink_fsm.cli import main; main()", "run", "--speed", "60x",
                             "--duration", "10h", "--run-dir", str(tmp_path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["shell_stop_reason"] == "stopped by a signal"
    assert summary["simulated_hours"] < 10
    assert abs(Decimal(summary["capital_usdt"]) - Decimal(summary["venue_wallet_usdt"])) <= Decimal("1e-6")
