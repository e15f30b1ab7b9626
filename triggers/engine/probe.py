"""The one contract between the poll hub and a kind of check, and its isolation guarantee.

A trigger kind (files now; object stores, tables, HTTP later) hands the hub a *query* (what
to check, a plain value) and a *prober* (one shared object per kind).  Once per tick the hub
gives each prober every due query of its kind at once, so a kind can batch: one thread hop,
one listing, one connection for many waits.

A prober may also notify (:class:`Notifying`): it calls a wait's ``wake`` when that wait's
data may have landed (an inotify event), and the hub pokes the wait at once; its schedule
goes on as a safety poll.

Isolation: whatever one query does, only its own wait is affected.  A prober reports a
failure per query (its result is the exception); if the batch call itself raises, or returns
the wrong number of results, :func:`probe_isolated` checks each query alone so that the
query at fault gets the error and the others their real results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from waitwise.triggers.engine.progress import ProbeResult

log = logging.getLogger(__name__)


class Prober(Protocol):
    """Checks a batch of queries of one kind; results in the order of ``queries``.

    Never blocks the event loop (blocking work goes to a thread, once per batch).  A
    transient failure of one query is returned as a
    :class:`~waitwise.triggers.errors.ProbeError` in its place; any other exception in its
    place ends that wait alone.  Read-only and side-effect free: a trigger may run twice.
    """

    async def probe_batch(self, queries: Sequence[Any]) -> Sequence[ProbeResult]:
        """Return one result per query."""
        ...


@runtime_checkable
class Notifying(Protocol):
    """A prober that can tell when a query's data may have landed (optional)."""

    async def subscribe(self, query: Any, wake: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``wake`` (on the loop) whenever ``query``'s data may have landed.

        Return the function that stops it, or ``None`` when this query gets no events
        (polling alone then).
        """
        ...


async def subscribe(
    prober: Prober, query: Any, wake: Callable[[], None], name: str
) -> Callable[[], None] | None:
    """Subscribe ``wake`` to ``prober``'s events for ``query`` if it has any; never raises.

    A prober that fails to subscribe leaves the wait to its schedule (logged): events only
    speed detection up, the schedule alone is always correct.
    """
    if not isinstance(prober, Notifying):
        return None
    try:
        return await prober.subscribe(query, wake)
    except Exception:  # events are an optimisation: poll on
        log.exception("Events for %s are off; polling on schedule", name)
        return None


async def probe_isolated(prober: Prober, queries: Sequence[Any]) -> Sequence[ProbeResult]:
    """Return ``prober``'s results for ``queries``, each query's failure its own."""
    try:
        results = await prober.probe_batch(queries)
        if len(results) == len(queries):
            return results
        raise RuntimeError(f"{len(results)} results for {len(queries)} queries")
    except Exception:  # the batch as a whole failed: find out whose query it was
        log.exception("%s failed a batch of %d; checking each alone", prober, len(queries))
    return [await _probe_one(prober, query) for query in queries]


async def _probe_one(prober: Prober, query: Any) -> ProbeResult:
    try:
        results = await prober.probe_batch([query])
        if len(results) == 1:
            return results[0]
        return RuntimeError(f"{len(results)} results for one query")
    except Exception as exc:  # this query's own failure: it ends this wait only
        return exc
