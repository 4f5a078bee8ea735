"""A spec can never inject code: hostile names, expressions, docs and YAML tags are refused or neutralised."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from pink_codegen.errors import SpecError
from pink_codegen.gen_python import generate_python
from pink_codegen.loader import load_machine_text

BASE = """\
machine: probe
doc: A tiny machine for injection tests.
variables:
  count: {type: int, min: 0, max: 10, init: 0, doc: a counter}
states:
  IDLE: {doc: resting}
  BUSY: {doc: working}
initial: IDLE
events:
  GO: {doc: start, params: {n: {type: int, doc: how many}}}
  STOP: {doc: stop}
transitions:
  - {from: IDLE, event: GO, guard: "n > 0", to: BUSY, effect: {count: "min(n, 10)"}, doc: start work}
  - {from: BUSY, event: STOP, to: IDLE, doc: stop work}
"""


def _load(text: str) -> object:
    return load_machine_text(text, "probe.yaml")


def _messages(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        _load(text)
    return [p.message for p in info.value.problems]


@pytest.mark.parametrize("expr", [
    "__import__('os').system('true') == 0",
    "n.__class__ == n",
    "(lambda: True)()",
    "[n][0] > 0",
    "'a' == 'a'",
    "eval('1') == 1",
    "open('/etc/passwd') == 0",
    "n if n else exec('x')",
    "min(n, key=abs) > 0",
    "{n} == {n}",
    "[x for x in n]",
    "(m := n) > 0",
    "getattr(n, 'real') > 0",
])
def test_hostile_guards_are_refused_before_any_code_exists(expr: str) -> None:
    text = BASE.replace('guard: "n > 0"', f'guard: "{expr}"' if '"' not in expr else f"guard: '{expr}'")
    assert _messages(text), expr


@pytest.mark.parametrize(("old", "new"), [
    ("  BUSY: {doc: working}", "  'BUSY; import os': {doc: working}"),
    ("  count: {type", "  __class__: {type"),
    ("  count: {type", "  import: {type"),
    ("  GO: {doc: start", "  'GO(): pass\\n': {doc: start"),
    ("machine: probe", "machine: \"probe; import os\""),
    ("machine: probe", "machine: class"),
    ("n: {type: int", "state: {type: int"),
])
def test_hostile_identifiers_are_refused(old: str, new: str) -> None:
    assert old in BASE
    messages = _messages(BASE.replace(old, new))
    assert any("bad" in m or "reserved" in m for m in messages), messages


@pytest.mark.parametrize("tagged", [
    "count: !!python/object/apply:os.system [true]",
    "count: !!binary aGVsbG8=",
    "count: !custom {type: int}",
])
def test_yaml_tags_are_refused(tagged: str) -> None:
    text = BASE.replace("  count: {type: int, min: 0, max: 10, init: 0, doc: a counter}", f"  {tagged}")
    assert any("YAML tag" in m for m in _messages(text))


def test_docs_with_quotes_and_newlines_cannot_break_out_of_the_generated_module(tmp_path: Path) -> None:
    hostile = '"""\nimport os; os.system("echo pwned")  # \\\n\'\'\'\\'
    quoted = json.dumps(hostile)  # a YAML double-quoted scalar
    text = BASE.replace("doc: A tiny machine for injection tests.", f"doc: {quoted}")
    text = text.replace("doc: stop}", f"doc: {quoted}}}").replace("doc: stop work}", f"doc: {quoted}}}")
    machine = _load(text)
    source = generate_python(machine, "probe.yaml")  # type: ignore[arg-type]
    compile(source, "probe.py", "exec")  # still valid Python
    target = tmp_path / "probe_generated.py"
    target.write_text(source)
    spec = importlib.util.spec_from_file_location("probe_generated", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["probe_generated"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["probe_generated"]
    # The hostile text survives only as data: the row doc keeps it verbatim (blanks normalised)...
    assert module.TRANSITIONS[1].doc == " ".join(hostile.split())
    # ...and no line of the module is code that came from it.
    assert not [line for line in source.splitlines() if line.lstrip().startswith(("import os", "os.system"))]
