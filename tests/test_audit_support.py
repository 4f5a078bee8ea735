"""Shared builders for the audit tests (no tests here; the other test_audit_* files import them): a RunInfo,
a logged kernel session (the runtime's calls, in order)."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

from kernel_helpers import FET, FLAT, SEED, contracts, fill_frame, make_kernel, placed

from pink_fsm.audit.runinfo import RunInfo
from pink_fsm.audit.store import AuditLog
from pink_fsm.kernel import EnterIntent, ExitIntent, Kernel, KernelResult, Side, TradeWritten
from pink_fsm.kernel.events import KernelEvent
from pink_fsm.kernel.kernel import KernelConfig
from pink_fsm.kernel.normaliser import normalise_frame
from pink_fsm.kernel.persistence import snapshot

FAKE_SECRET = "sk_live_FAKE_7d1f0c9a2b_DO_NOT_LEAK"


def run_info(**config: Any) -> RunInfo:
    return RunInfo(contracts(), SEED, KernelConfig(), config={"account": "main", **config},
                   versions={"pink_fsm": "0.1.0"}, seed=7, spec_hashes={"slot": "abc"})


class Session:
    """A kernel driven the way the runtime will: every input logged, a commit before commands go out."""

    def __init__(self, log: AuditLog, kernel: Kernel | None = None) -> None:
        self.log = log
        self.kernel = kernel or make_kernel()
        self.ts = 1_000

    def send(self, event: KernelEvent) -> KernelResult:
        before = self.kernel.slot.state
        result = self.kernel.handle(event)
        self.log.kernel_input(event, result, before, self.ts, trade_seq=self.kernel.slot.model.trade_seq)
        committed = self.log.commit()
        for trade_seq in committed.trades_recorded:  # the record is durable: tell the kernel (D12)
            self.send(TradeWritten(self.ts, trade_seq))
        return result

    def frame(self, frame: dict[str, Any]) -> list[KernelResult]:
        return [self.send(event) for event in normalise_frame(frame).events]

    def round_trip(self, *, side: Side = Side.SHORT, lots: int = 100, px_in: str = "0.6", px_out: str = "0.5",
                   venue: int = 5001) -> None:
        self.ts += 10_000
        entry = placed(self.send(EnterIntent(self.ts, FET, side, D(lots), D(px_in), D(3), FLAT)))
        self.frame(fill_frame(entry, z=str(lots // 2), ap=px_in, venue=str(venue), ts=self.ts + 1))
        self.frame(fill_frame(entry, z=str(lots), ap=px_in, venue=str(venue), ts=self.ts + 2))
        exit_order = placed(self.send(ExitIntent(self.ts + 3)))
        self.frame(fill_frame(exit_order, z=str(lots), ap=px_out, venue=str(venue + 1), ts=self.ts + 4, n="-0.02"))

    def checkpoint(self, reason: str) -> None:
        self.log.checkpoint(snapshot(self.kernel), reason, self.ts)
        self.log.commit()


def logged_session(path: Path, trades: int = 2, **config: Any) -> Session:
    """A closed log of `trades` round trips between a start and an end checkpoint."""
    session = Session(AuditLog.open(path, run_info(**config)))
    session.checkpoint("start")
    for i in range(trades):
        session.round_trip(venue=5001 + 10 * i, side=Side.SHORT if i % 2 == 0 else Side.LONG)
    session.checkpoint("end")
    session.log.close()
    return session
