"""The DAG of the adaptive-polling end-to-end test (tests/e2e/test_adaptive.py): wiring only.

The history lives in a file store under the harness's ``AIRFLOW_HOME`` (a fresh temporary
directory per harness), which the test seeds before it triggers the run.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from airflow.sdk import DAG

from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers.adaptive import Adaptive

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SOURCE = "adaptive_feed"
TIMEOUT_S = 120.0
# trust_from=0: this test is about the trigger planning as replay does from 60 seeded days;
# the cold-start guard (no plan before the model foresaw recent arrivals) is tested in
# tests/triggers/adaptive/test_cold_start.py.
POLICY = Adaptive(target_latency_s=2.0, max_interval_s=15.0, min_history=10, trust_from=0)


def history_root(airflow_home: str | os.PathLike[str]) -> Path:
    """Return the file store's root for the Airflow whose home is ``airflow_home``."""
    return Path(airflow_home).resolve() / "adaptive-history"


with DAG("ww_adaptive", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="{{ dag_run.conf['file'] }}",
        source=SOURCE,
        store={
            "kind": "file",
            "root": str(history_root(os.environ.get("AIRFLOW_HOME", tempfile.gettempdir()))),
        },
        poll=POLICY,
        timeout=TIMEOUT_S,
    )
