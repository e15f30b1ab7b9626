"""SqlConditionSensor in a real Airflow (SQLite metadata), waiting on a real PostgreSQL table.

The PostgreSQL server is only the *data* source, reached through connections defined in the
environment (``AIRFLOW_CONN_WAREHOUSE``; ``AIRFLOW_CONN_DEAD`` is the same driver pointed at
a closed port).  Every wait starts and ends in the triggerer: zero worker runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import history
from devtools.airflow_harness import AirflowHarness
from devtools.postgres import PostgresServer, _free_port
from tests.e2e.conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAGS = Path(__file__).parent / "dags_sql"
DAG_IDS = ["ww_sql_arrival", "ww_sql_schedule", "ww_sql_failing"]


@pytest.fixture(scope="module")
def sql_airflow(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowHarness]:
    pg = postgres_server
    pg.query("create table landed (day date, n int)")
    warehouse = f"postgresql://{pg.user}:{pg.password}@127.0.0.1:{pg.port}/{pg.database}"
    dead = f"postgresql://x:y@127.0.0.1:{_free_port()}/x?connect_timeout=2"
    harness = AirflowHarness(
        dags_folder=DAGS,
        data_dir=tmp_path_factory.mktemp("sql-data"),
        extra_env={"AIRFLOW_CONN_WAREHOUSE": warehouse, "AIRFLOW_CONN_DEAD": dead},
    )
    started = time.monotonic()
    try:
        harness.start(DAG_IDS)
        FIGURES["sql: harness ready"] = f"{time.monotonic() - started:.1f} s"
        assert harness.import_errors() == []
        yield harness
    finally:
        harness.stop()
        assert harness.pids() == []


def _ti(airflow: AirflowHarness, dag_id: str, run_id: str) -> dict[str, Any]:
    return airflow.task_instances(dag_id, run_id)["sense"]


def _last(airflow: AirflowHarness, source: str, run_id: str) -> dict[str, Any]:
    records = [r for r in history.history_of(airflow, source) if r["run_id"] == run_id]
    assert records, f"no history for {source} {run_id}"
    return records[-1]


def _wait_deferred(airflow: AirflowHarness, dag_id: str, run_id: str) -> None:
    airflow.wait_for(dag_id, run_id, {"sense": "deferred"}, timeout=90)


def test_arrival_succeeds_in_the_triggerer_with_zero_worker_runs(
    sql_airflow: AirflowHarness, postgres_server: PostgresServer
) -> None:
    airflow = sql_airflow
    run_id = airflow.trigger("ww_sql_arrival", conf={"day": "2024-03-01"})
    _wait_deferred(airflow, "ww_sql_arrival", run_id)
    postgres_server.query("insert into landed values ('2024-03-01', 1)")  # 1 row: not yet
    time.sleep(2.5)
    assert _ti(airflow, "ww_sql_arrival", run_id)["state"] == "deferred"
    landed = time.time()
    postgres_server.query("insert into landed values ('2024-03-01', 2)")  # 2 rows: >= 2
    airflow.wait_for("ww_sql_arrival", run_id, {"sense": "success"}, timeout=60)

    sense = _ti(airflow, "ww_sql_arrival", run_id)
    assert airflow.worker_runs(sense["id"]) == []
    path = f"/dags/ww_sql_arrival/dagRuns/{run_id}/taskInstances/sense/xcomEntries/return_value"
    value = airflow.api("GET", path)["value"]
    payload = json.loads(value) if isinstance(value, str) else value
    assert payload["status"] == "success"
    assert payload["found"][0]["value"] == 2  # the rendered parameter reached the query
    detected = payload["first_seen_at"] - landed
    assert 0 <= detected <= 1.5  # Constant(1 s) poll
    FIGURES["sql: arrival detected after the insert"] = f"{detected:.2f} s (1 s poll)"
    FIGURES["sql: arrival pokes / worker runs"] = f"{payload['pokes']} / 0"


def test_deadline_soft_fails_on_the_profile_schedule_with_zero_worker_runs(
    sql_airflow: AirflowHarness,
) -> None:
    airflow = sql_airflow
    run_id = airflow.trigger("ww_sql_schedule")
    airflow.wait_for("ww_sql_schedule", run_id, {"sense": "skipped"}, timeout=90)
    sense = _ti(airflow, "ww_sql_schedule", run_id)
    assert airflow.worker_runs(sense["id"]) == []
    record = _last(airflow, "sql_schedule", run_id)
    # Exponential(2, 2, cap 8) over a 14 s window: pokes at +0 +2 +6, then at the deadline
    # (+0 is late by the triggerer's pick-up, about a second, which the +2 absorbs).
    assert (record["outcome"], record["pokes"], record["error_count"]) == ("skipped", 4, 0)
    assert 13.9 <= record["ended_at"] - record["started_at"] <= 15.5
    FIGURES["sql: soft-failed deadline (14 s window)"] = (
        f"{record['pokes']} pokes in {record['ended_at'] - record['started_at']:.1f} s, skipped"
    )


def test_a_failing_database_backs_off_then_opens_the_breaker(
    sql_airflow: AirflowHarness,
) -> None:
    airflow = sql_airflow
    for _ in range(2):  # threshold 2: two waits ending in probe errors open the breaker
        run_id = airflow.trigger("ww_sql_failing")
        airflow.wait_for("ww_sql_failing", run_id, {"sense": "failed"}, timeout=90)
        record = _last(airflow, "sql_dead", run_id)
        assert (record["outcome"], record["error_count"]) == ("error", 3)
        assert record["last_error_kind"] == "OperationalError"
        # probe backoff Exponential(1, 2): errors at +0 +1 +3, the third over the limit of 2;
        # started_at is the task's start, so the span adds the triggerer's pick-up of the
        # trigger (about a second, 2 s seen on a loaded 2-core machine), so this bounds the
        # schedule loosely (a backoff of +0 +2 +6 fails it); the exact one is asserted with a
        # fake clock against a real PostgreSQL in tests/triggers/test_sql.py.
        assert 2.9 <= record["ended_at"] - record["started_at"] <= 6.0
    breaker = history.breaker_of(airflow, "sql_dead")
    assert breaker is not None
    assert breaker["state"] == "open"

    run_id = airflow.trigger("ww_sql_failing")
    airflow.wait_for("ww_sql_failing", run_id, {"sense": "failed"}, timeout=90)
    record = _last(airflow, "sql_dead", run_id)
    assert (record["outcome"], record["pokes"]) == ("breaker_open", 0)
    log = airflow.task_log("ww_sql_failing", run_id, "sense")
    assert "breaker" in log.lower()
    FIGURES["sql: failing database"] = "3 probe errors per wait at +0 +1 +3 s; breaker open after 2"
