"""`pink run` configuration: precedence, every bad value named by its place, the documented example parses."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pink_fsm.cli import app
from pink_fsm.generated.router import MissPolicy, Style
from pink_fsm.kernel.values import Symbol
from pink_fsm.runtime.config import ConfigError, load_config, parse_duration_ms

DOCS = Path(__file__).resolve().parents[1] / "docs" / "run.md"


def documented_toml() -> str:
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block, "docs/run.md has no TOML example"
    return block.group(1)


def test_the_documented_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "pink.toml"
    path.write_text(documented_toml().replace('replay = "ticks.csv"', ""), encoding="utf-8")
    cfg = load_config(path, environ={})
    assert cfg.symbols == (Symbol("BTC", "USDT"),) and cfg.duration_ms == 24 * 3_600_000
    assert cfg.exec.entry_style is Style.MAKER and cfg.exec.entry_miss_policy is MissPolicy.RETRY
    assert cfg.exec.entry_ttl_ms == 20_000 and cfg.exec.exit_ttl_ms == 15_000
    assert cfg.policy_config == {"tp_bps": 30}


@pytest.mark.parametrize(("text", "ms"), [("6h", 21_600_000), ("90m", 5_400_000), ("1h30m", 5_400_000),
                                          ("45s", 45_000), ("250ms", 250), ("1d", 86_400_000), (1500, 1500)])
def test_durations(text: object, ms: int) -> None:
    assert parse_duration_ms(text, "--duration") == ms


@pytest.mark.parametrize("bad", ["5x", "", "-1h", "h", "1.5h", 0, "0s"])
def test_bad_durations_name_the_place(bad: object) -> None:
    with pytest.raises(ConfigError, match="--duration"):
        parse_duration_ms(bad, "--duration")


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "pink.toml"
    path.write_text('[run]\nseed = 1\nduration = "1h"\n[exec]\nentry_ttl = "30s"\n', encoding="utf-8")
    assert load_config(path, environ={}).seed == 1
    env = {"PINK_SEED": "2", "PINK_EXEC__ENTRY_TTL": "40s", "PINK_UNRELATED": "x"}
    cfg = load_config(path, environ=env)
    assert (cfg.seed, cfg.exec.entry_ttl_ms) == (2, 40_000)
    assert load_config(path, {"seed": 3}, environ=env).seed == 3


@pytest.mark.parametrize(("toml", "env", "message"), [
    ('[run]\nsede = 1\n', {}, r"pink.toml: \[run\] sede: unknown key 'sede'; did you mean 'seed'\?"),
    ('[exce]\n', {}, r"unknown section \[exce\]; did you mean \[exec\]\?"),
    ('[exec]\nentry_ttl = "2h"\n', {}, r"\[exec\] entry_ttl: a TTL of at most 1h"),
    ('[exec]\nentry_retries = 9\n', {}, r"\[exec\] entry_retries: expected an integer in \[0, 5\]"),
    ('[exec]\nentry_miss_policy = "maybe"\n', {}, r"'maybe' is not one of skip, retry, market"),
    ('[run]\nsymbols = ["NOPE"]\n', {}, r"\[run\] symbols: symbol: 'NOPE' is not BASE-USDT"),
    ('[run]\nspeed = "fast"\n', {}, r"'fast' is not a speed"),
    ('[kernel]\nstrategy_max_leverage = "-2"\n', {}, r"\[kernel\] strategy_max_leverage: expected a positive"),
    ('[run]\nseed = 1\n', {"PINK_SEED": "x"}, r"environment PINK_SEED: expected an integer"),
    ('[run]\nseed = 1\n', {"PINK_NOPE__X": "1"}, r"environment PINK_NOPE__X: unknown section 'nope'"),
    ('[run\n', {}, r"pink.toml: not valid TOML"),
])
def test_bad_config_names_the_place_and_the_fix(tmp_path: Path, toml: str, env: dict[str, str],
                                                message: str) -> None:
    path = tmp_path / "pink.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ=env)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "absent.toml", environ={})


def test_cli_bad_flags_exit_2_with_the_flag_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINK_BINGX_API_KEY", raising=False)
    monkeypatch.delenv("PINK_BINGX_API_SECRET", raising=False)
    runner = CliRunner()
    for args, text in ((["--duration", "5x"], "--duration"), (["--symbols", "NOPE"], "--symbols"),
                       (["--venue", "bingx"], "PINK_BINGX_API_KEY"), (["--speed", "fast"], "--speed")):
        result = runner.invoke(app, ["run", "--run-dir", str(tmp_path), *args])
        assert result.exit_code == 2, result.output
        assert text in result.output


def test_status_reads_the_file_a_run_wrote(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--duration", "2h", "--run-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["status", "--run-dir", str(tmp_path)])
    assert shown.exit_code == 0 and "finished" in shown.output and "slot state" in shown.output
    missing = runner.invoke(app, ["status", "--run-dir", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no status file" in missing.output


def test_a_user_policy_plugs_in_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--policy", "policies_example:make_timeout_policy", "--duration", "2h",
                                 "--run-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    # The example enters at the whole capital, holds a minute, exits, and again: about one round trip per two
    # simulated minutes (with margin refusals of entries priced just above the capital: they end cleanly).
    assert summary["trades"] >= 20 and summary["decisions"]["ENTER"] >= summary["trades"]
    assert summary["slot_state"] not in ("ENTRY_WORKING", "ENTRY_SUBMITTED") or summary["open_position"]
    assert Decimal(summary["capital_usdt"]) == Decimal(summary["venue_wallet_usdt"])
    bad = runner.invoke(app, ["run", "--policy", "policies_example:nope", "--run-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "nope" in bad.output
