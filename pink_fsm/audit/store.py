"""`AuditLog`: the runtime's writer of the audit file (one per account, one writer per file).

The runtime appends rows as things happen and calls `commit()` once per loop turn, BEFORE it sends the commands
that turn produced (docs/audit.md, "Durability contract"):

    log = AuditLog.open(path, run_info)                 # AuditInUse / AuditCorrupt / AuditError
    log.checkpoint(persistence.snapshot(kernel), "start")
    result = kernel.handle(event)
    log.kernel_input(event, result, state_before, now_ms, trade_seq=kernel.slot.model.trade_seq)
    log.commit()                                        # durable on return, or AuditWriteError
    ... send result.commands, log.command(cmd, ...) for each ...
    log.close()                                         # checkpoint first: log.checkpoint(snapshot, "end")

A failed commit keeps every pending row in memory (their seq and hashes are already fixed) and marks the log
unhealthy; the next `commit()` retries them, first finding out which of them the failed attempt did make durable.
While `healthy` is False the runtime must send nothing new (D12).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import duckdb

from pink_fsm.audit import schema
from pink_fsm.audit.chain import CHAIN_COLUMNS, GENESIS_HASH, row_hash
from pink_fsm.audit.codec import (
    CodecError,
    canonical_json,
    encode_command,
    encode_contracts,
    encode_event,
    encode_kernel_config,
    encode_value,
)
from pink_fsm.audit.errors import AuditCorrupt, AuditError, AuditInUse, AuditWriteError
from pink_fsm.audit.lock import AuditLock
from pink_fsm.audit.replica import ReadCopyWriter, read_copy_dir, read_manifest
from pink_fsm.audit.runinfo import RunInfo, redact
from pink_fsm.fsm.machine import Step
from pink_fsm.kernel.events import Command, KernelEvent, KernelResult, OrderRef, RecordTrade
from pink_fsm.ports import Quote

__all__ = [
    "MAX_PENDING_EVENTS",
    "MAX_PENDING_TICKS",
    "READ_COPY_INTERVAL_S",
    "AuditLog",
    "CommitResult",
    "wall_ms",
]

LOG = logging.getLogger("pink_fsm.audit")

MAX_PENDING_EVENTS: Final = 200_000  # chained rows held while the file is unwritable; beyond it appends raise
MAX_FRAME_TEXT: Final = 2_000  # a refused frame is kept as text up to this many characters
MAX_PENDING_TICKS: Final = 200_000  # ticks held; beyond it the oldest are dropped (counted): replay needs none
READ_COPY_INTERVAL_S: Final = 10.0
MAX_VENUE_IDS: Final = 10_000  # venue id -> client id learned from frames, to name orders of echo-less frames
OPEN_LOCK_RETRY_S: Final = 2.0  # a reader may hold DuckDB's lock for a moment: the writer waits this long
EVENT_COLUMNS: Final = (*CHAIN_COLUMNS, "prev_hash", "hash")
TICK_COLUMNS: Final = ("tick_id", "run_id", "venue_ts_ms", "local_ts_ms", "symbol", "bid_px", "ask_px", "last_px")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    unnests = ", ".join(f"unnest(${i + 1})" for i in range(len(columns)))
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {unnests}"


_INSERT_EVENTS: Final = _insert_sql("events", EVENT_COLUMNS)
_INSERT_TICKS: Final = _insert_sql("ticks", TICK_COLUMNS)


@attrs.frozen
class CommitResult:
    """What one group commit made durable. `trades_recorded`: trade_seqs of RecordTrade rows in it (the
    runtime feeds `TradeWritten(ts, trade_seq)` to the kernel for each, D12)."""

    events: int
    ticks: int
    head_seq: int
    trades_recorded: tuple[int, ...] = ()
    duration_ms: float = 0.0


def _connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """DuckDB's connection, waiting up to OPEN_LOCK_RETRY_S while another process (a reader) holds its lock."""
    deadline = time.monotonic() + OPEN_LOCK_RETRY_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise AuditCorrupt(f"audit file {path} cannot be opened: {exc}. It is damaged or not a DuckDB "
                                   f"file: move it aside and restore a copy; the runtime will not trade on it, "
                                   f"nor start a new log in its place") from None
            if time.monotonic() >= deadline:
                raise AuditInUse(f"audit file {path} is held by another process: {exc}", None) from None
            time.sleep(0.05)
        except duckdb.Error as exc:
            raise AuditCorrupt(f"audit file {path} cannot be opened: {exc}") from None


def _check_traces(path: Path, create: bool) -> bool:
    """True when the file exists; refuses a missing file whose traces say a log was there (never a silent new
    log) and a new file when `create` is False."""
    if path.exists():
        if path.stat().st_size == 0:
            raise AuditCorrupt(f"audit file {path} is empty (0 bytes): a truncated log? Move it aside and restore "
                               f"a copy; the runtime will not start a new log in its place")
        return True
    wal = path.with_name(path.name + ".wal")
    if wal.exists() or read_manifest(path) is not None:
        found = wal if wal.exists() else read_copy_dir(path)
        raise AuditCorrupt(f"audit file {path} is missing but {found} exists: the log was moved or deleted. "
                           f"Restore it (or move {found} aside to start a new log on purpose)")
    if not create:
        raise AuditError(f"no audit file at {path}; pass create=True to start a new log")
    return False


class AuditLog:
    """The writer. Build it with `AuditLog.open`; every append returns the row's seq (0 for ticks)."""

    def __init__(self, path: Path, conn: duckdb.DuckDBPyConnection, lock: AuditLock, run_id: int,
                 head: tuple[int, str], clock_ms: Callable[[], int], read_copy_interval_s: float) -> None:
        self.path = path
        self.run_id = run_id
        self.healthy = True
        self.failed_commits = 0
        self.last_error = ""
        self.ticks_dropped = 0
        self.read_copy_failures = 0
        self.closed = False
        self._conn = conn
        self._lock = lock
        self._clock_ms = clock_ms
        self._durable_seq, self._durable_hash = head
        self._seq, self._hash = head
        self._next_tick_id = 1
        self._pending: list[tuple[Any, ...]] = []
        self._pending_trades: list[tuple[int, int]] = []  # (seq, trade_seq) of pending RecordTrade rows
        self._pending_ticks: collections.deque[tuple[Any, ...]] = collections.deque()
        self._pending_run_end: tuple[int, str] | None = None
        self._needs_recovery = False
        self._venue_to_client: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._read_copy = ReadCopyWriter(path)
        self._read_copy_interval_s = read_copy_interval_s
        self._last_export_s = 0.0
        self.last_commit_local_ms = 0

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, path: Path, run: RunInfo, *, create: bool = True, clock_ms: Callable[[], int] = wall_ms,
             read_copy_interval_s: float = READ_COPY_INTERVAL_S) -> AuditLog:
        """Open (creating or migrating) the account's audit file and start a run in it.

        Raises AuditInUse (another writer: its PID), AuditCorrupt (damaged, truncated, foreign, a broken chain
        tail, or a missing file whose traces remain) or AuditError (a file of a newer schema)."""
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = AuditLock.acquire(path)
        try:
            existed = _check_traces(path, create)
            conn = _connect(path)
            try:
                head = _prepare(conn, path, existed, clock_ms())
                run_id = _next_run_id(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            lock.release()
            raise
        log = cls(path, conn, lock, run_id, head, clock_ms, read_copy_interval_s)
        log._start_run(run)
        log.maybe_export(force=True)
        return log

    def _start_run(self, run: RunInfo) -> None:
        now = self._clock_ms()
        fields = {
            "config": canonical_json(redact(run.config)),
            "versions": canonical_json(dict(run.versions)),
            "spec_hashes": canonical_json(dict(run.spec_hashes)),
            "contracts": canonical_json(encode_contracts(run.contracts)),
            "kernel_config": canonical_json(encode_kernel_config(run.kernel_config)),
        }
        self._conn.execute(
            "INSERT INTO runs (run_id, started_local_ms, pid, host, seed, seed_capital_usdt, config, versions, "
            "spec_hashes, contracts, kernel_config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.run_id, now, os.getpid(), socket.gethostname(), run.seed, str(run.seed_capital_usdt),
             fields["config"], fields["versions"], fields["spec_hashes"], fields["contracts"],
             fields["kernel_config"]])
        payload = {"run_id": self.run_id, "seed": run.seed, "seed_capital_usdt": str(run.seed_capital_usdt),
                   **fields}
        self._append(now, "run_start", "runtime", "", "run_start", "", payload)
        self.commit()

    def close(self, reason: str = "end") -> None:
        """End the run: a `run_end` row, a last commit, a last read-copy export, then the file and lock are
        released. Raises AuditWriteError (rows stay unwritten: the caller reports them) when the last commit
        fails; the lock is released in any case."""
        if self.closed:
            return
        try:
            now = self._clock_ms()
            self._append(now, "run_end", "runtime", "", "run_end", "", {"reason": reason})
            self._pending_run_end = (now, reason)
            self.commit()
            self.maybe_export(force=True)
        finally:
            self.closed = True
            try:
                self._conn.close()
            finally:
                self._lock.release()

    # ------------------------------------------------------------------ appends

    def kernel_input(self, event: KernelEvent, result: KernelResult, machine_from: str, local_ts_ms: int, *,
                     trade_seq: int | None = None) -> int:
        """One kernel input with the slot state before it and the KernelResult after it, then one `command` row
        per command the kernel returned (these are the decisions: they are durable before anything is sent).
        `trade_seq` is the slot's trade_seq after the event. Returns the input row's seq."""
        client_id, venue_id = self._order_ids(getattr(event, "ref", None))
        try:
            encoded = encode_event(event)
        except CodecError:
            encoded = {"type": type(event).__name__, **encode_value(attrs.asdict(event, recurse=False))} \
                if attrs.has(type(event)) else {"type": type(event).__name__, "$repr": repr(event)[:200]}
        payload = {"event": encoded, "diagnostics": [[d.code, d.detail] for d in result.diagnostics]}
        ts = getattr(event, "ts_ms", None)
        seq = self._append(local_ts_ms, "input", "slot", machine_from, type(event).__name__, result.state, payload,
                           venue_ts_ms=ts if isinstance(ts, int) and not isinstance(ts, bool) else None,
                           transition_id=result.transition_id, outcome=result.outcome, trade_seq=trade_seq,
                           client_id=client_id, venue_id=venue_id)
        for command in result.commands:
            self._command_row(command, local_ts_ms, "command", result.state, trade_seq, None, "DECIDED", "")
        return seq

    def command(self, cmd: Command, local_ts_ms: int | None = None, *, venue_id: str | None = None,
                outcome: str = "SENT", detail: str = "", trade_seq: int | None = None) -> int:
        """A command the runtime sent (kind `sent`), with the venue's synchronous answer: `outcome` SENT,
        ACCEPTED, REJECTED, ... and the venue order id when the venue gave one."""
        now = self._clock_ms() if local_ts_ms is None else local_ts_ms
        return self._command_row(cmd, now, "sent", "", trade_seq, venue_id, outcome, detail)

    def router(self, step: Step, local_ts_ms: int, *, client_id: str | None, trade_seq: int | None = None,
               params: Mapping[str, Any] | None = None, venue_ts_ms: int | None = None) -> int:
        """One step of a router machine (one machine per working order, named by its client order id)."""
        payload = {"params": encode_value(dict(params or {})),
                   "emitted": [[name, encode_value(dict(args))] for name, args in step.emitted]}
        return self._append(local_ts_ms, "router", "router", step.source, step.event, step.dest, payload,
                            venue_ts_ms=venue_ts_ms, transition_id=step.transition_id, outcome=step.outcome,
                            trade_seq=trade_seq, client_id=client_id)

    def bad_frame(self, frame: object, reason: str, local_ts_ms: int | None = None) -> int:
        """A venue frame the normaliser refused (kind `diagnostic`, event `BAD_FRAME`): kept as text, cut to
        `MAX_FRAME_TEXT` characters, with the reason, so an operator can see what the venue sent."""
        now = self._clock_ms() if local_ts_ms is None else local_ts_ms
        text = repr(frame)
        if len(text) > MAX_FRAME_TEXT:
            text = text[:MAX_FRAME_TEXT] + f"... ({len(text)} characters)"
        return self._append(now, "diagnostic", "kernel", "", "BAD_FRAME", "", {"frame": text, "reason": reason},
                            outcome="BAD_FRAME")

    def checkpoint(self, kernel_snapshot: Mapping[str, Any], reason: str, local_ts_ms: int | None = None) -> int:
        """A kernel snapshot (`persistence.snapshot(kernel)`): at run start after recovery, after any reconcile
        (`reason="reconcile"`), and at run end (`reason="end"`, before `close`). A rebuild replays the inputs
        between two checkpoints."""
        slot = kernel_snapshot.get("slot", {})
        trade_seq = slot.get("vars", {}).get("trade_seq") if isinstance(slot, Mapping) else None
        now = self._clock_ms() if local_ts_ms is None else local_ts_ms
        return self._append(now, "checkpoint", "kernel", "", "checkpoint", str(slot.get("state", "")),
                            {"reason": reason, "snapshot": dict(kernel_snapshot)},
                            trade_seq=trade_seq if isinstance(trade_seq, int) else None)

    def tick_batch(self, quotes: Sequence[Quote], local_ts_ms: int | None = None) -> int:
        """Market quotes, batched with the next commit (outside the hash chain). Returns how many were taken."""
        now = self._clock_ms() if local_ts_ms is None else local_ts_ms
        pending = self._pending_ticks
        tick_id = self._next_tick_id
        for q in quotes:
            pending.append((tick_id, self.run_id, q.ts_ms, now, str(q.symbol), str(q.bid_px), str(q.ask_px),
                            str(q.last_px)))
            tick_id += 1
        self._next_tick_id = tick_id
        overflow = len(pending) - MAX_PENDING_TICKS
        if overflow > 0:
            for _ in range(overflow):
                pending.popleft()
            self.ticks_dropped += overflow
            LOG.warning("audit_ticks_dropped", extra={"dropped": overflow, "total": self.ticks_dropped})
        return len(quotes)

    def _command_row(self, cmd: Command, local_ts_ms: int, kind: str, state: str, trade_seq: int | None,
                     venue_id: str | None, outcome: str, detail: str) -> int:
        client = getattr(cmd, "client_id", None)
        client_id = client.value if client is not None else None
        if client_id and venue_id:
            self._learn(venue_id, client_id)
        own_seq = getattr(cmd, "trade_seq", None)
        payload: dict[str, Any] = {"command": encode_command(cmd)}
        if detail:
            payload["detail"] = detail
        seq = self._append(local_ts_ms, kind, "kernel", state, type(cmd).__name__, state, payload,
                           outcome=outcome, trade_seq=own_seq if isinstance(own_seq, int) else trade_seq,
                           client_id=client_id, venue_id=venue_id)
        if isinstance(cmd, RecordTrade) and kind == "command":
            self._pending_trades.append((seq, cmd.trade_seq))
        return seq

    def _order_ids(self, ref: object) -> tuple[str | None, str | None]:
        if not isinstance(ref, OrderRef):
            return None, None
        client = ref.client_id.value if ref.client_id is not None else None
        venue = ref.venue_id.value if ref.venue_id is not None else None
        if client and venue:
            self._learn(venue, client)
        elif venue and not client:
            client = self._venue_to_client.get(venue)
        return client, venue

    def _learn(self, venue_id: str, client_id: str) -> None:
        self._venue_to_client[venue_id] = client_id
        if len(self._venue_to_client) > MAX_VENUE_IDS:
            self._venue_to_client.popitem(last=False)

    def _append(self, local_ts_ms: int, kind: str, machine: str, from_state: str, event: str, to_state: str,
                payload: Mapping[str, Any], *, venue_ts_ms: int | None = None, transition_id: int | None = None,
                outcome: str | None = None, trade_seq: int | None = None, client_id: str | None = None,
                venue_id: str | None = None) -> int:
        if self.closed:
            raise AuditError(f"audit log {self.path} is closed; nothing more can be recorded in it")
        if len(self._pending) >= MAX_PENDING_EVENTS:
            raise AuditError(f"audit log {self.path}: {len(self._pending)} rows wait for a commit that keeps "
                             f"failing ({self.last_error}); stop the runtime and fix the disk")
        seq = self._seq + 1
        row = (seq, self.run_id, venue_ts_ms, local_ts_ms, kind, machine, from_state or None, event,
               to_state or None, transition_id, outcome, trade_seq, client_id, venue_id, canonical_json(payload))
        digest = row_hash(self._hash, dict(zip(CHAIN_COLUMNS, row, strict=True)))
        self._pending.append((*row, self._hash, digest))
        self._seq, self._hash = seq, digest
        return seq

    # ------------------------------------------------------------------ commit

    @property
    def pending(self) -> int:
        """Chained rows appended but not yet durable."""
        return len(self._pending)

    def commit(self) -> CommitResult:
        """Make every pending row durable in one transaction (group commit); durable on return.

        Raises AuditWriteError on failure: the rows stay pending, `healthy` is False, `failed_commits` counts it,
        and the next call retries them."""
        start_ns = time.perf_counter_ns()
        if self._needs_recovery:
            self._recover()
        events, ticks = self._pending, list(self._pending_ticks)
        if not events and not ticks and self._pending_run_end is None:
            return CommitResult(0, 0, self._durable_seq)
        conn = self._conn
        # One statement commits on its own (DuckDB autocommit is atomic): a fill's commit is one round trip.
        single = (bool(events) + bool(ticks) + (self._pending_run_end is not None)) == 1
        try:
            if not single:
                conn.execute("BEGIN TRANSACTION")
            if events:
                self._insert_events(events)
            if ticks:
                self._insert_ticks(ticks)
            if self._pending_run_end is not None:
                conn.execute("UPDATE runs SET ended_local_ms = ?, end_reason = ? WHERE run_id = ?",
                             [*self._pending_run_end, self.run_id])
            if not single:
                conn.execute("COMMIT")
        except duckdb.Error as exc:
            self._failed(exc)
            raise AuditWriteError(f"audit commit to {self.path} failed ({exc}); {len(events)} rows and "
                                  f"{len(ticks)} ticks are kept and retried by the next commit") from exc
        return self._committed(events, len(ticks), start_ns)

    def _insert_events(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._conn.execute(_INSERT_EVENTS, [list(column) for column in zip(*rows, strict=True)])

    def _insert_ticks(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._conn.execute(_INSERT_TICKS, [list(column) for column in zip(*rows, strict=True)])

    def _committed(self, events: list[tuple[Any, ...]], ticks: int, start_ns: int) -> CommitResult:
        if events:
            self._durable_seq, self._durable_hash = events[-1][0], events[-1][-1]
        trades = tuple(trade_seq for seq, trade_seq in self._pending_trades if seq <= self._durable_seq)
        self._pending_trades = [(s, t) for s, t in self._pending_trades if s > self._durable_seq]
        self._pending = []
        self._pending_ticks.clear()
        self._pending_run_end = None
        self.last_commit_local_ms = self._clock_ms()
        if not self.healthy:
            LOG.warning("audit_writable_again", extra={"path": str(self.path), "failed_commits": self.failed_commits})
        self.healthy = True
        return CommitResult(len(events), ticks, self._durable_seq, trades,
                            (time.perf_counter_ns() - start_ns) / 1e6)

    def _failed(self, exc: BaseException) -> None:
        self.failed_commits += 1
        self.healthy = False
        self.last_error = str(exc)[:500]
        self._needs_recovery = True
        LOG.error("audit_commit_failed", extra={"path": str(self.path), "error": self.last_error,
                                                "failed_commits": self.failed_commits, "pending": self.pending})

    def _recover(self) -> None:
        """Before a retry: roll back, reconnect when DuckDB invalidated the connection, and drop the pending
        rows the failed attempt made durable after all (their hashes must match ours)."""
        with contextlib.suppress(duckdb.Error):  # nothing to roll back after a failed single statement
            self._conn.execute("ROLLBACK")
        try:
            durable = self._conn.execute("SELECT max(seq), max(hash) FILTER (WHERE seq = (SELECT max(seq) "
                                         "FROM events)) FROM events").fetchone()
        except duckdb.Error:
            try:
                self._conn.close()
                self._conn = duckdb.connect(str(self.path))
                durable = self._conn.execute("SELECT max(seq), max(hash) FILTER (WHERE seq = (SELECT max(seq) "
                                             "FROM events)) FROM events").fetchone()
            except duckdb.Error as exc:
                self._failed(exc)
                raise AuditWriteError(f"audit file {self.path} is still not writable ({exc}); "
                                      f"{self.pending} rows kept") from exc
        seq = int(durable[0]) if durable and durable[0] is not None else 0
        if seq > self._durable_seq:
            mine = {row[0]: row[-1] for row in self._pending}
            if mine.get(seq) != durable[1]:  # type: ignore[index]
                raise AuditCorrupt(f"audit file {self.path} holds seq {seq} that this writer did not write")
            self._pending = [row for row in self._pending if row[0] > seq]
            tick = self._conn.execute("SELECT max(tick_id) FROM ticks").fetchone()
            last_tick = int(tick[0]) if tick and tick[0] is not None else 0
            self._pending_ticks = collections.deque(t for t in self._pending_ticks if t[0] > last_tick)
            self._durable_seq, self._durable_hash = seq, str(durable[1])  # type: ignore[index]
        self._needs_recovery = False

    # ------------------------------------------------------------------ read copy, status

    def maybe_export(self, force: bool = False, now_s: float | None = None) -> bool:
        """Export the committed rows to the read copy when `read_copy_interval_s` has passed (or `force`).
        Call it after a loop turn's commands are sent, never between an append and its commit. A failure is
        logged and counted: it never stops trading (the audit file itself is intact)."""
        now = time.monotonic() if now_s is None else now_s
        if self.closed and not force:
            return False
        if not force and now - self._last_export_s < self._read_copy_interval_s:
            return False
        self._last_export_s = now
        try:
            if self._read_copy.exports == 0:
                self._read_copy.reset()
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('head_seq', ?), ('head_hash', ?)",
                               [str(self._durable_seq), self._durable_hash])
            self._read_copy.export(self._conn, {
                "exported_local_ms": self._clock_ms(), "head_seq": self._durable_seq,
                "head_hash": self._durable_hash, "writer_pid": os.getpid(), "run_id": self.run_id,
                "schema_version": schema.SCHEMA_VERSION, "interval_s": self._read_copy_interval_s})
        except (duckdb.Error, OSError) as exc:
            self.read_copy_failures += 1
            LOG.warning("audit_read_copy_failed", extra={"path": str(self.path), "error": str(exc)[:300]})
            return False
        return True

    def status(self) -> dict[str, Any]:
        """For `pink status`: health (D12), counters, the durable head and what waits."""
        return {
            "path": str(self.path), "run_id": self.run_id, "healthy": self.healthy,
            "failed_commits": self.failed_commits, "last_error": self.last_error,
            "pending_events": self.pending, "pending_ticks": len(self._pending_ticks),
            "ticks_dropped": self.ticks_dropped, "head_seq": self._durable_seq, "head_hash": self._durable_hash,
            "last_commit_local_ms": self.last_commit_local_ms, "read_copy_exports": self._read_copy.exports,
            "read_copy_failures": self.read_copy_failures,
        }

    def last_checkpoint(self) -> dict[str, Any] | None:
        """The newest durable kernel checkpoint of any run (to restore the kernel at start-up), or None."""
        row = self._conn.execute("SELECT payload FROM events WHERE kind = 'checkpoint' ORDER BY seq DESC "
                                 "LIMIT 1").fetchone()
        if row is None:
            return None
        snapshot: dict[str, Any] = json.loads(row[0])["snapshot"]
        return snapshot


def _prepare(conn: duckdb.DuckDBPyConnection, path: Path, existed: bool, now_ms: int) -> tuple[int, str]:
    """Create or migrate the schema and check the chain's tail; returns the durable head (seq, hash)."""
    try:
        if not existed:
            conn.execute("BEGIN TRANSACTION")
            schema.create_schema(conn, now_ms)
            schema.create_views(conn)
            conn.execute("COMMIT")
            return 0, GENESIS_HASH
        version = _schema_version(conn, path)
        if version > schema.SCHEMA_VERSION:
            raise AuditError(f"audit file {path} has schema version {version}, newer than this pink's "
                             f"{schema.SCHEMA_VERSION}: upgrade pink")
        conn.execute("BEGIN TRANSACTION")
        passed = schema.migrate(conn, version)
        schema.create_views(conn)
        conn.execute("COMMIT")
        if passed:
            LOG.warning("audit_schema_migrated", extra={"path": str(path), "from": version, "to": passed[-1]})
        return _check_tail(conn, path)
    except duckdb.Error as exc:
        raise AuditCorrupt(f"audit file {path} cannot be read ({exc}): damaged or truncated. Move it aside and "
                           f"restore a copy; the runtime will not trade on it") from None


def _schema_version(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    tables = {row[0] for row in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not {"meta", "events", "runs"} <= tables:
        raise AuditCorrupt(f"{path} is a DuckDB file but not a pink audit log (tables: {sorted(tables)}); "
                           f"give --audit another path")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or not str(row[0]).isdigit():
        raise AuditCorrupt(f"audit file {path} has no schema version in its meta table")
    return int(row[0])


def _check_tail(conn: duckdb.DuckDBPyConnection, path: Path) -> tuple[int, str]:
    row = conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if row is None:
        if int(meta.get("head_seq", 0)):
            raise AuditCorrupt(f"audit file {path} has no events but its head was seq {meta['head_seq']}: "
                               f"rows were lost. Restore a copy")
        return 0, GENESIS_HASH
    values = dict(zip(EVENT_COLUMNS, row, strict=True))
    if row_hash(values["prev_hash"], values) != values["hash"]:
        raise AuditCorrupt(f"audit file {path}: the last row (seq {values['seq']}) does not match its hash. "
                           f"Run `pink audit verify` to find the first bad row; the runtime will not append")
    if int(meta.get("head_seq", 0)) > int(values["seq"]):
        raise AuditCorrupt(f"audit file {path} ends at seq {values['seq']} but its head was recorded at seq "
                           f"{meta['head_seq']}: rows were lost (truncated). Restore a copy")
    return int(values["seq"]), str(values["hash"])


def _next_run_id(conn: duckdb.DuckDBPyConnection) -> int:
    row = conn.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchone()
    assert row is not None
    return int(row[0])


