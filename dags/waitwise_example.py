"""Three sources of different reliability, each waited on with its own policy, at no worker cost.

- financial data lands within 5 minutes 99.9% of the time: linear backoff from 10 s;
- customer data lands within 30 minutes 95% of the time: exponential backoff capped at 2 min;
- partner data lands within 4 hours 80% of the time: jittered exponential backoff, and a late
  file is not an error for this pipeline (``soft_fail``: the partner branch is skipped).

Every sensor starts and ends in the triggerer: no worker slot is held while waiting.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from waitwise.operators import FileArrivalSensor
from waitwise.triggers import Exponential, FullJitter, Linear

with DAG(
    "waitwise_example",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["waitwise", "example"],
):
    financial = FileArrivalSensor(
        task_id="wait_financial",
        filepath="financial/financial_{{ ds_nodash }}.csv",
        poll=Linear(initial=2.0, increment=2.0, cap=30.0),
        timeout=dt.timedelta(minutes=5),
    )
    customer = FileArrivalSensor(
        task_id="wait_customer",
        filepath="customer/customer_{{ ds_nodash }}*.json",
        poll=Exponential(initial=2.0, factor=2.0, cap=120.0),
        timeout=dt.timedelta(minutes=30),
    )
    partner = FileArrivalSensor(
        task_id="wait_partner",
        filepath="partner/{{ ds_nodash }}/",
        poll=FullJitter(Exponential(initial=5.0, factor=1.5, cap=600.0)),
        timeout=dt.timedelta(hours=4),
        soft_fail=True,
    )

    @task
    def load(source: str, payload: dict[str, Any]) -> str:
        """Stand-in for the real load: report what the sensor found."""
        return f"{source}: {[f['path'] for f in payload['found']]}"

    load.override(task_id="load_financial")("financial", financial.output)  # type: ignore[arg-type]
    load.override(task_id="load_customer")("customer", customer.output)  # type: ignore[arg-type]
    load.override(task_id="load_partner")("partner", partner.output)  # type: ignore[arg-type]
