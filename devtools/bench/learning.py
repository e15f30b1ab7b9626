"""Learning bench: the cost of fitting a source's history, and what it does to the event loop.

``python -m devtools.bench.learning [--quick]``

1. **Fit cost**: building a source's knowledge from N history records and fitting its model
   (what one refresh costs, in the worker thread), at N = 1,000 and 10,000, median of rounds.
   Beside it, the same records only decoded and sorted (the floor every reader pays).
2. **Loop lag**: an asyncio loop that ticks every 10 ms (as a triggerer's loop serves its
   triggers) while 1,000 learned waits of 100 sources, each source with 10,000 records,
   start at once through the engine's own :class:`~waitwise.triggers.engine.learning.Learner`
   and :meth:`~waitwise.triggers.adaptive.Adaptive.bind` (fitting in the default thread pool,
   as in the trigger).  The history comes from a store that decodes every record from JSON
   in a worker thread, as ``FileStore`` does, but keeps the JSON in memory: seeding a
   million records through real files costs an hour of fsyncs and measures the store, not
   the learning (``devtools.bench.store`` measures the store).  It prints the ticks' lateness
   (p50 / p99 / max) beside the same loop idle, and how long until every wait had its plan.
   Airflow warns of a blocked loop at 0.2 s (``triggers.blocked_main_thread``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from waitwise.triggers.adaptive import Adaptive, Knowledge
from waitwise.triggers.engine.learning import Learner
from waitwise.triggers.policy import Window
from waitwise.triggers.store import WaitOutcome, WaitRecord
from waitwise.triggers.testing import RecordingSink

_T = TypeVar("_T")

DAY = 86_400.0
NOW = 1_780_000_000.0
TICK = 0.01


def records(source: str, n: int, seed: int) -> list[WaitRecord]:
    """Return ``n`` waits of ``source``, several a day, arriving ~2 h +- 15 min after schedule."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        at = NOW - (n - i) * DAY / 8
        arrival = max(rng.gauss(7200, 900), 0.0)
        seen = at + arrival + 30
        out.append(
            WaitRecord(
                source=source,
                profile="medium",
                dag_id="bench",
                task_id=f"t{i % 8}",
                run_id=f"r{i}",
                try_number=1,
                started_at=at,
                ended_at=seen,
                outcome=WaitOutcome.SUCCESS,
                scheduled_at=at,
                first_seen_at=seen,
                detected_at=seen,
                last_miss_at=seen - 60,
                pokes=10,
            )
        )
    return out


def fit_cost(n: int, rounds: int) -> tuple[float, float]:
    """Return the median seconds to decode+sort, and to build knowledge and fit, N records."""
    history = records("fit", n, 1)
    blobs = [r.to_json_dict() for r in history]
    decode, learn = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        decoded = sorted((WaitRecord.from_json_dict(b) for b in blobs), key=lambda r: r.order)
        t1 = time.perf_counter()
        knowledge = Knowledge.from_records(decoded)
        Adaptive().bind(knowledge, NOW, NOW, NOW + 6 * 3600)
        t2 = time.perf_counter()
        decode.append(t1 - t0)
        learn.append(t2 - t1)
    return statistics.median(decode), statistics.median(learn)


async def _ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + TICK
        await asyncio.sleep(TICK)
        lateness.append(loop.time() - due)


async def _lag(
    store: MemoryHistory | None, sources: int, waits: int
) -> tuple[list[float], float, int]:
    """Tick while ``waits`` waits bind (none when ``store`` is None).

    Return the ticks' lateness, the span, and the full garbage collections in it.
    """
    full = [0]

    def count(phase: str, info: dict[str, int]) -> None:
        full[0] += phase == "stop" and info["generation"] == 2

    gc.callbacks.append(count)
    try:
        lateness, span = await _ticked(store, sources, waits)
    finally:
        gc.callbacks.remove(count)
    return lateness, span, full[0]


async def _ticked(
    store: MemoryHistory | None, sources: int, waits: int
) -> tuple[list[float], float]:
    stop, lateness = asyncio.Event(), list[float]()
    ticker = asyncio.create_task(_ticker(stop, lateness))
    await asyncio.sleep(0.2)
    t0 = time.perf_counter()
    if store is not None:
        learner, policy = Learner(_Clock(), RecordingSink()), Adaptive()
        window = Window(0, NOW, NOW + 6 * 3600)
        in_time: list[bool] = []

        async def one(i: int) -> None:
            source = f"s{i % sources}"
            quick = await learner.bound_within(policy, store, source, {}, NOW, window)  # type: ignore[arg-type]
            in_time.append(quick is not None and quick.model_version is not None)
            await learner.bound(policy, store, source, {}, NOW, window)  # type: ignore[arg-type]

        await asyncio.gather(*(one(i) for i in range(waits)))
        print(f"(waits whose plan came within PLAN_WAIT_S: {sum(in_time)} of {waits})")
    else:
        await asyncio.sleep(2.0)
    span = time.perf_counter() - t0
    await asyncio.sleep(0.2)
    stop.set()
    await ticker
    return lateness, span


class MemoryHistory:
    """The part of a store the learner reads: ``scan()``, decoded in a worker thread.

    One record at a time, as the stores' ``scan`` decodes their segments line by line.
    """

    def __init__(self, blobs: dict[str, list[str]]) -> None:
        self.blobs = blobs

    async def scan(self, source: str, fold: Callable[[Iterator[WaitRecord]], _T]) -> _T:
        def decode() -> Iterator[WaitRecord]:
            for blob in self.blobs[source]:
                yield WaitRecord.from_json_dict(json.loads(blob))

        return await asyncio.to_thread(lambda: fold(decode()))


class _Clock:
    def now(self) -> float:
        return NOW

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 sources, 100 waits")
    args = parser.parse_args(argv)
    sources, waits, size = (10, 100, 10_000) if args.quick else (100, 1_000, 10_000)
    print("### Learning: fit cost (build knowledge + fit + plan, one source)\n")
    print("| records | decode + sort (floor) | knowledge + fit + plan | ratio to the floor |")
    print("|---|---|---|---|")
    for n in (1_000, 10_000):
        floor, learn = fit_cost(n, 3 if args.quick else 5)
        print(f"| {n:,} | {floor * 1e3:.0f} ms | {learn * 1e3:.0f} ms | {learn / floor:.2f}x |")
    blobs = {
        f"s{s}": [json.dumps(r.to_json_dict()) for r in records(f"s{s}", size, s)]
        for s in range(sources)
    }
    idle, _, idle_gcs = asyncio.run(_lag(None, sources, waits))
    busy, span, busy_gcs = asyncio.run(_lag(MemoryHistory(blobs), sources, waits))
    print(
        f"\n### Learning: event-loop lateness while {waits:,} learned waits of {sources} sources "
        f"({size:,} records each) start\n"
    )
    print("| loop | ticks | p50 | p99 | max | full collections | every wait planned after |")
    print("|---|---|---|---|---|---|---|")
    rows = (("idle (baseline)", idle, idle_gcs, None), ("learning", busy, busy_gcs, span))
    for name, lat, gcs, took in rows:
        took_s = f"{took:.1f} s" if took is not None else "-"
        print(
            f"| {name} | {len(lat)} | {_pct(lat, 0.5) * 1e3:.1f} ms "
            f"| {_pct(lat, 0.99) * 1e3:.1f} ms | {max(lat) * 1e3:.1f} ms | {gcs} | {took_s} |"
        )


if __name__ == "__main__":
    main()
