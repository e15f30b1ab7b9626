"""Wait for files to land: glob patterns, ``recursive``, relative paths via an ``fs`` connection."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Unpack

from waitwise.triggers._fsbatch import FileQuery, check
from waitwise.triggers.base import PolicyKwargs, PolicyTrigger
from waitwise.triggers.errors import PolicyConfigError, ProbeError
from waitwise.triggers.events import FoundItem


class FileArrivalTrigger(PolicyTrigger):
    """Poll the filesystem for ``filepath`` off the event loop, in batches shared by all triggers.

    :param filepath: a path or glob pattern; a relative one is joined to the ``path`` extra of
        the ``fs_conn_id`` connection, as Airflow's ``FileSensor`` does.
    :param fs_conn_id: the ``fs`` connection used for relative paths.
    :param recursive: let ``**`` match any depth (:func:`glob.glob`'s ``recursive``).

    Every other keyword is :class:`~waitwise.triggers.base.PolicyTrigger`'s (an unknown one
    raises ``TypeError`` there).
    """

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        **policy: Unpack[PolicyKwargs],
    ) -> None:
        super().__init__(**policy)
        if not isinstance(filepath, str) or not filepath:
            raise PolicyConfigError(f"filepath must be a non-empty string, got {filepath!r}")
        self.filepath = filepath
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive
        self._query: FileQuery | None = None

    def serialize_kwargs(self) -> dict[str, Any]:
        """Return the kwargs that rebuild this trigger."""
        return {
            "filepath": self.filepath,
            "fs_conn_id": self.fs_conn_id,
            "recursive": self.recursive,
            **super().serialize_kwargs(),
        }

    def describe(self) -> str:
        """Return the path waited for."""
        return self._query.pattern if self._query else self.filepath

    async def prepare(self) -> None:
        """Resolve a relative ``filepath`` through the ``fs`` connection (async API)."""
        path = self.filepath
        if not os.path.isabs(path):
            path = os.path.join(await self._base_path(), path)
        self._query = FileQuery(path, self.recursive)

    async def _base_path(self) -> str:
        from airflow.sdk import BaseHook

        conn = await BaseHook.aget_connection(self.fs_conn_id)
        return str(conn.extra_dejson.get("path", ""))

    def batch_query(self) -> FileQuery | None:
        """Return the resolved query: the loop's poll hub checks it with everyone else's."""
        return self._query

    async def probe(self) -> list[FoundItem]:
        """Check the path once in a worker thread (the hub batches; this is the lone check)."""
        assert self._query is not None, "prepare() runs before the first probe"
        try:
            return await asyncio.to_thread(check, self._query)
        except OSError as exc:
            raise ProbeError(f"checking {self._query.pattern}: {exc}") from exc
