"""Shared builders for the kernel tests: contracts, intents, BingX-shaped user-stream frames and book views.

Everything here is deterministic: event times are explicit `ts_ms` values, never the wall clock.
"""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal as D
from pathlib import Path
from types import ModuleType
from typing import Any

from pink_codegen.gen_python import generate_python
from pink_codegen.loader import load_machine_text
from pink_fsm.kernel import (
    ContractSpec,
    EnterIntent,
    ExitIntent,
    Kernel,
    KernelConfig,
    KernelResult,
    PlaceOrder,
    RecordTrade,
    SetLeverage,
    Side,
    Symbol,
    TradeWritten,
    VenueTruth,
)

ROOT = Path(__file__).resolve().parent.parent
SLOT_SPEC = ROOT / "spec" / "slot.yaml"

FET = Symbol.parse("FET-USDT")
BTC = Symbol.parse("BTC-USDT")
XRP = Symbol.parse("XRP-USDT")  # a contract with a low venue leverage cap
SEED = D(10000)
FLAT = VenueTruth(probe_ok=True, position_lots=0)
HOT_WINDOW_MS = 5_000


def contracts() -> dict[Symbol, ContractSpec]:
    return {
        FET: ContractSpec(FET, D(1), D("0.0001"), max_leverage=20),
        BTC: ContractSpec(BTC, D("0.001"), D("0.1"), max_leverage=50),
        XRP: ContractSpec(XRP, D(1), D("0.0001"), max_leverage=5),
    }


def make_kernel(seed: D = SEED, config: KernelConfig | None = None, slot: Any = None) -> Kernel:
    return Kernel(contracts(), seed, config, slot=slot)


def enter(kernel: Kernel, *, side: Side = Side.SHORT, qty: str | D = "100", px: str | D = "0.6",
          conviction: str | D = "3", ts: int = 1_000, symbol: Symbol = FET, venue: VenueTruth = FLAT,
          exit_legs: int = 1, leg_ratios: tuple[D, ...] = ()) -> KernelResult:
    return kernel.handle(EnterIntent(ts, symbol, side, D(qty), D(px), D(conviction), venue, exit_legs, leg_ratios))


def only(result: KernelResult, kind: type) -> Any:
    """The single command of a type in a result."""
    found = [c for c in result.commands if isinstance(c, kind)]
    assert len(found) == 1, result
    return found[0]


def placed(result: KernelResult) -> PlaceOrder:
    order: PlaceOrder = only(result, PlaceOrder)
    return order


def leverage_set(result: KernelResult) -> int:
    command: SetLeverage = only(result, SetLeverage)
    return command.leverage


def recorded(results: list[KernelResult] | KernelResult) -> RecordTrade:
    items = results if isinstance(results, list) else [results]
    trades = [c for r in items for c in r.commands if isinstance(c, RecordTrade)]
    assert len(trades) == 1, items
    return trades[0]


def order_frame(*, client: str = "", venue: str = "", symbol: str = "FET-USDT", side: str = "SELL",
                status: str = "FILLED", execution: str = "TRADE", z: str = "0", ap: str | None = None,
                p: str | None = None, n: str | None = None, kind: str = "MARKET", q: str | None = None,
                ts: int = 2_000, **extra: Any) -> dict[str, Any]:
    """A BingX ORDER_TRADE_UPDATE frame (already JSON-decoded)."""
    o: dict[str, Any] = {"s": symbol, "c": client, "i": venue, "S": side, "o": kind, "x": execution, "X": status,
                         "z": z}
    for key, value in (("ap", ap), ("p", p), ("n", n), ("q", q)):
        if value is not None:
            o[key] = value
    if n is not None:
        o["N"] = "USDT"
    o.update(extra)
    return {"e": "ORDER_TRADE_UPDATE", "E": ts, "o": o}


def fill_frame(order: PlaceOrder, *, z: str | D, ap: str, venue: str, ts: int, n: str | None = None,
               p: str | None = None, final: bool | None = None, symbol: str | None = None, kind: str = "MARKET",
               echo_client: bool = True, **extra: Any) -> dict[str, Any]:
    """A fill frame of one of our orders; `z` is the CUMULATIVE executed qty, `ap` the average fill price."""
    done = D(z) == order.qty if final is None else final
    return order_frame(client=order.client_id.value if echo_client else "", venue=venue,
                       symbol=symbol or str(order.symbol), side=order.side,
                       status="FILLED" if done else "PARTIALLY_FILLED", z=str(z), ap=ap, p=p, n=n, kind=kind,
                       q=str(order.qty), ts=ts, **extra)


def balance_frame(wb: str | None, *, ts: int = 9_000, reason: str = "ORDER", asset: str = "USDT",
                  **extra: Any) -> dict[str, Any]:
    """A BingX ACCOUNT_UPDATE frame with one balance entry (wb None: the entry has no wallet balance key)."""
    entry: dict[str, Any] = {"a": asset, "cw": "0"}
    if wb is not None:
        entry["wb"] = wb
    entry.update(extra)
    return {"e": "ACCOUNT_UPDATE", "E": ts, "a": {"m": reason, "B": [entry]}}


def outcomes(results: list[KernelResult]) -> list[str]:
    return [r.outcome for r in results]


def book(kernel: Kernel) -> dict[str, Any]:
    """Everything a refused input must leave alone: slot state and variables, capital and the account view."""
    a = kernel.account
    return {
        "state": kernel.slot.state,
        "vars": kernel.slot.vars(),
        "capital": kernel.capital_usdt,
        "anchor": a.anchor_usdt,
        "closed": a.closed_net_usdt,
        "funding": a.funding_usdt,
        "mismatch": a.mismatch,
        "calibration": tuple((str(s), f.calibration, f.calibrations, f.skipped)
                             for s, f in sorted(kernel.fee_models.items())),
        "folded": kernel.folded_trade_seq,
        "last_own_fill_ms": kernel.last_own_fill_ms,
        "halted": kernel.halted,
        "next_ref": kernel.next_ref,
        "seen_exec_ids": list(kernel.seen_exec_ids),
    }


# ------------------------------------------------------------------ scenarios


def open_short(kernel: Kernel, *, lots: int = 100, px: str = "0.6", ts: int = 1_000,
               venue: str = "5001") -> PlaceOrder:
    """Enter SHORT and fill the whole entry (venue order id `venue`); returns the entry order."""
    entry = placed(enter(kernel, qty=str(lots), px=px, ts=ts))
    results = kernel.handle_frame(fill_frame(entry, z=str(lots), ap=px, venue=venue, ts=ts + 1))
    assert outcomes(results) == ["OK"], results
    assert kernel.slot.state == "POSITION_OPEN"
    return entry


def closed_trade_kernel(seed: D = SEED) -> Kernel:
    """A kernel after one short round trip (100 FET 0.60 -> 0.50, fees from the fee model), terminal written."""
    kernel = make_kernel(seed)
    open_short(kernel)
    exit_order = placed(kernel.handle(ExitIntent(2_000)))
    results = kernel.handle_frame(fill_frame(exit_order, z="100", ap="0.5", venue="5002", ts=2_001))
    assert outcomes(results) == ["OK"] and kernel.slot.state == "CLOSED", results
    assert kernel.handle(TradeWritten(2_002, kernel.slot.model.trade_seq)).accepted
    return kernel


# ------------------------------------------------------------------ mutants (test-only spec mutations)


def compile_slot(spec_text: str, module_name: str, directory: Path) -> ModuleType:
    """Compile a (possibly mutated) slot spec with the project's code generator and import it from a tmp file."""
    machine = load_machine_text(spec_text, f"{module_name}.yaml")
    source = generate_python(machine, f"{module_name}.yaml")
    target = directory / f"{module_name}.py"
    target.write_text(source)
    spec = importlib.util.spec_from_file_location(module_name, target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
