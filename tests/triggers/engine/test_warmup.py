"""The Task SDK warm-up starts once per process, in the background, and never raises."""

from __future__ import annotations

import asyncio

from waitwise.triggers.engine import warmup


async def test_the_warm_up_starts_once_and_swallows_its_failure() -> None:
    warmup.warm_up()
    warmup.warm_up()  # the second wait of the process changes nothing
    assert len(warmup._STARTED) == 1
    # outside a triggerer the Variable call fails: that is logged at DEBUG, never raised
    await asyncio.wait_for(warmup._STARTED[0], 30)
    assert warmup._STARTED[0].exception() is None
    warmup.forget()
    assert warmup._STARTED == []
