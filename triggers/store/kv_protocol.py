"""The key-value seams of :class:`~waitwise.triggers.store.kv.AirflowStore`.

Implementations: :class:`~.variables.VariableBackend` (from a trigger or worker, through
the Task SDK), :class:`~.sql.MetadataBackend` (inside an Airflow process with database
access: the api-server), :class:`~.rest.RestBackend` (a console command, over the REST
API). The last two also implement :class:`BulkReader`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class KeyValueBackend(Protocol):
    """String key-value storage with prefix listing; last writer wins, no CAS."""

    async def get(self, key: str) -> str | None:
        """Return the value, or ``None`` if the key does not exist."""
        ...

    async def set(self, key: str, value: str) -> None:
        """Create or overwrite ``key``."""
        ...

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        ...

    async def keys(self, prefix: str) -> list[str]:
        """Return every key starting with ``prefix``, in any order."""
        ...


@runtime_checkable
class BulkReader(Protocol):
    """A backend that lists keys *with* their values in one pass."""

    async def items(self, prefix: str) -> dict[str, str]:
        """Return every key starting with ``prefix`` and its value."""
        ...
