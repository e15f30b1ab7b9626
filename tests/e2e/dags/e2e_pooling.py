"""DAGs for batch sensors, pooled scans and event-driven detection (wiring only)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators.file import FileArrivalSensor, FileBatchSensor
from waitwise.triggers.policy import Constant

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DIR = "{{ dag_run.conf['dir'] }}"

with DAG("ww_batch_rules", schedule=None, start_date=START, catchup=False):
    FileBatchSensor(
        task_id="all",
        filepaths=[f"{DIR}/a.csv", f"{DIR}/b.csv"],
        poll=Constant(interval=1.0),
        timeout=120,
    )
    FileBatchSensor(
        task_id="any",
        filepaths=[f"{DIR}/x.csv", f"{DIR}/y.csv"],
        complete="any",
        poll=Constant(interval=1.0),
        timeout=120,
    )
    FileBatchSensor(
        task_id="three",
        filepaths=[f"{DIR}/part-*.csv"],
        complete=3,
        poll=Constant(interval=1.0),
        timeout=120,
    )
    FileBatchSensor(
        task_id="missing",
        filepaths=[f"{DIR}/a.csv", f"{DIR}/never.csv"],
        poll=Constant(interval=1.0),
        timeout=10,
        soft_fail=True,
    )

# Two DAGs, four tasks, one directory: each task keeps its own schedule and deadline; a file
# landing there is seen by one listing for all four (equal first_seen_at).
for dag_id, tasks in {
    "ww_pool_a": {"ready_a1": ("ready.csv", 20), "ready_a2": ("ready.csv", 22)},
    "ww_pool_b": {"glob_b1": ("*.csv", 24), "glob_b2": ("*.csv", 26)},
}.items():
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        for task_id, (name, timeout) in tasks.items():
            FileArrivalSensor(
                task_id=task_id,
                filepath=f"{DIR}/{name}",
                poll=Constant(interval=1.0),
                timeout=timeout,
                soft_fail=True,
                detect="poll",
            )

with DAG("ww_events", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(  # a 60 s safety poll: an arrival seen sooner is the event's doing
        task_id="renamed",
        filepath=f"{DIR}/renamed.csv",
        poll=Constant(interval=60.0),
        timeout=120,
    )
    FileArrivalSensor(
        task_id="written",
        filepath=f"{DIR}/written.csv",
        poll=Constant(interval=1.0),
        timeout=120,
    )
