"""What the hosted benchmark measures with: poke counters, the loop-lag watchdog, samplers."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import time
from collections import deque
from typing import Any, ClassVar

POKES_METRIC = "waitwise.pokes"  # the counter waitwise sends to Airflow's stats (StatsD name)


class PokeCounter:
    """Count pokes without touching trigger code.

    stock: wrap ``glob`` as imported by ``airflow.providers.standard.triggers.file`` (every
    ``FileTrigger.run`` iteration calls it once).  waitwise: wrap the metrics sink of the
    process's runtime (``waitwise.triggers.runtime``, the seam its docstring offers tests and
    benchmarks) and add up the ``waitwise.pokes`` counter, which the poll hub increments once
    per batch by the number of queries checked (0.1.0: one call per batch; later: one per
    distinct tag set in the batch; ``batches`` counts the calls).  No private module is
    imported, so the same counter works on every layout of the package (the hub and the
    batch checks have moved between releases).  The wrapper costs one Python call per poke
    (stock) or per call of the sink (waitwise).
    """

    def __init__(self) -> None:
        self.count = 0
        self.batches = 0
        self._keep: Any = None

    def install(self, which: str) -> None:
        if which == "stock":
            from airflow.providers.standard.triggers import file as stock

            real_glob = stock.glob  # type: ignore[attr-defined]

            def counted_glob(pathname: str, *, recursive: bool = False) -> list[str]:
                self.count += 1
                return real_glob(pathname, recursive=recursive)

            stock.glob = counted_glob  # type: ignore[attr-defined,assignment]
            return
        if which in ("waitwise", "batch"):
            self._install_sink()

    def _install_sink(self) -> None:
        """Make a runtime whose sink counts pokes current for the rest of the process."""
        import dataclasses

        from waitwise.triggers import runtime

        current = runtime.current()
        counting = CountingSink(current.metrics, self)
        self._keep = runtime.use_runtime(dataclasses.replace(current, metrics=counting))
        self._keep.__enter__()  # left open: the hosted process exits with os._exit


class ScanCounter:
    """Count ``os.scandir`` and ``os.stat`` calls in this process (wrapped on the ``os`` module).

    waitwise's pooled checks look both up on ``os`` at call time, so the wrappers see every
    directory listing and every plain-path ``stat``; ``DirEntry.stat()`` (a file found in a
    listing) is not counted.  Process-wide: anything else listing or stat-ing counts too.
    """

    _current: ClassVar[ScanCounter | None] = None

    def __init__(self) -> None:
        self.scandir = 0
        self.stat = 0

    @classmethod
    def install(cls) -> ScanCounter:
        counter = cls._current = cls()
        real_scandir, real_stat = os.scandir, os.stat

        def scandir(*args: Any, **kwargs: Any) -> Any:
            counter.scandir += 1
            return real_scandir(*args, **kwargs)

        def stat(*args: Any, **kwargs: Any) -> Any:
            counter.stat += 1
            return real_stat(*args, **kwargs)

        os.scandir, os.stat = scandir, stat
        return counter

    @classmethod
    def current(cls) -> ScanCounter | None:
        return cls._current

    def snapshot(self) -> tuple[int, int]:
        return self.scandir, self.stat

    def since(self, snapshot: tuple[int, int], seconds: float) -> dict[str, float]:
        return {
            "scandir_per_s": (self.scandir - snapshot[0]) / seconds,
            "stat_per_s": (self.stat - snapshot[1]) / seconds,
        }


class CountingSink:
    """A waitwise ``MetricsSink`` that passes everything on and counts ``waitwise.pokes``."""

    def __init__(self, inner: Any, counter: PokeCounter) -> None:
        self.inner, self.counter = inner, counter

    def incr(self, name: str, tags: dict[str, str], count: int = 1) -> None:
        if name == POKES_METRIC:
            self.counter.count += count
            self.counter.batches += 1
        self.inner.incr(name, tags, count)

    def timing(self, name: str, seconds: float, tags: dict[str, str]) -> None:
        self.inner.timing(name, seconds, tags)

    def gauge(self, name: str, value: float, tags: dict[str, str]) -> None:
        self.inner.gauge(name, value, tags)


class StampedEvents(deque):  # type: ignore[type-arg]
    """The runner's outbound ``events`` deque, noting when each trigger's first event lands."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: dict[int, float] = {}

    def append(self, entry: Any) -> None:
        self.stamps.setdefault(entry.trigger_id, time.monotonic())
        super().append(entry)


class LoopProbe:
    """Airflow's watchdog idea (sleep 0.1 s, record the overshoot), plus gc pause times."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.gc_pauses: list[tuple[int, float]] = []
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            pause = time.perf_counter() - self._gc_start
            self.gc_pauses.append((info["generation"], pause))

    async def run(self) -> None:
        while True:
            last = time.monotonic()
            await asyncio.sleep(0.1)
            self.lags.append(time.monotonic() - last - 0.1)

    def take(self, prefix: str = "") -> dict[str, Any]:
        """Summarize and reset: lag p99/max, overshoots > 0.1 s, gc pauses."""
        lags, pauses = self.lags, self.gc_pauses
        self.lags, self.gc_pauses = [], []
        return {
            f"{prefix}lag_p99_ms": 1000 * quantile(lags, 0.99),
            f"{prefix}lag_max_ms": 1000 * max(lags, default=float("nan")),
            f"{prefix}blocked_over_200ms": sum(lag > 0.1 for lag in lags),
            f"{prefix}gc_pause_max_ms": 1000 * max((p for _, p in pauses), default=0.0),
            f"{prefix}gc_gen2_collections": sum(g == 2 for g, _ in pauses),
            f"{prefix}gc_seconds": float(sum(p for _, p in pauses)),
        }


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_pyspy(out: str | None, seconds: float) -> subprocess.Popen[bytes] | None:
    """Sample this process (all threads) with py-spy into ``out`` (raw/collapsed stacks).

    Only when asked; needs ``py-spy`` on PATH or in ``$PY_SPY``.  Non-blocking sampling, so
    the process is never paused.
    """
    if not out:
        return None
    exe = os.environ.get("PY_SPY") or shutil.which("py-spy") or "py-spy"
    cmd = [exe, "record", "--pid", str(os.getpid()), "--duration", str(int(seconds))]
    cmd += ["--rate", "200", "--threads", "--nonblocking", "--format", "raw", "-o", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
