"""The sim venue is checked against spec/venue.yaml order by order: the checker accepts what the spec allows
and names the first report that differs."""

from __future__ import annotations

import pytest

from pink_adapters.sim.lifecycle import OrderLifecycles, VenueSpecBreach


def test_a_lifecycle_the_spec_allows() -> None:
    lc = OrderLifecycles()
    lc.accepted(1, market=False, post_only=True, reduce_only=False, lots=10)
    lc.reported(1, "ack", "NEW", 0)
    lc.reported(1, "match", "PARTIALLY_FILLED", 4, lots=4)
    lc.reported(1, "cancel", "CANCELED", 4)
    lc.accepted(2, market=True, post_only=False, reduce_only=False, lots=3)
    lc.reported(2, "ack", "NEW", 0)
    lc.reported(2, "match", "FILLED", 3, lots=3)


@pytest.mark.parametrize(("steps", "message"), [
    ([("match", "FILLED", 4, 4)], "the sim reported FILLED cum=4 after MATCH; spec/venue.yaml says PARTIALLY_FILLED"),
    ([("match", "PARTIALLY_FILLED", 5, 4)], "spec/venue.yaml says PARTIALLY_FILLED cum=4"),
    ([("expire", "EXPIRED", 0, 0)], "EXPIRE in OPEN is NOT_APPLICABLE"),  # a plain LIMIT order never expires
    ([("match", "FILLED", 10, 10), ("match", "FILLED", 10, 1)], "for an order the venue never accepted"),
])
def test_reports_the_spec_forbids_are_named(steps: list[tuple[str, str, int, int]], message: str) -> None:
    lc = OrderLifecycles()
    lc.accepted(7, market=False, post_only=False, reduce_only=False, lots=10)
    lc.reported(7, "ack", "NEW", 0)
    with pytest.raises(VenueSpecBreach, match=message):
        for event, status, cum, lots in steps:
            lc.reported(7, event, status, cum, lots=lots)


def test_a_restored_order_continues_from_its_state() -> None:
    lc = OrderLifecycles()
    lc.resume(3, market=False, post_only=False, reduce_only=True, lots=5, filled_lots=2, status="PARTIALLY_FILLED")
    lc.reported(3, "expire", "EXPIRED", 2)  # a reduce-only remainder may expire
