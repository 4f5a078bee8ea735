"""Area `audit`: what the audit log costs, against raw DuckDB on the same disk in the same run.

* Batched appends: a stream of market quotes goes through `AuditLog.tick_batch` + `commit()` (a group commit per
  TICK_BATCH quotes) and, interleaved with it, through `raw`: the same quotes turned into the same columns by
  the least code that can do it and inserted with DuckDB's fastest pandas-free bulk path (one
  `INSERT ... SELECT unnest($1), ...` per batch, one autocommit statement, as ours; pyarrow and pandas are
  not dependencies).
  `append_ratio` = our rows/s / raw rows/s (medians); the issue's target is >= 0.5, stated to the runner as
  `raw_per_audit_ratio` <= 2 because a bench Target is an upper bound.
* Fill commit latency: a recorded kernel session (the `kernel` area's stream) is logged as the runtime would:
  every kernel input appended, and a `commit()` made right after each fill (the durability point: a fill is
  durable before the commands it causes are sent), carrying the inputs batched since the previous one.
  `fill_commit_p50_ms` / `fill_commit_p99_ms` time those commits; `raw_commit_p99_ms` times a one-row raw insert
  and commit on the same disk (the fsync floor).

Files live in a temporary directory on local disk (the system temp dir), removed at the end.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import duckdb

from pink_fsm.audit.runinfo import RunInfo
from pink_fsm.audit.schema import DDL_V1, MIGRATIONS
from pink_fsm.audit.store import TICK_COLUMNS, AuditLog
from pink_fsm.bench.kernel_area import CONTRACTS, SEED_CAPITAL_USDT, fresh_kernel, kernel_event_stream
from pink_fsm.bench.runner import Area, Figures, ProgressFn, Settings, Target, Variant, interleaved_ns
from pink_fsm.kernel.events import OrderFilled
from pink_fsm.kernel.persistence import snapshot
from pink_fsm.ports import Quote

__all__ = ["APPEND_RATIO_TARGET", "AREA", "FILL_COMMIT_P99_TARGET_MS", "TICK_BATCH", "quote_stream"]

APPEND_RATIO_TARGET: Final = 0.5
FILL_COMMIT_P99_TARGET_MS: Final = 5.0
TICK_BATCH: Final = 1000
TICKS_PER_TRADE: Final = 200  # workload size: Settings.trades x this many quotes
RAW_COMMITS: Final = 200
T0_MS: Final = 1_767_225_600_000


def quote_stream(count: int) -> list[Quote]:
    """`count` deterministic quotes over the bench contracts (a tick walk)."""
    symbols = sorted(CONTRACTS)
    out = []
    for i in range(count):
        mid = Decimal(6091 + (i * 7919) % 200) / 10_000
        out.append(Quote(T0_MS + i * 50, symbols[i % len(symbols)], mid - Decimal("0.0001"), mid, mid))
    return out


def _run_info() -> RunInfo:
    return RunInfo(CONTRACTS, SEED_CAPITAL_USDT, config={"bench": True})


class _Files:
    """Fresh audit files in one temp dir; everything opened is closed at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.logs: list[AuditLog] = []
        self.conns: list[duckdb.DuckDBPyConnection] = []

    def path(self) -> Path:
        self.count += 1
        return self.root / f"f{self.count}.duckdb"

    def audit_log(self) -> AuditLog:
        log = AuditLog.open(self.path(), _run_info(), read_copy_interval_s=1e9)
        self.logs.append(log)
        return log

    def raw(self) -> duckdb.DuckDBPyConnection:
        conn = duckdb.connect(str(self.path()))
        for statement in (*DDL_V1, *MIGRATIONS[1]):
            conn.execute(statement)
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        for log in self.logs:
            log.close()
        for conn in self.conns:
            conn.close()


def _batches(quotes: Sequence[Quote]) -> list[Sequence[Quote]]:
    return [quotes[i:i + TICK_BATCH] for i in range(0, len(quotes), TICK_BATCH)]


def _audit_variant(files: _Files, batches: list[Sequence[Quote]]) -> Callable[[], None]:
    log = files.audit_log()

    def replay() -> None:
        for batch in batches:
            log.tick_batch(batch, T0_MS)
            log.commit()

    return replay


_RAW_INSERT: Final = (f"INSERT INTO ticks ({', '.join(TICK_COLUMNS)}) SELECT "
                      + ", ".join(f"unnest(${i + 1})" for i in range(len(TICK_COLUMNS))))


def _raw_variant(files: _Files, batches: list[Sequence[Quote]]) -> Callable[[], None]:
    conn = files.raw()

    def replay() -> None:
        tick_id = 0
        for batch in batches:
            n = len(batch)
            columns: list[list[Any]] = [list(range(tick_id + 1, tick_id + n + 1)), [1] * n,
                                        [q.ts_ms for q in batch], [T0_MS] * n, [str(q.symbol) for q in batch],
                                        [str(q.bid_px) for q in batch], [str(q.ask_px) for q in batch],
                                        [str(q.last_px) for q in batch]]
            tick_id += n
            conn.execute(_RAW_INSERT, columns)  # one statement: its own atomic, durable transaction

    return replay


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _fill_commits_ms(files: _Files, settings: Settings, progress: ProgressFn) -> list[float]:
    stream = kernel_event_stream(settings.seed, settings.trades)
    log = files.audit_log()
    kernel = fresh_kernel()
    log.checkpoint(snapshot(kernel), "start")
    log.commit()
    latencies: list[float] = []
    total = len(stream.events)
    for i, event in enumerate(stream.events):
        before = kernel.slot.state
        result = kernel.handle(event)
        log.kernel_input(event, result, before, T0_MS, trade_seq=kernel.slot.model.trade_seq)
        if isinstance(event, OrderFilled):
            start_ns = time.perf_counter_ns()
            log.commit()
            latencies.append((time.perf_counter_ns() - start_ns) / 1e6)
        if i % 500 == 0:
            progress("fill commits", i, total)
    log.commit()
    return latencies


def _raw_commits_ms(files: _Files) -> list[float]:
    conn = files.raw()
    latencies = []
    for i in range(RAW_COMMITS):
        start_ns = time.perf_counter_ns()
        conn.execute("INSERT INTO ticks (tick_id, run_id, local_ts_ms, symbol) VALUES (?, 1, 0, 'FET-USDT')", [i])
        latencies.append((time.perf_counter_ns() - start_ns) / 1e6)
    return latencies


def run(settings: Settings, progress: ProgressFn) -> Figures:
    logging.getLogger("pink_fsm.kernel").disabled = True
    quotes = quote_stream(settings.trades * TICKS_PER_TRADE)
    batches = _batches(quotes)
    with tempfile.TemporaryDirectory(prefix="pink-bench-audit-") as tmp:
        files = _Files(Path(tmp))
        try:
            samples = interleaved_ns((Variant("audit", lambda: _audit_variant(files, batches)),
                                      Variant("raw", lambda: _raw_variant(files, batches))),
                                     settings.repeats, progress)
            fills = _fill_commits_ms(files, settings, progress)
            raw_commits = _raw_commits_ms(files)
        finally:
            files.close()
            logging.getLogger("pink_fsm.kernel").disabled = False
    audit_rows_s = len(quotes) / (statistics.median(samples["audit"]) / 1e9)
    raw_rows_s = len(quotes) / (statistics.median(samples["raw"]) / 1e9)
    return {
        "ticks": len(quotes),
        "tick_batch": TICK_BATCH,
        "repeats": settings.repeats,
        "append_rows_per_s": round(audit_rows_s, 1),
        "raw_rows_per_s": round(raw_rows_s, 1),
        "append_ratio": round(audit_rows_s / raw_rows_s, 4),
        "raw_per_audit_ratio": round(raw_rows_s / audit_rows_s, 4),
        "fill_commits": len(fills),
        "fill_commit_p50_ms": round(_percentile(fills, 0.5), 3),
        "fill_commit_p99_ms": round(_percentile(fills, 0.99), 3),
        "fill_commit_max_ms": round(max(fills), 3),
        "raw_commit_p50_ms": round(_percentile(raw_commits, 0.5), 3),
        "raw_commit_p99_ms": round(_percentile(raw_commits, 0.99), 3),
    }


FIGURE_DOCS: Final = {
    "ticks": "quotes appended per replay",
    "tick_batch": "quotes per group commit",
    "repeats": "timed rounds per variant",
    "append_rows_per_s": "AuditLog.tick_batch + commit: quotes/s (median round)",
    "raw_rows_per_s": "raw DuckDB INSERT ... SELECT unnest(...) per batch, same quotes: rows/s (median round)",
    "append_ratio": "ours / raw rows/s (target >= 0.5)",
    "raw_per_audit_ratio": "raw / ours rows/s: the runner's form of append_ratio >= 0.5 (<= 2)",
    "fill_commits": "commits timed (one after each fill of the recorded kernel session)",
    "fill_commit_p50_ms": "commit() after a fill, inputs batched since the previous fill: median ms",
    "fill_commit_p99_ms": "the same, 99th percentile (target <= 5 ms)",
    "fill_commit_max_ms": "the same, slowest",
    "raw_commit_p50_ms": "raw one-row insert + commit on the same disk: median ms (the fsync floor)",
    "raw_commit_p99_ms": "the same, 99th percentile",
}

AREA: Final = Area(
    name="audit",
    doc="audit log appends and fill commits vs raw DuckDB on the same disk",
    run=run,
    figure_docs=FIGURE_DOCS,
    targets=(
        Target("raw_per_audit_ratio", round(1 / APPEND_RATIO_TARGET, 2),
               "batched appends reach at least 50 % of raw DuckDB's rows/s (append_ratio >= 0.5)"),
        Target("fill_commit_p99_ms", FILL_COMMIT_P99_TARGET_MS, "a fill is durable within 5 ms (p99)"),
    ),
)
