"""`pink run --venue bingx` end to end against the BingX loopback server (127.0.0.1, sim engine behind the
real wire protocol): signed REST, the listenKey user stream, the market stream, recovery, the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


@pytest.mark.slow
def test_pink_run_trades_on_bingx_through_the_loopback(tmp_path: Path) -> None:
    env = {**os.environ, "PINK_BINGX_API_KEY": "loopKEY" + "x" * 20, "PINK_BINGX_API_SECRET": "loopSECRET" + "y" * 20,
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-m", "pink_adapters.bingx.loopback", "--symbols", "FET-USDT",
                               "--quote-interval-ms", "500", "--ping-interval-s", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(5)]
        table = "".join(lines[1:5])
        assert table.startswith("[bingx]"), lines
        config = tmp_path / "run.toml"
        config.write_text(f'[run]\nvenue = "bingx"\nsymbols = ["FET-USDT"]\nduration = "8s"\non_exit = "flatten"\n'
                          f'run_dir = "{tmp_path / "run"}"\npolicy = "policies_example:make_timeout_policy"\n'
                          f'[policy]\nhold_ms = 2000\nleverage = "0.5"\n'
                          f'[exec]\nentry_style = "taker"\nexit_style = "taker"\n{table}', encoding="utf-8")
        run = subprocess.run([sys.executable, "-c", "from pink_fsm.cli import main; main()", "run", "--config",
                              str(config), "--json"], env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["trades"] >= 1 and summary["orders_sent"] >= 2
    assert summary["invariant_failures"] == 0 and not summary["halted"] and summary["bad_frames"] == 0
    assert not summary["open_position"], "--on-exit flatten"
    assert abs(Decimal(summary["capital_usdt"]) - Decimal(summary["venue_wallet_usdt"])) <= Decimal("1e-6")
    assert "loopSECRET" not in run.stdout + run.stderr
    assert (tmp_path / "run" / "audit.duckdb").exists()
