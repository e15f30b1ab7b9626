"""A batch: one task waits for a partner's whole drop (a manifest and its part files).

``FileBatchSensor`` checks the set once a tick (one directory listing for every sensor on the
directory), reports when each file arrived, and ends when the rule holds: here the manifest
and at least three parts.  Files are seen the moment they are renamed into place (inotify).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, task

from waitwise.operators import FileBatchSensor
from waitwise.triggers import LOW

with DAG(
    "waitwise_batch_example",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["waitwise", "example", "batch"],
):
    drop = FileBatchSensor(
        task_id="wait_partner_drop",
        filepaths=[
            "partner_drop/{{ ds_nodash }}/manifest.json",
            "partner_drop/{{ ds_nodash }}/part-*.xml",
        ],
        complete="all",
        source="partner_drop",
        profile=LOW,
    )

    @task
    def arrivals(payload: dict[str, Any]) -> dict[str, float]:
        """Return when each file of the drop was first seen (epoch seconds)."""
        return {f["path"]: f["first_seen_at"] for f in payload["found"]}

    arrivals(drop.output)  # type: ignore[arg-type]  # an XComArg resolves at run time
