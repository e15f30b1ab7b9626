"""FileArrivalSensor in a real Airflow: zero worker time, deadlines, soft_fail, templating."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from devtools.airflow_harness import AirflowHarness
from tests.e2e.conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def _ti(airflow: AirflowHarness, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    return airflow.task_instances(dag_id, run_id)[task_id]


def test_arrival_ends_in_triggerer_and_downstream_reads_payload(
    airflow: AirflowHarness, data_dir: Path
) -> None:
    run_id = airflow.trigger("ww_arrival", conf={"file": "arrival/a.csv"})
    airflow.wait_for("ww_arrival", run_id, {"sense": "deferred"}, timeout=60)
    (data_dir / "arrival").mkdir(exist_ok=True)
    (data_dir / "arrival" / "a.csv").write_text("1,2,3\n")

    airflow.wait_for("ww_arrival", run_id, {"sense": "success", "consume": "success"})

    sense = _ti(airflow, "ww_arrival", run_id, "sense")
    assert airflow.worker_runs(sense["id"]) == []
    FIGURES["arrival: sensor worker runs"] = "0"
    assert sense["try_number"] == 1
    consume = _ti(airflow, "ww_arrival", run_id, "consume")
    assert len(airflow.worker_runs(consume["id"])) == 1  # the harness does see worker runs
    xcom = airflow.api(
        "GET",
        f"/dags/ww_arrival/dagRuns/{run_id}/taskInstances/consume/xcomEntries/return_value",
    )
    assert xcom["value"] == str(data_dir / "arrival" / "a.csv")


def test_deadline_fails_once_without_using_retries(airflow: AirflowHarness) -> None:
    run_id = airflow.trigger("ww_timeout")
    airflow.wait_for("ww_timeout", run_id, {"sense": "failed"}, timeout=120)

    sense = _ti(airflow, "ww_timeout", run_id, "sense")
    assert sense["try_number"] == 1  # retries=2, yet no second try
    assert len(airflow.worker_runs(sense["id"])) == 1  # one short run raises the timeout
    FIGURES["hard timeout (retries=2): worker runs, worker-seconds"] = (
        f"1, {airflow.worker_seconds(sense['id']):.2f} s"
    )
    assert "not found by the deadline" in airflow.task_log("ww_timeout", run_id, "sense")


def test_soft_fail_skips_with_zero_worker_runs(airflow: AirflowHarness) -> None:
    run_id = airflow.trigger("ww_soft_fail")
    airflow.wait_for("ww_soft_fail", run_id, {"sense": "skipped"}, timeout=120)

    sense = _ti(airflow, "ww_soft_fail", run_id, "sense")
    assert sense["try_number"] == 1
    assert airflow.worker_runs(sense["id"]) == []


def test_templated_path_is_rendered_in_the_triggerer(
    airflow: AirflowHarness, data_dir: Path
) -> None:
    logical = dt.datetime(2026, 3, 14, tzinfo=dt.UTC)
    run_id = airflow.trigger("ww_templated", logical_date=logical)
    airflow.wait_for("ww_templated", run_id, {"sense": "deferred"}, timeout=60)
    (data_dir / "financial_20260314.csv").write_text("ok\n")

    airflow.wait_for("ww_templated", run_id, {"sense": "success"}, timeout=60)
    sense = _ti(airflow, "ww_templated", run_id, "sense")
    assert airflow.worker_runs(sense["id"]) == []


def test_triggerer_sigkill_mid_wait_keeps_the_wait_and_its_deadline(
    airflow: AirflowHarness, data_dir: Path
) -> None:
    run_id = airflow.trigger("ww_restart", conf={"file": "restart/r.csv"})
    airflow.wait_for(
        "ww_restart", run_id, {"arrives": "deferred", "expires": "deferred"}, timeout=60
    )
    time.sleep(3)  # let both triggers start polling in the first triggerer
    killed_at = time.time()
    airflow.kill_component("triggerer")
    (data_dir / "restart").mkdir(exist_ok=True)
    (data_dir / "restart" / "r.csv").write_text("late\n")
    time.sleep(5)
    airflow.start_component("triggerer")

    airflow.wait_for(
        "ww_restart", run_id, {"arrives": "success", "expires": "skipped"}, timeout=150
    )
    arrives = _ti(airflow, "ww_restart", run_id, "arrives")
    expires = _ti(airflow, "ww_restart", run_id, "expires")
    assert airflow.worker_runs(arrives["id"]) == []
    assert airflow.worker_runs(expires["id"]) == []
    started = _ts(expires["start_date"])
    ended = _ts(expires["end_date"])
    # The 40 s deadline counts from the start; the outage (kill + 5 s + reassignment)
    # must not extend it.  Allow scheduling/event latency, not the outage.
    assert started < killed_at
    assert 38.0 <= ended - started <= 40.0 + 8.0, (started, ended)


def _ts(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()
