"""The one seam through which triggers reach their collaborators.

Airflow rebuilds a trigger from ``(classpath, kwargs)`` in whatever process runs it, so a clock,
a metrics sink or a shared batcher cannot be constructor arguments.  They are resolved here, in
a process-wide default that is documented, locked and resettable; tests swap it with
:func:`use_runtime` instead of patching module globals.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from waitwise.triggers.clock import Clock, SystemClock
from waitwise.triggers.metrics import MetricsSink, StatsSink


@dataclass(frozen=True, slots=True)
class Runtime:
    """Collaborators of every trigger in this process."""

    clock: Clock = field(default_factory=SystemClock)
    metrics: MetricsSink = field(default_factory=StatsSink)


_LOCK = threading.Lock()
_CURRENT: list[Runtime] = [Runtime()]


def current() -> Runtime:
    """Return the runtime triggers in this process use."""
    return _CURRENT[-1]


def reset() -> None:
    """Restore the default runtime (real clock, Airflow stats)."""
    with _LOCK:
        _CURRENT[:] = [Runtime()]


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
