"""Generated docs render: Mermaid state diagrams parse (our subset strictly, and the real mermaid parser when
it is installed), every state and state-changing transition is drawn, and SVG is produced by graphviz."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pink_codegen.build import build, load_specs
from pink_codegen.gen_docs import dot, mermaid
from pink_codegen.ir import Machine

ROOT = Path(__file__).resolve().parents[1]
MACHINES = [m for m, _ in load_specs(ROOT / "spec", ROOT)]
NODE_DIR = Path(os.environ.get("PINK_MERMAID_DIR", ROOT / ".ci" / ".mermaid"))

_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_LINE = re.compile(
    rf"^    (?:\[\*\] --> (?P<init>{_ID})"                                          # start marker
    rf"|(?P<src>{_ID}) --> (?P<dst>{_ID}|\[\*\])(?:: (?P<label>[A-Z0-9_, ]+))?)$"  # edge or end marker
)


def parse_state_diagram(text: str) -> tuple[str, set[tuple[str, str]], set[str], dict[tuple[str, str], list[str]]]:
    """A strict parser of the stateDiagram-v2 subset pink-codegen emits; raises ValueError on anything else."""
    lines = text.splitlines()
    if not lines or lines[0] != "stateDiagram-v2":
        raise ValueError("first line must be stateDiagram-v2")
    initial = ""
    edges: set[tuple[str, str]] = set()
    finals: set[str] = set()
    labels: dict[tuple[str, str], list[str]] = {}
    for n, line in enumerate(lines[1:], start=2):
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"line {n} is not a state, transition or start/end marker: {line!r}")
        if match["init"]:
            if initial:
                raise ValueError("two initial states")
            initial = match["init"]
        elif match["dst"] == "[*]":
            finals.add(match["src"])
        else:
            edges.add((match["src"], match["dst"]))
            labels[(match["src"], match["dst"])] = [x.strip() for x in (match["label"] or "").split(",")]
    return initial, edges, finals, labels


def _machine_page(m: Machine) -> str:
    return (ROOT / "docs" / "machines" / f"{m.name}.md").read_text()


def _mermaid_block(page: str) -> str:
    start = page.index("```mermaid\n") + len("```mermaid\n")
    return page[start: page.index("\n```", start)]


@pytest.mark.parametrize("m", MACHINES, ids=lambda m: m.name)
def test_diagram_draws_every_state_changing_transition(m: Machine) -> None:
    initial, edges, finals, labels = parse_state_diagram(_mermaid_block(_machine_page(m)))
    assert initial == m.initial
    expected = {(s, t.dest_from(s)) for t in m.transitions for s in t.sources if t.dest_from(s) != s}
    assert edges == expected
    assert finals == {s.name for s in m.states if s.final}
    drawn = {s for e in edges for s in e} | {initial} | finals
    assert drawn == {s.name for s in m.states}, "every state appears in the diagram"
    for (src, dst), events in labels.items():
        assert set(events) == {t.event for t in m.transitions if src in t.sources and t.dest_from(src) == dst}


@pytest.mark.parametrize("m", MACHINES, ids=lambda m: m.name)
def test_page_has_the_tables_and_every_row_with_its_reason(m: Machine) -> None:
    page = _machine_page(m)
    for heading in ("## States", "## Events", "## Variables", "## Transitions", "## Invariants"):
        assert heading in page
    table = page[page.index("## Transitions"): page.index("## Invariants")]
    rows = [line for line in table.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == len(m.transitions)
    for t, row in zip(m.transitions, rows, strict=True):
        assert row.startswith(f"| {t.index} |") and t.doc.split()[0] in row
    for inv in m.invariants:
        assert f"`{inv.name}`" in page


def test_strict_parser_rejects_malformed_diagrams() -> None:
    with pytest.raises(ValueError):
        parse_state_diagram("stateDiagram-v2\n    IDLE --> : GO")
    with pytest.raises(ValueError):
        parse_state_diagram("graph TD\n    A --> B")


def _node_with_mermaid() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "mermaid").is_dir()


def test_real_mermaid_parser_accepts_generated_diagrams(tmp_path: Path) -> None:
    if not _node_with_mermaid():
        if os.environ.get("PINK_REQUIRE_MERMAID"):
            pytest.fail(f"mermaid is required (PINK_REQUIRE_MERMAID) but not installed under {NODE_DIR}")
        pytest.skip(f"node + mermaid not installed under {NODE_DIR} (.ci/run installs them)")
    files = []
    for m in MACHINES:
        f = tmp_path / f"{m.name}.mmd"
        f.write_text(mermaid(m))
        files.append(str(f))
    bad = tmp_path / "bad.mmd"
    bad.write_text("stateDiagram-v2\n    [*] --> IDLE\n    IDLE --> : GO\n")
    env = {**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")}
    script = ROOT / "tests" / "tools" / "mermaid_check.mjs"
    shutil.copy(script, NODE_DIR / "mermaid_check.mjs")  # ESM resolves packages next to the script
    result = subprocess.run(["node", str(NODE_DIR / "mermaid_check.mjs"), *files, str(bad)], capture_output=True,
                            text=True, env=env, timeout=120, check=False)
    verdicts = {Path(v["file"]).stem: v for v in map(json.loads, result.stdout.splitlines())}
    for m in MACHINES:
        assert verdicts[m.name]["ok"], verdicts[m.name]
        assert verdicts[m.name]["type"].startswith("state")
    assert not verdicts["bad"]["ok"], "the checker must be able to fail"


def test_svg_is_produced_when_graphviz_is_installed(tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        if os.environ.get("PINK_REQUIRE_GRAPHVIZ"):
            pytest.fail("graphviz is required (PINK_REQUIRE_GRAPHVIZ) but 'dot' is not on PATH")
        pytest.skip("graphviz 'dot' not installed (.ci/run installs it)")
    shutil.copytree(ROOT / "spec", tmp_path / "spec")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    result = build(tmp_path / "spec", tmp_path)
    assert {p.name for p in result.svgs} == {f"{m.name}.svg" for m in MACHINES}
    for m in MACHINES:
        svg = (tmp_path / "docs" / "machines" / f"{m.name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        for s in m.states:
            assert f">{s.name}<" in svg


@pytest.mark.parametrize("m", MACHINES, ids=lambda m: m.name)
def test_dot_source_is_deterministic_and_complete(m: Machine) -> None:
    text = dot(m)
    assert text == dot(m)
    for s in m.states:
        assert f"  {s.name} [label=" in text
