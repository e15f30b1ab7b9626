"""Delivering what a wait learned: retried, then given up on without raising."""

from __future__ import annotations

import logging

import pytest

from waitwise.triggers.engine.progress import deliver
from waitwise.triggers.testing import FakeClock


@pytest.mark.parametrize(
    ("failures", "delivered", "sleeps"),
    [
        (0, True, []),
        (1, True, [1.0]),
        (2, True, [1.0, 4.0]),
        (3, False, [1.0, 4.0]),
    ],
)
async def test_deliver_retries_twice_then_gives_up(
    failures: int, delivered: bool, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    clock, calls = FakeClock(), []

    async def action() -> None:
        calls.append(clock.now())
        if len(calls) <= failures:
            raise OSError(28, "No space left on device")

    caplog.set_level(logging.WARNING)
    assert await deliver(action, clock, "Recording") is delivered
    assert clock.sleeps == sleeps
    assert len(calls) == min(failures + 1, 3)
    assert ("failed three times" in caplog.text) is not delivered
