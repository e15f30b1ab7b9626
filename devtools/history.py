"""Read a real Airflow's waitwise history and breakers the way a console reader does.

Through waitwise's own reader (``AirflowStore`` over the REST API, ``RestBackend``): loose
records and compacted segments alike, de-duplicated by task instance and try (the newest
``ended_at`` wins), so tests and benchmarks count what any reader counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from devtools.airflow_harness import AirflowHarness
from waitwise.triggers.store import AirflowStore, RestBackend


async def _read(airflow: AirflowHarness, source: str) -> tuple[list[Any], Any]:
    backend = RestBackend(f"http://127.0.0.1:{airflow.port}")
    try:
        store = AirflowStore(backend)
        return await store.history(source), await store.get_breaker(source)
    finally:
        await backend.aclose()


def history_of(airflow: AirflowHarness, source: str) -> list[dict[str, Any]]:
    """Return ``source``'s wait records (plain JSON), oldest first."""
    records, _breaker = asyncio.run(_read(airflow, source))
    return [record.to_json_dict() for record in records]


def breaker_of(airflow: AirflowHarness, source: str) -> dict[str, Any] | None:
    """Return ``source``'s breaker snapshot (plain JSON), or ``None`` if it has none."""
    _records, snapshot = asyncio.run(_read(airflow, source))
    return None if snapshot is None else snapshot.to_json_dict()
