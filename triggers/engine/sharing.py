"""Free looks: one check of a shared resource serves every wait on it, not only the due ones.

Waits on one directory keep their own schedules, so in most ticks only some of them are due.
A prober that *pools* (:class:`Pooling`) names, per query, the resources it reads
(``share_keys``: a file query's directories).  When the hub probes the due waits, it also
names the resources other waits share with them; the prober says, in the same thread hop,
which of those *changed* since it last looked (a directory's mtime: one ``stat``).  Only
then, and only for the changed resources, does the hub gather the other waits on them and
have them checked as *looks* (one more batch): steady state costs a ``stat`` per shared
resource and tick, not a walk over every waiting sensor.  A look that finds the data ends its
wait at once (a detection ahead of its schedule, counted as a poke); a look that finds
nothing changes nothing (no poke counted, schedule untouched).  Looks only ever make
detection earlier; an error in a look is ignored (the wait's own poke will meet it).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from waitwise.triggers.engine.progress import ProbeResult

if TYPE_CHECKING:
    from waitwise.triggers.engine.hub import Watch

log = logging.getLogger(__name__)

Look = ProbeResult | None
"""What a look saw: found items, ``[]``, an error, or ``None`` (nothing new to look at)."""


@runtime_checkable
class Pooling(Protocol):
    """A prober whose checks can serve waits that are not due (optional)."""

    def share_keys(self, query: Any) -> tuple[Hashable, ...]:
        """Return what ``query`` reads that other queries may read too (its directories)."""
        ...

    async def probe_pooled(
        self, queries: Sequence[Any], shared: Collection[Hashable]
    ) -> tuple[Sequence[ProbeResult], Mapping[Hashable, Any]]:
        """Return the results for ``queries`` and the changed keys of ``shared``.

        A key of ``shared`` has changed when its resource did since the prober was last
        asked; it maps to what a look there is answered from (opaque to the hub).
        """
        ...

    async def look(self, queries: Sequence[Any], changed: Mapping[Hashable, Any]) -> Sequence[Look]:
        """Return what ``changed`` (from :meth:`probe_pooled`) shows for ``queries``.

        Not due: found items count, anything else is ``None``.
        """
        ...


class Sharers:
    """The waits of one hub by share key (entries leave once their future is done)."""

    def __init__(self) -> None:
        self._by_key: dict[Hashable, dict[int, Watch]] = {}

    def add(self, entry: Watch, keys: tuple[Hashable, ...]) -> None:
        """Register ``entry`` under each of ``keys``."""
        for key in keys:
            self._by_key.setdefault(key, {})[id(entry)] = entry

    def shared(self, due: Sequence[Watch]) -> set[Hashable]:
        """Return the keys of ``due`` that other waits share too (counting only, no walk)."""
        counts: dict[Hashable, int] = {}
        for entry in due:
            for key in entry.share:
                counts[key] = counts.get(key, 0) + 1
        return {key for key, n in counts.items() if len(self._by_key.get(key, ())) > n}

    def others(self, keys: Collection[Hashable], due: Sequence[Watch]) -> list[Watch]:
        """Return the pending waits under ``keys`` that are not in ``due`` nor being probed."""
        found: dict[int, Watch] = {}
        for key in keys:
            members = self._by_key.get(key)
            if not members:
                continue
            for ident, entry in list(members.items()):
                if entry.future.done():
                    del members[ident]
                elif not entry.in_flight:
                    found[ident] = entry
            if not members:
                del self._by_key[key]
        for entry in due:
            found.pop(id(entry), None)
        return list(found.values())

    def __len__(self) -> int:
        return sum(len(members) for members in self._by_key.values())
