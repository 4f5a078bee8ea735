"""The BingX USDT-M perpetual swap adapter (REST v2 + websockets) and its loopback server.

- `BingXVenue` (venue.py): `pink_fsm.ports.Venue` over BingX; `build_bingx_venue(section)` builds it from the
  `[bingx]` table of `pink run` with credentials from `PINK_BINGX_API_KEY` / `PINK_BINGX_API_SECRET`.
- `BingXConfig`, `BingXTimeouts`, `BingXCredentials` (config.py).
- `sign`, `signed_query`, `decode_frame`, `classify_reject`, `BingXError` (wire.py): the protocol, shared with
- `LoopbackServer` (loopback.py): BingX's wire protocol on 127.0.0.1 in front of the sim engine.

See docs/bingx.md.
"""

from pink_adapters.bingx.config import BingXConfig, BingXConfigError, BingXCredentials, BingXTimeouts
from pink_adapters.bingx.venue import BingXStats, BingXVenue, build_bingx_venue
from pink_adapters.bingx.wire import BingXError, classify_reject, decode_frame, sign, signed_query

__all__ = [
    "BingXConfig",
    "BingXConfigError",
    "BingXCredentials",
    "BingXError",
    "BingXStats",
    "BingXTimeouts",
    "BingXVenue",
    "build_bingx_venue",
    "classify_reject",
    "decode_frame",
    "sign",
    "signed_query",
]
