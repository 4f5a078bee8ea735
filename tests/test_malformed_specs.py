"""The catalogue of malformed specs: every file in tests/malformed/ must fail with exactly the problems it lists.

Each `tests/malformed/NNN_name.yaml` is the valid base machine (`000_valid_base.yaml`) with one change (its
`# change:` line says which). Its first lines are `# expect: FILE:LINE:COL: CONTEXT: MESSAGE`, one per problem,
in the order `SpecError` reports them (a message that spans lines continues on `# expect-continued:` lines).
Files are loaded with the display name `malformed/<file name>` so the expected text does not depend on where
the checkout lives. `# review:` lines note where a message or position could be better (the expectation records
today's exact text); `# xfail: ExceptionName: reason` marks a file on which the loader crashes with a Python
exception instead of a SpecError; its `# expect:` lines then give the report we would want instead.
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


def _param(path: Path) -> object:
    _, _, xfail = _header(path)
    marks = []
    if xfail is not None:
        exc_name, _, reason = xfail.partition(": ")
        marks.append(pytest.mark.xfail(strict=True, raises=getattr(builtins, exc_name), reason=f"crash: {reason}"))
    return pytest.param(path, id=path.stem, marks=marks)


def _problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_machine(path, f"malformed/{path.name}")
    return [p.render() for p in exc.value.problems]


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


def _one_line(text: str) -> str:
    # The CLI prints through rich, which wraps long lines at the console width; compare modulo whitespace.
    return " ".join(text.split())


def test_cli_validate_reports_the_problems_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    (case,) = MALFORMED.glob("*_constant_missing_value.yaml")
    expected, _, _ = _header(case)
    assert len(expected) == 3
    monkeypatch.chdir(TESTS)  # the CLI shows the path as given: malformed/<file>, as in the expect lines
    result = CliRunner().invoke(app, ["validate", f"malformed/{case.name}"])
    assert result.exit_code == 1, result.output
    output = _one_line(result.output)
    for line in expected:
        assert _one_line(line) in output
    assert "3 problem(s); nothing was generated." in output
    assert "Traceback" not in result.output


def test_cli_validate_accepts_the_valid_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TESTS)
    result = CliRunner().invoke(app, ["validate", f"malformed/{BASE.name}"])
    assert result.exit_code == 0, result.output
    assert f"malformed/{BASE.name}: ok (3 states, 5 transitions, 1 invariants)" in _one_line(result.output)
