"""The console's read path: Airflow's public REST API (``/api/v2/variables``).

For a command run outside Airflow (a report, an operator's shell): it needs the
api-server's URL and a token (``POST /auth/token``, or ``None`` where the auth manager
lets anonymous users in, e.g. the simple auth manager's "all admins" mode used by
``devtools/airflow_harness.py``); the token's user needs the Variable permissions.

Cost: :meth:`RestBackend.items` pages through ``GET /variables`` filtered by key prefix
(``variable_key_prefix_pattern``, an index range scan) and ordered by key,
``page_size`` variables per request (the api-server caps it at ``[api]
maximum_page_limit``, 100 by default), values included: a compacted source of 100,000
records is ~100 segments, two calls. Every other call is one HTTP round trip. Offset paging
is not a snapshot: if the number of matching keys changed while paging (a compaction
ran), the listing starts again, up to three times.

Caveats: the api-server redacts values as it returns them: a value that is a JSON
object is parsed and re-serialised (loose records and the breaker: same content,
other spacing), segments are plain text and come back unchanged; and a key whose name
looks sensitive to Airflow's secrets masker (a source named ``..._secret``, say) reads
as ``***`` (skipped as damaged, with a warning).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final
from urllib.parse import quote

from .variables import DESCRIPTION

LISTING_ATTEMPTS: Final = 3


class RestBackend:
    """Key-value backend and bulk reader over Airflow's REST API.

    :param base_url: the api-server's root, e.g. ``http://localhost:8080``.
    :param token: a bearer token, or ``None`` for none.
    :param page_size: variables asked for per listing request.
    :param timeout_s: per-request timeout.
    :param transport: an ``httpx`` async transport (tests pass a mock one).
    :param retry_delays_s: pauses before retrying a request that failed with a server
        error (5xx: SQLite's "database is locked" under concurrent writes, a restarting
        api-server) or a lost connection.
    :param writes_in_flight: most writes (``POST``/``PATCH``/``DELETE``) sent at once.
        Each write is a transaction on the metadata database (plus an audit-log row);
        on SQLite concurrent writers queue on its lock (16 at once took ~5 s each), so
        the default sends them one at a time; raise it for PostgreSQL or MySQL.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        page_size: int = 100,
        timeout_s: float = 60.0,
        transport: Any | None = None,
        retry_delays_s: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0),
        writes_in_flight: int = 1,
    ) -> None:
        import httpx  # Airflow's own dependency (the Task SDK's client)

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.page_size = page_size
        self.retry_delays_s = retry_delays_s
        self._writes = asyncio.Semaphore(writes_in_flight)
        self._client = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}/api/v2",
            headers=headers,
            timeout=timeout_s,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def get(self, key: str) -> str | None:
        """Return the value of ``key`` (as the api-server returns it), or ``None``."""
        response = await self._send("GET", _path(key))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        value = response.json().get("value")
        return value if isinstance(value, str) else None

    async def set(self, key: str, value: str) -> None:
        """Create ``key`` (``POST``), or overwrite it (``PATCH``) if it exists."""
        body = {"key": key, "value": value, "description": DESCRIPTION}
        response = await self._send("POST", "/variables", json=body)
        if response.status_code == 409:
            response = await self._send("PATCH", _path(key), json=body)
        response.raise_for_status()

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        response = await self._send("DELETE", _path(key))
        if response.status_code != 404:
            response.raise_for_status()

    async def keys(self, prefix: str) -> list[str]:
        """Return every key starting with ``prefix`` (the listing carries values too)."""
        return list(await self.items(prefix))

    async def items(self, prefix: str) -> dict[str, str]:
        """Return every key starting with ``prefix`` and its value, paging by key."""
        for _ in range(LISTING_ATTEMPTS - 1):
            found, consistent = await self._list(prefix)
            if consistent:
                return found
        return (await self._list(prefix))[0]

    async def _list(self, prefix: str) -> tuple[dict[str, str], bool]:
        found: dict[str, str] = {}
        totals: set[int] = set()
        offset = 0
        while True:
            params: dict[str, str | int] = {
                "variable_key_prefix_pattern": prefix,
                "order_by": "key",
                "limit": self.page_size,
                "offset": offset,
            }
            response = await self._send("GET", "/variables", params=params)
            response.raise_for_status()
            page = response.json()
            totals.add(page["total_entries"])
            rows = page["variables"]
            for row in rows:
                if row["key"].startswith(prefix) and isinstance(row.get("value"), str):
                    found[row["key"]] = row["value"]
            offset += len(rows)
            if not rows or offset >= page["total_entries"]:
                return found, len(totals) == 1

    async def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send a request, retrying server errors and lost connections.

        Every request of ours may be repeated: a repeated ``POST`` answers 409 and
        becomes a ``PATCH``, a repeated ``DELETE`` answers 404.
        """
        import httpx

        for delay in (*self.retry_delays_s, None):
            try:
                if method == "GET":
                    response = await self._client.request(method, url, **kwargs)
                else:
                    async with self._writes:
                        response = await self._client.request(method, url, **kwargs)
            except httpx.TransportError:
                if delay is None:
                    raise
            else:
                if response.status_code < 500 or delay is None:
                    return response
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")


def _path(key: str) -> str:
    return f"/variables/{quote(key, safe='/')}"
