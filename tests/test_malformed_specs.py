"""The catalogue of malformed specs: every file in tests/malformed/ must fail with exactly the problems it lists.

Each `tests/malformed/NNN_name.yaml` is the valid base machine (`000_valid_base.yaml`) with one change (its
`# change:` line says which). Its first lines are `# expect: FILE:LINE:COL: CONTEXT: MESSAGE`, one per problem,
in the order `SpecError` reports them (a message that spans lines continues on `# expect-continued:` lines).
Files are loaded with the display name `malformed/<file name>` so the expected text does not depend on where
the checkout lives. `# review:` lines note where a message or position could be better (the expectation records
today's exact text). `# xfail: NAME: reason` marks a known defect, and its `# expect:` lines give the report we
would want instead: NAME is the Python exception the loader crashes with, or `SpecAccepted` for a malformed
spec the loader accepts. The marks are strict, so a fixed defect fails until its marker is removed.
"""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pink_codegen.cli import app
from pink_codegen.errors import SpecError
from pink_codegen.loader import load_machine

TESTS = Path(__file__).parent
MALFORMED = TESTS / "malformed"
BASE = MALFORMED / "000_valid_base.yaml"
CASES = sorted(p for p in MALFORMED.glob("*.yaml") if p != BASE)


def _header(path: Path) -> tuple[list[str], list[str], str | None]:
    """(expected problem lines, '# change:' lines, '# xfail:' text) from a case file's leading comments."""
    text = path.read_bytes().decode("utf-8", errors="replace")  # one case is deliberately not UTF-8
    expected: list[str] = []
    changes: list[str] = []
    xfail: str | None = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# expect: "):
            expected.append(line.removeprefix("# expect: "))
        elif line.startswith("# expect-continued: "):
            expected[-1] += "\n" + line.removeprefix("# expect-continued: ")
        elif line.startswith("# change: "):
            changes.append(line.removeprefix("# change: "))
        elif line.startswith("# xfail: "):
            xfail = line.removeprefix("# xfail: ")
    return expected, changes, xfail


class SpecAccepted(AssertionError):
    """load_machine accepted a spec that the catalogue lists as malformed."""


def _param(path: Path) -> object:
    _, _, xfail = _header(path)
    marks = []
    if xfail is not None:
        exc_name, _, reason = xfail.partition(": ")
        raises = SpecAccepted if exc_name == "SpecAccepted" else getattr(builtins, exc_name)
        kind = "accepted" if raises is SpecAccepted else "crash"
        marks.append(pytest.mark.xfail(strict=True, raises=raises, reason=f"{kind}: {reason}"))
    return pytest.param(path, id=path.stem, marks=marks)


def _problems(path: Path) -> list[str]:
    try:
        load_machine(path, f"malformed/{path.name}")
    except SpecError as exc:
        return [p.render() for p in exc.problems]
    raise SpecAccepted(f"{path.name} loaded without a SpecError")


@pytest.mark.parametrize("path", [_param(p) for p in CASES])
def test_malformed_spec_reports_exactly_the_expected_problems(path: Path) -> None:
    expected, _, _ = _header(path)
    assert _problems(path) == expected


def test_catalogue_has_at_least_35_cases() -> None:
    assert len(CASES) >= 35


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_file_is_well_formed(path: Path) -> None:
    expected, changes, _ = _header(path)
    name, _, slug = path.stem.partition("_")
    assert name.isdigit() and slug, "case files are named NNN_short_name.yaml"
    assert expected, "a case lists at least one '# expect:' line"
    assert all(line.startswith(f"malformed/{path.name}:") for line in expected)
    assert changes, "a case says what it changed in the base machine ('# change: ...')"


def test_case_numbers_are_unique() -> None:
    numbers = [p.name.partition("_")[0] for p in [BASE, *CASES]]
    assert len(numbers) == len(set(numbers))


def test_valid_base_loads_without_problems_or_warnings() -> None:
    machine = load_machine(BASE, f"malformed/{BASE.name}")
    assert machine.name == "tiny"
    assert [s.name for s in machine.states] == ["IDLE", "BUSY", "DONE"]
    assert machine.warnings == ()
    expected, _, _ = _header(BASE)
    assert expected == []


# Forms an earlier compiler rejected and the catalogue recorded as malformed (cases 060, 127 and 142 were replaced):
# each is the base machine with one change, and must load like the base.
NOW_VALID = {
    "output_param_as_type_and_doc": [("      qty_lots: qty\n", "      qty_lots: {type: qty, doc: lots to send}\n")],
    "guard_literal_block": [
        ("guard: qty_lots > 0 and qty_lots <= max_lots", "guard: |\n      qty_lots > 0 and\n      qty_lots <= max_lots")
    ],
    "literal_arithmetic_adopts_dimension": [("      lots: qty_lots\n", "      lots: min(qty_lots, 50 + 50)\n")],
}


@pytest.mark.parametrize("name", sorted(NOW_VALID))
def test_formerly_rejected_form_now_loads(name: str, tmp_path: Path) -> None:
    text = BASE.read_text()
    for old, new in NOW_VALID[name]:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    machine = load_machine(path, path.name)
    base = load_machine(BASE, BASE.name)
    assert machine.warnings == ()
    assert [t.guard_text for t in machine.transitions] == [t.guard_text for t in base.transitions]
    assert [[(p.name, p.type) for p in o.params] for o in machine.outputs] == [
        [(p.name, p.type) for p in o.params] for o in base.outputs
    ]


def test_cli_validate_reports_the_problems_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    (case,) = MALFORMED.glob("*_transition_row_number_after_failed_row.yaml")
    expected, _, _ = _header(case)
    assert len(expected) == 2 and max(map(len, expected)) > 80  # several problems, lines wider than a terminal
    monkeypatch.chdir(TESTS)  # the CLI shows the path as given: malformed/<file>, as in the expect lines
    result = CliRunner().invoke(app, ["validate", f"malformed/{case.name}"])
    assert result.exit_code == 1, result.output
    assert result.output == "".join(f"{line}\n" for line in expected) + "2 problem(s); nothing was generated.\n"


def test_cli_validate_accepts_the_valid_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TESTS)
    result = CliRunner().invoke(app, ["validate", f"malformed/{BASE.name}"])
    assert result.exit_code == 0, result.output
    assert result.output == f"malformed/{BASE.name}: ok (3 states, 5 transitions, 1 invariants)\n"
