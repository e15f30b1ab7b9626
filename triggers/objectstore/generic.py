"""Listings through a provider's synchronous fsspec filesystem, in a small thread pool.

For the schemes an installed Airflow provider registers for ``ObjectStoragePath`` other than
S3 (``gs://``, ``abfs://``, ...).  Their filesystems are built by the provider's ``get_fs``
(synchronous: it reads the connection with the sync API) and a sync fsspec call runs fsspec's
own I/O loop and blocks its caller, so every call here runs in :data:`WORKERS` dedicated
threads, never on the event loop: at most that many listings at a time per triggerer, the
rest queue.

Errors: a missing prefix is "nothing yet"; ``PermissionError`` ends the wait
(:class:`~waitwise.triggers.objectstore.query.ObjectStoreError`); any other ``OSError``
(connection, timeout) is transient.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from waitwise.triggers.errors import ProbeError
from waitwise.triggers.objectstore.query import Listing, ObjectEntry, ObjectStoreError

__all__ = ["WORKERS", "FsspecLister", "provider_fs"]

WORKERS: Final = 4

FsFactory = Callable[[str, str | None], Any]
"""Builds the filesystem of ``(scheme, conn_id)`` (blocking)."""


def provider_fs(scheme: str, conn_id: str | None) -> Any:
    """Return the filesystem Airflow's ``ObjectStoragePath`` uses for ``scheme`` (blocking)."""
    from airflow.sdk.io.fs import get_fs

    return get_fs(scheme, conn_id)


class FsspecLister:
    """Lists prefixes with sync fsspec filesystems, off the loop in a bounded thread pool."""

    def __init__(self, factory: FsFactory = provider_fs, workers: int = WORKERS) -> None:
        self._factory = factory
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="waitwise-objectstore")
        self._fs: dict[tuple[str, str | None], Any] = {}

    async def connect(self, scheme: str, conn_id: str | None) -> Any:
        """Return the filesystem of ``(scheme, conn_id)``, built once in the pool."""
        key = (scheme, conn_id)
        if key not in self._fs:
            loop = asyncio.get_running_loop()
            self._fs[key] = await loop.run_in_executor(self._pool, self._factory, scheme, conn_id)
        return self._fs[key]

    async def list(self, listing: Listing) -> list[ObjectEntry]:
        """Return the objects of ``listing`` (see the module docstring for errors)."""
        fs = await self.connect(listing.scheme, listing.conn_id)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _list, fs, listing)

    async def aclose(self) -> None:
        """Stop the threads (after the listings running finish)."""
        self._fs.clear()
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)


def _list(fs: Any, listing: Listing) -> list[ObjectEntry]:
    """List ``listing`` with ``fs`` (blocking: a pool thread)."""
    root = f"{listing.bucket}/"
    path = root + listing.prefix
    try:
        if listing.single:
            infos = [fs.info(path)]
        elif listing.deep:
            infos = list(fs.find(path, detail=True).values())
        else:
            infos = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    except PermissionError as exc:
        raise ObjectStoreError(f"listing {path}: {exc}", code="PermissionError") from exc
    except OSError as exc:
        raise ProbeError.wrapping(exc) from exc
    entries = [_entry(info, root) for info in infos if info.get("type", "file") == "file"]
    return sorted(entries, key=lambda e: e.key)


def _entry(info: dict[str, Any], root: str) -> ObjectEntry:
    name = str(info["name"]).lstrip("/")
    stamp = next((info[k] for k in ("LastModified", "mtime", "updated", "last_modified",
                                    "created") if info.get(k) is not None), 0.0)  # fmt: skip
    if isinstance(stamp, str):
        stamp = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    mtime = stamp.timestamp() if isinstance(stamp, dt.datetime) else float(stamp)
    etag = info.get("ETag") or info.get("etag")
    return ObjectEntry(
        key=name.removeprefix(root.lstrip("/")),
        size=int(info.get("size") or 0),
        mtime=mtime,
        etag=str(etag).strip('"') if etag else None,
    )
