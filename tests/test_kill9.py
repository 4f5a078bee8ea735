"""Reliability: `pink run` killed with SIGKILL at 50 seeded moments against a venue that outlives it.

The sim venue runs in its own process (`pink_adapters.sim.remote`), so its orders, positions and wallet survive
every kill, as an exchange's do. Each restarted runtime recovers from that venue truth and appends a new run to
the same audit log. At the end (a last run that flattens the position):

* no committed fill is lost: every fill the audit booked is one the venue executed, once;
* no fill is booked twice: an execution id is booked at most once across all runs, and the kernel's capital
  equals the venue's wallet;
* the hash chain verifies, and the last run's rebuild (its kernel inputs replayed) equals its final checkpoint.

Plus the audit's refusals at run level: a second writer, a damaged file, and secrets kept out of the log.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pink_adapters.sim.remote import RemoteSimVenue
from pink_fsm.audit import AuditReader
from pink_fsm.cli import app

KILLS = 50
PINK = [sys.executable, "-c", "from pink_fsm.cli import main; main()"]


def _venue(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    address = str(tmp_path / "venue.sock")
    proc = subprocess.Popen([sys.executable, "-m", "pink_adapters.sim.remote", "--address", address, "--seed", "5"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening" in line, line
    return proc, address


def _config(tmp_path: Path, address: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(f'[run]\nrun_dir = "{tmp_path / "run"}"\nduration = "90m"\n'
                    f'[exec]\nentry_style = "taker"\nexit_style = "taker"\n'
                    f'[policy]\nentry_z = 1.0\nmax_hold_ms = 300000\n'
                    f'[sim]\nremote = "{address}"\n', encoding="utf-8")
    return path


@pytest.mark.slow
def test_kill_9_at_seeded_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PINK_SIM_AUTHKEY": secrets.token_hex(16)}
    venue_proc, address = _venue(tmp_path, env)
    try:
        config = _config(tmp_path, address)
        rng = random.Random(20261124)
        kills = attempts = 0
        while kills < KILLS:
            attempts += 1
            assert attempts < 3 * KILLS, "runs keep finishing before the kill; lengthen the run"
            proc = subprocess.Popen([*PINK, "run", "--config", str(config), "--json"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            # Seeded moments over start-up (imports, recovery, audit open) and trading alike.
            time.sleep(rng.uniform(0.2, 1.6))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            _, err = proc.communicate(timeout=60)
            if proc.returncode not in (0, -signal.SIGKILL):
                pytest.fail(f"run {attempts} failed by itself (exit {proc.returncode}):\n{err}")
        final = subprocess.run([*PINK, "run", "--config", str(config), "--on-exit", "flatten", "--json"],
                               env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
        summary = json.loads(final.stdout)
        remote = RemoteSimVenue(address, env["PINK_SIM_AUTHKEY"].encode())
        venue_fills = {f.trade_id for f in remote.fills()}
        positions = remote.positions()
        wallet = remote.balance_usdt()
        remote.close()
    finally:
        venue_proc.terminate()
        venue_proc.wait(timeout=10)

    assert summary["invariant_failures"] == 0 and not summary["halted"]
    assert not summary["open_position"] and positions == [], "the final run must leave the venue flat"
    assert abs(Decimal(summary["capital_usdt"]) - wallet) <= Decimal("1e-6"), "capital != venue wallet"

    audit = tmp_path / "run" / "audit.duckdb"
    reader = AuditReader.open(audit)
    try:
        report = reader.verify()
        assert report.ok, f"chain broken at seq {report.first_bad_seq}: {report.reason}"
        runs = reader.query("SELECT count(*) AS n FROM runs").dicts()[0]["n"]
        booked = reader.query("SELECT exec_id, count(*) AS n FROM fills WHERE booked GROUP BY exec_id").dicts()
    finally:
        reader.close()
    assert runs >= 2, "the audit log must hold the runs before and after the kills"
    assert booked, "no fill was booked: the scenario must trade"
    assert max(row["n"] for row in booked) == 1, "a fill was booked twice"
    lost = {row["exec_id"] for row in booked} - venue_fills
    assert not lost, f"booked fills the venue never executed: {sorted(lost)[:5]}"
    rebuilt = CliRunner().invoke(app, ["audit", "rebuild", "--audit", str(audit)])
    assert rebuilt.exit_code == 0 and "equal" in rebuilt.output, rebuilt.output


def test_a_second_writer_is_refused_naming_the_pid(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["run", "--duration", "1h", "--run-dir", str(tmp_path), "--json"])
    assert first.exit_code == 0, first.output
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from decimal import Decimal\n"
        "from pink_fsm.audit import AuditLog, RunInfo\n"
        "from pink_fsm.kernel.values import ContractSpec, Symbol\n"
        "s = Symbol('BTC', 'USDT'); c = {s: ContractSpec(s, Decimal('0.0001'), Decimal('0.1'))}\n"
        f"log = AuditLog.open(Path({str(tmp_path / 'audit.duckdb')!r}), RunInfo(c, Decimal(1000)))\n"
        "print('holding', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().startswith("holding")
        second = runner.invoke(app, ["run", "--duration", "1h", "--run-dir", str(tmp_path)])
        assert second.exit_code == 2
        assert f"in use by PID {holder.pid}" in second.output and "refuses to trade" in second.output
    finally:
        holder.kill()
        holder.wait()


def test_a_damaged_audit_file_stops_the_run_before_any_trade(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["run", "--duration", "1h", "--run-dir", str(tmp_path)]).exit_code == 0
    audit = tmp_path / "audit.duckdb"
    audit.write_bytes(audit.read_bytes()[: audit.stat().st_size // 3])  # truncated
    status_before = (tmp_path / "status.json").read_text(encoding="utf-8")
    result = runner.invoke(app, ["run", "--duration", "1h", "--run-dir", str(tmp_path)])
    assert result.exit_code == 2 and "refuses to trade" in result.output, result.output
    assert (tmp_path / "status.json").read_text(encoding="utf-8") == status_before, "it must not have traded"


def test_secrets_from_the_environment_never_reach_the_audit_or_the_output(tmp_path: Path) -> None:
    secret = "sEcReT-" + secrets.token_hex(12)
    env = {**os.environ, "PINK_BINGX_API_SECRET": secret, "PINK_BINGX_API_KEY": secret + "k",
           "PINK_SIM_AUTHKEY": secret + "a"}
    done = subprocess.run([*PINK, "run", "--duration", "2h", "--run-dir", str(tmp_path), "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the secret leaked into {path}"
