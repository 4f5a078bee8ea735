"""The `pink` command line: `pink run`, `pink status`, `pink bench` (and `pink audit`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pink_fsm.audit.cli import audit_app
from pink_fsm.bench.runner import DEFAULT, QUICK, AreaProgressFn, area_names, load_area, run_bench
from pink_fsm.runtime.cli import run_command, status_command

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="pink: the PINK trading runtime (formally specified state machines).")


@app.callback()
def _pink() -> None:
    """pink: the PINK trading runtime (formally specified state machines)."""


@contextmanager
def _progress(console: Console) -> Iterator[AreaProgressFn]:
    """A progress bar per area on stderr, gone when the run ends."""
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress:

        def update(area: str, what: str, done: int, total: int) -> None:
            if area not in tasks:
                tasks[area] = progress.add_task(area, total=total)
            progress.update(tasks[area], description=f"{area}: {what}", completed=done, total=total)

        yield update


def _figure_doc(docs: Mapping[str, str], key: str) -> str:
    if key in docs:
        return docs[key]
    if key.endswith("_min") and key[: -len("_min")] in docs:
        return "minimum over the rounds"
    return ""


def _format(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _area_table(name: str, figures: Mapping[str, Any]) -> Table:
    area = load_area(name)
    table = Table(title=f"{name}: {area.doc}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for key, value in figures.items():
        table.add_row(key, _format(value), _figure_doc(area.figure_docs, key))
    return table


def _render(report: Mapping[str, Any], console: Console) -> None:
    meta = report["meta"]
    for name, figures in report.items():
        if name != "meta":
            console.print(_area_table(name, figures))
    for key, target in meta["targets"].items():
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        console.print(f"target {key} <= {target['max']:.2f}: {_format(target['value'])} {verdict} ({target['doc']})")
    console.print(f"{meta['mode']} run, {meta['repeats']} rounds; python {meta['python']} "
                  f"({meta['python_implementation']}), transitions {meta['transitions']}, {meta['platform']}")


def _check_areas(names: list[str]) -> None:
    unknown = [name for name in names if name not in area_names()]
    if unknown:
        raise typer.BadParameter(f"unknown area {', '.join(map(repr, unknown))}; areas: {', '.join(area_names())}",
                                 param_hint="'--area'")


@app.command()
def bench(
    json_only: Annotated[bool, typer.Option(
        "--json", help="Print only the JSON object (area -> figure -> value, plus 'meta') on stdout.")] = False,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Small workload and 3 rounds: a few seconds, for smoke tests; figures are noisy.")] = False,
    area: Annotated[list[str] | None, typer.Option(
        "--area", metavar="NAME", help=f"Measure only this area (repeatable). Areas: {', '.join(area_names())}.",
    )] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", dir_okay=False, help="Also write the JSON object to FILE.")] = None,
) -> None:
    """Measure the runtime's cost per area: a table of figures and targets, or JSON with --json.

    Progress goes to stderr; the default run of all areas takes about a minute and a half (the checker area
    verifies the default profile). Unmet targets do not fail the command.
    """
    names = area or []
    _check_areas(names)
    try:
        with _progress(Console(stderr=True)) as progress:
            report = run_bench(names, QUICK if quick else DEFAULT, progress)
    except RuntimeError as exc:  # an area that cannot run here says why
        Console(stderr=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    text = json.dumps(report, indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    if json_only:
        typer.echo(text)
    else:
        _render(report, Console())


app.command("run")(run_command)
app.command("status")(status_command)
app.add_typer(audit_app, name="audit")


def main() -> None:
    app(prog_name="pink")
