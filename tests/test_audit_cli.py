"""`pink audit ...` through typer's CliRunner: lists (tables and --json), verify, rebuild, export, read-only sql."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from test_audit_support import logged_session
from typer.testing import CliRunner

from pink_fsm.audit.cli import audit_app
from pink_fsm.audit.errors import AuditError
from pink_fsm.audit.reader import parse_since

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "audit.duckdb"
    logged_session(path, trades=2)
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = RUNNER.invoke(audit_app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["trades", "orders", "fills", "events"])
def test_every_list_prints_a_table_and_json(log_path: Path, name: str) -> None:
    code, out, _ = _run(name, "--audit", str(log_path))
    assert code == 0 and f"{name} (" in out
    code, out, _ = _run(name, "--json", "--audit", str(log_path))
    assert code == 0 and isinstance(json.loads(out), list) and json.loads(out)


def test_trades_json_has_one_row_per_trade_with_exact_amounts(log_path: Path) -> None:
    _, out, _ = _run("trades", "--json", "--audit", str(log_path))
    rows = json.loads(out)
    assert [r["trade_seq"] for r in rows] == [1, 2]
    assert rows[0]["side"] == "SHORT" and rows[0]["written"] is True
    assert rows[0]["realised_pnl_usdt"].startswith("10.0")


def test_the_trade_filter_and_since(log_path: Path) -> None:
    code, out, _ = _run("fills", "--trade", "2", "--json", "--audit", str(log_path))
    assert code == 0 and {r["trade_seq"] for r in json.loads(out)} == {2}
    code, out, _ = _run("events", "--since", "21000", "--json", "--audit", str(log_path))
    assert code == 0 and all(r["local_ts_ms"] >= 21000 for r in json.loads(out))
    code, _, err = _run("events", "--since", "yesterday-ish", "--audit", str(log_path))
    assert code == 2 and "--since" in err


def test_parse_since_accepts_ms_iso_and_ages() -> None:
    assert parse_since("1700000000000", 0) == 1_700_000_000_000
    assert parse_since("2026-01-01T00:00:00", 0) == 1_767_225_600_000
    assert parse_since("2h", 10_000_000) == 10_000_000 - 7_200_000
    with pytest.raises(AuditError):
        parse_since("soon", 0)


def test_verify_and_rebuild_exit_zero_on_an_intact_log(log_path: Path) -> None:
    assert _run("verify", "--audit", str(log_path))[0] == 0
    code, out, _ = _run("rebuild", "--json", "--audit", str(log_path))
    assert code == 0 and json.loads(out)["equal"] is True


def test_verify_exits_one_naming_the_first_bad_seq(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    logged_session(path, trades=1)
    with duckdb.connect(str(path)) as conn:
        conn.execute("DELETE FROM events WHERE seq = 5")
    code, out, _ = _run("verify", "--json", "--audit", str(path))
    assert code == 1 and json.loads(out)["first_bad_seq"] == 6


@pytest.mark.parametrize("query", [
    "DELETE FROM events",
    "UPDATE events SET payload = '{}'",
    "COPY (SELECT 1) TO '/tmp/pink-audit-leak.csv'",
    "SELECT 1; DROP TABLE events",
    "ATTACH '/tmp/other.duckdb' AS other",
    "CREATE TABLE x AS SELECT 1",
])
def test_sql_refuses_anything_but_one_select(log_path: Path, query: str) -> None:
    code, _, err = _run("sql", query, "--audit", str(log_path))
    assert code == 2 and "read-only SELECT" in err
    assert _run("verify", "--audit", str(log_path))[0] == 0


def test_sql_runs_a_select_with_json(log_path: Path) -> None:
    code, out, _ = _run("sql", "SELECT kind, count(*) AS n FROM events GROUP BY kind ORDER BY kind", "--json",
                        "--audit", str(log_path))
    assert code == 0 and {r["kind"] for r in json.loads(out)} >= {"input", "command", "checkpoint", "run_start"}


def test_export_writes_parquet_that_duckdb_reads_back(log_path: Path, tmp_path: Path) -> None:
    code, out, _ = _run("export", "--parquet", str(tmp_path / "out"), "--audit", str(log_path))
    assert code == 0 and "trades.parquet" in out
    with duckdb.connect() as conn:
        rows = conn.execute(f"SELECT count(*) FROM '{tmp_path / 'out' / 'events.parquet'}'").fetchone()
    assert rows is not None and rows[0] > 20


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = _run("trades", "--audit", str(tmp_path / "none.duckdb"))
    assert code == 2 and "no audit log" in err
