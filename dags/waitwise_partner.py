"""Partner data: an XML delivery that lands within 4 hours 80% of the time (``low``).

A late partner file is expected now and then: the sensor soft-fails (the load is skipped, no
worker runs), its source's circuit breaker stops waiting on a partner that keeps failing
(waits are skipped while it is open, then one probe wait closes it), and the monitoring DAG
alerts on the open breaker and on its recovery.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

from airflow.sdk import DAG, task

from waitwise.operators import FileArrivalSensor
from waitwise.triggers.simulate.wiring import sensor_settings

with DAG(
    "waitwise_partner",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["waitwise", "example", "tier:low"],
):
    landed = FileArrivalSensor(
        task_id="wait_partner",
        filepath="partner/partner_{{ ds_nodash }}.xml",
        **sensor_settings("partner"),
    )

    @task
    def load_partner(payload: dict[str, Any]) -> int:
        """Parse the XML that landed (a trusted partner drop); return its item count."""
        root = ET.parse(payload["found"][0]["path"]).getroot()
        return len(root.findall("item"))

    load_partner(landed.output)  # type: ignore[arg-type]  # an XComArg resolves at run time
