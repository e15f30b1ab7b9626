"""Time as an injected object: the trigger loop never reads the clock or sleeps directly."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the poll loop needs of time.

    ``now()`` is wall-clock epoch seconds (UTC).  Wall time, not a monotonic clock, because a
    wait's start and deadline must mean the same thing in another triggerer process after a
    restart; a step of the system clock shifts the schedule by that step and nothing else.
    """

    def now(self) -> float:
        """Return the current epoch time in seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` without blocking the event loop."""
        ...


class SystemClock:
    """The real clock: :func:`time.time` and :func:`asyncio.sleep`."""

    def now(self) -> float:
        """Return :func:`time.time`."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Await :func:`asyncio.sleep`."""
        await asyncio.sleep(seconds)
