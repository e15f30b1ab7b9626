"""The one seam through which triggers and operators reach their collaborators.

Airflow rebuilds a trigger from ``(classpath, kwargs)`` in whatever process runs it, so a clock,
a metrics sink or a shared store cannot be constructor arguments.  They are resolved here, in
a process-wide default that is documented, locked and resettable; tests swap it with
:func:`use_runtime` instead of patching module globals.  The registries a process builds on the
way (stores opened per config, one poll hub and one cache of sources' history per event loop,
one batch of history records and one of breaker outcomes per source) live here too, and
:func:`reset` clears them all.

No random generator is injected: jitter is a pure function of the wait's key and poke number
(:func:`waitwise.triggers.policy.rng_for`), so a restarted or duplicated trigger draws the
same intervals; tests choose the key (``seed``).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from waitwise.triggers.breaker.verdicts import VerdictBatch
from waitwise.triggers.clock import Clock, SystemClock
from waitwise.triggers.engine.hub import PollHub
from waitwise.triggers.engine.learning import Learner
from waitwise.triggers.engine.tick import TickBatch
from waitwise.triggers.metrics import MetricsSink, StatsSink
from waitwise.triggers.spec import check_store
from waitwise.triggers.store import AirflowStore, FileStore, WaitRecord, WaitStore

_B = TypeVar("_B")


@dataclass(frozen=True, slots=True)
class Runtime:
    """Collaborators of every trigger in this process.

    :param clock: wall time and sleeping (stores sleep through it too).
    :param metrics: where counters and timings go.
    :param store: when set, every wait uses it whatever its ``store`` kwarg says (tests,
        the simulator); otherwise :meth:`store_for` opens one store per config per process.
    """

    clock: Clock = field(default_factory=SystemClock)
    metrics: MetricsSink = field(default_factory=StatsSink)
    store: WaitStore | None = None

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

    def learner(self) -> Learner:
        """Return this runtime's cache of sources' knowledge for the running event loop."""
        loop = asyncio.get_running_loop()
        with _LOCK:
            learners = _LEARNERS.setdefault(loop, {})
            owner, found = learners.get(id(self), (None, None))
            if owner is not self or found is None:  # ids of dead runtimes can come back
                found = Learner(self.clock, self.metrics)
                learners[id(self)] = (self, found)
            return found

    def verdicts(self, store: WaitStore, source: str) -> VerdictBatch:
        """Return the batch that carries ``source``'s outcomes to its breaker in ``store``.

        One per event loop, store and source, so the outcomes of every wait of a source that
        ends in this triggerer meet in one breaker update per tick.
        """
        return self._shared("verdicts", store, source, lambda: VerdictBatch(store, source))

    def records(self, store: WaitStore, source: str) -> TickBatch[WaitRecord, None]:
        """Return the batch that writes ``source``'s history records to ``store``.

        The records of the waits of a source that end in one tick are written together
        (:meth:`~waitwise.triggers.store.WaitStore.append_many`: one segment, one write).
        """

        async def write(records: list[WaitRecord]) -> list[None]:
            await store.append_many(records)
            return [None] * len(records)

        return self._shared("records", store, source, lambda: TickBatch(write))

    def _shared(self, kind: str, store: WaitStore, source: str, make: Callable[[], _B]) -> _B:
        """Return this loop's ``kind`` batch for ``store`` and ``source``, made on first use."""
        loop = asyncio.get_running_loop()
        with _LOCK:
            batches = _BATCHES.setdefault(loop, {})
            owner, found = batches.get((kind, id(store), source), (None, None))
            if owner is not store or found is None:  # ids of dead stores can come back
                found = make()
                batches[(kind, id(store), source)] = (store, found)
            return found


_LOCK = threading.Lock()
_CURRENT: list[Runtime] = [Runtime()]
_STORES: dict[tuple[str, str], WaitStore] = {}
_HUBS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, tuple[Runtime, PollHub]]] = (
    weakref.WeakKeyDictionary()
)
_LEARNERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[int, tuple[Runtime, Learner]]
] = weakref.WeakKeyDictionary()
_BATCHES: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int, str], tuple[WaitStore, Any]]
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
        _LEARNERS.clear()
        _BATCHES.clear()


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
