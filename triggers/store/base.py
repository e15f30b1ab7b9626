"""The one store interface both backends implement, and the helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Final, Protocol, TypeAlias, runtime_checkable

from waitwise.triggers.breaker import BreakerSnapshot
from waitwise.triggers.errors import StoreError

from .records import WaitRecord, validate_source

DEFAULT_RETENTION: Final = 500
"""Records kept per source unless a store is configured otherwise."""

BreakerUpdate: TypeAlias = Callable[[BreakerSnapshot | None], BreakerSnapshot]


@runtime_checkable
class WaitStore(Protocol):
    """Durable per-source wait history and breaker state.

    Contracts every backend keeps (the shared contract tests check them):

    - ``append`` upserts by :attr:`WaitRecord.key`, so a wait recorded twice (a
      trigger that ran twice) appears once; the later write wins.
    - ``history`` returns records oldest first / newest last by
      :attr:`WaitRecord.order`, at most ``retention`` per source; damaged entries
      are skipped with a warning, never raised.
    - ``update_breaker`` is a read-modify-write that sets ``version`` to the stored
      version + 1. ``fn`` must be pure: it may run more than once (retries) and in
      a worker thread; the caller uses the snapshot returned, not its own.
    """

    async def append(self, record: WaitRecord) -> None:
        """Record a wait, replacing any record with the same key."""
        ...

    async def history(self, source: str, limit: int | None = None) -> list[WaitRecord]:
        """Return the newest ``limit`` records of ``source`` (all if ``None``)."""
        ...

    async def sources(self) -> list[str]:
        """Return the sources that have history or a breaker, sorted."""
        ...

    async def get_breaker(self, source: str) -> BreakerSnapshot | None:
        """Return the stored breaker snapshot, or ``None`` if absent or damaged."""
        ...

    async def update_breaker(self, source: str, fn: BreakerUpdate) -> BreakerSnapshot:
        """Store ``fn(stored snapshot or None)`` and return what was stored."""
        ...


def check_retention(retention: object) -> int:
    """Return ``retention`` if it is an int >= 1, else raise ``ValueError``."""
    if type(retention) is not int or retention < 1:
        raise ValueError(f"retention must be an int >= 1, got {retention!r}")
    return retention


def check_limit(limit: object) -> int | None:
    """Return ``limit`` if it is ``None`` or an int >= 0, else raise ``ValueError``."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
    return limit


def newest_last(records: Iterable[WaitRecord], limit: int | None = None) -> list[WaitRecord]:
    """Deduplicate by key (later wins), sort by order, keep the newest ``limit``."""
    unique = {record.key: record for record in records}
    ordered = sorted(unique.values(), key=lambda record: record.order)
    return ordered if limit is None else ordered[max(len(ordered) - limit, 0) :]


def next_snapshot(
    source: str, current: BreakerSnapshot | None, fn: BreakerUpdate
) -> BreakerSnapshot:
    """Apply ``fn`` and set the version to the stored one + 1.

    :raise StoreError: if ``fn`` returns anything but a snapshot of ``source``.
    """
    new = fn(current)
    if not isinstance(new, BreakerSnapshot) or new.source != validate_source(source):
        raise StoreError(f"breaker update for {source!r} must return its snapshot, got {new!r}")
    return replace(new, version=(current.version if current else 0) + 1)
