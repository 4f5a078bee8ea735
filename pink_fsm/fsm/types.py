"""Types shared by every generated machine."""

from __future__ import annotations

import enum


class Side(enum.Enum):
    """Position side. NONE means no position (and no side yet)."""

    NONE = "NONE"
    LONG = "LONG"
    SHORT = "SHORT"


SIDE_SIGN: dict[Side, int] = {Side.NONE: 0, Side.LONG: 1, Side.SHORT: -1}
SIDE_SIGN_EXACT: dict[str, int] = {"NONE": 0, "LONG": 1, "SHORT": -1}

NO_ORDER = 0
