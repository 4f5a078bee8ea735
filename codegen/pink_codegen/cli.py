"""The `pink-codegen` command: validate specs, generate machines and docs, explain a spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pink_codegen import __version__
from pink_codegen.build import build, find_project_root, load_named, load_specs
from pink_codegen.errors import SpecError
from pink_codegen.explain import explain as explain_name
from pink_codegen.ir import Machine
from pink_codegen.loader import load_machine

app = typer.Typer(
    name="pink-codegen",
    help="Compile pink-fsm machine specs (spec/*.yaml) into transitions-based machines and docs.",
    no_args_is_help=True,
    add_completion=False,
)
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

SpecOpt = Annotated[Path | None, typer.Option("--spec", help="Directory of machine specs [default: ./spec of "
                                                             "the project around the current directory]")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Root to write pink_fsm/generated/ and docs/machines/ "
                                                           "under [default: the project root]")]


def _resolve(spec: Path | None, out: Path | None) -> tuple[Path, Path]:
    root = find_project_root()
    if spec is None:
        if root is None:
            err_console.print("error: no spec/ directory found here or above (and no pyproject.toml beside it); "
                              "run inside a pink-fsm checkout or pass --spec DIR --out DIR")
            raise typer.Exit(2)
        spec = root / "spec"
    if out is None:
        out = find_project_root(spec) or root or Path.cwd()
    return spec, out


def _report_spec_error(exc: SpecError) -> None:
    for p in exc.problems:
        err_console.print(p.render(), markup=False, highlight=False)
    err_console.print(f"{len(exc.problems)} problem(s); nothing was generated.", markup=False)


def _summary(machines: list[object]) -> Table:

    table = Table(title="compiled machines")
    for col in ("machine", "states", "events", "rows", "invariants", "vars", "spec sha256"):
        table.add_column(col, justify="right" if col not in ("machine", "spec sha256") else "left", no_wrap=True)
    for m in machines:
        assert isinstance(m, Machine)
        table.add_row(m.name, str(len(m.states)), str(len(m.events)), str(len(m.transitions)),
                      str(len(m.invariants)), str(len(m.variables)), m.sha256[:16])
    return table


@app.command("build")
def build_cmd(
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 naming every generated file that "
                                                        "is stale (differs from what the specs produce)")] = False,
    spec: SpecOpt = None,
    out: OutOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report instead of tables")] = False,
) -> None:
    """Validate every spec and write pink_fsm/generated/*.py and docs/machines/* (byte-identical on rebuild)."""
    spec_dir, out_dir = _resolve(spec, out)
    try:
        result = build(spec_dir, out_dir, check=check)
    except SpecError as exc:
        _report_spec_error(exc)
        raise typer.Exit(1) from None
    warnings = [w.render() for m in result.machines for w in m.warnings]
    if as_json:
        print(json.dumps({
            "machines": [{"name": m.name, "states": len(m.states), "events": len(m.events),
                          "transitions": len(m.transitions), "invariants": len(m.invariants),
                          "spec_sha256": m.sha256} for m in result.machines],
            "written": [p.as_posix() for p in result.written],
            "unchanged": [p.as_posix() for p in result.unchanged],
            "stale": [p.as_posix() for p in result.stale],
            "svg": [p.as_posix() for p in result.svgs],
            "warnings": warnings,
        }, indent=2))
    else:
        for w in warnings:
            err_console.print(w, markup=False, highlight=False)
        out_console.print(_summary(list(result.machines)))
        if check:
            if result.stale:
                for d in result.diffs:
                    err_console.print(d, markup=False, highlight=False)
            else:
                out_console.print(f"up to date: {len(result.unchanged)} generated files match the specs")
        else:
            out_console.print(f"wrote {len(result.written)} file(s), {len(result.unchanged)} unchanged"
                              + (f", {len(result.svgs)} SVG diagram(s)" if result.svgs else ""))
            if result.svg_note:
                out_console.print(result.svg_note, markup=False)
    if check and result.stale:
        err_console.print("stale generated files (run `pink-codegen build` and commit the result):", markup=False)
        for p in result.stale:
            err_console.print(f"  {p.as_posix()}", markup=False)
        raise typer.Exit(1)


@app.command("validate")
def validate_cmd(
    files: Annotated[list[Path], typer.Argument(help="Machine spec files to check", show_default=False)],
) -> None:
    """Check spec files and print every problem as file:line:col: context: message. Writes nothing."""
    failed = False
    for f in files:
        try:
            m = load_machine(f, str(f))
        except SpecError as exc:
            _report_spec_error(exc)
            failed = True
            continue
        for w in m.warnings:
            err_console.print(w.render(), markup=False, highlight=False)
        out_console.print(f"{f}: ok ({len(m.states)} states, {len(m.transitions)} transitions, "
                          f"{len(m.invariants)} invariants)", markup=False)
    if failed:
        raise typer.Exit(1)


@app.command("explain")
def explain_cmd(
    name: Annotated[str, typer.Argument(help="A state or event name, e.g. EXIT_WORKING or FILL")],
    machine: Annotated[str | None, typer.Option("--machine", "-m", help="Only this machine")] = None,
    spec: SpecOpt = None,
) -> None:
    """Print what can happen in a STATE (rows per event, in firing order) or what an EVENT does in each state."""
    spec_dir, _ = _resolve(spec, None)
    try:
        loaded = load_specs(spec_dir, find_project_root(spec_dir) or spec_dir)
    except SpecError as exc:
        _report_spec_error(exc)
        raise typer.Exit(1) from None
    machines = [m for m, _ in loaded if machine is None or m.name == machine]
    if not machines:
        err_console.print(f"error: no machine named {machine!r}; machines: {', '.join(m.name for m, _ in loaded)}")
        raise typer.Exit(2)
    try:
        out_console.print(explain_name(machines, name), markup=False, highlight=False)
    except ValueError as exc:
        err_console.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None


@app.command("verify")
def verify_cmd(
    profile: Annotated[str, typer.Option("--profile", help="Bounds: smoke (a second), default (about a minute), "
                                                          "deep (long)")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    trace_out: Annotated[Path | None, typer.Option("--trace-out", help="Write the counterexample (if any) as "
                                                                      "JSON to this file")] = None,
    max_states: Annotated[int, typer.Option("--max-states", min=1000, help="Stop (incomplete) after this many "
                                                                           "states")] = 2_000_000,
    emit_tests: Annotated[Path | None, typer.Option("--emit-tests", help="Write one pytest regression per "
                                                                         "counterexample into this directory")] = None,
    engine: Annotated[str, typer.Option("--engine", help="fast (the model compiled to Python over flat tuples), "
                                                        "reference (the exact interpreter), or auto: fast when it "
                                                        "encodes the profile, else reference")] = "auto",
    spec: SpecOpt = None,
) -> None:
    """Model-check the slot machine composed with a venue and a policy environment: every invariant of the
    spec and the catalogue in every reachable state, and that flat is always reachable without further faults.
    Exits 1 on a violation (printing the shortest counterexample), 3 when the search hit --max-states."""
    from rich.progress import Progress

    from pink_codegen.verify.fast import ENGINES, FastUnsupported, run_check
    from pink_codegen.verify.model import PROFILES, ComposedModel
    from pink_codegen.verify.report import describe_invariant, result_json, violation_text

    if profile not in PROFILES:
        err_console.print(f"error: unknown profile {profile!r}; profiles: {', '.join(PROFILES)}", markup=False)
        raise typer.Exit(2)
    if engine not in ENGINES:
        err_console.print(f"error: unknown engine {engine!r}; engines: {', '.join(ENGINES)}", markup=False)
        raise typer.Exit(2)
    slot = _slot_machine(spec)
    model = ComposedModel(slot, PROFILES[profile])
    with Progress(console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"verify ({profile})", total=None)
        try:
            result, ran, fallback = run_check(
                model, engine, max_states=max_states,
                progress=lambda n, t, d: bar.update(task, description=f"verify ({profile}): {n:,} states, "
                                                                      f"{t:,} transitions, depth {d}"))
        except FastUnsupported as exc:
            err_console.print(f"error: the fast engine cannot check this profile: {exc}; use --engine reference "
                              f"or auto", markup=False)
            raise typer.Exit(2) from None
    if fallback and not as_json:
        err_console.print(f"engine: reference ({fallback})", markup=False)
    if trace_out is not None and result.violations:
        trace_out.write_text(json.dumps(result_json(result)["violations"][0], indent=2) + "\n")
    if emit_tests is not None and result.violations:
        from pink_codegen.verify.emit import emit_tests as write_tests

        for path in write_tests(result.violations, profile, emit_tests):
            err_console.print(f"wrote {path}", markup=False)
    if as_json:
        print(json.dumps({**result_json(result), "engine": ran}, indent=2))
    else:
        table = Table(title=f"pink-codegen verify ({profile})")
        for col in ("invariant", "catalogue", "verdict"):
            table.add_column(col)
        catalogue = {inv.name: inv.catalogue for inv in slot.invariants}
        from pink_codegen.verify.checker import COMPOSED, REACHABILITY

        for name, verdict in result.verdicts.items():
            cat = catalogue.get(name) or {**COMPOSED, **REACHABILITY}[name][0]
            table.add_row(name, cat, verdict)
        out_console.print(table)
        out_console.print(f"{result.states:,} states, {result.transitions:,} transitions, max depth "
                          f"{result.max_depth}, {result.seconds:.1f} s ({result.states_per_s:,.0f} states/s, {ran} "
                          f"engine), {'complete' if result.complete else 'INCOMPLETE (raise --max-states)'}",
                          markup=False)
        if result.dead_rows:
            out_console.print(f"rows never fired within these bounds: {', '.join(map(str, result.dead_rows))}",
                              markup=False)
        for v in result.violations:
            err_console.print(violation_text(v), markup=False, highlight=False)
            if describe_invariant(v.invariant):
                err_console.print(f"({v.invariant}: {describe_invariant(v.invariant)})", markup=False)
    if result.violations:
        raise typer.Exit(1)
    if not result.complete:
        raise typer.Exit(3)


def _slot_machine(spec: Path | None) -> Machine:
    """The slot machine the model checker composes (exit 1 on spec errors, 2 when there is no slot spec)."""
    spec_dir, _ = _resolve(spec, None)
    try:
        slot = load_named(spec_dir, "slot")
    except SpecError as exc:
        _report_spec_error(exc)
        raise typer.Exit(1) from None
    if slot is None:
        err_console.print(f"error: no slot machine in {spec_dir}", markup=False)
        raise typer.Exit(2)
    return slot


@app.command("export-promela")
def export_promela_cmd(
    profile: Annotated[str, typer.Option("--profile", help="Bounds of the composed model to export: smoke, "
                                                          "default or deep")] = "default",
    out: Annotated[Path | None, typer.Option("--out", help="Write the Promela model to this file [default: "
                                                          "standard output]")] = None,
    spec: SpecOpt = None,
) -> None:
    """Write the composed model `verify` explores (slot spec + venue and policy environment, same bounds) as
    Promela for SPIN: every spec and composed invariant as an assertion, amounts as scaled ints. Check it with
    `spin -a FILE && cc -O2 -DNOREDUCE -DSAFETY -o pan pan.c && ./pan -m100000`; its "states, stored" equals
    verify's states. The reachability properties (flat_reachable, slot_free_reachable) are not exported.
    Exits 2 on a bad profile or a profile the export cannot encode exactly."""
    from pink_codegen.verify.model import PROFILES
    from pink_codegen.verify.promela import PromelaError, export

    if profile not in PROFILES:
        err_console.print(f"error: unknown profile {profile!r}; profiles: {', '.join(PROFILES)}", markup=False)
        raise typer.Exit(2)
    slot = _slot_machine(spec)
    try:
        text = export(slot, PROFILES[profile])
    except PromelaError as exc:
        err_console.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if out is None:
        print(text, end="")
    else:
        out.write_text(text)
        err_console.print(f"wrote {out} ({profile} profile, {len(text.splitlines()):,} lines)", markup=False)


@app.command("version")
def version_cmd() -> None:
    """Print the pink-codegen version."""
    out_console.print(f"pink-codegen {__version__}")


def main() -> None:
    app(prog_name="pink-codegen")


if __name__ == "__main__":
    main()
