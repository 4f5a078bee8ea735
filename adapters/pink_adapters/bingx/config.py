"""Configuration of the BingX adapter: endpoints and timing from the `[bingx]` section, credentials from the
environment only.

Example::

    config = BingXConfig.from_mapping({"base_url": "http://127.0.0.1:8080", "ws_url": "ws://127.0.0.1:8080/swap-market",
                                       "market_ws_url": "ws://127.0.0.1:8080/swap-market"})
    credentials = BingXCredentials.from_env()      # PINK_BINGX_API_KEY, PINK_BINGX_API_SECRET

A bad value is refused with a message naming the key; a missing credential names the environment variable.
Credentials never appear in a repr, a log line or an exception text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from pink_adapters.bingx.wire import API_KEY_ENV, API_SECRET_ENV
from pink_fsm.runtime.config import ConfigError

__all__ = ["BingXConfig", "BingXConfigError", "BingXCredentials", "BingXTimeouts"]

PROD_BASE_URL = "https://open-api.bingx.com"
PROD_WS_URL = "wss://open-api-swap.bingx.com/swap-market"
POSITION_MODES = ("one_way", "hedge")


class BingXConfigError(ConfigError):
    """A `[bingx]` value or a credential that cannot be used; the message names the key or the variable."""


def _url(schemes: tuple[str, ...]) -> Any:
    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not value.startswith(schemes) or any(c.isspace() for c in value):
            raise BingXConfigError(f"[bingx] {attribute.name}: expected a {' or '.join(schemes)} URL, got {value!r}")
    return check


def _positive(low: float, high: float) -> Any:
    def check(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise BingXConfigError(f"[bingx] {attribute.name}: expected a number in [{low}, {high}], got {value!r}")
    return check


@attrs.frozen
class BingXTimeouts:
    """Every wait of the adapter, in seconds, each with a bound.

    `request_s`: one REST request, connect to last byte. `ws_open_s`: a websocket handshake. `ws_idle_s`: no
    message (BingX pings every 5 s) for this long means the connection is dead: reconnect. `keepalive_s`: the
    listenKey is extended this often (BingX: valid 60 min, extend every 30). `backoff_min_s`/`backoff_max_s`:
    reconnect and retry backoff (doubling, with jitter). `stream_ready_s`: how long a placement waits for the
    user stream to be connected before refusing (no order whose fills we could not see)."""

    request_s: float = attrs.field(default=10.0, validator=_positive(0.05, 120))
    ws_open_s: float = attrs.field(default=10.0, validator=_positive(0.05, 120))
    ws_idle_s: float = attrs.field(default=30.0, validator=_positive(0.1, 600))
    keepalive_s: float = attrs.field(default=1800.0, validator=_positive(0.05, 3000))
    backoff_min_s: float = attrs.field(default=0.5, validator=_positive(0.001, 60))
    backoff_max_s: float = attrs.field(default=30.0, validator=_positive(0.001, 600))
    stream_ready_s: float = attrs.field(default=10.0, validator=_positive(0.05, 120))


@attrs.frozen
class BingXConfig:
    """Where BingX is and how to talk to it. Defaults are production; point all three URLs at the loopback
    server (`python -m pink_adapters.bingx.loopback`) for demos and tests."""

    base_url: str = attrs.field(default=PROD_BASE_URL, validator=_url(("https://", "http://")))
    ws_url: str = attrs.field(default=PROD_WS_URL, validator=_url(("wss://", "ws://")))
    market_ws_url: str = attrs.field(default=PROD_WS_URL, validator=_url(("wss://", "ws://")))
    recv_window_ms: int = attrs.field(default=5000, validator=_positive(1, 60_000))
    timeouts: BingXTimeouts = attrs.field(factory=BingXTimeouts)
    position_mode: str = "one_way"
    max_retries: int = attrs.field(default=3, validator=_positive(0, 10))  # 429 / 5xx / busy, per request
    requests_per_s: float = attrs.field(default=8.0, validator=_positive(0.1, 100))  # below BingX's 10 rps
    max_pending_frames: int = attrs.field(default=100_000, validator=_positive(100, 10_000_000))

    def __attrs_post_init__(self) -> None:
        if self.position_mode not in POSITION_MODES:
            raise BingXConfigError(f"[bingx] position_mode: expected one of {', '.join(POSITION_MODES)}, "
                                   f"got {self.position_mode!r}")
        if isinstance(self.recv_window_ms, bool) or not isinstance(self.recv_window_ms, int):
            raise BingXConfigError(f"[bingx] recv_window_ms: expected an integer, got {self.recv_window_ms!r}")

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> BingXConfig:
        """The `[bingx]` section of the run configuration. Keys: base_url, ws_url, market_ws_url,
        recv_window_ms, position_mode, max_retries, requests_per_s, max_pending_frames and the timeouts
        (request_s, ws_open_s, ws_idle_s, keepalive_s, backoff_min_s, backoff_max_s, stream_ready_s), flat or
        under a `timeouts` table. Secrets are refused here: they live in the environment."""
        top = {f.name for f in attrs.fields(cls)} - {"timeouts"}
        timing = {f.name for f in attrs.fields(BingXTimeouts)}
        kwargs: dict[str, Any] = {}
        timeouts: dict[str, Any] = {}
        for key, value in section.items():
            if any(word in key.lower() for word in ("secret", "key", "password", "token")):
                raise BingXConfigError(f"[bingx] {key}: credentials are read from the environment only "
                                       f"({API_KEY_ENV}, {API_SECRET_ENV}); remove it from the configuration")
            if key == "timeouts" and isinstance(value, Mapping):
                for sub, sub_value in value.items():
                    if sub not in timing:
                        known = ", ".join(sorted(timing))
                        raise BingXConfigError(f"[bingx.timeouts] unknown key {sub!r}; known: {known}")
                    timeouts[sub] = sub_value
            elif key in timing:
                timeouts[key] = value
            elif key in top:
                kwargs[key] = value
            else:
                raise BingXConfigError(f"[bingx] unknown key {key!r}; known: {', '.join(sorted(top | timing))}")
        try:
            return cls(timeouts=BingXTimeouts(**timeouts), **kwargs)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, BingXConfigError):
                raise
            raise BingXConfigError(f"[bingx] {exc}") from None


class BingXCredentials:
    """An API key and secret. Read from the environment only; never shown (repr, str, pickling for logs)."""

    __slots__ = ("_api_key", "_secret")

    def __init__(self, api_key: str, secret: str) -> None:
        self._api_key = api_key
        self._secret = secret

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BingXCredentials:
        env = os.environ if environ is None else environ
        values = []
        for name in (API_KEY_ENV, API_SECRET_ENV):
            value = env.get(name, "").strip()
            if not value:
                raise BingXConfigError(f"{name} is not set: export the BingX API credentials in the environment "
                                       f"({API_KEY_ENV} and {API_SECRET_ENV}); they are never read from a file")
            if any(c.isspace() or not c.isprintable() for c in value) or len(value) > 256:
                raise BingXConfigError(f"{name}: must be 1-256 printable characters without spaces")
            values.append(value)
        return cls(values[0], values[1])

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def secret(self) -> str:
        return self._secret

    def redact(self, text: str) -> str:
        """`text` with the key and the secret replaced, for anything that leaves the adapter."""
        for value in (self._secret, self._api_key):
            if value:
                text = text.replace(value, "<redacted>")
        return text

    def __repr__(self) -> str:
        return "BingXCredentials(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("BingXCredentials cannot be pickled (credentials stay in the process environment)")
