"""The plugin's app: refused without a token, and a user sees only the DAGs they may read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from waitwise.triggers.report.plugin import WaitwisePlugin
from waitwise.triggers.store import FileStore

from .test_report import day_waits

# Airflow's api-server code imports starlette's test client (through svcs), which warns on
# import; the app is imported lazily under this filter (pytest turns warnings into errors).
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def _webapp() -> Any:
    from waitwise.triggers.report import webapp

    return webapp


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path)


@pytest.fixture
def seams(store: FileStore) -> Iterator[dict[str, set[str]]]:
    webapp = _webapp()
    allowed: dict[str, set[str]] = {"alice": {"fin_dag", "partner_dag"}, "bob": {"fin_dag"}}
    webapp.STORE[:] = [lambda: store]
    webapp.READABLE[:] = [lambda user: allowed[user]]
    yield allowed
    webapp.STORE[:] = [webapp._default_store]
    webapp.READABLE[:] = [webapp._readable_dags]
    webapp.app.dependency_overrides.clear()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_webapp().app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as found:
        yield found


async def seed(store: FileStore) -> None:
    import time

    now = time.time()
    fin = [
        replace(r, dag_id="fin_dag", ended_at=now - 3600 * (i + 1))
        for i, r in enumerate(day_waits("fin", "high", range(3), 60.0))
    ]
    partner = [
        replace(r, dag_id="partner_dag", ended_at=now - 3600 * (i + 1))
        for i, r in enumerate(day_waits("partner", "low", range(4), 600.0))
    ]
    await store.append_many(fin)
    await store.append_many(partner)


async def test_a_request_without_a_token_is_refused(client: httpx.AsyncClient, seams: Any) -> None:
    paths = [getattr(r, "path", "") for r in _webapp().app.routes]
    assert sorted(paths) == ["/report", "/report.json"]  # no docs or openapi routes
    for path in (*paths, "/docs", "/openapi.json", "/redoc", "/elsewhere"):
        answer = await client.get(path)
        assert answer.status_code in (401, 404), path
        if path in paths:
            assert answer.status_code == 401, path


async def test_a_user_sees_only_the_sources_of_dags_they_may_read(
    client: httpx.AsyncClient, seams: Any, store: FileStore
) -> None:
    from airflow.api_fastapi.core_api.security import get_user

    webapp = _webapp()
    await seed(store)
    for user, expected in (("alice", ["fin", "partner"]), ("bob", ["fin"])):
        webapp.app.dependency_overrides[get_user] = lambda user=user: user
        found = (await client.get("/report.json")).json()
        assert [s["source"] for s in found["sources"]] == expected
        page = await client.get("/report")
        assert page.status_code == 200
        assert ("partner" in page.text) is (user == "alice")
    fin = found["sources"][0]
    assert (fin["waits"], fin["success_rate"], fin["tier"]) == (3, 1.0, "high")
    assert (await client.get("/report.json?days=0")).status_code == 422


def test_the_plugin_mounts_the_app_and_adds_a_navigation_entry() -> None:
    plugin = WaitwisePlugin()
    (mounted,) = plugin.fastapi_apps
    assert (mounted["app"], mounted["url_prefix"]) == (_webapp().app, "/waitwise")
    assert plugin.external_views[0]["href"] == "/waitwise/report"
