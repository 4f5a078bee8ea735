"""The BingX wire format: request signing, parameter text, websocket frame decoding and error codes.

Everything here is pure (no I/O) so the adapter and the loopback server share one definition of the protocol
(see /work/shared/reference/bingx-api.md sections 2, 3 and 6). Signing follows the reference exactly: the
signature is the lowercase hex HMAC-SHA256 of the raw query string `k1=v1&k2=v2...` keyed by the API secret,
and every parameter (POST and DELETE too) travels in the query string with `&signature=<hex>` appended.

Example (the official test vector)::

    sign(SECRET, "symbol=BTC-USDT&timestamp=1667872120843&side=LONG&leverage=6")
    # -> "4f581ecdb1fa09b9d6e57886b6f70cffed17f82b93399722939e49a38edec2bf"
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import zlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from pink_fsm.ports import RejectCode, VenueError

__all__ = [
    "API_KEY_ENV",
    "API_SECRET_ENV",
    "BingXError",
    "Decoded",
    "classify_reject",
    "decode_frame",
    "encode_frame",
    "format_param",
    "is_rate_limit",
    "is_timestamp_error",
    "sign",
    "signed_query",
]

API_KEY_ENV = "PINK_BINGX_API_KEY"
API_SECRET_ENV = "PINK_BINGX_API_SECRET"
GZIP_MAGIC = b"\x1f\x8b"
MAX_FRAME_BYTES = 1 << 20  # a compressed (or plain) websocket message larger than this is refused unread
MAX_INFLATED_BYTES = 4 << 20  # a gzip member inflating beyond this is refused (no zip bombs)
BAD_FRAME_EXCERPT_CHARS = 200  # how much of an undecodable frame is kept for the audit log
# Values are restricted to unreserved URL characters, so the raw string BingX verifies and the URL sent are the
# same bytes (the reference leaves open whether BingX signs raw or percent-encoded text: never let it matter).
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_SAFE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")

# ------------------------------------------------------------------ signing


def sign(secret: str, query: str) -> str:
    """Lowercase hex HMAC-SHA256 of `query` keyed by `secret` (reference section 2)."""
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def format_param(value: object) -> str:
    """The text of one request parameter: Decimal in plain notation, booleans as true/false, ints as digits."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"request parameter: {value} is not a finite number")
        text = format(value, "f")
    elif isinstance(value, int | str):
        text = str(value)
    else:
        raise TypeError(f"request parameter: unsupported type {type(value).__name__} (use Decimal, int, str, bool)")
    if not _SAFE_VALUE.match(text):
        raise ValueError(f"request parameter {text[:40]!r}: only letters, digits and . _ - are sent")
    return text


def signed_query(params: Mapping[str, object], secret: str) -> str:
    """`k=v&...` (keys sorted, like ccxt) with `&signature=<hex>` over exactly the text before it."""
    pairs = []
    for key in sorted(params):
        if not _SAFE_KEY.match(key):
            raise ValueError(f"request parameter name {key[:40]!r} is not a plain identifier")
        pairs.append(f"{key}={format_param(params[key])}")
    raw = "&".join(pairs)
    return f"{raw}&signature={sign(secret, raw)}"


# ------------------------------------------------------------------ websocket frames


@attrs.frozen
class Decoded:
    """One websocket message: `kind` is "ping" (the server's heartbeat), "json" (payload is the decoded value)
    or "bad" (payload is a JSON-able excerpt, reason says why)."""

    kind: str
    payload: Any = None
    reason: str = ""


def _excerpt(data: bytes | str) -> str:
    text = data if isinstance(data, str) else data[:BAD_FRAME_EXCERPT_CHARS].hex()
    return text[:BAD_FRAME_EXCERPT_CHARS]


def _gunzip(data: bytes) -> bytes:
    """Inflate one gzip member, bounded; ValueError when truncated, corrupt or too large."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise ValueError(f"gzip: corrupt ({exc})") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"gzip: inflates beyond {MAX_INFLATED_BYTES} bytes")
    if not inflater.eof:
        raise ValueError("gzip: truncated")
    return out


def decode_frame(message: bytes | str) -> Decoded:
    """Decode a server message (gzip binary, or plain text) without ever raising."""
    if len(message) > MAX_FRAME_BYTES:
        return Decoded("bad", _excerpt(message), f"frame of {len(message)} bytes exceeds {MAX_FRAME_BYTES}")
    if isinstance(message, bytes):
        try:
            raw = _gunzip(message) if message[:2] == GZIP_MAGIC else message
            text = raw.decode("utf-8")
        except ValueError as exc:  # UnicodeDecodeError is a ValueError
            return Decoded("bad", _excerpt(message), str(exc) if message[:2] == GZIP_MAGIC else "not gzip, not utf-8")
    else:
        text = message
    stripped = text.strip()
    if stripped == "Ping":
        return Decoded("ping")
    try:
        value = json.loads(stripped, parse_float=Decimal)
    except ValueError as exc:  # JSONDecodeError; also a number literal too large for int()
        return Decoded("bad", _excerpt(text), f"not JSON ({exc})")
    if isinstance(value, dict) and "ping" in value and len(value) <= 2:
        return Decoded("ping", value)  # the spot-style JSON heartbeat {"ping": id, "time": ...}
    return Decoded("json", value)


def encode_frame(value: object) -> bytes:
    """A server frame as BingX sends it: JSON (or the text `Ping`), gzip-compressed."""
    import gzip

    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return gzip.compress(text.encode("utf-8"), mtime=0)


# ------------------------------------------------------------------ errors


class BingXError(VenueError):
    """BingX refused or did not answer a request. `code` is BingX's business code (0 when the failure was at
    the HTTP or transport level), `http_status` the HTTP status (0 when no response arrived), `path` the
    endpoint. The text never holds credentials: the adapter redacts them before building it."""

    def __init__(self, path: str, message: str, *, code: int = 0, http_status: int = 0) -> None:
        self.path = path
        self.code = code
        self.http_status = http_status
        self.msg = message
        where = f"code {code}" if code else (f"HTTP {http_status}" if http_status else "no response")
        super().__init__(f"BingX {path}: {where}: {message}")

    @property
    def outcome_unknown(self) -> bool:
        """True when the venue may have acted on the request (5xx, timeout, lost connection)."""
        return self.code == 0 and (self.http_status == 0 or self.http_status >= 500)


# Codes that mean "the request itself could not be served": raised as BingXError, never a RejectCode. Codes from
# reference section 3 (100410/100500/100503/80012 busy; 100001/100412/100413/100419 auth; 100414 risk control).
VENUE_ERROR_CODES = frozenset({100001, 100412, 100413, 100414, 100419, 100410, 100500, 100503})
RATE_LIMIT_CODES = frozenset({100410})
# Reference section 3: 101204 insufficient margin, 100202 insufficient balance (80012 wraps "margin is not enough").
MARGIN_CODES = frozenset({101204, 100202})
# Reference section 3: 80014 invalid parameter, 100400 bad request, 110425 min notional, 100204 bad request,
# 100421 pair restricted from API trading.
INVALID_CODES = frozenset({80014, 100400, 110425, 100204, 100421})
# [ASSUMED] Not found in any source: BingX's codes for a post-only order that would take and for a reduce-only
# order that would increase a position. The loopback uses these; the message text is matched first.
POST_ONLY_CODES = frozenset({101400})
REDUCE_ONLY_CODES = frozenset({101290})
ORDER_NOT_FOUND_CODES = frozenset({80016, 109414})

_POST_ONLY_WORDS = ("post only", "postonly", "post-only", "would take", "immediately match")
_REDUCE_ONLY_WORDS = ("reduce only", "reduceonly", "reduce-only")
_MARGIN_WORDS = ("margin is not enough", "insufficient margin", "insufficient balance", "not enough margin")
_INVALID_WORDS = ("minimum nominal", "min notional", "invalid param", "precision")


def is_rate_limit(code: int, http_status: int) -> bool:
    return http_status in (418, 429) or code in RATE_LIMIT_CODES


def is_timestamp_error(code: int, msg: str) -> bool:
    """Timestamp outside the receive window (reference section 3: 109400 / 100421 variants, messages vary)."""
    return "timestamp" in msg.lower() and code in (109400, 100421, 100400, 80014)


def classify_reject(code: int, msg: str) -> RejectCode | None:
    """Why a placement was refused, from BingX's code and message; None when the error is not about the order
    (auth, busy, risk control: the caller raises BingXError). Unknown codes are OTHER: the order does not exist."""
    if code in VENUE_ERROR_CODES:
        return None
    text = msg.lower()
    if code in POST_ONLY_CODES or any(w in text for w in _POST_ONLY_WORDS):
        return RejectCode.POST_ONLY_WOULD_TAKE
    if code in REDUCE_ONLY_CODES or any(w in text for w in _REDUCE_ONLY_WORDS):
        return RejectCode.REDUCE_ONLY
    if code in MARGIN_CODES or any(w in text for w in _MARGIN_WORDS):
        return RejectCode.INSUFFICIENT_MARGIN
    if code == 80012:
        return None  # "service unavailable" unless it wraps a margin error (matched above)
    if code in INVALID_CODES or any(w in text for w in _INVALID_WORDS):
        return RejectCode.INVALID
    return RejectCode.OTHER
