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
    profile: Annotated[str, typer.Option("--profile", help="Bounds of the slot x venue model: smoke (a second), "
                                                          "default (seconds), deep (long), mutants; of the slot x "
                                                          "router x venue model (reference engine): router-smoke, "
                                                          "router, router-cancel, router-lag, router-market, "
                                                          "router-taker")] = "default",
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
    mutants: Annotated[bool, typer.Option("--mutants", help="Instead of checking the spec, run the kill matrix: "
                                                           "re-introduce each catalogued bug (pink_codegen/verify/"
                                                           "mutants.py) into an in-memory copy of the spec dir's "
                                                           "slot.yaml or router.yaml, check it on the mutant's own "
                                                           "bounds, and print which invariant killed it. Exits 0 "
                                                           "when every mutant does "
                                                           "what the catalogue says (killed by an expected invariant, "
                                                           "equivalent, or refused by the compiler), 1 otherwise (a "
                                                           "survivor, an unexpected kill, a stale edit). --profile, "
                                                           "--trace-out and --emit-tests do not apply")] = False,
    mutant: Annotated[list[str] | None, typer.Option("--mutant", metavar="NAME", help="Run only this mutant "
                                                                                       "(repeatable; implies "
                                                                                       "--mutants; an unknown NAME "
                                                                                       "exits 2)")] = None,
    spec: SpecOpt = None,
) -> None:
    """Model-check the slot machine composed with a venue and a policy environment (and, with a router-*
    profile, with the execution router working every order): every invariant of the specs and the catalogue in
    every reachable state, and that flat is always reachable without further faults.
    Exits 1 on a violation (printing the shortest counterexample), 3 when the search hit --max-states.
    With --mutants, prints the kill matrix of the spec mutant catalogue instead."""
    from rich.progress import Progress

    from pink_codegen.verify.checker import composed_catalogue, reachability_catalogue
    from pink_codegen.verify.fast import ENGINES, FastUnsupported, run_check
    from pink_codegen.verify.model import PROFILES, ComposedModel
    from pink_codegen.verify.report import describe_invariant, result_json, violation_text
    from pink_codegen.verify.routed import ROUTED_PROFILES, RoutedModel

    if profile not in PROFILES and profile not in ROUTED_PROFILES:
        err_console.print(f"error: unknown profile {profile!r}; profiles: {', '.join([*PROFILES, *ROUTED_PROFILES])}",
                          markup=False)
        raise typer.Exit(2)
    if engine not in ENGINES:
        err_console.print(f"error: unknown engine {engine!r}; engines: {', '.join(ENGINES)}", markup=False)
        raise typer.Exit(2)
    if mutants or mutant:
        if profile != "default" or trace_out is not None or emit_tests is not None:
            err_console.print("error: --profile, --trace-out and --emit-tests do not apply to --mutants (each "
                              "mutant is checked on its own bounds)", markup=False)
            raise typer.Exit(2)
        _verify_mutants(spec, mutant, engine, max_states, as_json)
        return
    slot = _slot_machine(spec)
    venue = load_named(_resolve(spec, None)[0], "venue")  # the spec dir's venue environment (else the project's)
    model = ComposedModel(slot, PROFILES[profile], venue) if profile in PROFILES else \
        RoutedModel(slot, _named_machine(spec, "router"), ROUTED_PROFILES[profile], venue)
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
    router_dead = sorted({t.index for t in model.router_ir.transitions} - model.fired_router_rows) \
        if isinstance(model, RoutedModel) and result.complete else []
    if as_json:
        extra = {"router_dead_rows": router_dead} if isinstance(model, RoutedModel) else {}
        print(json.dumps({**result_json(result), "engine": ran, **extra}, indent=2))
    else:
        table = Table(title=f"pink-codegen verify ({profile})")
        for col in ("invariant", "catalogue", "verdict"):
            table.add_column(col)
        catalogue = {inv.name: inv.catalogue for inv in slot.invariants}
        composed = {**composed_catalogue(model), **reachability_catalogue(model)}
        for name, verdict in result.verdicts.items():
            cat = catalogue.get(name) or composed[name][0]
            table.add_row(name, cat, verdict)
        out_console.print(table)
        out_console.print(f"{result.states:,} states, {result.transitions:,} transitions, max depth "
                          f"{result.max_depth}, {result.seconds:.1f} s ({result.states_per_s:,.0f} states/s, {ran} "
                          f"engine), {'complete' if result.complete else 'INCOMPLETE (raise --max-states)'}",
                          markup=False)
        if result.dead_rows:
            out_console.print(f"rows never fired within these bounds: {', '.join(map(str, result.dead_rows))}",
                              markup=False)
        out_console.print(result.venue_coverage, markup=False) if result.venue_coverage else None
        if router_dead:
            out_console.print(f"router.yaml rows never fired within these bounds: {', '.join(map(str, router_dead))}",
                              markup=False)
        for v in result.violations:
            err_console.print(violation_text(v), markup=False, highlight=False)
            if describe_invariant(v.invariant):
                err_console.print(f"({v.invariant}: {describe_invariant(v.invariant)})", markup=False)
    if result.violations:
        raise typer.Exit(1)
    if not result.complete:
        raise typer.Exit(3)


def _verify_mutants(spec: Path | None, names: list[str] | None, engine: str, max_states: int, as_json: bool) -> None:
    """`verify --mutants`: the kill matrix of pink_codegen/verify/mutants.py over the spec dir's slot.yaml and
    router.yaml."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pink_codegen.verify.fast import FastUnsupported
    from pink_codegen.verify.mutants import kill_matrix, summary, unknown_names

    unknown = unknown_names(names or ())
    if unknown:
        for name, close in unknown:
            hint = f"; did you mean {' or '.join(close)}?" if close else "; see pink_codegen/verify/mutants.py"
            err_console.print(f"error: no mutant named {name!r}{hint}", markup=False)
        raise typer.Exit(2)
    spec_dir, _ = _resolve(spec, None)
    slot_file = spec_dir / "slot.yaml"
    if not slot_file.is_file():
        err_console.print(f"error: no slot.yaml in {spec_dir}", markup=False)
        raise typer.Exit(2)
    slot_text = slot_file.read_text()
    router_file = spec_dir / "router.yaml"  # the router mutants' spec, composed by every routed check
    router_text = router_file.read_text() if router_file.is_file() else None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("mutants", total=None)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=f"mutant {name}" if name else "mutants")

        try:
            results = kill_matrix(slot_text, names or None, progress=progress, engine=engine, max_states=max_states,
                                  router_text=router_text)
        except FastUnsupported as exc:
            err_console.print(f"error: the fast engine cannot check a mutant's bounds: {exc}; use --engine reference "
                              f"or auto", markup=False)
            raise typer.Exit(2) from None
    totals = summary(results)
    line = (f"{totals['killed']} killed ({totals['killed_as_expected']} by the expected invariant), "
            f"{totals['survived']} survived, {totals['equivalent']} equivalent, {totals['refused']} refused by the "
            f"compiler, {totals['stale']} stale; {totals['seconds']:.1f} s")
    if as_json:
        print(json.dumps({"spec": slot_file.as_posix(), "mutants": [r.to_json() for r in results],
                          "summary": totals}, indent=2))
    else:
        table = Table(title=f"pink-codegen verify --mutants ({slot_file})")
        for col in ("mutant", "defect", "status", "killed by", "expected?", "trace", "states", "seconds"):
            table.add_column(col, justify="right" if col in ("trace", "states", "seconds") else "left",
                             no_wrap=col in ("mutant", "status", "killed by"))
        # Piped or logged output gets the whole table, not one squeezed to the 80 columns of a non-terminal.
        console = out_console if out_console.is_terminal else Console(soft_wrap=True, width=160)
        for r in results:
            killed_by = r.invariant if r.status == "killed" else ""
            expected = "yes" if r.expected else "NO"
            table.add_row(r.name, r.defect, r.status, killed_by, expected, str(r.trace_steps) if r.trace else "",
                          f"{r.states:,}" if r.states else "", f"{r.seconds:.1f}")
        console.print(table)
        console.print(line, markup=False)
    for r in results:
        if r.ok:
            continue
        if r.status == "stale":
            err_console.print(f"error: {r.detail}", markup=False)
        elif r.status == "killed":
            wanted = (f"expected {' or '.join(r.expected_invariants)}" if r.expected_invariants else
                      f"catalogued as {r.expect}")
            err_console.print(f"mutant {r.name}: killed by {r.invariant} ({r.detail}), {wanted}", markup=False)
        else:
            err_console.print(f"mutant {r.name}: {r.status}: {r.detail}", markup=False)
    if not totals["ok"]:
        raise typer.Exit(1)


def _slot_machine(spec: Path | None) -> Machine:
    """The slot machine the model checker composes (exit 1 on spec errors, 2 when there is no slot spec)."""
    return _named_machine(spec, "slot")


def _named_machine(spec: Path | None, name: str) -> Machine:
    """A machine of the spec dir by name (exit 1 on spec errors, 2 when there is none)."""
    spec_dir, _ = _resolve(spec, None)
    try:
        machine = load_named(spec_dir, name)
    except SpecError as exc:
        _report_spec_error(exc)
        raise typer.Exit(1) from None
    if machine is None:
        err_console.print(f"error: no {name} machine in {spec_dir}", markup=False)
        raise typer.Exit(2)
    return machine


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
        from pink_codegen.verify.routed import ROUTED_PROFILES

        if profile in ROUTED_PROFILES:
            err_console.print(f"error: profile {profile!r} is the slot x router x venue composition; the Promela "
                              f"export encodes the slot x venue model only (profiles: {', '.join(PROFILES)})",
                              markup=False)
            raise typer.Exit(2)
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
