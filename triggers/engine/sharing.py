"""Free looks: one check of a shared resource serves every wait on it, not only the due ones.

Waits on one directory keep their own schedules, so in most ticks only some of them are due.
A prober that *pools* (:class:`Pooling`) names, per query, the resources it reads
(``share_keys``: a file query's directories).  When the hub probes the due waits, it hands
the prober the other waits sharing those resources as *looks*: the prober answers them from
the same listing, in the same thread hop, where the resource changed since it last looked
(``None`` otherwise: no new information, no work).  A look that finds the data ends its wait
at once (a detection ahead of its schedule, counted as a poke); a look that finds nothing
changes nothing (no poke counted, schedule untouched).  Looks only ever make detection
earlier; an error in a look is ignored (the wait's own poke will meet it).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
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
        self, queries: Sequence[Any], looks: Sequence[Any]
    ) -> tuple[Sequence[ProbeResult], Sequence[Look]]:
        """Return the results for ``queries`` and, for ``looks``, what the same check shows."""
        ...


class Sharers:
    """The waits of one hub by share key (entries leave once their future is done)."""

    def __init__(self) -> None:
        self._by_key: dict[Hashable, dict[int, Watch]] = {}

    def add(self, entry: Watch, keys: tuple[Hashable, ...]) -> None:
        """Register ``entry`` under each of ``keys``."""
        for key in keys:
            self._by_key.setdefault(key, {})[id(entry)] = entry

    def others(self, due: Sequence[Watch]) -> list[Watch]:
        """Return the pending waits that share a key with ``due`` and are not in it."""
        keys = {key for entry in due for key in entry.share}
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
        return list(found.values())

    def __len__(self) -> int:
        return sum(len(members) for members in self._by_key.values())
