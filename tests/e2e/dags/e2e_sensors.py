"""DAGs the end-to-end tests drive (one behaviour each; no logic beyond wiring)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from waitwise.operators.file import FileArrivalSensor
from waitwise.triggers.policy import Constant

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@task
def consume(payload: dict[str, Any]) -> str:
    """Fail unless the sensor's XCom arrived as a plain dict describing the found file."""
    if not isinstance(payload, dict) or payload.get("status") != "success":
        raise ValueError(f"sensor XCom is not a waitwise payload: {payload!r}")
    return str(payload["found"][0]["path"])


with DAG("ww_arrival", schedule=None, start_date=START, catchup=False):
    sense = FileArrivalSensor(
        task_id="sense",
        filepath="{{ dag_run.conf['file'] }}",
        poll=Constant(interval=1.0),
        timeout=300,
    )
    consume(sense.output)  # type: ignore[arg-type]  # an XComArg resolves at run time

with DAG("ww_timeout", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="never/{{ run_id }}.csv",
        poll=Constant(interval=1.0),
        timeout=8,
        retries=2,
        retry_delay=dt.timedelta(seconds=1),
    )

with DAG("ww_soft_fail", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="never/{{ run_id }}.csv",
        poll=Constant(interval=1.0),
        timeout=8,
        soft_fail=True,
        retries=2,
    )

with DAG("ww_templated", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="sense",
        filepath="financial_{{ ds_nodash }}.csv",
        poll=Constant(interval=1.0),
        timeout=300,
    )

with DAG("ww_restart", schedule=None, start_date=START, catchup=False):
    FileArrivalSensor(
        task_id="arrives",
        filepath="{{ dag_run.conf['file'] }}",
        poll=Constant(interval=1.0),
        timeout=300,
    )
    FileArrivalSensor(
        task_id="expires",
        filepath="never/{{ run_id }}.csv",
        poll=Constant(interval=1.0),
        timeout=40,
        soft_fail=True,
    )
