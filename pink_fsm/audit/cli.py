"""`pink audit ...`: verify the chain, list trades / orders / fills / events, rebuild, export, read-only SQL.

`audit_app` is a typer app; pink_fsm/cli.py mounts it as `pink audit`. Every command takes `--audit PATH`
(default: $PINK_AUDIT, else run/audit.duckdb) and reads the file read-only, or the running runtime's read copy
(a note on stderr says so). Exit codes: 0 ok, 1 a failed verify or rebuild, 2 an error (message on stderr).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from pink_fsm.audit.codec import encode_value
from pink_fsm.audit.errors import AuditError
from pink_fsm.audit.reader import AuditReader, Query, parse_since
from pink_fsm.audit.rebuild import rebuild as rebuild_run

__all__ = ["DEFAULT_AUDIT_PATH", "audit_app"]

DEFAULT_AUDIT_PATH: Final = Path("run") / "audit.duckdb"
DEFAULT_LIMIT: Final = 100
MAX_CELL_CHARS: Final = 80

audit_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="The audit log: verify, list, rebuild, export, query (read-only).")

AuditPath = Annotated[Path, typer.Option("--audit", envvar="PINK_AUDIT", metavar="PATH", dir_okay=False,
                                         help="The account's audit file.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]
TradeOpt = Annotated[int | None, typer.Option("--trade", metavar="ID", help="Only this trade (trade_seq).")]
SinceOpt = Annotated[str | None, typer.Option("--since", metavar="WHEN",
                                              help="Local time from: epoch ms, ISO date/time (UTC), or 30m/2h/7d.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, help="At most this many rows (the newest).")]
RunOpt = Annotated[int | None, typer.Option("--run", metavar="N", help="Only this run (run_id).")]
T = TypeVar("T")


def _err() -> Console:
    return Console(stderr=True)


@contextmanager
def _reader(path: Path) -> Iterator[AuditReader]:
    try:
        reader = AuditReader.open(path)
    except AuditError as exc:
        _err().print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if reader.note:
        _err().print(f"note: {reader.note}", markup=False)
    try:
        yield reader
    finally:
        reader.close()


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except AuditError as exc:
        _err().print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _show(result: Query, title: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([encode_value(row) for row in result.dicts()], indent=1))
        return
    table = Table(title=f"{title} ({len(result.rows)} rows)", title_justify="left")
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    Console().print(table)


def _list(name: str, path: Path, as_json: bool, trade: int | None, since: str | None, limit: int,
          run: int | None, kind: str | None = None) -> None:
    with _reader(path) as reader:
        since_ms = _run(lambda: parse_since(since, time.time_ns() // 1_000_000)) if since else None
        result = _run(lambda: reader.rows(name, trade_seq=trade, since_ms=since_ms, kind=kind, run_id=run,
                                          limit=limit))
        _show(result, name, as_json)


@audit_app.command()
def trades(audit: AuditPath = DEFAULT_AUDIT_PATH, as_json: JsonFlag = False, trade: TradeOpt = None,
           since: SinceOpt = None, limit: LimitOpt = DEFAULT_LIMIT, run: RunOpt = None) -> None:
    """Closed trades, one row per trade_seq (a later terminal record supersedes an earlier one)."""
    _list("trades", audit, as_json, trade, since, limit, run)


@audit_app.command()
def orders(audit: AuditPath = DEFAULT_AUDIT_PATH, as_json: JsonFlag = False, trade: TradeOpt = None,
           since: SinceOpt = None, limit: LimitOpt = DEFAULT_LIMIT, run: RunOpt = None) -> None:
    """Own orders placed by the kernel, with the venue id, status and filled qty the log shows."""
    _list("orders", audit, as_json, trade, since, limit, run)


@audit_app.command()
def fills(audit: AuditPath = DEFAULT_AUDIT_PATH, as_json: JsonFlag = False, trade: TradeOpt = None,
          since: SinceOpt = None, limit: LimitOpt = DEFAULT_LIMIT, run: RunOpt = None) -> None:
    """Execution reports (cumulative qty, quote, fee) and whether the kernel booked them."""
    _list("fills", audit, as_json, trade, since, limit, run)


@audit_app.command()
def events(audit: AuditPath = DEFAULT_AUDIT_PATH, as_json: JsonFlag = False, trade: TradeOpt = None,
           since: SinceOpt = None, limit: LimitOpt = DEFAULT_LIMIT, run: RunOpt = None,
           kind: Annotated[str | None, typer.Option(
               "--kind", help="input, command, sent, router, checkpoint, run_start or run_end.")] = None) -> None:
    """The hash-chained event log."""
    _list("events", audit, as_json, trade, since, limit, run, kind)


@audit_app.command()
def verify(audit: AuditPath = DEFAULT_AUDIT_PATH, as_json: JsonFlag = False) -> None:
    """Walk the hash chain: exit 0 when intact, 1 naming the first bad seq (edited, deleted or reordered)."""
    with _reader(audit) as reader:
        report = _run(reader.verify)
    if as_json:
        typer.echo(json.dumps(encode_value(report), indent=1))
    elif report.ok:
        Console().print(f"[green]chain intact[/green]: {report.rows} rows, head seq {report.head_seq} "
                        f"hash {report.head_hash}")
    else:
        Console().print(f"[red]chain broken at seq {report.first_bad_seq}[/red]: {report.reason} "
                        f"({report.rows} rows before it are intact)")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command()
def rebuild(audit: AuditPath = DEFAULT_AUDIT_PATH, as_json: JsonFlag = False, run: RunOpt = None) -> None:
    """Replay a run's kernel inputs from its previous checkpoint and compare with its final checkpoint."""
    with _reader(audit) as reader:
        report = _run(lambda: rebuild_run(reader, run))
    if as_json:
        typer.echo(json.dumps(encode_value(report), indent=1))
    elif report.equal:
        Console().print(f"[green]equal[/green]: run {report.run_id}, {report.replayed} inputs replayed from seq "
                        f"{report.from_seq} to seq {report.to_seq} ({report.skipped} refused inputs skipped)")
    else:
        console = Console()
        console.print(f"[red]differs[/red]: run {report.run_id}, seq {report.from_seq}..{report.to_seq}, "
                      f"{report.difference_count} difference(s)")
        if report.first_divergence:
            console.print(f"first divergence: {report.first_divergence}", markup=False)
        for line in report.differences:
            console.print(f"  {line}", markup=False)
    if not report.equal:
        raise typer.Exit(1)


@audit_app.command()
def export(audit: AuditPath = DEFAULT_AUDIT_PATH, parquet: Annotated[Path, typer.Option(
        "--parquet", metavar="DIR", file_okay=False, help="Write <table>.parquet files here.")] = Path("audit-export"),
           ) -> None:
    """Export every table and view to Parquet (for ClickHouse or any lakehouse)."""
    with _reader(audit) as reader:
        written = _run(lambda: reader.export_parquet(parquet))
    for path in written:
        typer.echo(str(path))


@audit_app.command()
def sql(query: Annotated[str, typer.Argument(help="One SELECT statement.")],
        audit: AuditPath = DEFAULT_AUDIT_PATH, as_json: JsonFlag = False) -> None:
    """Run one read-only SELECT on the log (tables events, ticks, runs, meta; views trades, orders, fills,
    inputs, commands, snapshots)."""
    with _reader(audit) as reader:
        result = _run(lambda: reader.sql(query))
    _show(result, "result", as_json)


@audit_app.command()
def status(audit: AuditPath = DEFAULT_AUDIT_PATH) -> None:
    """Where the log is, its head, its last run, and whether it is read through the read copy."""
    with _reader(audit) as reader:
        summary: dict[str, Any] = _run(reader.status)
    typer.echo(json.dumps(encode_value(summary), indent=1))
