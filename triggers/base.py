"""The base of every waitwise trigger: a :class:`~waitwise.triggers.spec.WaitSpec` and a check.

A concrete trigger (a *kind*: files now, other sources later) adds only what it checks:

- ``__init__`` taking its own keyword arguments plus the spec's (``**wait``, parsed and
  checked by :meth:`WaitSpec.from_config`, so a misspelt argument raises), wrapped in
  :func:`rebuilding` so that a row Airflow cannot rebuild fails that task alone;
- :meth:`PolicyTrigger.kind_kwargs` (its own kwargs, plain JSON);
- :meth:`PolicyTrigger.prepare`, which returns the *query* the kind's ``prober`` checks;
- :meth:`PolicyTrigger.describe`.

The engine (:mod:`waitwise.triggers.engine`) owns everything else: the anchor and windows,
the schedule, the poll hub that batches every due check, probe errors, breaker admission,
history, metrics and the final event.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from waitwise.triggers import runtime
from waitwise.triggers.engine.probe import Prober
from waitwise.triggers.engine.wait import Wait, anchor_of
from waitwise.triggers.errors import TriggerArgumentError
from waitwise.triggers.spec import WaitSpec

__all__ = ["PolicyTrigger", "rebuilding"]


@contextmanager
def rebuilding(cls: type) -> Iterator[None]:
    """Turn any error raised inside into :class:`TriggerArgumentError` (a ``TypeError``).

    Airflow's triggerer rebuilds triggers from their stored kwargs and handles only a
    ``TypeError`` from the constructor (that task fails); anything else would stop the
    trigger runner and every wait on it.  ``TriggerArgumentError`` is also a ``ValueError``
    naming the argument, so a DAG author building a trigger sees a clear error too.
    """
    try:
        yield
    except TriggerArgumentError:
        raise
    except Exception as exc:  # any failure to rebuild is this row's problem only
        raise TriggerArgumentError(f"{cls.__name__}: {exc}") from exc


class PolicyTrigger(BaseTrigger):
    """Wait for something on a policy's schedule, in the engine's poll hub.

    :param spec: the wait (deadline, policy, retries, source, breaker, store, ...).
    """

    prober: ClassVar[Prober]
    """The kind's shared batch checker (one object for every trigger of the kind)."""

    def __init__(self, spec: WaitSpec) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.spec = spec
        self._running: Wait | None = None

    @property
    def scheduled_at(self) -> str | None:
        """Return when the data was due (the spec's; an attribute so that Airflow renders it).

        Airflow renders a ``start_from_trigger`` sensor's templated fields on the trigger's
        *attributes* of the same name, so a templated spec field must be one.
        """
        return self.spec.scheduled_at

    @scheduled_at.setter
    def scheduled_at(self, value: str | None) -> None:
        self.spec = dataclasses.replace(self.spec, scheduled_at=value)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return ``(classpath, kwargs)``: the kind's kwargs and the spec's, plain JSON."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", {
            **self.kind_kwargs(),
            **self.spec.to_config(),
        }

    def kind_kwargs(self) -> dict[str, Any]:
        """Return the kind's own kwargs (what it checks), plain JSON."""
        return {}

    async def prepare(self) -> Any:
        """Return the query :attr:`prober` checks, resolved once per run (connections, paths)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Return what this trigger waits for, for log lines and messages."""
        return type(self).__name__

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Resolve the query, then let the engine run the wait; yield one event, then return."""
        rt = runtime.current()
        now = rt.clock.now()
        after = getattr(self, "timeout_after", None)
        anchor = anchor_of(self.spec, after, now)
        if self.spec.started_at is None and (self.spec.airflow_timeout is None or after is None):
            self.spec = dataclasses.replace(self.spec, started_at=anchor)  # outside Airflow
        try:
            query = await self.prepare()
        except Exception as exc:  # e.g. an unknown connection: this wait ends, cleanly
            yield await self._wait(None, rt).fail(anchor, exc)
            return
        self._running = self._wait(query, rt)
        yield await self._running.run(anchor)

    async def on_kill(self) -> None:
        """Record the wait as cancelled: a person cleared the task or marked it.

        Airflow calls this only for a user action, never for a triggerer restart or a move
        to another triggerer (the wait goes on there).
        """
        if self._running is not None:
            await self._running.cancelled()

    def _wait(self, query: Any, rt: runtime.Runtime) -> Wait:
        return Wait(
            spec=self.spec,
            query=query,
            prober=self.prober,
            name=self.describe(),
            kind=type(self).__name__,
            key=self.seed_key(),
            task=self.task_instance,
            runtime=rt,
        )

    def seed_key(self) -> str:
        """Return the jitter seed: explicit, else the task instance, else the kwargs."""
        if self.spec.seed:
            return self.spec.seed
        ti = self.task_instance
        if ti is not None:
            return f"{ti.dag_id}#{ti.task_id}#{ti.run_id}#{ti.map_index}"
        blob = json.dumps(self.serialize(), sort_keys=True, default=str)
        return hashlib.sha1(blob.encode(), usedforsecurity=False).hexdigest()
