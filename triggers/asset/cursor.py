"""The watch's cursor: a ctime high-water mark, kept in Airflow's asset state store.

The cursor (kept per watcher in the asset state store Airflow hands the trigger, key
``waitwise.cursor.<digest of directory and pattern>``): a ctime high-water mark ``H`` (ns) and
the names fired at or above it with their ctime.  A matching complete file is new when its
ctime is at least ``H`` and it was not fired with that ctime.  ``H`` only moves up to the
newest file fired and never past a matching file still being written.  ctime, not mtime: ``mv``
keeps a file's mtime, so a file renamed into place may carry an old one, but a rename sets
its ctime to the time of the rename.  A file replaced under the same name (a new ctime) fires
again.  Contract:

- First start (no cursor stored): files already present are not fired; the first successful
  scan writes the cursor, so files that land after it fire even across a restart.
- Restart: nothing is skipped.  The cursor is written at the first scan at least
  :data:`CURSOR_SETTLE_S` after a firing (by then the triggerer has handed the events over),
  so a triggerer killed in that window fires those files again (at least once, as Airflow
  delivers events).
- Assumes the filesystem's ctime does not go backwards (a wall clock stepped back past the
  newest file fired hides files landing until it catches up) and a rename within the
  directory (Linux: ext4, xfs, tmpfs, ...).
- Outside Airflow (no asset state store) the cursor lives in memory: every run starts fresh.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from waitwise.triggers.asset.listing import Entry
from waitwise.triggers.asset.spec import WatchSpec

__all__ = ["CURSOR_MAX_NAMES", "CURSOR_SETTLE_S", "Cursor", "CursorStore"]

log = logging.getLogger(__name__)

CURSOR_SETTLE_S: Final = 2.0
"""Seconds after a firing before the cursor is written (the triggerer syncs events each 1 s)."""
CURSOR_MAX_NAMES: Final = 10_000
"""The most names a cursor keeps above its high-water mark (oldest dropped past it)."""
_CURSOR_SCHEMA: Final = 1


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a watch has fired (see the module docstring for the contract).

    :param ctime_ns: the high-water mark ``H``: every matching file with an older ctime is done.
    :param above: names fired with a ctime at or above ``H``, and that ctime.
    """

    ctime_ns: int
    above: Mapping[str, int] = field(default_factory=dict)

    def is_new(self, entry: Entry) -> bool:
        """Return whether ``entry`` (a matching complete file) has not been fired yet."""
        return entry.ctime_ns >= self.ctime_ns and self.above.get(entry.name) != entry.ctime_ns

    @classmethod
    def baseline(cls, entries: Sequence[Entry]) -> Cursor:
        """Return the cursor of a first start: every file in ``entries`` counts as done."""
        return cls(0).advance(entries, ())

    def advance(self, fired: Sequence[Entry], pending: Sequence[Entry]) -> Cursor:
        """Return the cursor after ``fired``, never past a file in ``pending``."""
        done = {**self.above, **{e.name: e.ctime_ns for e in fired}}
        high = max((e.ctime_ns for e in fired), default=self.ctime_ns)
        waiting = [e.ctime_ns for e in pending if e.ctime_ns >= self.ctime_ns]
        high = max(self.ctime_ns, min([high, *waiting]))
        above = {name: ctime for name, ctime in done.items() if ctime >= high}
        if len(above) > CURSOR_MAX_NAMES:
            keep = sorted(above.items(), key=lambda item: item[1])[-CURSOR_MAX_NAMES:]
            log.warning("Cursor holds over %d names; dropping the oldest", CURSOR_MAX_NAMES)
            high, above = keep[0][1], dict(keep)
        return Cursor(high, above)

    def to_json(self) -> dict[str, Any]:
        """Return the stored form (ctimes as strings: exact whatever the JSON store does)."""
        above = {name: str(ctime) for name, ctime in sorted(self.above.items())}
        return {"schema": _CURSOR_SCHEMA, "ctime_ns": str(self.ctime_ns), "above": above}

    @classmethod
    def from_json(cls, data: object) -> Cursor:
        """Rebuild a cursor from :meth:`to_json`.

        :raises ValueError: on damaged data.
        """
        if not isinstance(data, Mapping) or data.get("schema") != _CURSOR_SCHEMA:
            raise ValueError(f"not a cursor: {data!r}")
        above = data.get("above")
        if not isinstance(above, Mapping):
            raise ValueError(f"cursor names must be a mapping, got {above!r}")
        return cls(int(data["ctime_ns"]), {str(k): int(v) for k, v in above.items()})


def _accessors(store: Any) -> list[Any]:
    """Return the per-asset accessors of Airflow's ``asset_state_store`` (one per asset).

    One trigger serves every asset whose watcher has the same kwargs; Airflow's accessors
    object then refuses ``aget`` without an asset, so the per-asset ones are taken from it.
    """
    if store is None:
        return []
    many = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
    return many or [store]


class CursorStore:
    """The watch's cursor in the asset state store (each watched asset), else in memory."""

    def __init__(self, store: Any, key: str, spec: WatchSpec) -> None:
        self._accessors, self.key, self.spec = _accessors(store), key, spec

    async def load(self) -> Cursor | None:
        """Return the stored cursor (the least advanced of the assets'), ``None`` if none.

        :raises Exception: whatever the store raises (the caller retries at the next scan).
        """
        found = []
        for accessor in self._accessors:
            stored = await accessor.aget(self.key)
            if stored is None:
                return None  # an asset that never had one: start there as on a first start
            try:
                found.append(Cursor.from_json(stored))
            except (ValueError, KeyError, TypeError):
                log.warning(
                    "Damaged cursor %s of %s; starting afresh", self.key, self.spec.watch_id
                )
                return None
        return min(found, key=lambda c: c.ctime_ns) if found else None

    async def save(self, cursor: Cursor) -> None:
        """Write ``cursor`` to every watched asset."""
        value = {**cursor.to_json(), "directory": self.spec.directory, "pattern": self.spec.pattern}
        for accessor in self._accessors:
            await accessor.aset(self.key, value)
