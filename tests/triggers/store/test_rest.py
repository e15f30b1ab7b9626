"""The console read path against a fake of Airflow's ``/api/v2/variables`` endpoints."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import unquote

import httpx
import pytest

from waitwise.triggers.store import AirflowStore, CompactionPolicy, RestBackend

from .fakes import NOW, SRC, make_record

PAGE_LIMIT = 5  # the api-server's [api] maximum_page_limit, small to force paging


class FakeVariablesApi:
    """Enough of Airflow's Variable endpoints: paging, prefix filter, 404/409, redaction."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self.headers: list[str | None] = []
        self.between_pages: list[dict[str, str | None]] = []
        self.failures = 0  # answer this many requests with 500 first

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers.get("authorization"))
        if self.failures:
            self.failures -= 1
            return httpx.Response(500, text="database is locked")
        key = unquote(request.url.path.removeprefix("/api/v2/variables").removeprefix("/"))
        self.calls[f"{request.method} {'one' if key else 'all'}"] += 1
        if not key and request.method == "GET":
            return self._list(request)
        if request.method == "POST":
            body = json.loads(request.content)
            if body["key"] in self.data:
                return httpx.Response(409)
            self.data[body["key"]] = body["value"]
            return httpx.Response(201, json={})
        if key not in self.data:
            return httpx.Response(404)
        if request.method == "PATCH":
            self.data[key] = json.loads(request.content)["value"]
        elif request.method == "DELETE":
            del self.data[key]
            return httpx.Response(204)
        return httpx.Response(200, json={"key": key, "value": _redacted(self.data[key])})

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        prefix = params["variable_key_prefix_pattern"].rstrip("/")  # Airflow strips it too
        keys = sorted(k for k in self.data if k.startswith(prefix))
        offset, limit = int(params["offset"]), min(int(params["limit"]), PAGE_LIMIT)
        rows = [{"key": k, "value": _redacted(self.data[k])} for k in keys[offset : offset + limit]]
        if self.between_pages:
            for k, v in self.between_pages.pop(0).items():
                self.data.pop(k, None) if v is None else self.data.__setitem__(k, v)
        return httpx.Response(200, json={"variables": rows, "total_entries": len(keys)})


def _redacted(value: str) -> str:
    """Return the value as the api-server does: JSON objects re-serialised, text as is."""
    try:
        return json.dumps(json.loads(value))
    except ValueError:
        return value


@pytest.fixture
def api() -> FakeVariablesApi:
    return FakeVariablesApi()


@pytest.fixture
async def backend(api):
    backend = RestBackend("http://airflow:8080/", token="t0k", transport=httpx.MockTransport(api))
    yield backend
    await backend.aclose()


async def test_operations_map_to_the_rest_api(backend, api):
    await backend.set("waitwise/finance/a", "1")
    await backend.set("waitwise/finance/a", "2")  # exists: POST 409, then PATCH
    await backend.set("waitwise/finance2/b", "3")
    got = (await backend.get("waitwise/finance/a"), await backend.get("missing"))
    listed = await backend.items("waitwise/finance/")
    await backend.delete("waitwise/finance/a")
    await backend.delete("waitwise/finance/a")
    assert (got, listed, api.data) == (
        ("2", None),
        {"waitwise/finance/a": "2"},
        {"waitwise/finance2/b": "3"},
    )
    assert (set(api.headers), api.calls["POST all"], api.calls["PATCH one"]) == (
        {"Bearer t0k"},
        3,
        1,
    )


async def test_listing_pages_and_starts_again_if_keys_changed_meanwhile(backend, api):
    api.data = {f"waitwise/finance/k{i:02d}": str(i) for i in range(12)}
    api.between_pages = [{"waitwise/finance/k00": None}]  # a compaction deletes a key
    listed = await backend.items("waitwise/finance/")
    assert (listed, api.calls["GET all"]) == (
        {f"waitwise/finance/k{i:02d}": str(i) for i in range(1, 12)},
        3 + 3,
    )


async def test_a_store_over_rest_reads_a_compacted_source_in_few_requests(backend, api):
    store = AirflowStore(
        backend,
        compaction=CompactionPolicy(every=None, segment_records=10),
        settle_s=0,
        now=lambda: NOW,
    )
    records = [make_record(i) for i in range(40)]
    for record in records:
        await store.append(record)
    await store.compact(SRC)
    api.calls.clear()
    assert (await store.history(SRC), dict(api.calls)) == (records, {"GET all": 1})


async def test_server_errors_are_retried_then_raised(api):
    backend = RestBackend(
        "http://airflow", transport=httpx.MockTransport(api), retry_delays_s=(0, 0)
    )
    api.failures = 2
    await backend.set("waitwise/finance/a", "1")
    api.failures = 3
    with pytest.raises(httpx.HTTPStatusError, match="500 Internal Server Error"):
        await backend.delete("waitwise/finance/a")
    await backend.aclose()
    assert api.data == {"waitwise/finance/a": "1"}
