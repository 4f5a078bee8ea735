"""`pink run` configuration: a TOML file, environment overrides, command-line flags (in rising precedence).

Every bad value is a `ConfigError` naming where it came from (file and key, or environment variable, or
flag) and what would be accepted. Unknown keys are errors too (with a did-you-mean): a typo must never
silently fall back to a default. Secrets are never configured here: adapters read them from the environment.

Environment overrides: `PINK_<KEY>` for a `[run]` key (`PINK_SEED=3`, `PINK_DURATION=2h`) and
`PINK_<SECTION>__<KEY>` for other sections (`PINK_EXEC__ENTRY_TTL=30s`).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from pink_fsm.generated.router import MissPolicy, Style
from pink_fsm.kernel.kernel import KernelConfig
from pink_fsm.kernel.values import Symbol
from pink_fsm.runtime.exec_router import ExecConfig

SECRET_WORDS = ("secret", "api_key", "apikey", "password", "token", "passphrase")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names its place and the fix."""


@attrs.frozen
class RunConfig:
    venue: str = "sim"
    symbols: tuple[Symbol, ...] = (Symbol("BTC", "USDT"),)
    seed: int = 7
    duration_ms: int = 6 * 3_600_000
    speed: str = "max"
    on_exit: str = "keep"
    run_dir: Path = Path("pink-runs")
    audit_path: Path | None = None  # None: <run_dir>/audit.duckdb
    status_path: Path | None = None  # None: <run_dir>/status.json
    policy: str = "reference"
    policy_config: Mapping[str, Any] = attrs.field(factory=dict)
    exec: ExecConfig = attrs.field(factory=ExecConfig)
    kernel: KernelConfig = attrs.field(factory=KernelConfig)
    sim: Mapping[str, Any] = attrs.field(factory=dict)
    bingx: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def speed_factor(self) -> float | None:
        """None for `max` (the deterministic virtual-clock driver), else the real-time multiple."""
        return None if self.speed == "max" else float(self.speed[:-1])

    @property
    def audit_file(self) -> Path:
        return self.audit_path or self.run_dir / "audit.duckdb"

    @property
    def status_file(self) -> Path:
        return self.status_path or self.run_dir / "status.json"

    @property
    def snapshot_file(self) -> Path:
        return self.run_dir / "kernel-snapshot.json"

    def public(self) -> dict[str, Any]:
        """The configuration as recorded in the audit log and the summary (no secrets live here)."""
        return {
            "venue": self.venue, "symbols": [str(s) for s in self.symbols], "seed": self.seed,
            "duration_ms": self.duration_ms, "speed": self.speed, "on_exit": self.on_exit,
            "run_dir": str(self.run_dir), "audit": str(self.audit_file), "policy": self.policy,
            "policy_config": redact(dict(self.policy_config)),
            "exec": {k: (v.name if hasattr(v, "name") else v) for k, v in attrs.asdict(self.exec).items()},
            "kernel": {k: str(v) for k, v in attrs.asdict(self.kernel).items()},
            "sim": redact(dict(self.sim)), "bingx": redact(dict(self.bingx)),
        }


def redact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("<redacted>" if any(w in k.lower() for w in SECRET_WORDS) else v) for k, v in values.items()}


# ------------------------------------------------------------------ value parsers


def parse_duration_ms(raw: object, where: str) -> int:
    """'6h', '90m', '1h30m', '45s', '250ms', '1d', or an integer of milliseconds."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw <= 0:
            raise ConfigError(f"{where}: a duration must be positive, got {raw}")
        return raw
    text = str(raw).strip().lower().replace(" ", "")
    match = _DURATION.match(text) if text else None
    if not match or not any(match.groups()):
        raise ConfigError(f"{where}: {raw!r} is not a duration; write e.g. 6h, 90m, 1h30m, 45s or 250ms")
    d, h, m, s, ms = (int(g or 0) for g in match.groups())
    total = (((d * 24 + h) * 60 + m) * 60 + s) * 1000 + ms
    if total <= 0:
        raise ConfigError(f"{where}: a duration must be positive, got {raw!r}")
    return total


def _int(raw: object, where: str, lo: int, hi: int) -> int:
    try:
        value = int(str(raw).strip()) if not isinstance(raw, bool) else None
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise ConfigError(f"{where}: expected an integer in [{lo}, {hi}], got {raw!r}")
    return value


def _decimal(raw: object, where: str) -> Decimal:
    if isinstance(raw, float):
        raw = repr(raw)  # TOML floats: take the written digits, never binary noise
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"{where}: expected a positive number, got {raw!r}")
    return value


def _choice(raw: object, where: str, choices: tuple[str, ...]) -> str:
    text = str(raw).strip().lower()
    if text not in choices:
        raise ConfigError(f"{where}: {raw!r} is not one of {', '.join(choices)}")
    return text


def _symbols(raw: object, where: str) -> tuple[Symbol, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"{where}: expected a list of symbols like [\"BTC-USDT\", \"ETH-USDT\"], got {raw!r}")
    out: list[Symbol] = []
    for item in items:
        try:
            symbol = Symbol.parse(item)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if symbol not in out:
            out.append(symbol)
    return tuple(out)


# ------------------------------------------------------------------ sections

RUN_KEYS = ("venue", "symbols", "seed", "duration", "speed", "on_exit", "run_dir", "audit", "status", "policy")
EXEC_KEYS = ("entry_style", "entry_ttl", "entry_miss_policy", "entry_retries", "exit_style", "exit_ttl",
             "maker_offset_ticks")
KERNEL_KEYS = ("strategy_max_leverage", "leverage_boost", "capital_tolerance_usdt", "capital_tolerance_rel",
               "unattributable", "client_id_prefix")
SECTIONS = ("run", "policy", "exec", "kernel", "sim", "bingx")


def _unknown(key: str, known: tuple[str, ...], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
    return ConfigError(f"{where}: unknown key '{key}'{hint}")


def _run_section(values: Mapping[str, tuple[object, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (raw, where) in values.items():
        if key == "venue":
            out["venue"] = _choice(raw, where, ("sim", "bingx"))
        elif key == "symbols":
            out["symbols"] = _symbols(raw, where)
        elif key == "seed":
            out["seed"] = _int(raw, where, 0, 2**63 - 1)
        elif key == "duration":
            out["duration_ms"] = parse_duration_ms(raw, where)
        elif key == "speed":
            text = str(raw).strip().lower()
            real_time = re.fullmatch(r"\d+(\.\d+)?x", text) is not None and float(text[:-1]) > 0
            if text != "max" and not real_time:
                raise ConfigError(f"{where}: {raw!r} is not a speed; write max (virtual clock, as fast as "
                                  f"possible) or a real-time multiple such as 1x or 60x")
            out["speed"] = text
        elif key == "on_exit":
            out["on_exit"] = _choice(raw, where, ("keep", "flatten"))
        elif key in ("run_dir", "audit", "status"):
            name = {"run_dir": "run_dir", "audit": "audit_path", "status": "status_path"}[key]
            text = str(raw).strip()
            if not text:
                raise ConfigError(f"{where}: expected a path, got an empty value")
            out[name] = Path(text)
        elif key == "policy":
            text = str(raw).strip()
            if not text:
                raise ConfigError(f"{where}: expected 'reference', an entry point name or pkg.module:Class")
            out["policy"] = text
        else:
            raise _unknown(key, RUN_KEYS, where)
    return out


def _exec_section(values: Mapping[str, tuple[object, str]]) -> ExecConfig:
    kwargs: dict[str, Any] = {}
    for key, (raw, where) in values.items():
        if key in ("entry_style", "exit_style"):
            kwargs[key] = Style[_choice(raw, where, ("maker", "taker")).upper()]
        elif key in ("entry_ttl", "exit_ttl"):
            ms = parse_duration_ms(raw, where)
            if ms > 3_600_000:
                raise ConfigError(f"{where}: a TTL of at most 1h, got {raw!r}")
            kwargs[f"{key}_ms"] = ms
        elif key == "entry_miss_policy":
            kwargs[key] = MissPolicy[_choice(raw, where, ("skip", "retry", "market")).upper()]
        elif key == "entry_retries":
            kwargs[key] = _int(raw, where, 0, 5)
        elif key == "maker_offset_ticks":
            kwargs[key] = _int(raw, where, 0, 1000)
        else:
            raise _unknown(key, EXEC_KEYS, where)
    return ExecConfig(**kwargs)


def _kernel_section(values: Mapping[str, tuple[object, str]], session: str) -> KernelConfig:
    kwargs: dict[str, Any] = {"session": session}
    for key, (raw, where) in values.items():
        if key in ("strategy_max_leverage", "leverage_boost"):
            kwargs[key] = _decimal(raw, where)
        elif key == "capital_tolerance_usdt":
            kwargs["capital_tolerance_abs_usdt"] = _decimal(raw, where)
        elif key == "capital_tolerance_rel":
            kwargs[key] = _decimal(raw, where)
        elif key == "unattributable":
            kwargs[key] = _choice(raw, where, ("freeze", "ignore"))
        elif key == "client_id_prefix":
            text = str(raw)
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,11}", text):
                raise ConfigError(f"{where}: 1-12 letters or digits starting with a letter, got {raw!r}")
            kwargs[key] = text
        else:
            raise _unknown(key, KERNEL_KEYS, where)
    try:
        return KernelConfig(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"[kernel]: {exc}") from None


# ------------------------------------------------------------------ loading


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for section, body in data.items():
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, SECTIONS, n=1)
            hint = f"; did you mean [{close[0]}]?" if close else f"; sections: {', '.join(SECTIONS)}"
            raise ConfigError(f"{path}: unknown section [{section}]{hint}")
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: '{section}' must be a [section] table")
    return data


def _env_layer(environ: Mapping[str, str]) -> dict[str, dict[str, tuple[object, str]]]:
    layer: dict[str, dict[str, tuple[object, str]]] = {s: {} for s in SECTIONS}
    for name, value in environ.items():
        if not name.startswith("PINK_") or name.startswith("PINK_BINGX_API"):
            continue  # API credentials are the adapter's, read from the environment there only
        rest = name[len("PINK_"):].lower()
        if "__" in rest:
            section, key = rest.split("__", 1)
            if section not in SECTIONS:
                raise ConfigError(f"environment {name}: unknown section '{section}' (sections: "
                                  f"{', '.join(SECTIONS)})")
        else:
            section, key = "run", rest
            if key not in RUN_KEYS:
                continue  # other PINK_ variables belong to other tools
        layer[section][key] = (value, f"environment {name}")
    return layer


def load_config(path: Path | None = None, overrides: Mapping[str, object] | None = None,
                environ: Mapping[str, str] | None = None, session: str = "1") -> RunConfig:
    """The run configuration from file < environment < flags (`overrides` are `[run]` keys)."""
    layers: dict[str, dict[str, tuple[object, str]]] = {s: {} for s in SECTIONS}
    if path is not None:
        for section, body in _read_file(path).items():
            for key, value in body.items():
                layers[section][key] = (value, f"{path}: [{section}] {key}")
    for section, values in _env_layer(os.environ if environ is None else environ).items():
        layers[section].update(values)
    for key, value in (overrides or {}).items():
        if value is not None:
            layers["run"][key] = (value, f"--{key.replace('_', '-')}")
    run = _run_section(layers["run"])
    try:
        return RunConfig(
            **run,
            policy_config={k: v for k, (v, _) in layers["policy"].items()},
            exec=_exec_section(layers["exec"]),
            kernel=_kernel_section(layers["kernel"], session),
            sim={k: v for k, (v, _) in layers["sim"].items()},
            bingx={k: v for k, (v, _) in layers["bingx"].items()},
        )
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None
