"""The sim venue in a process of its own: venue truth that outlives the runtime.

A real exchange keeps its orders, positions and wallet when a trading process dies; the embedded sim (in the
runtime's process) cannot. `serve` runs a `SimEngine` behind a local socket (a Unix socket, authenticated with
a key from the environment); `RemoteSimVenue` is the runtime's side, a synchronous venue (the simulation
driver's `SyncVenue`) whose every call is one request and one answer. Kill the runtime at any moment and
restart it against the same address: it recovers from the venue's truth like it would from BingX.

    PINK_SIM_AUTHKEY=$(openssl rand -hex 16) python -m pink_adapters.sim.remote --address /tmp/venue.sock &
    PINK_SIM_AUTHKEY=... pink run --config run.toml        # with [sim] remote = "/tmp/venue.sock"

Frames the runtime drained but never processed are lost with it, as a websocket's would be: recovery reads open
orders, positions and the wallet instead. The venue's virtual clock only moves when a runtime advances it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from pink_adapters.sim.config import SimConfig, default_symbols
from pink_adapters.sim.engine import SimEngine
from pink_fsm.kernel.values import ContractSpec, Symbol
from pink_fsm.ports import OrderRequest, PlaceResult, Quote, VenueError, VenueOrder, VenuePosition

LOG = logging.getLogger("pink_adapters.sim.remote")
AUTHKEY_ENV = "PINK_SIM_AUTHKEY"
METHODS = frozenset({"contracts", "next_event_ms", "advance", "place_order", "cancel_order", "set_leverage", "fills",
                     "open_orders", "positions", "balance_usdt", "drain_frames", "snapshot", "now_ms"})


def authkey_from_env() -> bytes:
    raw = os.environ.get(AUTHKEY_ENV, "")
    if len(raw) < 16:
        raise VenueError(f"{AUTHKEY_ENV}: set it to a shared secret of at least 16 characters (both the venue "
                         f"process and the runtime read it from the environment)")
    return raw.encode()


def serve(engine: SimEngine, address: str, authkey: bytes) -> None:
    """Answer one runtime connection at a time until a `shutdown` request; a runtime that disappears (killed)
    only ends its connection, never the venue."""
    with Listener(address, family="AF_UNIX", authkey=authkey) as listener:
        print(f"sim venue listening on {address}", flush=True)
        while True:
            try:
                conn = listener.accept()
            except (OSError, EOFError) as exc:  # a client that failed the handshake
                LOG.warning("connection refused: %s", exc)
                continue
            with conn:
                if _session(engine, conn):
                    return


def _session(engine: SimEngine, conn: Connection) -> bool:
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError, ValueError):
            return False  # the runtime went away mid-request or between requests: the venue stays
        if method == "shutdown":
            conn.send(("ok", None))
            return True
        if method not in METHODS:
            conn.send(("error", f"unknown venue method {method!r}"))
            continue
        try:
            target = getattr(engine, method)
            value = target(*args) if callable(target) else target
        except Exception as exc:  # the venue answers with an error, as an exchange would
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        try:
            conn.send(("ok", value))
        except (OSError, ValueError):
            return False


class RemoteSimVenue:
    """The runtime's side: the `SyncVenue` of the simulation driver, over the socket."""

    def __init__(self, address: str, authkey: bytes | None = None) -> None:
        try:
            self._conn = Client(address, family="AF_UNIX", authkey=authkey or authkey_from_env())
        except (OSError, EOFError) as exc:
            raise VenueError(f"sim venue at {address}: cannot connect ({exc}); is the venue process running?") \
                from None

    def _call(self, method: str, *args: Any) -> Any:
        try:
            self._conn.send((method, args))
            status, value = self._conn.recv()
        except (OSError, EOFError) as exc:
            raise VenueError(f"sim venue connection lost during {method}: {exc}") from None
        if status != "ok":
            raise VenueError(str(value))
        return value

    def contracts(self) -> dict[Symbol, ContractSpec]:
        result: dict[Symbol, ContractSpec] = self._call("contracts")
        return result

    def next_event_ms(self) -> int | None:
        result: int | None = self._call("next_event_ms")
        return result

    def advance(self, to_ms: int) -> list[Quote]:
        result: list[Quote] = self._call("advance", to_ms)
        return result

    def place_order(self, request: OrderRequest) -> PlaceResult:
        result: PlaceResult = self._call("place_order", request)
        return result

    def cancel_order(self, symbol: Symbol, client_id: str) -> bool:
        return bool(self._call("cancel_order", symbol, client_id))

    def set_leverage(self, symbol: Symbol, leverage: int) -> None:
        self._call("set_leverage", symbol, leverage)

    def open_orders(self) -> list[VenueOrder]:
        result: list[VenueOrder] = self._call("open_orders")
        return result

    def positions(self) -> list[VenuePosition]:
        result: list[VenuePosition] = self._call("positions")
        return result

    def balance_usdt(self) -> Decimal:
        result: Decimal = self._call("balance_usdt")
        return result

    def drain_frames(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("drain_frames")
        return result

    def fills(self) -> list[Any]:
        """The venue's executions (`SimFill`), for checks: what did the venue really execute?"""
        result: list[Any] = self._call("fills")
        return result

    def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("snapshot")
        return result

    def shutdown(self) -> None:
        self._call("shutdown")

    def close(self) -> None:
        self._conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pink_adapters.sim.remote",
                                     description="Run the sim venue in its own process (venue truth that "
                                                 "survives the runtime). The key comes from $" + AUTHKEY_ENV + ".")
    parser.add_argument("--address", required=True, help="Unix socket path to listen on")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--symbols", default="BTC-USDT", help="comma-separated, e.g. BTC-USDT,ETH-USDT")
    parser.add_argument("--initial-balance-usdt", default="10000")
    args = parser.parse_args(argv)
    try:
        authkey = authkey_from_env()
        config = SimConfig(symbols=default_symbols(args.symbols.split(",")), seed=args.seed,
                           initial_balance_usdt=Decimal(args.initial_balance_usdt))
    except (VenueError, ValueError, ArithmeticError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(SimEngine(config), args.address, authkey)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
