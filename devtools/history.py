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


def store_for(airflow: AirflowHarness) -> AirflowStore:
    """Return a store reading ``airflow``'s Variables through its REST API."""
    return AirflowStore(RestBackend(f"http://127.0.0.1:{airflow.port}"))


def history_of(airflow: AirflowHarness, source: str) -> list[dict[str, Any]]:
    """Return ``source``'s wait records (plain JSON), oldest first."""
    records = asyncio.run(store_for(airflow).history(source))
    return [record.to_json_dict() for record in records]


def breaker_of(airflow: AirflowHarness, source: str) -> dict[str, Any] | None:
    """Return ``source``'s breaker snapshot (plain JSON), or ``None`` if it has none."""
    snapshot = asyncio.run(store_for(airflow).get_breaker(source))
    return None if snapshot is None else snapshot.to_json_dict()
