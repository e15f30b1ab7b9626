"""Customer data: a JSON export that lands within 30 minutes 95% of the time (``medium``).

Exponential backoff until the adaptive policy has learned the source; fails at the deadline.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from waitwise.operators import FileArrivalSensor
from waitwise.triggers.simulate.wiring import sensor_settings

with DAG(
    "waitwise_customer",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["waitwise", "example", "tier:medium"],
):
    landed = FileArrivalSensor(
        task_id="wait_customer",
        filepath="customer/customer_{{ ds_nodash }}.json",
        **sensor_settings("customer"),
    )

    @task
    def load_customer(payload: dict[str, Any]) -> int:
        """Read the JSON that landed; return its record count."""
        return len(json.loads(Path(payload["found"][0]["path"]).read_text(encoding="utf-8")))

    load_customer(landed.output)  # type: ignore[arg-type]  # an XComArg resolves at run time
