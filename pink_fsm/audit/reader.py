"""Reading an audit log: the file itself when no writer holds it, else the writer's read copy (replica.py).

    with AuditReader.open(path) as reader:
        reader.note          # "" or why the read copy is used and how old it is
        reader.rows("trades", trade_seq=3)
        reader.verify()      # ChainReport: ok, or the first bad seq
        reader.sql("SELECT kind, count(*) FROM events GROUP BY kind")

Readers never write: the file is opened read-only, the read copy is Parquet behind an in-memory database, and
`sql` runs SELECT statements only.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import duckdb

from pink_fsm.audit import schema
from pink_fsm.audit.chain import CHAIN_COLUMNS, ChainReport, verify_rows
from pink_fsm.audit.errors import AuditCorrupt, AuditError, AuditInUse, AuditQueryRefused
from pink_fsm.audit.lock import lock_holder
from pink_fsm.audit.replica import read_copy_dir, read_manifest

__all__ = ["LISTS", "AuditReader", "Query", "parse_since"]

LISTS: Final = {"trades": "closed_local_ms", "orders": "placed_local_ms", "fills": "local_ts_ms",
                "events": "local_ts_ms"}
"""The listable views/tables and their time column (for --since)."""
ORDER_KEY: Final = {"trades": "trade_seq", "orders": "placed_seq", "fills": "seq", "events": "seq"}
_DURATION: Final = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_ms: int) -> int:
    """`--since`: epoch milliseconds, an ISO-8601 date/time (UTC unless it says), or an age like 30m, 2h, 7d."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if match:
        return now_ms - int(match.group(1)) * _UNIT_S[match.group(2)] * 1000
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AuditError(f"--since {text!r}: give epoch ms, an ISO date/time (2026-01-31T12:00) or an age "
                         f"(30m, 2h, 7d)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


@attrs.frozen
class Query:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class AuditReader:
    def __init__(self, path: Path, conn: duckdb.DuckDBPyConnection, source: str, note: str) -> None:
        self.path = path
        self.conn = conn
        self.source = source  # "file" | "read_copy"
        self.note = note

    @classmethod
    def open(cls, path: Path) -> AuditReader:
        """The file read-only; its read copy when a writer holds it; AuditError saying what to do otherwise."""
        path = Path(path).resolve()
        if not path.exists():
            if read_manifest(path) is not None:
                return cls._open_read_copy(path, f"{path} is missing; reading its read copy")
            raise AuditError(f"no audit log at {path} (pass --audit PATH)")
        try:
            conn = duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise AuditCorrupt(f"audit file {path} cannot be opened: {exc}") from None
            pid = lock_holder(path)
            holder = f"PID {pid}" if pid else "another process"
            if read_manifest(path) is None:
                raise AuditInUse(f"audit file {path} is in use by {holder} and has no read copy yet: wait for "
                                 f"the runtime's first export ({read_copy_dir(path)}) or stop it", pid) from None
            return cls._open_read_copy(path, f"{path} is in use by {holder} (the running runtime)")
        except duckdb.Error as exc:
            raise AuditCorrupt(f"audit file {path} cannot be opened: {exc}") from None
        try:
            tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if not {"events", "runs", "meta"} <= tables:
                raise AuditCorrupt(f"{path} is a DuckDB file but not a pink audit log")
            if "ticks" not in tables:  # a version-1 file nobody has migrated yet
                conn.execute("CREATE TEMP TABLE ticks (tick_id BIGINT)")
            _temp_views(conn)
        except duckdb.Error as exc:
            conn.close()
            raise AuditCorrupt(f"audit file {path} cannot be read: {exc}") from None
        return cls(path, conn, "file", "")

    @classmethod
    def _open_read_copy(cls, path: Path, why: str) -> AuditReader:
        manifest = read_manifest(path)
        assert manifest is not None
        root = read_copy_dir(path)
        conn = duckdb.connect(":memory:")
        try:
            for table in ("events", "ticks"):
                parts = [root / part for part in manifest["parts"].get(table, [])]
                if parts:
                    files = "[" + ", ".join(_sql_path(p) for p in parts) + "]"
                    conn.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files})")
                elif table == "ticks":
                    conn.execute("CREATE TABLE ticks (tick_id BIGINT, run_id BIGINT, local_ts_ms BIGINT)")
                else:
                    raise duckdb.InvalidInputException("the read copy lists no events yet")
            for table in ("runs", "meta"):
                source = _sql_path(root / f"{table}.parquet")
                conn.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({source})")
            schema.create_views(conn)
        except duckdb.Error as exc:
            conn.close()
            raise AuditError(f"the read copy {root} cannot be read ({exc}); try again in a moment") from None
        exported = dt.datetime.fromtimestamp(manifest["exported_local_ms"] / 1000, dt.UTC)
        note = (f"{why}: showing its read copy exported {exported:%Y-%m-%d %H:%M:%S} UTC, up to seq "
                f"{manifest['head_seq']}; newer rows appear at the next export (every {manifest['interval_s']} s)")
        return cls(path, conn, "read_copy", note)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> AuditReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ queries

    def query(self, sql: str, params: Sequence[Any] = ()) -> Query:
        cursor = self.conn.execute(sql, list(params))
        columns = tuple(d[0] for d in cursor.description or ())
        return Query(columns, tuple(cursor.fetchall()))

    def rows(self, name: str, *, trade_seq: int | None = None, since_ms: int | None = None,
             kind: str | None = None, run_id: int | None = None, limit: int | None = None) -> Query:
        """The rows of a list (`trades`, `orders`, `fills`, `events`), oldest first; `limit` keeps the newest."""
        if name not in LISTS:
            raise AuditError(f"unknown list {name!r}; lists: {', '.join(LISTS)}")
        where: list[str] = ["true"]
        params: list[object] = []
        if trade_seq is not None:
            where.append("trade_seq = ?")
            params.append(trade_seq)
        if since_ms is not None:
            where.append(f"{LISTS[name]} >= ?")
            params.append(since_ms)
        if kind is not None and name == "events":
            where.append("kind = ?")
            params.append(kind)
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        key = ORDER_KEY[name]
        sql = f"SELECT * FROM {name} WHERE {' AND '.join(where)} ORDER BY {key} DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        result = self.query(f"SELECT * FROM ({sql}) ORDER BY {key}", params)
        return result

    def verify(self) -> ChainReport:
        """Walk the whole chain; also checks the recorded head (a log cut after its head lost rows)."""
        cursor = self.conn.execute(f"SELECT {', '.join(CHAIN_COLUMNS)}, prev_hash, hash FROM events ORDER BY seq")
        report = verify_rows(_batches(cursor))
        if not report.ok:
            return report
        head = dict(self.conn.execute("SELECT key, value FROM meta WHERE key IN ('head_seq', 'head_hash')")
                    .fetchall())
        if int(head.get("head_seq", 0)) > report.head_seq:
            return attrs.evolve(report, ok=False, first_bad_seq=report.head_seq + 1,
                                reason=f"the log ends at seq {report.head_seq} but its head was recorded at seq "
                                       f"{head['head_seq']}: rows at the end were removed")
        return report

    def sql(self, text: str) -> Query:
        """Run one read-only SELECT (a WITH ... SELECT counts). Anything else raises AuditQueryRefused."""
        try:
            statements = duckdb.extract_statements(text)
        except duckdb.Error as exc:
            raise AuditQueryRefused(f"cannot parse the query: {exc}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            kinds = ", ".join(s.type.name for s in statements) or "nothing"
            raise AuditQueryRefused(f"audit sql runs one read-only SELECT; got {kinds}")
        try:
            return self.query(text)
        except duckdb.Error as exc:
            raise AuditQueryRefused(f"query failed: {exc}") from None

    def export_parquet(self, directory: Path) -> list[Path]:
        """Every table and view as `<name>.parquet` in `directory` (created)."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ("events", "ticks", "runs", "meta", *schema.VIEWS):
            target = directory / f"{name}.parquet"
            tmp = directory / f".{name}.parquet.tmp"
            self.conn.execute(f"COPY (SELECT * FROM {name}) TO {_sql_path(tmp)} (FORMAT parquet)")
            os.replace(tmp, target)
            written.append(target)
        return written

    def status(self) -> dict[str, Any]:
        """A summary for `pink status`: runs, head, and where the figures come from."""
        head = self.query("SELECT max(seq), count(*) FROM events").rows[0]
        run = self.query("SELECT run_id, started_local_ms, ended_local_ms, end_reason FROM runs ORDER BY run_id "
                         "DESC LIMIT 1").dicts()
        return {"path": str(self.path), "source": self.source, "note": self.note, "head_seq": head[0],
                "events": head[1], "last_run": run[0] if run else None}


def _temp_views(conn: duckdb.DuckDBPyConnection) -> None:
    """The derived views as temp views: a read-only connection gets the views of this code's version."""
    for name, body in schema.VIEWS.items():
        conn.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {body}")


def _batches(cursor: duckdb.DuckDBPyConnection, size: int = 10_000) -> Iterator[tuple[Any, ...]]:
    while True:
        chunk = cursor.fetchmany(size)
        if not chunk:
            return
        yield from chunk


@contextmanager
def opened(path: Path) -> Iterator[AuditReader]:
    reader = AuditReader.open(path)
    try:
        yield reader
    finally:
        reader.close()
