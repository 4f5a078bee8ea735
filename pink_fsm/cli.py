"""The `pink` command line: `pink run`, `pink status`, `pink audit`, `pink replay`, `pink bench`."""

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


@app.command()
def replay(
    trace: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A counterexample written by "
                                          "`pink-codegen verify --trace-out`.")],
    profile: Annotated[str | None, typer.Option(
        "--profile", help="The verify profile the trace was found with (default: the trace's own, else "
                          "'default').")] = None,
    spec: Annotated[Path | None, typer.Option(
        "--spec", help="Spec directory the trace was found on (default ./spec); the runtime side is always the "
                       "installed generated machines.")] = None,
    json_only: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Drive a model-checker counterexample through the real runtime kernel and show where they diverge.

    Every step of the trace is applied to the verified model and, translated into the kernel's own input
    events, to a real kernel; after each step the slot state and every slot variable are compared. Exit 0: the
    runtime did exactly what the model did; 1: it diverged (the first divergence is shown); 2: bad input.
    Today's model has no router: the replay drives the kernel (generated slot machine, identity routing, fee
    and account logic), not the exec router.
    """
    # The compiler is a build-time tool; this command alone needs it (imports point inward otherwise).
    from pink_codegen.build import find_project_root, load_named
    from pink_codegen.errors import SpecError
    from pink_codegen.verify.model import PROFILES, ComposedModel
    from pink_codegen.verify.runtime_replay import ReplayError, load_trace, replay_on_runtime

    err = Console(stderr=True, soft_wrap=True)
    try:
        data = json.loads(trace.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ReplayError("expected a JSON object")
        invariant, labels = load_trace(data)
        name = profile or str(data.get("profile") or "default")
        if name not in PROFILES:
            raise ReplayError(f"unknown profile {name!r}; profiles: {', '.join(PROFILES)}")
        root = find_project_root()
        spec_dir = spec or (root / "spec" if root else Path("spec"))
        slot = load_named(spec_dir, "slot")
        if slot is None:
            raise ReplayError(f"no slot machine in {spec_dir}")
        report = replay_on_runtime(ComposedModel(slot, PROFILES[name]), labels, invariant)
    except (OSError, ValueError, SpecError) as exc:  # ReplayError and JSON errors are ValueErrors
        err.print(f"error: {trace}: {exc}", markup=False)
        raise typer.Exit(2) from None
    first = report.first_divergence
    if json_only:
        typer.echo(json.dumps({
            "invariant": report.invariant, "profile": report.profile,
            "model_violations": list(report.model_violations),
            "first_divergence": first.n if first else None,
            "steps": [{"n": s.n, "action": s.action, "model_state": s.model_state, "model_outcome": s.model_outcome,
                       "runtime_state": s.runtime_state, "runtime_outcome": s.runtime_outcome,
                       "differences": list(s.differences)} for s in report.steps],
        }, indent=2))
    else:
        table = Table(title=f"replay of a {report.invariant or 'trace'} counterexample ({report.profile} profile) "
                            f"on the runtime kernel", title_justify="left")
        for column in ("#", "action", "model", "runtime", "differences"):
            table.add_column(column)
        for s in report.steps:
            style = "red" if s.diverged else ""
            table.add_row(str(s.n), s.action, f"{s.model_state} {s.model_outcome}".strip(),
                          f"{s.runtime_state} {s.runtime_outcome}".strip(), "; ".join(s.differences), style=style)
        console = Console()
        console.print(table)
        if report.model_violations:
            console.print(f"the model violates at the end: {', '.join(report.model_violations)}")
        console.print(f"first divergence at step {first.n}: {first.differences[0]}" if first
                      else "no divergence: the runtime kernel did exactly what the model did")
    if first is not None:
        raise typer.Exit(1)


app.command("run")(run_command)
app.command("status")(status_command)
app.add_typer(audit_app, name="audit")


def main() -> None:
    app(prog_name="pink")
