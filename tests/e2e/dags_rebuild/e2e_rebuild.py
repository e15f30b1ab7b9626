"""The DAG of tests/e2e/test_rebuild.py: two sensors waiting side by side in one triggerer.

``healthy`` waits for the file named in the run's conf; ``damaged`` waits for a file that never
lands and is the one whose trigger row the test damages.  ``retries=0`` so a failure is final,
and a long ``timeout`` so that Airflow's safety-net trigger timeout (timeout + 60 s) cannot be
what ends either of them during the test.  ``do_xcom_push=False``: the payload XCom is covered by
test_file_sensor.py; here its first Task SDK call (several seconds on a loaded machine) would
only slow down detection.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers.policy import Constant

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

with DAG("ww_rebuild", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="healthy",
        filepath="{{ dag_run.conf['file'] }}",
        poll=Constant(interval=1.0),
        timeout=300,
        retries=0,
        do_xcom_push=False,
    )
    FileArrivalSensor(
        task_id="damaged",
        filepath="never/{{ run_id }}.csv",
        poll=Constant(interval=1.0),
        timeout=300,
        retries=0,
        do_xcom_push=False,
    )
