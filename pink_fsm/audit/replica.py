"""The read copy: how `pink audit` and `pink status` read the log of a running runtime.

DuckDB lets one process open a file read-write and then refuses every other opener, read-only ones included.
So the writer exports what it has committed to `<audit>.read/` as Parquet (every `read_copy_interval_s`, when
the runtime calls `AuditLog.maybe_export()` after a loop turn, and on close), and a reader that finds the file
locked reads that copy instead, saying how old it is.

Layout: `events/part-<first seq>.parquet` and `ticks/part-<first tick id>.parquet` (append-only parts: each
export writes only the rows committed since the last one), `runs.parquet` and `meta.parquet` (small, rewritten),
and `manifest.json`, written last and atomically, listing the parts a reader must read. Parts are written under a
temporary name and renamed. When a table has more than MAX_PARTS parts they are compacted into one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Final

import duckdb

__all__ = ["MANIFEST", "MAX_PARTS", "ReadCopyWriter", "read_copy_dir", "read_manifest"]

MANIFEST: Final = "manifest.json"
MAX_PARTS: Final = 64
_APPEND_ONLY: Final = {"events": "seq", "ticks": "tick_id"}


def read_copy_dir(audit_path: Path) -> Path:
    return audit_path.with_name(audit_path.name + ".read")


def read_manifest(audit_path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((read_copy_dir(audit_path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy(conn: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    conn.execute(f"COPY ({query}) TO {_sql_path(tmp)} (FORMAT parquet)")
    os.replace(tmp, target)


class ReadCopyWriter:
    """Exports committed rows of the writer's connection; one instance per open AuditLog."""

    def __init__(self, audit_path: Path) -> None:
        self.root = read_copy_dir(audit_path)
        self.exported: dict[str, int] = dict.fromkeys(_APPEND_ONLY, 0)
        self.parts: dict[str, list[str]] = {table: [] for table in _APPEND_ONLY}
        self.exports = 0
        self._stale: list[Path] = []

    def reset(self) -> None:
        """Start from nothing (at open): the next export writes every row once."""
        shutil.rmtree(self.root, ignore_errors=True)
        for table in _APPEND_ONLY:
            (self.root / table).mkdir(parents=True, exist_ok=True)

    def export(self, conn: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> None:
        self.remove_stale()
        for table, key in _APPEND_ONLY.items():
            self._export_new_rows(conn, table, key)
            if len(self.parts[table]) > MAX_PARTS:
                self._compact(conn, table, key)
        for table in ("runs", "meta"):
            _copy(conn, f"SELECT * FROM {table}", self.root / f"{table}.parquet")
        manifest = dict(manifest, parts=self.parts, exported_rows=self.exported)
        tmp = self.root / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.replace(tmp, self.root / MANIFEST)
        self.exports += 1

    def _export_new_rows(self, conn: duckdb.DuckDBPyConnection, table: str, key: str) -> None:
        row = conn.execute(f"SELECT max({key}) FROM {table}").fetchone()
        last = int(row[0]) if row and row[0] is not None else 0
        first = self.exported[table] + 1
        if last < first:
            return
        name = f"{table}/part-{first:015d}.parquet"
        _copy(conn, f"SELECT * FROM {table} WHERE {key} BETWEEN {first} AND {last} ORDER BY {key}",
              self.root / name)
        self.parts[table].append(name)
        self.exported[table] = last

    def _compact(self, conn: duckdb.DuckDBPyConnection, table: str, key: str) -> None:
        last = self.exported[table]
        name = f"{table}/base-{last:015d}.parquet"
        _copy(conn, f"SELECT * FROM {table} WHERE {key} <= {last} ORDER BY {key}", self.root / name)
        old, self.parts[table] = self.parts[table], [name]
        # Old parts go after the new manifest is written (next export): a reader of the old manifest may still
        # be reading them now.
        self._stale = [self.root / part for part in old]

    def remove_stale(self) -> None:
        for path in self._stale:
            path.unlink(missing_ok=True)
        self._stale = []
