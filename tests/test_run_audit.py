"""The runtime's audit wiring: what the engine records, and that refused frames are kept (never lost)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pink_fsm.audit import AuditLog, AuditReader, RunInfo
from pink_fsm.kernel import ContractSpec, Kernel, Symbol
from pink_fsm.ports import HOLD, Decision, MarketView, SlotView
from pink_fsm.runtime.audit_sink import DuckDbAudit
from pink_fsm.runtime.engine import Engine

BTC = Symbol("BTC", "USDT")
CONTRACTS = {BTC: ContractSpec(BTC, Decimal("0.0001"), Decimal("0.1"))}


class Hold:
    def decide(self, market: MarketView, slot: SlotView) -> Decision:
        return HOLD

    def on_trade_closed(self, symbol: Symbol, net_pnl_usdt: Decimal) -> None:
        pass


def test_a_refused_frame_is_recorded_with_its_reason(tmp_path: Path) -> None:
    kernel = Kernel(CONTRACTS, Decimal(10_000))
    log = AuditLog.open(tmp_path / "a.duckdb", RunInfo(CONTRACTS, Decimal(10_000)))
    engine = Engine(kernel, Hold(), audit=DuckDbAudit(log, kernel))
    engine.on_frame({"e": "ORDER_TRADE_UPDATE", "E": 5, "o": {"s": "BTC-USDT", "c": "pink1_1", "X": "WAT"}})
    engine.on_frame(b"\x1f\x8b not json")
    log.commit()
    log.close()
    reader = AuditReader.open(tmp_path / "a.duckdb")
    try:
        rows = reader.query("SELECT payload FROM events WHERE event = 'BAD_FRAME' ORDER BY seq").dicts()
        assert reader.verify().ok
    finally:
        reader.close()
    assert len(rows) == 2 and engine.metrics.bad_frames == 2
    assert "unknown status 'WAT'" in rows[0]["payload"] and "expected a JSON object" in rows[1]["payload"]
