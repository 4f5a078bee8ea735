"""The hash chain: `verify` names the first bad seq of an edited, deleted, reordered or cut log."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from test_audit_support import logged_session

from pink_fsm.audit.chain import GENESIS_HASH, row_hash, verify_rows
from pink_fsm.audit.reader import AuditReader


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.duckdb"
    logged_session(path, trades=2)
    return path


def _tamper(path: Path, *statements: str) -> None:
    with duckdb.connect(str(path)) as conn:
        for statement in statements:
            conn.execute(statement)


def _verify(path: Path) -> tuple[bool, int | None, str]:
    with AuditReader.open(path) as reader:
        report = reader.verify()
    return report.ok, report.first_bad_seq, report.reason


def test_an_untouched_log_verifies(log_path: Path) -> None:
    assert _verify(log_path)[:2] == (True, None)


def test_an_edited_fill_price_is_named_by_its_seq(log_path: Path) -> None:
    # seq 10 is the first exit fill: 100 FET for 50.0 USDT; make it 70.0
    _tamper(log_path, "UPDATE events SET payload = replace(payload, '\"50.0\"', '\"70.0\"') WHERE seq = 10")
    ok, seq, reason = _verify(log_path)
    assert (ok, seq) == (False, 10) and "edited" in reason


def test_an_edited_column_outside_the_payload_is_detected(log_path: Path) -> None:
    _tamper(log_path, "UPDATE events SET outcome = 'OK', to_state = 'IDLE' WHERE seq = 12")
    assert _verify(log_path)[:2] == (False, 12)


def test_a_deleted_row_is_named_by_the_seq_after_it(log_path: Path) -> None:
    _tamper(log_path, "DELETE FROM events WHERE seq = 6")
    ok, seq, reason = _verify(log_path)
    assert (ok, seq) == (False, 7) and "deleted" in reason


def test_reordered_rows_are_detected_at_the_first_moved_one(log_path: Path) -> None:
    _tamper(log_path, "UPDATE events SET seq = -1 WHERE seq = 4", "UPDATE events SET seq = 4 WHERE seq = 5",
            "UPDATE events SET seq = 5 WHERE seq = -1")
    assert _verify(log_path)[:2] == (False, 4)


def test_rows_cut_from_the_end_are_caught_by_the_recorded_head(log_path: Path) -> None:
    _tamper(log_path, "DELETE FROM events WHERE seq >= (SELECT max(seq) - 1 FROM events)")
    ok, seq, reason = _verify(log_path)
    assert not ok and "removed" in reason and seq is not None


def test_a_rehashed_edit_still_breaks_the_link_to_the_next_row() -> None:
    rows = []
    prev = GENESIS_HASH
    for seq in (1, 2, 3):
        row = {"seq": seq, "run_id": 1, "local_ts_ms": seq, "kind": "input", "event": "X", "payload": "{}"}
        digest = row_hash(prev, row)
        rows.append([row.get(c) for c in ("seq", "run_id", "venue_ts_ms", "local_ts_ms", "kind", "machine",
                                          "from_state", "event", "to_state", "transition_id", "outcome",
                                          "trade_seq", "client_id", "venue_id", "payload")] + [prev, digest])
        prev = digest
    rows[1][14] = '{"x":1}'
    rows[1][16] = row_hash(rows[1][15], {"seq": 2, "run_id": 1, "local_ts_ms": 2, "kind": "input", "event": "X",
                                         "payload": '{"x":1}'})
    report = verify_rows(rows)
    assert (report.ok, report.first_bad_seq) == (False, 3)
