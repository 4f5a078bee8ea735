"""The writer: schema migration, one writer per file, corrupt files refused, failed commits kept and retried,
secrets never stored, and the read path while a runtime holds the file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from test_audit_support import FAKE_SECRET, Session, logged_session, run_info
from typer.testing import CliRunner

from pink_fsm.audit import schema
from pink_fsm.audit.chain import GENESIS_HASH, row_hash
from pink_fsm.audit.cli import audit_app
from pink_fsm.audit.errors import AuditCorrupt, AuditError, AuditInUse, AuditWriteError
from pink_fsm.audit.reader import AuditReader
from pink_fsm.audit.store import AuditLog

ROOT = Path(__file__).resolve().parent.parent
HOLDER = textwrap.dedent("""
    import sys
    sys.path[:0] = [{tests!r}, {root!r}]
    from pathlib import Path
    from test_audit_support import Session, run_info
    from pink_fsm.audit.store import AuditLog
    session = Session(AuditLog.open(Path({path!r}), run_info()))
    session.checkpoint("start")
    session.round_trip()
    session.log.maybe_export(force=True)
    print("ready", flush=True)
    sys.stdin.readline()
    session.log.close()
""")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process (a running runtime) writing and holding an audit file."""
    path = tmp_path / "held.duckdb"
    code = HOLDER.format(tests=str(ROOT / "tests"), root=str(ROOT), path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield path, proc
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(timeout=20)


def test_a_second_writer_gets_audit_in_use_naming_the_pid(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    path, proc = holder
    with pytest.raises(AuditInUse) as caught:
        AuditLog.open(path, run_info())
    assert caught.value.pid == proc.pid
    assert f"in use by PID {proc.pid}" in str(caught.value) and str(path) in str(caught.value)


def test_readers_use_the_read_copy_while_a_runtime_holds_the_file(
        holder: tuple[Path, subprocess.Popen[str]]) -> None:
    path, proc = holder
    with AuditReader.open(path) as reader:
        assert reader.source == "read_copy" and f"PID {proc.pid}" in reader.note
        assert reader.verify().ok
        assert len(reader.rows("trades").rows) == 1
    result = CliRunner().invoke(audit_app, ["trades", "--json", "--audit", str(path)])
    assert result.exit_code == 0, result.output
    assert '"trade_seq": 1' in result.stdout and "read copy" in result.stderr


def test_a_version_1_file_is_migrated_forward_and_keeps_its_chain(tmp_path: Path) -> None:
    path = tmp_path / "v1.duckdb"
    row = {"seq": 1, "run_id": 1, "local_ts_ms": 5, "kind": "run_start", "machine": "runtime",
           "event": "run_start", "payload": "{}"}
    digest = row_hash(GENESIS_HASH, row)  # a version-1 row: no transition_id, no outcome
    with duckdb.connect(str(path)) as conn:
        for statement in schema.DDL_V1:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO runs (run_id, started_local_ms) VALUES (1, 5)")
        conn.execute("INSERT INTO events (seq, run_id, local_ts_ms, kind, machine, event, payload, prev_hash, hash) "
                     "VALUES (1, 1, 5, 'run_start', 'runtime', 'run_start', '{}', ?, ?)", [GENESIS_HASH, digest])
    session = Session(AuditLog.open(path, run_info()))
    assert session.log.run_id == 2
    session.round_trip()
    session.log.close()
    with AuditReader.open(path) as reader:
        assert reader.query("SELECT value FROM meta WHERE key = 'schema_version'").rows == (("2",),)
        assert reader.query("SELECT count(*) FROM ticks").rows == ((0,),)
        assert reader.query("SELECT count(*) FROM trades").rows == ((1,),)
        report = reader.verify()
    assert report.ok and report.rows > 10  # the old row's hash still holds, the new rows chain onto it


def test_a_file_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    logged_session(path, trades=0)
    with duckdb.connect(str(path)) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(AuditError, match="newer"):
        AuditLog.open(path, run_info())


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_corrupt_or_truncated_file_is_refused_never_replaced(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "audit.duckdb"
    logged_session(path, trades=1)
    data = path.read_bytes()
    path.write_bytes({"garbage": os.urandom(len(data)), "truncated": data[: len(data) // 3], "empty": b""}[damage])
    before = path.read_bytes()
    with pytest.raises(AuditCorrupt) as caught:
        AuditLog.open(path, run_info())
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before  # nothing written, no new log in its place


def test_a_deleted_file_whose_traces_remain_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    logged_session(path, trades=1)
    path.unlink()
    with pytest.raises(AuditCorrupt, match="missing"):
        AuditLog.open(path, run_info())
    assert not path.exists()


def test_a_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE prices (px DOUBLE)")
    with pytest.raises(AuditCorrupt, match="not a pink audit log"):
        AuditLog.open(path, run_info())


def test_a_failed_commit_keeps_its_rows_and_the_next_commit_writes_them(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.duckdb"
    session = Session(AuditLog.open(path, run_info()))
    log = session.log
    real_insert = log._insert_events
    failures = iter([True, True])

    def flaky(rows: object) -> None:
        if next(failures, False):
            raise duckdb.IOException("No space left on device")
        real_insert(rows)  # type: ignore[arg-type]

    log._insert_events = flaky  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="pink_fsm.audit"), pytest.raises(AuditWriteError):
        session.round_trip()
    assert not log.healthy and log.failed_commits == 1 and log.pending > 0
    assert any(r.message == "audit_commit_failed" for r in caplog.records)
    assert log.status()["healthy"] is False and log.status()["failed_commits"] == 1
    with pytest.raises(AuditWriteError):
        log.commit()
    assert log.failed_commits == 2
    committed = log.commit()
    assert log.healthy and log.pending == 0 and committed.events > 0
    log.close()
    with AuditReader.open(path) as reader:
        assert reader.verify().ok
        kinds = reader.query("SELECT event FROM events WHERE kind = 'input' ORDER BY seq").rows
    assert kinds[0] == ("EnterIntent",)


def test_secrets_never_reach_the_log_or_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.duckdb"
    config = {"bingx": {"api_key": FAKE_SECRET, "api_secret": FAKE_SECRET, "ws": {"listen_token": FAKE_SECRET}},
              "accounts": [{"name": "main", "password": FAKE_SECRET}], "symbols": ["FET-USDT"]}
    with caplog.at_level(logging.DEBUG):
        logged_session(path, trades=1, **config)
        result = CliRunner().invoke(audit_app, ["sql", "SELECT config FROM runs", "--json", "--audit", str(path)])
    assert "[REDACTED]" in result.stdout and "FET-USDT" in result.stdout
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    for file in files:
        assert FAKE_SECRET.encode() not in file.read_bytes(), file
    assert FAKE_SECRET not in caplog.text and FAKE_SECRET not in result.output


def test_commit_result_names_the_trades_made_durable(tmp_path: Path) -> None:
    session = Session(AuditLog.open(tmp_path / "audit.duckdb", run_info()))
    session.round_trip()
    assert session.kernel.slot.state == "TRADE_TERMINAL_WRITTEN"  # TradeWritten came from commit()'s report
    session.log.close()
