"""Test helpers shipped with waitwise: a fake clock and a recording metrics sink.

Use them with :func:`waitwise.triggers.runtime.use_runtime` to drive a trigger's ``run()``
without sleeping::

    clock = FakeClock(now_s=1_700_000_000.0)
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        event = await anext(trigger.run())
    assert clock.sleeps == [1.0, 2.0, 4.0]
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class FakeClock:
    """A clock whose ``sleep`` records the delay and advances virtual time at once.

    ``sleep`` still yields to the event loop (``asyncio.sleep(0)``) so cancellation and other
    tasks behave as with a real clock.
    """

    now_s: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        """Return the virtual time."""
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        """Record ``seconds``, advance virtual time by it, and yield once."""
        self.sleeps.append(seconds)
        self.now_s += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (e.g. a slow probe, a triggerer outage)."""
        self.now_s += seconds


@dataclass
class RecordingSink:
    """A metrics sink that keeps every metric as ``(kind, name, value, tags)``."""

    records: list[tuple[str, str, float, dict[str, str]]] = field(default_factory=list)

    def incr(self, name: str, tags: dict[str, str], count: int = 1) -> None:
        """Record a counter increment."""
        self.records.append(("incr", name, float(count), tags))

    def timing(self, name: str, seconds: float, tags: dict[str, str]) -> None:
        """Record a timing."""
        self.records.append(("timing", name, seconds, tags))

    def gauge(self, name: str, value: float, tags: dict[str, str]) -> None:
        """Record a gauge."""
        self.records.append(("gauge", name, value, tags))

    def names(self) -> list[str]:
        """Return the metric names in emission order."""
        return [name for _kind, name, _value, _tags in self.records]
