"""The history store's read paths against a real Airflow: the REST API and Airflow's ORM.

One history is written through the REST API (what a console command does), with a record
as 0.1.0 wrote it among the others, compacted, and read back through both the REST API
and Airflow's ORM in a process configured as the api-server is (what the monitoring
plugin will do): both paths read every wait once, before and after compaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import uuid
from dataclasses import replace

import pytest

from devtools.airflow_harness import AirflowHarness
from tests.triggers.store.fakes import NOT_IN_0_1_0
from waitwise.triggers.store import (
    AirflowStore,
    CompactionPolicy,
    RestBackend,
    WaitOutcome,
    WaitRecord,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]
SOURCE = "e2e_feed"
T0 = 1_780_000_000.0

ORM_READ = """
import asyncio, json, sys
from waitwise.triggers.store import AirflowStore, MetadataBackend
store = AirflowStore(MetadataBackend(), namespace=sys.argv[1])
records = asyncio.run(store.history(sys.argv[2]))
print(json.dumps([[r.run_id, r.pokes, r.schema] for r in records]))
"""


def record(i: int, **changes: object) -> WaitRecord:
    base = WaitRecord(
        source=SOURCE,
        profile="high",
        dag_id="ingest",
        task_id="wait",
        run_id=f"run-{i}",
        try_number=1,
        started_at=T0 + 3_600 * i,
        ended_at=T0 + 3_600 * i + 60,
        outcome=WaitOutcome.SUCCESS,
        last_miss_at=T0 + 3_600 * i + 30,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def legacy_key(namespace: str, old: WaitRecord) -> str:
    digest = hashlib.sha256(json.dumps(list(old.key), separators=(",", ":")).encode())
    return f"{namespace}/{SOURCE}/wait/{int(old.ended_at * 1000):013d}-{digest.hexdigest()[:24]}"


async def write_through_rest(url: str, namespace: str) -> list[list[object]]:
    backend = RestBackend(url)
    store = AirflowStore(backend, namespace=namespace, compaction=CompactionPolicy(every=None))
    try:
        old = {k: v for k, v in record(0).to_json_dict().items() if k not in NOT_IN_0_1_0}
        old["schema"] = 1
        await backend.set(legacy_key(namespace, record(0)), json.dumps(old))
        for i in range(1, 40):
            await store.append(record(i))
            if i % 10 == 0:  # the trigger ran twice: the later record wins
                await store.append(record(i, pokes=5, ended_at=record(i).ended_at + 1))
        before = await store.history(SOURCE)
        await store.compact(SOURCE)
        after = await store.history(SOURCE)
        segments = [k for k in await backend.keys(f"{namespace}/{SOURCE}/") if "/seg/" in k]
    finally:
        await backend.aclose()
    assert before == after
    assert len(segments) == 3  # 40 waits over 40 hours from 20:26 UTC: three UTC days
    return [[r.run_id, r.pokes, r.schema] for r in after]


def test_rest_and_orm_paths_read_the_same_history(airflow: AirflowHarness) -> None:
    namespace = f"e2e{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{airflow.port}"
    via_rest = asyncio.run(write_through_rest(url, namespace))
    done = subprocess.run(
        [airflow.interpreter, "-c", ORM_READ, namespace, SOURCE],
        env=airflow.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    via_orm = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [["run-0", 0, 1]] + [[f"run-{i}", 5 if i % 10 == 0 else 0, 3] for i in range(1, 40)]
    assert (via_rest, via_orm) == (expected, expected)
