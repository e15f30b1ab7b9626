"""Financial data: a CSV that lands within 5 minutes 99.9% of the time (profile ``high``).

The sensor starts and ends in the triggerer (no worker slot while it waits), learns where to
poke from the source's history (adaptive polling, the profile's linear backoff until it has
learned), and fails at the deadline: a late financial file is an incident.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from waitwise.operators import FileArrivalSensor
from waitwise.triggers.simulate.wiring import sensor_settings

with DAG(
    "waitwise_financial",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["waitwise", "example", "tier:high"],
):
    landed = FileArrivalSensor(
        task_id="wait_financial",
        filepath="financial/financial_{{ ds_nodash }}.csv",
        **sensor_settings("financial"),
    )

    @task
    def load_financial(payload: dict[str, Any]) -> int:
        """Read the CSV that landed; return its row count."""
        with Path(payload["found"][0]["path"]).open(newline="", encoding="utf-8") as f:
            return sum(1 for _ in csv.DictReader(f))

    load_financial(landed.output)  # type: ignore[arg-type]  # an XComArg resolves at run time
