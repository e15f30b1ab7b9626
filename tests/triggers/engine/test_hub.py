"""The per-loop poll hub: shared batches, exact timing for one trigger, early wake-up."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from waitwise.triggers import file as _fsbatch
from waitwise.triggers import runtime
from waitwise.triggers.clock import SystemClock
from waitwise.triggers.engine import hub as _hub
from waitwise.triggers.file import FileArrivalTrigger, FileQuery
from waitwise.triggers.metrics import POKES
from waitwise.triggers.policy import (
    Constant,
    Exponential,
    FullJitter,
    IntervalPolicy,
    intervals,
)
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
        detect="poll",  # real inotify events would add pokes to these fake-clock schedules
    )


async def test_a_hundred_waits_share_one_batch_per_poke_round(tmp_path: Path) -> None:
    clock, sink = LandsAt(tmp_path, at=T0 + 3), RecordingSink()
    with use_runtime(Runtime(clock=clock, metrics=sink)):
        waits = [trigger(tmp_path / f"f{i}", 1.0).run() for i in range(100)]
        events = await asyncio.gather(*(anext(w) for w in waits))
        batches = runtime.current().hub().batches

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
        hub = runtime.current().hub()
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


async def test_every_poke_runs_at_its_nominal_time_or_within_a_tick_never_earlier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # constant (flat lanes of two widths), capped exponential (heap, then a lane) and
    # jittered (never flat: always the heap) waits on one hub, none of them finding a file
    policies: dict[str, IntervalPolicy] = {
        "c1": Constant(interval=1.0),
        "c15": Constant(interval=1.5),
        "exp": Exponential(initial=0.5, factor=2.0, cap=4.0),
        "jit": FullJitter(inner=Constant(interval=2.0)),
    }
    clock, polled = FakeClock(now_s=T0), list[tuple[float, str]]()
    real_probe = _fsbatch.FileProber.probe_pooled

    async def recording(self: Any, queries: list[FileQuery], looks: Any) -> Any:
        polled.extend((clock.now(), Path(q.pattern).name) for q in queries)  # due, not looks
        return await real_probe(self, queries, looks)

    monkeypatch.setattr(_fsbatch.FileProber, "probe_pooled", recording)
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        waits = [
            FileArrivalTrigger(
                filepath=str(tmp_path / name),
                poll=policy.to_config(),
                timeout=20.0,
                started_at=T0,
                seed=name,
                detect="poll",
            ).run()
            for name, policy in policies.items()
        ]
        events = await asyncio.gather(*(anext(w) for w in waits))

    assert {e.payload["status"] for e in events} == {"timeout"}
    for name, policy in policies.items():
        nominal = itertools.accumulate(itertools.chain([0.0], intervals(policy, name)))
        expected = [T0 + t for t in itertools.takewhile(lambda t: t < 20.0, nominal)]
        expected.append(T0 + 20.0)  # the last poke, clamped to the deadline
        actual = [t for t, n in polled if n == name]
        assert len(actual) == len(expected), name
        for got, want in zip(actual, expected, strict=True):
            assert want - 1e-6 <= got <= want + _hub.TICK_S + 1e-6, (name, got - T0, want - T0)


async def test_each_poll_decision_is_logged_at_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(now_s=T0)
    caplog.set_level(logging.DEBUG, logger="waitwise.triggers")
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        wait = FileArrivalTrigger(
            filepath=str(tmp_path / "late.csv"),
            poll=Constant(interval=1.0).to_config(),
            timeout=2.5,
            started_at=T0,
        )
        await anext(wait.run())
    decisions = [r.getMessage() for r in caplog.records if "not found at poke" in r.getMessage()]
    name = str(tmp_path / "late.csv")
    assert decisions == [
        f"{name} not found at poke 1: next poke in 1.000s (policy, schedule attempt 2)",
        f"{name} not found at poke 2: next poke in 1.000s (policy, schedule attempt 3)",
        f"{name} not found at poke 3: next poke in 0.500s (deadline clamp)",
    ]


@pytest.mark.parametrize(
    ("poison", "kind"),
    [
        ("bad\0name.csv", "ValueError"),  # a NUL byte, e.g. from dag_run.conf
        ("bad\ud800name.csv", "UnicodeEncodeError"),  # not encodable by the filesystem
        ("bad\0dir/*.csv", "ValueError"),  # the same inside a glob
    ],
)
async def test_a_poisoned_path_ends_only_its_own_wait(
    tmp_path: Path, poison: str, kind: str
) -> None:
    clock, sink = LandsAt(tmp_path, at=T0 + 2), RecordingSink()
    with use_runtime(Runtime(clock=clock, metrics=sink)):
        healthy = [trigger(tmp_path / f"f{i}", 1.0).run() for i in range(20)]
        poisoned = [trigger(tmp_path / poison, 1.0).run() for _ in range(2)]
        events = await asyncio.gather(*(anext(w) for w in [*healthy, *poisoned]))

    statuses = [e.payload["status"] for e in events]
    assert statuses == ["success"] * 20 + ["error"] * 2
    assert [e.payload["pokes"] for e in events[20:]] == [1, 1]  # ended at once, no retries
    assert all(e.payload["last_error"].startswith(f"{kind}: ") for e in events[20:])
    assert all("cannot work" in e.payload["message"] for e in events[20:])
    assert [e.payload["first_seen_at"] for e in events[:20]] == [T0 + 2] * 20


async def test_two_kinds_share_one_hub_and_are_counted_apart(tmp_path: Path) -> None:
    from tests.triggers.test_base import HIT, Scripted, scripted

    clock, sink = LandsAt(tmp_path, at=T0 + 2), RecordingSink()
    prober = Scripted.prober
    before = len(prober.batches)
    every_second = Constant(interval=1.0).to_config()
    with use_runtime(Runtime(clock=clock, metrics=sink)):
        files = [trigger(tmp_path / f"f{i}", 1.0).run() for i in range(3)]
        scripts = [
            scripted("miss", "miss", "hit", run=f"r{i}", poll=every_second, started_at=T0).run()
            for i in range(2)
        ]
        events = await asyncio.gather(*(anext(w) for w in [*files, *scripts]))
        batches = runtime.current().hub().batches

    assert [e.payload["status"] for e in events] == ["success"] * 5
    assert [e.payload["found"] for e in events[3:]] == [HIT, HIT]
    assert batches == 3  # +0 +1 +2: each tick one batch holding both kinds
    assert prober.batches[before:] == [2, 2, 2]
    pokes = [(r[3]["trigger"], r[2]) for r in sink.records if r[1] == POKES]
    assert sorted(pokes) == sorted([("FileArrivalTrigger", 3.0), ("Scripted", 2.0)] * 3)


async def test_a_slow_kind_does_not_hold_up_another(tmp_path: Path) -> None:
    """A prober stuck on one batch (a hung endpoint) delays only its own waits."""
    from tests.triggers.test_base import HIT, Scripted, scripted

    release = asyncio.Event()
    real = Scripted.prober.probe_batch

    async def stuck(queries: Any) -> Any:
        await release.wait()  # real time passes; the hub must not wait for it
        return await real(queries)

    Scripted.prober.probe_batch = stuck  # type: ignore[method-assign]
    try:
        clock = LandsAt(tmp_path, at=T0 + 3)
        every_second = Constant(interval=1.0).to_config()
        with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
            slow = asyncio.ensure_future(
                anext(scripted("hit", run="slow", poll=every_second, started_at=T0).run())
            )
            files = [trigger(tmp_path / f"f{i}", 1.0).run() for i in range(3)]
            events = await asyncio.wait_for(asyncio.gather(*(anext(w) for w in files)), timeout=30)
            assert not slow.done()  # still stuck in its probe
            release.set()
            (stuck_event,) = await asyncio.wait_for(asyncio.gather(slow), timeout=5)
    finally:
        del Scripted.prober.probe_batch
    assert [e.payload["status"] for e in events] == ["success"] * 3
    assert [e.payload["first_seen_at"] for e in events] == [T0 + 3] * 3
    assert stuck_event.payload["found"] == HIT
