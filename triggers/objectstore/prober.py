"""The object-store kind's prober: every due query of a tick, one listing per prefix.

The poll hub hands :meth:`ObjectProber.probe_batch` every object query due in a tick (single
sensors' :class:`~waitwise.triggers.objectstore.query.ObjectQuery` and batch sensors' groups
of them).  :func:`~waitwise.triggers.objectstore.query.plan` turns them into listings (one per
connection, bucket and prefix), which run concurrently (at most :data:`MAX_LISTINGS` at a
time), and each query is matched against its listing.  A listing's failure is the result of
every query it serves, and of no other.

S3 (``s3``, ``s3a``, ``s3n``) lists on the running loop (:mod:`.s3`); other schemes through
their provider's sync filesystem in a bounded thread pool (:mod:`.generic`).  Listers (and
their clients) are kept per event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any, Final, Protocol

from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.objectstore.generic import FsFactory, FsspecLister, provider_fs
from waitwise.triggers.objectstore.query import (
    Listing,
    ObjectEntry,
    ObjectQuery,
    match,
    plan,
)
from waitwise.triggers.objectstore.s3 import S3Lister

__all__ = ["MAX_LISTINGS", "S3_SCHEMES", "ObjectGroup", "ObjectProber"]

MAX_LISTINGS: Final = 4
S3_SCHEMES: Final = frozenset({"s3", "s3a", "s3n"})


class ObjectGroup(Protocol):
    """Several object queries answered together (a batch sensor's members)."""

    @property
    def members(self) -> Sequence[Any]:
        """Return the member queries (each an :class:`ObjectQuery`)."""
        ...

    def combine(self, results: Sequence[ProbeResult]) -> ProbeResult:
        """Return the group's one result from its members' (in the order of ``members``)."""
        ...


class _Listers:
    def __init__(self, factory: FsFactory) -> None:
        self.s3 = S3Lister()
        self._factory = factory
        self._generic: FsspecLister | None = None

    @property
    def generic(self) -> FsspecLister:
        if self._generic is None:
            self._generic = FsspecLister(self._factory)
        return self._generic

    async def list(self, listing: Listing) -> list[ObjectEntry]:
        if listing.scheme in S3_SCHEMES:
            return await self.s3.list(listing)
        return await self.generic.list(listing)

    async def aclose(self) -> None:
        await self.s3.aclose()
        if self._generic is not None:
            await self._generic.aclose()


class ObjectProber:
    """Checks object queries in batches (see the module docstring).

    :param fs_factory: builds the filesystem for a non-S3 scheme (blocking; default: the
        provider's, as ``ObjectStoragePath`` does).
    """

    def __init__(self, fs_factory: FsFactory = provider_fs) -> None:
        self._factory = fs_factory
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Listers] = (
            weakref.WeakKeyDictionary()
        )
        self.listings = 0  # listings made (all loops): a figure for tests and the bench

    def _listers(self) -> _Listers:
        loop = asyncio.get_running_loop()
        listers = self._by_loop.get(loop)
        if listers is None:
            listers = self._by_loop[loop] = _Listers(self._factory)
        return listers

    async def connect(self, scheme: str, conn_id: str | None) -> None:
        """Build the client of ``(scheme, conn_id)`` now: a missing connection raises here."""
        listers = self._listers()
        if scheme in S3_SCHEMES:
            await listers.s3.connect(conn_id)
        else:
            await listers.generic.connect(scheme, conn_id)

    async def probe_batch(self, queries: Sequence[ObjectQuery | ObjectGroup]) -> list[ProbeResult]:
        """Return one result per query: found objects, ``[]``, or the listing's error."""
        flat = [m for query in queries for m in _members(query)]
        answers = await self._answer(flat)
        results: list[ProbeResult] = []
        for query in queries:
            if isinstance(query, ObjectQuery):
                results.append(answers[query])
            else:
                results.append(query.combine([answers[m] for m in _members(query)]))
        return results

    async def _answer(self, queries: Sequence[ObjectQuery]) -> dict[ObjectQuery, ProbeResult]:
        listings = plan(list(dict.fromkeys(queries)))
        listers = self._listers()
        gate = asyncio.Semaphore(MAX_LISTINGS)

        async def run(listing: Listing) -> dict[str, ObjectEntry] | BaseException:
            async with gate:
                self.listings += 1
                try:
                    return {e.key: e for e in await listers.list(listing)}
                except Exception as exc:  # this listing's queries get it; the others go on
                    return exc

        done = await asyncio.gather(*(run(listing) for listing in listings))
        answers: dict[ObjectQuery, ProbeResult] = {}
        for members, entries in zip(listings.values(), done, strict=True):
            for query in members:
                answers[query] = (
                    entries if isinstance(entries, BaseException) else match(query, entries)
                )
        return answers

    async def aclose(self) -> None:
        """Close this loop's clients and threads (tests, one-off pokes)."""
        listers = self._by_loop.pop(asyncio.get_running_loop(), None)
        if listers is not None:
            await listers.aclose()

    def __repr__(self) -> str:
        return "ObjectProber()"


def _members(query: ObjectQuery | ObjectGroup) -> Sequence[ObjectQuery]:
    if isinstance(query, ObjectQuery):
        return (query,)
    members = query.members
    for member in members:
        if not isinstance(member, ObjectQuery):
            raise TypeError(f"an object batch holds a non-object query: {member!r}")
    return members


async def probe_once(queries: Sequence[ObjectQuery | ObjectGroup]) -> list[ProbeResult]:
    """Check ``queries`` once with a fresh prober, then close it (a worker's ``poke``)."""
    prober = ObjectProber()
    try:
        return await prober.probe_batch(queries)
    finally:
        await prober.aclose()
