"""The embedded deterministic simulated venue: a BingX-like USDT-M perpetual venue in virtual time.

- `SimConfig` / `SimSymbol` / `FeedParams` (config.py): contracts, account, feed, funding and liquidity.
- `SimEngine` (engine.py): the synchronous venue: quotes, matching, account, funding, BingX user-stream frames,
  snapshot / restore.
- `SyntheticFeed`, `ReplayFeed` (feed.py): the seeded GBM-with-jumps feed, or a replay of recorded ticks.
- `SimVenuePort` (port.py): the engine behind the runtime's asyncio `Venue` port, with pluggable clocks.

See docs/sim.md for the model, its determinism guarantees and what it does not model.
"""

from pink_adapters.sim.config import DEFAULT_START_MS, FeedParams, SimConfig, SimSymbol, default_symbols
from pink_adapters.sim.engine import SimEngine, SimFill, SimFunding, SimLedger, SimOrder, SimOverflow
from pink_adapters.sim.feed import ReplayError, ReplayFeed, SyntheticFeed, load_replay
from pink_adapters.sim.port import FreeRunningClock, ManualClock, ScaledWallClock, SimClock, SimVenuePort

__all__ = [
    "DEFAULT_START_MS",
    "FeedParams",
    "FreeRunningClock",
    "ManualClock",
    "ReplayError",
    "ReplayFeed",
    "ScaledWallClock",
    "SimClock",
    "SimConfig",
    "SimEngine",
    "SimFill",
    "SimFunding",
    "SimLedger",
    "SimOrder",
    "SimOverflow",
    "SimSymbol",
    "SimVenuePort",
    "SyntheticFeed",
    "default_symbols",
    "load_replay",
]
