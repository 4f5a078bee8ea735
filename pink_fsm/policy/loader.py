"""Load a policy by name: the built-in reference, an installed entry point, or an import path.

    load_policy("reference", {"tp_bps": 60})            the built-in reference policy
    load_policy("my-strategy", None)                    entry point `my-strategy` in group `pink_fsm.policies`
    load_policy("my_pkg.strategies:Momentum", {...})    a class or factory by import path

The target (class or factory) is called with the options as keyword arguments (`Momentum(**options)`), or
with none when `config` is None. A module attribute that already is a policy instance is used as is (it cannot
take options). Whatever is built must have callable `decide` and `on_trade_closed` (the Policy port). Every
failure raises `PolicyLoadError` saying what was tried and what to do.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from typing import Any, cast

from pink_fsm.ports import Policy

__all__ = ["ENTRY_POINT_GROUP", "PolicyLoadError", "load_policy"]

ENTRY_POINT_GROUP = "pink_fsm.policies"
BUILTIN = "reference"
_PORT_METHODS = ("decide", "on_trade_closed")


class PolicyLoadError(Exception):
    """A policy spec could not be turned into a policy; the message says what was tried and how to fix it."""


def load_policy(spec: str, config: Mapping[str, Any] | None = None) -> Policy:
    """The policy named by `spec`, built with `config` as keyword arguments (None: no arguments).

    >>> type(load_policy("reference", {"tp_bps": 60})).__name__
    'ReferencePolicy'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise PolicyLoadError(f"policy spec must be a non-empty string, got {spec!r}; use 'reference', an entry "
                              f"point name of group {ENTRY_POINT_GROUP!r}, or 'pkg.module:Class'")
    spec = spec.strip()
    if config is not None and not isinstance(config, Mapping):
        raise PolicyLoadError(f"policy config must be a mapping of option names to values, got {type(config).__name__}")
    if spec == BUILTIN:
        from pink_fsm.policy.reference import reference_policy

        return _build(reference_policy, config, f"built-in policy {BUILTIN!r}")
    if ":" in spec:
        return _build(_import_target(spec), config, f"import path {spec!r}")
    return _build(_entry_point_target(spec), config, f"entry point {spec!r} (group {ENTRY_POINT_GROUP!r})")


def _import_target(spec: str) -> object:
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path or ":" in attr_path:
        raise PolicyLoadError(f"import path {spec!r} must look like 'pkg.module:Class' or 'pkg.module:factory' "
                              f"(one colon between the module and the attribute)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise PolicyLoadError(f"policy {spec!r}: module {module_name!r} not found (tried importlib.import_module"
                                  f"({module_name!r})); check the spelling, install the package, or add its "
                                  f"directory to PYTHONPATH") from exc
        raise PolicyLoadError(f"policy {spec!r}: module {module_name!r} was found but importing it failed: "
                              f"{exc} (a dependency of the policy is missing; install it)") from exc
    except Exception as exc:  # a user module may fail in any way at import; report it, do not crash the CLI
        raise PolicyLoadError(f"policy {spec!r}: importing module {module_name!r} raised "
                              f"{type(exc).__name__}: {exc}") from exc
    target: object = module
    for part in attr_path.split("."):
        if not hasattr(target, part):
            public = sorted(n for n in dir(module) if not n.startswith("_"))
            raise PolicyLoadError(f"policy {spec!r}: module {module_name!r} has no attribute {attr_path!r} "
                                  f"(public names: {', '.join(public) or 'none'})")
        target = getattr(target, part)
    return target


def _entry_point_target(name: str) -> object:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)} | {BUILTIN})
        hint = " (did you mean an import path 'pkg.module:Class'?)" if "." in name else ""
        raise PolicyLoadError(f"no policy named {name!r}: not built in and no entry point of that name in group "
                              f"{ENTRY_POINT_GROUP!r}{hint}; known names: {', '.join(known)}; or pass an import "
                              f"path 'pkg.module:Class'")
    entry_point = sorted(found, key=lambda ep: ep.value)[0]  # deterministic if two distributions claim the name
    try:
        return entry_point.load()
    except Exception as exc:
        raise PolicyLoadError(f"entry point {name!r} ({entry_point.value}) failed to load: "
                              f"{type(exc).__name__}: {exc}; reinstall the distribution that provides it") from exc


def _missing_methods(obj: object) -> list[str]:
    return [m for m in _PORT_METHODS if not callable(getattr(obj, m, None))]


def _build(target: object, config: Mapping[str, Any] | None, what: str) -> Policy:
    if not isinstance(target, type) and not _missing_methods(target):
        if config:
            raise PolicyLoadError(f"{what} is a policy instance and cannot take options {sorted(config)}; point "
                                  f"the spec at its class or a factory instead")
        return cast(Policy, target)
    if isinstance(target, type) and (missing := _missing_methods(target)):
        raise PolicyLoadError(f"{what}: class {target.__qualname__} does not implement the Policy port (missing "
                              f"{', '.join(missing)}); see docs/policy.md")
    if not callable(target):
        raise PolicyLoadError(f"{what} is a {type(target).__name__}, not a policy class or factory")
    options = dict(config or {})
    bad_keys = [k for k in options if not isinstance(k, str) or not k.isidentifier()]
    if bad_keys:
        raise PolicyLoadError(f"{what}: option names must be identifiers, got {bad_keys!r}")
    try:
        policy = cast(Callable[..., object], target)(**options)
    except Exception as exc:
        raise PolicyLoadError(f"{what} refused the config {sorted(options)}: {type(exc).__name__}: {exc}") from exc
    if missing := _missing_methods(policy):
        raise PolicyLoadError(f"{what} returned a {type(policy).__name__}, which does not implement the Policy port "
                              f"(missing {', '.join(missing)}); see docs/policy.md")
    return cast(Policy, policy)
