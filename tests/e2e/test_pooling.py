"""Batch sensors, pooled scans and event-driven detection in a real Airflow.

Every sensor here starts and ends in the triggerer: zero worker runs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from devtools.airflow_harness import AirflowHarness
from tests.e2e.conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def _payload(airflow: AirflowHarness, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    value = airflow.api("GET", path)["value"]
    payload = json.loads(value) if isinstance(value, str) else value
    assert isinstance(payload, dict), payload
    return payload


def _no_worker_runs(airflow: AirflowHarness, dag_id: str, run_id: str) -> None:
    for task_id, ti in airflow.task_instances(dag_id, run_id).items():
        assert airflow.worker_runs(ti["id"]) == [], task_id


def _land(folder: Path, name: str, text: str = "x\n") -> float:
    """Write ``name`` under a hidden name, rename it into place; return when it landed."""
    staged = folder / f".{name}.part"
    staged.write_text(text)
    os.replace(staged, folder / name)
    return time.time()


def test_a_batch_sensor_ends_by_each_completion_rule(
    airflow: AirflowHarness, data_dir: Path
) -> None:
    folder = data_dir / "batch_rules"
    folder.mkdir()
    run_id = airflow.trigger("ww_batch_rules", conf={"dir": "batch_rules"})
    tasks = {"all": "deferred", "any": "deferred", "three": "deferred", "missing": "deferred"}
    airflow.wait_for("ww_batch_rules", run_id, tasks, timeout=60)
    _land(folder, "a.csv")
    _land(folder, "y.csv")
    for i in range(2):
        _land(folder, f"part-{i}.csv")
    time.sleep(2.5)  # a few ticks: "all" and "three" must still wait
    assert airflow.states("ww_batch_rules", run_id)["all"] == "deferred"
    assert airflow.states("ww_batch_rules", run_id)["three"] == "deferred"
    b_at = _land(folder, "b.csv")
    _land(folder, "part-2.csv")

    done = {"all": "success", "any": "success", "three": "success", "missing": "skipped"}
    airflow.wait_for("ww_batch_rules", run_id, done, timeout=90)
    _no_worker_runs(airflow, "ww_batch_rules", run_id)
    every = _payload(airflow, "ww_batch_rules", run_id, "all")
    arrived = {Path(f["path"]).name: f for f in every["found"]}
    assert sorted(arrived) == ["a.csv", "b.csv"]
    assert arrived["a.csv"]["first_seen_at"] < arrived["b.csv"]["first_seen_at"]
    assert arrived["b.csv"]["first_seen_at"] >= b_at - 0.01
    anyone = _payload(airflow, "ww_batch_rules", run_id, "any")
    assert [Path(f["path"]).name for f in anyone["found"]] == ["y.csv"]
    three = _payload(airflow, "ww_batch_rules", run_id, "three")
    assert sorted(Path(f["path"]).name for f in three["found"]) == [
        "part-0.csv",
        "part-1.csv",
        "part-2.csv",
    ]
    log = airflow.task_log("ww_batch_rules", run_id, "missing")
    assert "no file for 1 of 2" in log
    assert "never.csv" in log
    FIGURES["batch sensors (all/any/3/soft-failed): worker runs"] = "0"


def test_four_tasks_in_two_dags_share_one_listing_and_keep_their_own_deadlines(
    airflow: AirflowHarness, data_dir: Path
) -> None:
    deadlines = {"ready_a1": 20, "ready_a2": 22, "glob_b1": 24, "glob_b2": 26}
    dags = {"ww_pool_a": ["ready_a1", "ready_a2"], "ww_pool_b": ["glob_b1", "glob_b2"]}
    for case in ("landing", "quiet"):
        (data_dir / f"pool_{case}").mkdir()
    runs = {
        (case, dag_id): airflow.trigger(dag_id, conf={"dir": f"pool_{case}"})
        for case in ("landing", "quiet")
        for dag_id in dags
    }
    for (_case, dag_id), run_id in runs.items():
        airflow.wait_for(dag_id, run_id, dict.fromkeys(dags[dag_id], "deferred"), timeout=60)
    time.sleep(2.0)  # every task has polled a few times, each on its own phase
    _land(data_dir / "pool_landing", "ready.csv")

    seen = {}
    for dag_id, tasks in dags.items():
        run_id = runs[("landing", dag_id)]
        airflow.wait_for(dag_id, run_id, dict.fromkeys(tasks, "success"), timeout=60)
        _no_worker_runs(airflow, dag_id, run_id)
        for task_id in tasks:
            seen[task_id] = _payload(airflow, dag_id, run_id, task_id)["first_seen_at"]
    assert len(set(seen.values())) == 1, seen  # one listing served all four tasks
    FIGURES["pooled: tasks served by the listing that saw the file"] = f"{len(seen)} of 4"

    for dag_id, tasks in dags.items():
        run_id = runs[("quiet", dag_id)]
        airflow.wait_for(dag_id, run_id, dict.fromkeys(tasks, "skipped"), timeout=90)
        _no_worker_runs(airflow, dag_id, run_id)
        for task_id in tasks:
            log = airflow.task_log(dag_id, run_id, task_id)
            assert f"not found by the deadline ({deadlines[task_id]}s per window" in log, log[
                -2000:
            ]


def test_events_detect_a_renamed_file_at_once_and_never_a_file_being_written(
    airflow: AirflowHarness, data_dir: Path
) -> None:
    folder = data_dir / "events"
    folder.mkdir()
    run_id = airflow.trigger("ww_events", conf={"dir": "events"})
    airflow.wait_for(
        "ww_events", run_id, {"renamed": "deferred", "written": "deferred"}, timeout=60
    )
    time.sleep(2.0)  # past the first poke of each

    writer = (folder / "written.csv").open("w")
    writer.write("day,value\n")
    writer.flush()  # created and written, not closed: IN_MODIFY only
    landed = _land(folder, "renamed.csv")
    airflow.wait_for("ww_events", run_id, {"renamed": "success"}, timeout=30)
    renamed = _payload(airflow, "ww_events", run_id, "renamed")
    assert renamed["pokes"] == 2  # the first, then the event's: the 60 s poll never came
    assert renamed["first_seen_at"] - landed < 1.0
    FIGURES["event-driven: rename to first_seen_at"] = (
        f"{(renamed['first_seen_at'] - landed) * 1000:.0f} ms"
    )

    time.sleep(3.0)  # three safety polls of "written" while the file is still open
    assert airflow.states("ww_events", run_id)["written"] == "deferred"
    writer.write("2026-12-06,1\n")
    writer.close()
    closed_at = time.time()
    airflow.wait_for("ww_events", run_id, {"written": "success"}, timeout=30)
    written = _payload(airflow, "ww_events", run_id, "written")
    assert written["found"][0]["size"] == len("day,value\n2026-12-06,1\n")
    assert written["first_seen_at"] >= closed_at - 0.05
    _no_worker_runs(airflow, "ww_events", run_id)
