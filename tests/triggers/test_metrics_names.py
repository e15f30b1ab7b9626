"""Metric names: breaker events in snake case, like every other name."""

from __future__ import annotations

import pytest

from waitwise.triggers.metrics import breaker_event


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ("BreakerOpened", "waitwise.breaker.opened"),
        ("BreakerHalfOpened", "waitwise.breaker.half_opened"),
        ("BreakerClosed", "waitwise.breaker.closed"),
        ("BreakerRejected", "waitwise.breaker.rejected"),
        ("BreakerProbeExpired", "waitwise.breaker.probe_expired"),
        ("BreakerForced", "waitwise.breaker.forced"),
    ],
)
def test_breaker_events_are_named_in_snake_case(event: str, name: str) -> None:
    assert breaker_event(event) == name
