"""The per-loop poll hub: shared batches, exact timing for one trigger, early wake-up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from waitwise.triggers import _hub
from waitwise.triggers.clock import SystemClock
from waitwise.triggers.file import FileArrivalTrigger
from waitwise.triggers.metrics import POKES
from waitwise.triggers.policy import Constant
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0


class LandsAt(FakeClock):
    def __init__(self, folder: Path, at: float) -> None:
        super().__init__(now_s=T0)
        self.folder, self.at = folder, at

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.now_s >= self.at:
            for i in range(100):
                (self.folder / f"f{i}").touch()


def trigger(path: Path, interval: float, started_at: float = T0) -> FileArrivalTrigger:
    return FileArrivalTrigger(
        filepath=str(path),
        poll=Constant(interval=interval).to_config(),
        timeout=60.0,
        started_at=started_at,
    )


async def test_a_hundred_waits_share_one_batch_per_poke_round(tmp_path: Path) -> None:
    clock, sink = LandsAt(tmp_path, at=T0 + 3), RecordingSink()
    with use_runtime(Runtime(clock=clock, metrics=sink)):
        waits = [trigger(tmp_path / f"f{i}", 1.0).run() for i in range(100)]
        events = await asyncio.gather(*(anext(w) for w in waits))
        batches = _hub.hub(clock, sink).batches

    assert [e.payload["pokes"] for e in events] == [4] * 100  # +0 +1 +2 +3
    assert batches == 4  # one thread hop per round, not one per poke
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert sink.records[0] == ("incr", POKES, 100.0, {"trigger": "FileArrivalTrigger"})


async def test_a_new_wait_wakes_a_sleeping_hub(tmp_path: Path) -> None:
    (tmp_path / "here").touch()
    clock, sink = SystemClock(), RecordingSink()
    with use_runtime(Runtime(clock=clock, metrics=sink)):
        now = clock.now()
        slow = asyncio.ensure_future(anext(trigger(tmp_path / "never", 30.0, now).run()))
        napping: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        hub = _hub.hub(clock, sink)
        hub._nap = _signal_then(hub._nap, napping)  # type: ignore[method-assign,assignment]
        await asyncio.wait_for(napping, 5.0)  # the hub sleeps ~30 s until the next poke
        event = await asyncio.wait_for(anext(trigger(tmp_path / "here", 30.0, now).run()), 5.0)
        slow.cancel()
    assert event.payload["status"] == "success"
    assert event.payload["pokes"] == 1


def _signal_then(
    nap: Callable[[float], Awaitable[None]], napping: asyncio.Future[float]
) -> Callable[[float], Awaitable[None]]:
    async def wrapped(seconds: float) -> None:
        if not napping.done():
            napping.set_result(seconds)
        await nap(seconds)

    return wrapped
