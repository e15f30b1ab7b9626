"""The one seam through which triggers reach their collaborators.

Airflow rebuilds a trigger from ``(classpath, kwargs)`` in whatever process runs it, so a clock,
a metrics sink or a shared store cannot be constructor arguments.  They are resolved here, in
a process-wide default that is documented, locked and resettable; tests swap it with
:func:`use_runtime` instead of patching module globals.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from waitwise.triggers.clock import Clock, SystemClock
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.metrics import MetricsSink, StatsSink
from waitwise.triggers.store import AirflowStore, FileStore, WaitStore


@dataclass(frozen=True, slots=True)
class Runtime:
    """Collaborators of every trigger in this process.

    :param store: when set, every trigger uses it whatever its ``store`` kwarg says (tests,
        the simulator); otherwise :meth:`store_for` opens one store per config per process.
    """

    clock: Clock = field(default_factory=SystemClock)
    metrics: MetricsSink = field(default_factory=StatsSink)
    store: WaitStore | None = None

    def store_for(self, config: Mapping[str, Any]) -> WaitStore:
        """Return the process's store for ``config``, opened once per process.

        ``{"kind": "airflow"}`` (Airflow Variables, the default) or
        ``{"kind": "file", "root": <dir>}``.
        """
        if self.store is not None:
            return self.store
        key = (str(config.get("kind", "airflow")), str(config.get("root", "")))
        with _LOCK:
            if key not in _STORES:
                _STORES[key] = _open_store(*key)
            return _STORES[key]


def _open_store(kind: str, root: str) -> WaitStore:
    if kind == "airflow":
        return AirflowStore()
    if kind == "file" and root:
        return FileStore(root)
    raise PolicyConfigError(
        f"store must be {{'kind': 'airflow'}} or {{'kind': 'file', 'root': <dir>}}, "
        f"got kind={kind!r} root={root!r}"
    )


_LOCK = threading.Lock()
_CURRENT: list[Runtime] = [Runtime()]
_STORES: dict[tuple[str, str], WaitStore] = {}


def current() -> Runtime:
    """Return the runtime triggers in this process use."""
    return _CURRENT[-1]


def reset() -> None:
    """Restore the default runtime (real clock, Airflow stats)."""
    with _LOCK:
        _CURRENT[:] = [Runtime()]
        _STORES.clear()


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
