"""Schedule DAGs on files landing in a directory: :class:`FileAssetTrigger` for asset watchers.

::

    landing = Asset("partner_drop", watchers=[AssetWatcher(name="partner_files",
        trigger=FileAssetTrigger(directory="/data/in", pattern="partner_*.xml",
                                 source="partner", profile="low"))])

A watch has no task instance and no deadline and never ends: it fires one event per new
complete file whose basename matches ``pattern``.

Sharing.  Watchers of one directory with the same detection mode and poll settings share one
scan per tick (Airflow 3.3's shared streams, one group per triggerer process).  The shared
stream (:meth:`FileAssetTrigger.open_shared_stream`) lists the directory off the event loop and
yields one raw event per scan: a :class:`Listing` of every regular file, split into complete
and pending ones, or a :class:`ScanFailed`.  Each watcher's
:meth:`~FileAssetTrigger.filter_shared_stream` matches its pattern, applies its own cursor and
yields one ``TriggerEvent`` per new complete file.  A whole listing per scan, not one raw event
per file, because a watcher that joins a running group (a restart, a new DAG) must still see
every file its cursor has not passed: each listing is complete, so nothing is missed in between.

The parts, one module each:

- :mod:`.spec`: :class:`WatchSpec`, the trigger's kwargs, and the profile's defaults.
- :mod:`.listing`: the scan, what counts as complete (inotify or two equal scans) and the
  idle backoff (:func:`scan_forever`).
- :mod:`.cursor`: the ctime high-water :class:`Cursor` and its contract (first start,
  restart), kept in Airflow's asset state store by :class:`CursorStore`.
- :mod:`.watch`: one watcher's side of the stream (:class:`Watch`): firing, its history
  records and breaker feed.
- :mod:`.trigger`: :class:`FileAssetTrigger` itself, whose class path stays
  ``waitwise.triggers.asset.FileAssetTrigger`` (stored in Airflow's trigger rows).
"""

from __future__ import annotations

from waitwise.triggers.asset.cursor import CURSOR_MAX_NAMES, CURSOR_SETTLE_S, Cursor, CursorStore
from waitwise.triggers.asset.listing import (
    Completeness,
    Entry,
    Listing,
    ScanFailed,
    scan,
    scan_forever,
)
from waitwise.triggers.asset.spec import DEFAULT_POLL, DETECT_MODES, UNSET, WatchSpec, build_spec
from waitwise.triggers.asset.trigger import FileAssetTrigger
from waitwise.triggers.asset.watch import Watch

__all__ = [
    "CURSOR_MAX_NAMES",
    "CURSOR_SETTLE_S",
    "DEFAULT_POLL",
    "DETECT_MODES",
    "UNSET",
    "Completeness",
    "Cursor",
    "CursorStore",
    "Entry",
    "FileAssetTrigger",
    "Listing",
    "ScanFailed",
    "Watch",
    "WatchSpec",
    "build_spec",
    "scan",
    "scan_forever",
]
