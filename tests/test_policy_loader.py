"""Loading a policy by spec: the built-in reference, an entry point, an import path (class or factory), and every
way it can fail, each with a message saying what was tried and how to fix it. Also: docs/policy.md shows the
example policy that these tests load."""

from __future__ import annotations

import re
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from pink_fsm.kernel.values import Side, Symbol
from pink_fsm.policy import ENTRY_POINT_GROUP, PolicyLoadError, ReferencePolicy, load_policy
from pink_fsm.ports import Action, MarketView, Policy, Quote, SlotView

ROOT = Path(__file__).resolve().parents[1]
FET = Symbol("FET", "USDT")
D = Decimal


def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))


def load_error(spec: str, config: dict[str, object] | None = None) -> str:
    with pytest.raises(PolicyLoadError) as info:
        load_policy(spec, config)
    return str(info.value)


def test_builtin_reference_policy_takes_options() -> None:
    policy = load_policy("reference", {"tp_bps": 55, "universe": ["FETUSDT"]})
    assert isinstance(policy, ReferencePolicy) and isinstance(policy, Policy)
    assert policy.config.tp_bps == D(55) and policy.config.universe == (FET,)
    assert isinstance(load_policy(" reference ", None), ReferencePolicy)


def test_builtin_reference_refusing_its_config_says_which_option() -> None:
    message = load_error("reference", {"take_profit": 1})
    assert "built-in policy 'reference' refused the config ['take_profit']" in message
    assert "unknown option(s) ['take_profit']" in message and "tp_bps" in message
    assert "tp_bps: must be a finite Decimal > 0" in load_error("reference", {"tp_bps": -1})


def test_example_policy_loads_by_import_path_as_class_and_as_factory() -> None:
    for spec in ("policies_example:TimeoutPolicy", "policies_example:make_timeout_policy"):
        policy = load_policy(spec, {"hold_ms": 30_000, "leverage": "2"})
        assert type(policy).__name__ == "TimeoutPolicy" and isinstance(policy, Policy)
        quote = Quote(1_000, FET, D("0.6090"), D("0.6091"), D("0.6091"))
        flat = SlotView(1_000, "IDLE", True, True, None, Side.NONE, D(0), D(0), 0, D(0), D(1000), False)
        enter = policy.decide(MarketView(1_000, {FET: quote}, FET), flat)
        assert enter.action is Action.ENTER and enter.conviction == D(2) and enter.qty == D(2000) / D("0.6091")
        holding = SlotView(31_000, "POSITION_OPEN", False, False, FET, Side.LONG, enter.qty, D("0.6091"), 1_000,
                           D(0), D(1000), False)
        assert policy.decide(MarketView(31_000, {FET: quote}, FET), holding).action is Action.EXIT
    assert type(load_policy("policies_example:TimeoutPolicy", None)).__name__ == "TimeoutPolicy"


def test_module_not_found_says_what_was_tried() -> None:
    message = load_error("no_such_policy_pkg.strategies:Momentum")
    assert "module 'no_such_policy_pkg.strategies' not found" in message
    assert "importlib.import_module('no_such_policy_pkg.strategies')" in message and "PYTHONPATH" in message


def test_missing_attribute_lists_the_public_names() -> None:
    message = load_error("policies_example:Momentum")
    assert "module 'policies_example' has no attribute 'Momentum'" in message
    assert "TimeoutPolicy" in message and "make_timeout_policy" in message


def test_a_class_without_the_port_methods_is_refused_before_construction(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(tmp_path, monkeypatch, "half_policy", """
        class HalfPolicy:
            def __init__(self):
                raise AssertionError("must not be constructed")
            def decide(self, market, slot):
                return None
        def make():
            return object()
        NOT_CALLABLE = 42
    """)
    message = load_error("half_policy:HalfPolicy")
    assert "class HalfPolicy does not implement the Policy port (missing on_trade_closed)" in message
    assert "docs/policy.md" in message
    assert "returned a object, which does not implement the Policy port (missing decide, on_trade_closed)" in \
        load_error("half_policy:make")
    assert "is a int, not a policy class or factory" in load_error("half_policy:NOT_CALLABLE")


def test_constructor_refusing_the_config_is_reported_with_the_option_names() -> None:
    message = load_error("policies_example:TimeoutPolicy", {"hold_ms": 0})
    assert "import path 'policies_example:TimeoutPolicy' refused the config ['hold_ms']" in message
    assert "ValueError: hold_ms: must be > 0, got 0" in message
    assert "TypeError" in load_error("policies_example:TimeoutPolicy", {"bogus": 1})
    assert "option names must be identifiers" in load_error("policies_example:TimeoutPolicy", {"not an id": 1})


def test_import_failures_inside_the_policy_module_are_told_apart(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(tmp_path, monkeypatch, "needs_dep", "import no_such_dependency_xyz\n")
    write_module(tmp_path, monkeypatch, "broken_policy", "raise RuntimeError('bad config file')\n")
    message = load_error("needs_dep:P")
    assert "module 'needs_dep' was found but importing it failed" in message and "no_such_dependency_xyz" in message
    assert "importing module 'broken_policy' raised RuntimeError: bad config file" in load_error("broken_policy:P")


def test_an_instance_is_used_as_is_but_cannot_take_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(tmp_path, monkeypatch, "ready_policy", """
        from policies_example import TimeoutPolicy
        POLICY = TimeoutPolicy(hold_ms=5)
    """)
    import ready_policy  # type: ignore[import-not-found]

    assert load_policy("ready_policy:POLICY", None) is ready_policy.POLICY
    assert "is a policy instance and cannot take options ['hold_ms']" in load_error("ready_policy:POLICY",
                                                                                    {"hold_ms": 1})


@pytest.mark.parametrize(("spec", "message"), [
    ("", "policy spec must be a non-empty string"),
    ("pkg.module:", "must look like 'pkg.module:Class'"),
    (":Class", "must look like 'pkg.module:Class'"),
    ("a:b:c", "one colon between the module and the attribute"),
    ("momentum", "no policy named 'momentum': not built in and no entry point of that name in group "
                 "'pink_fsm.policies'"),
    ("pkg.module.Class", "did you mean an import path 'pkg.module:Class'?"),
])
def test_bad_specs_say_how_to_fix_them(spec: str, message: str) -> None:
    text = load_error(spec)
    assert message in text
    if "no policy named" in message:
        assert re.search(r"known names: .*reference", text) and "'pkg.module:Class'" in text


def test_entry_point_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "fake_pink_policies-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-pink-policies\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n"
                                           "timeout = policies_example:TimeoutPolicy\n"
                                           "broken = no_such_policy_pkg:Nope\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    policy = load_policy("timeout", {"hold_ms": 1_000})
    assert type(policy).__name__ == "TimeoutPolicy"
    message = load_error("broken")
    assert "entry point 'broken' (no_such_policy_pkg:Nope) failed to load: ModuleNotFoundError" in message
    assert "known names: broken, reference, timeout" in load_error("unknown")


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(PolicyLoadError, match="must be a mapping"):
        load_policy("reference", ["tp_bps", 1])  # type: ignore[arg-type]


def test_docs_show_the_example_policy_the_tests_load() -> None:
    page = (ROOT / "docs" / "policy.md").read_text()
    example = (ROOT / "tests" / "policies_example.py").read_text()
    begin, end = "# --- docs/policy.md example begins\n", "# --- docs/policy.md example ends\n"
    code = example[example.index(begin) + len(begin):example.index(end)]
    assert f"```python\n{code}```" in page
    assert "not trading advice" in page
