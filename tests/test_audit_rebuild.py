"""Rebuild: the logged inputs, replayed into a kernel restored from a checkpoint, reproduce the final checkpoint."""

from __future__ import annotations

import json
import logging
from decimal import Decimal as D
from pathlib import Path

import duckdb
import pytest
from kernel_helpers import fill_frame, open_short
from test_audit_support import Session, contracts, logged_session, make_kernel, run_info

from pink_fsm.audit.reader import AuditReader
from pink_fsm.audit.rebuild import rebuild, restore_checkpoint
from pink_fsm.audit.runinfo import RunInfo
from pink_fsm.audit.store import AuditLog
from pink_fsm.bench.kernel_area import CONTRACTS, SEED_CAPITAL_USDT, fresh_kernel, kernel_event_stream
from pink_fsm.kernel.events import ExitIntent
from pink_fsm.kernel.persistence import snapshot


def _rebuild(path: Path) -> object:
    with AuditReader.open(path) as reader:
        return rebuild(reader)


def test_a_replayed_session_rebuilds_the_final_checkpoint_exactly(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    logged_session(path, trades=3)
    report = _rebuild(path)
    assert report.equal, report  # type: ignore[attr-defined]
    assert report.replayed > 15  # type: ignore[attr-defined]


def test_a_run_that_starts_with_a_live_trade_rebuilds_from_its_checkpoint(tmp_path: Path) -> None:
    kernel = make_kernel()
    open_short(kernel)  # the run starts after recovery with a position open
    path = tmp_path / "audit.duckdb"
    session = Session(AuditLog.open(path, run_info()), kernel)
    session.checkpoint("start")
    exit_order = session.send(ExitIntent(3_000)).commands[0]
    session.frame(fill_frame(exit_order, z="100", ap="0.55", venue="5002", ts=3_001))  # type: ignore[arg-type]
    session.round_trip(venue=6001)
    session.checkpoint("end")
    session.log.close()
    assert _rebuild(path).equal  # type: ignore[attr-defined]


def test_restore_checkpoint_restores_a_live_trade_exactly() -> None:
    kernel = make_kernel()
    open_short(kernel)
    restored = restore_checkpoint(snapshot(kernel), contracts())
    assert snapshot(restored) == snapshot(kernel) and restored.slot.state == "POSITION_OPEN"


def test_a_changed_final_checkpoint_is_reported_with_a_diff(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    logged_session(path, trades=2)
    with duckdb.connect(str(path)) as conn:
        seq, payload = conn.execute("SELECT seq, payload FROM events WHERE kind = 'checkpoint' ORDER BY seq DESC "
                                    "LIMIT 1").fetchone()  # type: ignore[misc]
        data = json.loads(payload)
        data["snapshot"]["account"]["closed_net_usdt"] = "12345"
        conn.execute("UPDATE events SET payload = ? WHERE seq = ?", [json.dumps(data), seq])
    report = _rebuild(path)
    assert not report.equal  # type: ignore[attr-defined]
    assert any(line.startswith("account.closed_net_usdt:") for line in report.differences)  # type: ignore[attr-defined]


def test_the_mixed_kernel_stream_rebuilds_exactly(tmp_path: Path) -> None:
    """The bench's recorded stream: refusals, duplicates, stale frames, foreign fills, partial fills, freezes."""
    logging.getLogger("pink_fsm.kernel").disabled = True
    try:
        stream = kernel_event_stream(trades=15)
        kernel = fresh_kernel()
        path = tmp_path / "audit.duckdb"
        log = AuditLog.open(path, RunInfo(CONTRACTS, SEED_CAPITAL_USDT))
        log.checkpoint(snapshot(kernel), "start")
        for i, event in enumerate(stream.events):
            before = kernel.slot.state
            result = kernel.handle(event)
            log.kernel_input(event, result, before, i, trade_seq=kernel.slot.model.trade_seq)
        log.checkpoint(snapshot(kernel), "end")
        log.commit()
        log.close()
    finally:
        logging.getLogger("pink_fsm.kernel").disabled = False
    report = _rebuild(path)
    assert report.equal, report  # type: ignore[attr-defined]
    assert report.replayed == len(stream.events)  # type: ignore[attr-defined]


def test_a_run_without_an_end_checkpoint_says_why_it_cannot_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    log = AuditLog.open(path, run_info())
    log.checkpoint(snapshot(make_kernel()), "start")
    log.close()
    with AuditReader.open(path) as reader, pytest.raises(Exception, match="end one"):
        rebuild(reader)


def test_seed_capital_in_the_run_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    logged_session(path, trades=0)
    with AuditReader.open(path) as reader:
        assert reader.query("SELECT seed_capital_usdt FROM runs").rows == ((str(D(10000)),),)
