"""AccountProjection: the kernel's view of capital, equity and fees, and its reconciliation with the venue.

Capital is derived, never overwritten by stray frames:

    capital = anchor + closed trades' net + funding + the live trade's (realised - fees)

The anchor is seeded from the venue's wallet and re-anchored only when the slot is flat (nothing open can be
double counted, D5). A balance frame with no wallet balance (a margin-only frame, wallet 0) never touches
capital (D6). A wallet that disagrees with capital beyond the tolerance while a trade is live freezes entries
until the two agree again or the slot is flat and re-anchored (capital_consistency); exits are never frozen.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

ZERO = Decimal(0)
FEE_CALIBRATION_MAX_DEVIATION = Decimal("0.15")  # a fill whose fee is further off is not trusted for calibration


@attrs.define
class FeeModel:
    """Published maker/taker rates with a calibration ratio learned from the venue's own fills."""

    taker_rate: Decimal
    maker_rate: Decimal
    calibration: Decimal = Decimal(1)
    calibrations: int = 0
    skipped: int = 0

    def rate(self, is_maker: bool) -> Decimal:
        return (self.maker_rate if is_maker else self.taker_rate) * self.calibration

    def predict(self, quote_usdt: Decimal, is_maker: bool) -> Decimal:
        return quote_usdt * self.rate(is_maker)

    def observe(self, quote_usdt: Decimal, fee_usdt: Decimal, is_maker: bool) -> bool:
        """Calibrate from a fill's actual fee; skipped (False) when it deviates > 15 % from the published rate."""
        published = quote_usdt * (self.maker_rate if is_maker else self.taker_rate)
        if published <= 0 or fee_usdt <= 0:
            return False
        if abs(fee_usdt - published) / published > FEE_CALIBRATION_MAX_DEVIATION:
            self.skipped += 1
            return False
        self.calibration = (fee_usdt / published).quantize(Decimal("0.000001"))
        self.calibrations += 1
        return True


@attrs.frozen
class Reconciled:
    status: str  # OK | MISMATCH | REANCHORED | IGNORED_NO_BALANCE
    wallet_usdt: Decimal | None
    capital_usdt: Decimal
    delta_usdt: Decimal


@attrs.define
class AccountProjection:
    anchor_usdt: Decimal
    tolerance_abs_usdt: Decimal
    tolerance_rel: Decimal
    closed_net_usdt: Decimal = ZERO
    funding_usdt: Decimal = ZERO
    peak_equity_usdt: Decimal = ZERO
    mismatch: bool = False
    last_wallet_usdt: Decimal | None = None

    def capital(self, live_net_usdt: Decimal) -> Decimal:
        return self.anchor_usdt + self.closed_net_usdt + self.funding_usdt + live_net_usdt

    def note_equity(self, equity_usdt: Decimal) -> None:
        if equity_usdt > self.peak_equity_usdt:
            self.peak_equity_usdt = equity_usdt

    def fold_trade(self, trade_net_usdt: Decimal) -> None:
        """A finished trade's net moves from 'live' into the closed total (when the next trade starts)."""
        self.closed_net_usdt += trade_net_usdt

    def reconcile(self, wallet_usdt: Decimal | None, live_net_usdt: Decimal, flat: bool) -> Reconciled:
        capital = self.capital(live_net_usdt)
        if wallet_usdt is None or wallet_usdt <= 0:
            return Reconciled("IGNORED_NO_BALANCE", wallet_usdt, capital, ZERO)  # D6
        self.last_wallet_usdt = wallet_usdt
        delta = wallet_usdt - capital
        if abs(delta) <= self.tolerance_abs_usdt + self.tolerance_rel * wallet_usdt:
            self.mismatch = False
            return Reconciled("OK", wallet_usdt, capital, delta)
        if flat:
            # The venue is the ledger of record: with nothing open, re-anchor so capital equals the wallet
            # (absorbs other systems on a shared account, fees we could not see, deposits).
            self.anchor_usdt += delta
            self.mismatch = False
            return Reconciled("REANCHORED", wallet_usdt, wallet_usdt, delta)
        self.mismatch = True
        return Reconciled("MISMATCH", wallet_usdt, capital, delta)
