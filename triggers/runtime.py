"""The one seam through which triggers and operators reach their collaborators.

Airflow rebuilds a trigger from ``(classpath, kwargs)`` in whatever process runs it, so a clock,
a metrics sink, a random generator or a shared store cannot be constructor arguments.  They
are resolved here, in a process-wide default that is documented, locked and resettable; tests
swap it with :func:`use_runtime` instead of patching module globals.  The registries a process
builds on the way (stores opened per config, one poll hub per event loop, one batch of breaker
outcomes per source) live here too, and :func:`reset` clears them all.
"""

from __future__ import annotations

import asyncio
import random
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from waitwise.triggers.breaker.verdicts import VerdictBatch
from waitwise.triggers.clock import Clock, SystemClock
from waitwise.triggers.engine import warmup
from waitwise.triggers.engine.hub import PollHub
from waitwise.triggers.metrics import MetricsSink, StatsSink
from waitwise.triggers.policy import rng_for
from waitwise.triggers.spec import check_store
from waitwise.triggers.store import AirflowStore, FileStore, WaitStore

RngFactory = Callable[[str, int], random.Random]
"""``(key, attempt) -> random.Random``: the generator for one draw of one wait."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """Collaborators of every trigger in this process.

    :param clock: wall time and sleeping (stores sleep through it too).
    :param metrics: where counters and timings go.
    :param store: when set, every wait uses it whatever its ``store`` kwarg says (tests,
        the simulator); otherwise :meth:`store_for` opens one store per config per process.
    :param rng: the random generator factory for jitter (deterministic per wait and poke).
    """

    clock: Clock = field(default_factory=SystemClock)
    metrics: MetricsSink = field(default_factory=StatsSink)
    store: WaitStore | None = None
    rng: RngFactory = rng_for

    def store_for(self, config: Mapping[str, Any]) -> WaitStore:
        """Return the process's store for ``config``, opened once per process.

        ``{"kind": "airflow"}`` (Airflow Variables, the default) or
        ``{"kind": "file", "root": <absolute dir>}``.

        :raises PolicyConfigError: naming the config when it is neither.
        """
        if self.store is not None:
            return self.store
        checked = check_store(config)
        key = (checked["kind"], checked.get("root", ""))
        with _LOCK:
            if key not in _STORES:
                _STORES[key] = self._open_store(*key)
            return _STORES[key]

    def _open_store(self, kind: str, root: str) -> WaitStore:
        if kind == "file":
            return FileStore(root)
        return AirflowStore(sleep=self.clock.sleep)

    def hub(self) -> PollHub:
        """Return this runtime's poll hub for the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        with _LOCK:
            hubs = _HUBS.setdefault(loop, {})
            owner, found = hubs.get(id(self), (None, None))
            if owner is not self or found is None:  # ids of dead runtimes can come back
                found = PollHub(self.clock, self.metrics)
                hubs[id(self)] = (self, found)
            return found

    def verdicts(self, store: WaitStore, source: str) -> VerdictBatch:
        """Return the batch that carries ``source``'s outcomes to its breaker in ``store``.

        One per event loop, store and source, so the outcomes of every wait of a source that
        ends in this triggerer meet in one breaker update per tick.
        """
        loop = asyncio.get_running_loop()
        with _LOCK:
            batches = _VERDICTS.setdefault(loop, {})
            found = batches.get((id(store), source))
            if found is None or found.store is not store:
                found = batches[(id(store), source)] = VerdictBatch(store, source)
            return found


_LOCK = threading.Lock()
_CURRENT: list[Runtime] = [Runtime()]
_STORES: dict[tuple[str, str], WaitStore] = {}
_HUBS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, tuple[Runtime, PollHub]]] = (
    weakref.WeakKeyDictionary()
)
_VERDICTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[int, str], VerdictBatch]
] = weakref.WeakKeyDictionary()


def current() -> Runtime:
    """Return the runtime triggers in this process use."""
    return _CURRENT[-1]


def reset() -> None:
    """Restore the default runtime (real clock, Airflow stats) and forget stores and hubs."""
    with _LOCK:
        _CURRENT[:] = [Runtime()]
        _STORES.clear()
        _HUBS.clear()
        _VERDICTS.clear()
    warmup.forget()


@contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Make ``runtime`` current inside the ``with`` block (tests, simulator, benchmarks)."""
    with _LOCK:
        _CURRENT.append(runtime)
    try:
        yield runtime
    finally:
        with _LOCK:
            _CURRENT.remove(runtime)
