"""The report inside the Airflow UI: the FastAPI app the plugin (:mod:`.plugin`) mounts.

Mounted at ``/waitwise`` on the api-server:

- ``GET /waitwise/report`` (``?days=7``): the HTML report; ``/waitwise/report.json`` the
  same figures as JSON. The UI's "waitwise" navigation entry shows the page in a frame.

Protected like the rest of the api-server: every route depends on Airflow's own
``get_user`` (the ``Authorization: Bearer`` JWT, or the UI's session cookie), so a request
without a valid token gets 401 (403 for a bad one). What a user sees is limited to what they
may read: records of DAGs their auth manager does not let them read (``GET``) are dropped
before the report is built, so a source whose every wait belongs to such DAGs does not
appear at all. Reads go through the api-server's read path,
:class:`~waitwise.triggers.store.MetadataBackend` (Airflow's ORM, one query per source).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from airflow.api_fastapi.core_api.security import GetUserDep, get_user
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from waitwise.triggers.store import AirflowStore, MetadataBackend, WaitRecord, WaitStore

from .render import html_page
from .summary import DAY, Report, summarize

__all__ = ["READABLE", "STORE", "app", "readable_report"]

app = FastAPI(
    title="waitwise",
    description="The waitwise report, behind Airflow's auth",
    # No unauthenticated documentation routes (FastAPI's defaults), and every route,
    # present or future, behind Airflow's own authentication.
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    dependencies=[Depends(get_user)],
)
_store: list[WaitStore] = []


def _default_store() -> WaitStore:
    if not _store:
        _store.append(AirflowStore(MetadataBackend()))
    return _store[0]


def _readable_dags(user: Any) -> set[str]:
    from airflow.api_fastapi.app import get_auth_manager

    found: set[str] = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    return found


async def readable_report(
    store: WaitStore, readable: set[str], *, now: float, window_s: float
) -> Report:
    """Return the report of the records of DAGs in ``readable`` only."""
    histories: dict[str, list[WaitRecord]] = {}
    breakers = {}
    for name in await store.sources():
        kept = [r for r in await store.history(name) if r.dag_id in readable]
        if kept:
            histories[name] = kept
            breakers[name] = await store.get_breaker(name)
    # Off the api-server's event loop: 100,000 records take most of a second to summarize.
    return await asyncio.to_thread(
        summarize, histories, now=now, window_s=window_s, breakers=breakers
    )


async def _report_for(user: Any, days: float) -> Report:
    if not 0 < days <= 3660:
        raise HTTPException(status_code=422, detail=f"days must be in (0, 3660], got {days!r}")
    readable = await asyncio.to_thread(READABLE[0], user)
    return await readable_report(STORE[0](), readable, now=time.time(), window_s=days * DAY)


STORE: list[Callable[[], WaitStore]] = [_default_store]
"""The store the app reads (a seam for tests: replace the one element)."""
READABLE: list[Callable[[Any], set[str]]] = [_readable_dags]
"""Which DAG ids a user may read (a seam for tests: replace the one element)."""


@app.get("/report", response_class=HTMLResponse)
async def report_page(user: GetUserDep, days: float = Query(7.0)) -> HTMLResponse:
    """Return the report page of what ``user`` may read."""
    found = await _report_for(user, days)
    return HTMLResponse(await asyncio.to_thread(html_page, found))


@app.get("/report.json")
async def report_json(user: GetUserDep, days: float = Query(7.0)) -> dict[str, Any]:
    """Return the report's figures as JSON."""
    found = await _report_for(user, days)
    return {
        "now": found.now,
        "window_s": found.window_s,
        "tiers": [dataclasses.asdict(t) for t in found.tiers],
        "sources": [
            {k: v for k, v in dataclasses.asdict(s).items() if k != "alerts"} for s in found.sources
        ],
    }
