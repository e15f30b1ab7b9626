"""Issue 9: a deployment with a listener plugin (OpenLineage-like) in a real Airflow.

A task that ends in the triggerer with a task-ending event bypasses Airflow's listener hooks.
waitwise detects listeners (when the DAG is parsed and again in the triggerer) and resumes the
sensor on a worker instead, so ``on_task_instance_success`` fires.  This module runs its own
Airflow with ``tests/e2e/plugins_faults/ww_listener_plugin.py`` installed (through
``[core] plugins_folder``) in every component; the plugin appends each success to a file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.airflow_harness import AirflowHarness
from tests.e2e.conftest import FIGURES
from tests.e2e.test_faults import check_history, deferred_in_triggerer, poll, ts

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DAGS = Path(__file__).parent / "dags_faults"
PLUGINS = Path(__file__).parent / "plugins_faults"
LOG_ENV = "WAITWISE_E2E_LISTENER_LOG"  # read by the plugin


@pytest.fixture(scope="module")
def listener_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHarness]:
    data = tmp_path_factory.mktemp("listener-data")
    listened = tmp_path_factory.mktemp("listener") / "successes.log"
    harness = AirflowHarness(
        dags_folder=DAGS,
        data_dir=data,
        extra_env={
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
            LOG_ENV: str(listened),
        },
    )
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        harness.start(["wwf_listener"], timeout=240)
        FIGURES["listener harness ready"] = f"{harness.ready_s:.1f} s"
        assert harness.import_errors() == []
        yield harness
    finally:
        harness.stop()
        signal.signal(signal.SIGTERM, previous)
        assert harness.pids() == []


def successes(airflow: AirflowHarness) -> list[list[str]]:
    """Return the listener's lines: ``[dag_id, task_id, map_index, pid]``."""
    path = Path(airflow.env()[LOG_ENV])
    with contextlib.suppress(FileNotFoundError):
        return [line.split() for line in path.read_text().splitlines() if line.strip()]
    return []


def test_listener_sees_the_sensor_succeed_after_one_worker_run(
    listener_airflow: AirflowHarness,
) -> None:
    airflow = listener_airflow
    assert airflow.data_dir is not None
    assert os.environ.get(LOG_ENV) is None  # only the harness's components carry it
    dag = "wwf_listener"
    landing = airflow.data_dir / "listener" / "l.csv"
    run_id = airflow.trigger(dag, conf={"file": str(landing)})
    deferred_in_triggerer(airflow, dag, run_id, ["sense"], timeout=120)
    time.sleep(2)
    landing.parent.mkdir(parents=True, exist_ok=True)
    landing.write_text("seen by the listener\n")
    landed_at = time.time()

    airflow.wait_for(dag, run_id, {"sense": "success"}, timeout=90)
    ti = airflow.task_instances(dag, run_id)["sense"]
    runs = airflow.worker_runs(ti["id"])
    assert poll(lambda: any(s[:2] == [dag, "sense"] for s in successes(airflow)), 30), (
        f"the listener never saw the sensor succeed: {successes(airflow)}\n"
        f"{airflow.task_log(dag, run_id, 'sense')[-3000:]}"
    )
    seen = [s for s in successes(airflow) if s[:2] == [dag, "sense"]]
    assert len(seen) == 1, seen  # seen once, not once per try or per component
    assert ti["try_number"] == 1, ti
    assert len(runs) == 1, f"wanted one worker run (execute_complete), got {runs}"
    check_history(airflow, "wwf_listener", run_id, {("sense", -1, 1): "success"})
    FIGURES["listener installed: sensor worker runs / worker-seconds"] = (
        f"{len(runs)} / {sum(runs):.2f} s"
    )
    FIGURES["listener installed: success after the file landed"] = (
        f"{ts(ti['end_date']) - landed_at:.1f} s"
    )
