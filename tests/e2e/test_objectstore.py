"""s3:// sensors in a real Airflow against a real S3 API (moto's standalone server).

Its own Airflow (``dags_objectstore``) with two ``aws`` connections defined in the
environment: ``moto_s3`` (``endpoint_url`` = the server) and ``dead_s3`` (a closed port).
Every count of S3 requests is read from the server's own request log.
"""

from __future__ import annotations

import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from devtools import history
from devtools.airflow_harness import AirflowHarness
from devtools.moto_server import MotoServer
from tests.e2e.conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

DAGS = Path(__file__).parent / "dags_objectstore"
DAG_IDS = ["wwo_arrival", "wwo_soft_fail", "wwo_timeout", "wwo_dead"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    FIGURES["objectstore: moto server ready"] = f"{server.ready_s:.1f} s"
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(moto: MotoServer) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="landing")
    return client


@pytest.fixture(scope="module")
def airflow(
    moto: MotoServer, s3: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowHarness]:
    harness = AirflowHarness(
        dags_folder=DAGS,
        data_dir=tmp_path_factory.mktemp("objectstore-data"),
        extra_env={
            "AIRFLOW_CONN_MOTO_S3": moto.airflow_conn(),
            "AIRFLOW_CONN_DEAD_S3": moto.airflow_conn(port=_closed_port()),
        },
    )
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        harness.start(DAG_IDS)
        FIGURES["objectstore: harness ready"] = f"{harness.ready_s:.1f} s"
        assert harness.import_errors() == []
        yield harness
    finally:
        harness.stop()
        signal.signal(signal.SIGTERM, previous)
        assert harness.pids() == []


def _prefix_of(path: str) -> str | None:
    """Return the ``prefix`` of a logged listing request, decoded."""
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(path).query).get("prefix")
    return values[0] if values else None


def _ti(airflow: AirflowHarness, dag_id: str, run_id: str) -> dict[str, Any]:
    return airflow.task_instances(dag_id, run_id)["sense"]


def _record(airflow: AirflowHarness, source: str, run_id: str) -> dict[str, Any]:
    records = [r for r in history.history_of(airflow, source) if r["run_id"] == run_id]
    assert len(records) == 1, records
    return records[0]


def test_an_object_landing_ends_the_wait_in_the_triggerer(
    airflow: AirflowHarness, moto: MotoServer, s3: Any
) -> None:
    run_id = airflow.trigger("wwo_arrival", conf={"day": "20240101"})
    airflow.wait_for("wwo_arrival", run_id, {"sense": "deferred"}, timeout=60)
    time.sleep(3)
    s3.put_object(Bucket="landing", Key="in/20240101/part-0.csv", Body=b"1,2,3\n")
    landed = time.time()
    airflow.wait_for("wwo_arrival", run_id, {"sense": "success"}, timeout=60)
    sense = _ti(airflow, "wwo_arrival", run_id)
    assert airflow.worker_runs(sense["id"]) == []
    xcom = airflow.api(
        "GET", f"/dags/wwo_arrival/dagRuns/{run_id}/taskInstances/sense/xcomEntries/return_value"
    )["value"]
    found = xcom["found"][0]
    assert found["path"] == "s3://landing/in/20240101/part-0.csv"
    assert found["size"] == 6
    assert found["etag"] == s3.head_object(Bucket="landing", Key="in/20240101/part-0.csv")[
        "ETag"
    ].strip('"')
    detected = xcom["first_seen_at"] - landed
    assert detected < 2.5  # a 1 s poll (plus the hub's tick)
    FIGURES["objectstore: arrival -> success, worker runs / detection after the put"] = (
        f"0 / {detected:.2f} s"
    )


def test_the_poke_schedule_is_the_policys_and_soft_fail_skips_with_no_worker(
    airflow: AirflowHarness, moto: MotoServer
) -> None:
    run_id = airflow.trigger("wwo_soft_fail")
    airflow.wait_for("wwo_soft_fail", run_id, {"sense": "skipped"}, timeout=120)
    sense = _ti(airflow, "wwo_soft_fail", run_id)
    assert airflow.worker_runs(sense["id"]) == []
    record = _record(airflow, "e2e_object_soft", run_id)
    assert record["outcome"] == "skipped"
    # Constant(2 s) over a 10 s window: pokes at +0 +2 +4 +6 +8 +10.
    assert record["pokes"] == 6
    # each poke was one listing request of the key, as the server logged it
    key = f"never/{run_id}.csv"
    asked = [r for r in moto.s3_requests() if _prefix_of(r.path) == key]
    assert len(asked) == 6
    FIGURES[
        "objectstore: soft_fail timeout (10 s, every 2 s): pokes / S3 requests / worker runs"
    ] = f"{record['pokes']} / {len(asked)} / 0"


def test_a_hard_timeout_fails_once_without_retries(airflow: AirflowHarness) -> None:
    run_id = airflow.trigger("wwo_timeout")
    airflow.wait_for("wwo_timeout", run_id, {"sense": "failed"}, timeout=120)
    sense = _ti(airflow, "wwo_timeout", run_id)
    assert sense["try_number"] == 1  # retries=2, yet no second try (sensor timeout semantics)
    assert len(airflow.worker_runs(sense["id"])) == 1


def test_a_dead_endpoint_backs_off_then_opens_the_breaker(airflow: AirflowHarness) -> None:
    run_id = airflow.trigger("wwo_dead")
    airflow.wait_for("wwo_dead", run_id, {"sense": {"failed", "skipped"}}, timeout=120)
    record = _record(airflow, "e2e_object_dead", run_id)
    # max_probe_errors=2: the third probe error in a row ends the wait, 2 s apart (backoff)
    assert (record["outcome"], record["error_count"], record["pokes"]) == ("error", 3, 3)
    assert record["last_error_kind"] == "EndpointConnectionError"
    assert 3.5 < record["ended_at"] - record["started_at"] < 10
    breaker = history.breaker_of(airflow, "e2e_object_dead")
    assert breaker is not None
    assert breaker["state"] == "open"

    rejected = airflow.trigger("wwo_dead")
    airflow.wait_for("wwo_dead", rejected, {"sense": {"failed", "skipped"}}, timeout=120)
    again = _record(airflow, "e2e_object_dead", rejected)
    assert (again["outcome"], again["pokes"]) == ("breaker_open", 0)
    FIGURES["objectstore: dead endpoint: errors before the breaker opened, wait length"] = (
        f"{record['error_count']}, {record['ended_at'] - record['started_at']:.1f} s"
    )
