"""The production key-value backend of :class:`AirflowStore`: Airflow Variables.

Why Variables, not the 3.3 asset state store (``AssetStateStoreAccessor``): both reach
the API server from a trigger (the triggerer parent forwards the messages) and from
workers, with any executor and any number of triggerers, and neither offers
compare-and-set. The asset store has native ``aget``/``aset``, but it needs an active
asset per source (declared by some DAG) and cannot list keys, so lossless concurrent
appends would need a shared index, itself a lost-update hazard. Variables list keys by
prefix (``Variable.keys``), so every record gets its own key and appends never race.

Why ``asyncio.to_thread`` (not greenback, not ``sync_to_async``): the Variable API is
sync only. Called on the triggerer's loop thread it goes through greenback, but the
sync work around the request (secrets-backend lookups, which may be remote network
calls, and first-call imports of several seconds) would still run on the loop and
block every trigger. In a worker thread that work runs off the loop, and the SDK
bridges the request back to the loop with ``run_coroutine_threadsafe``. asgiref's
``sync_to_async(thread_sensitive=False)`` does the same with an extra dependency;
``to_thread`` also copies context variables.

Caveats: a secrets backend that defines a ``waitwise/...`` variable shadows ours, and
``[secrets] use_cache = True`` would serve stale reads across processes, so each read
first drops the key from this process's secrets cache. Keys are visible (and
editable) in the Variables UI with the description below.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

DESCRIPTION: Final = "Managed by waitwise (wait history / circuit breaker); do not edit."


class VariableBackend:
    """Airflow Variables through the Task SDK, each call in a worker thread.

    :param variable_api: an object with the ``airflow.sdk.Variable`` class methods
        ``get``/``set``/``delete``/``keys``; ``None`` imports the real one (tests pass
        a fake).
    :param invalidate: drops a key from the process's secrets cache before a read;
        ``None`` uses the Task SDK's ``SecretCache`` with the real API, else a no-op.
    """

    def __init__(
        self, variable_api: Any | None = None, *, invalidate: Callable[[str], object] | None = None
    ) -> None:
        if variable_api is None:
            from airflow.sdk import Variable
            from airflow.sdk.execution_time.cache import SecretCache

            variable_api, invalidate = (Variable, invalidate or SecretCache.invalidate_variable)
        self._api = variable_api
        self._invalidate = invalidate or (lambda key: None)

    async def get(self, key: str) -> str | None:
        """Return the variable's value, or ``None`` if it does not exist."""
        value = await asyncio.to_thread(self._get, key)
        return value if isinstance(value, str) else None

    async def set(self, key: str, value: str) -> None:
        """Create or overwrite the variable."""
        await asyncio.to_thread(self._api.set, key, value, description=DESCRIPTION)

    async def delete(self, key: str) -> None:
        """Delete the variable; a missing one is not an error."""
        await asyncio.to_thread(self._api.delete, key)

    async def keys(self, prefix: str) -> list[str]:
        """Return the keys starting with ``prefix`` (metadata DB only, paged)."""
        return await asyncio.to_thread(self._keys, prefix)

    def _get(self, key: str) -> object:
        self._invalidate(key)
        return self._api.get(key, default=None)

    def _keys(self, prefix: str) -> list[str]:
        return [str(key) for key in self._api.keys(prefix=prefix)]
