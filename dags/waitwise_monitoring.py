"""Monitoring: every hour, the waitwise report's gauges, its text in the log, its HTML page.

Gauges go through Airflow's metrics (StatsD or OpenTelemetry, as configured): a source's
health, success rate and breaker state, each tier's success rate and whether it is under its
target. ``waitwise-report.html`` is written to ``$WAITWISE_REPORT_DIR`` when the deployment
sets it (not a run param: whoever may trigger the DAG must not choose where a worker writes).
The presets' targets are known by name; give custom profiles' reliabilities in the
``targets`` param, else their sources are reported with tier ``unknown``.

Alerts (a source under its success target, waits getting longer, timeouts clustering, its
breaker open, its health low; then their recoveries) go to the webhook named by the
``WAITWISE_ALERT_WEBHOOK`` environment variable, or to the task log only (also when that URL
is not one). Any Airflow notifier fits: replace ``deliver`` with
``deliver_with(SmtpNotifier(...))``, say.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import DAG, Param, task

with DAG(
    "waitwise_monitoring",
    schedule=dt.timedelta(hours=1),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["waitwise", "monitoring"],
    params={
        "window_days": Param(
            7, type="number", exclusiveMinimum=0, maximum=3650, description="report window"
        ),
        "targets": Param(
            {},
            type="object",
            additionalProperties={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            description='reliability of custom profiles by name, e.g. {"partner_feed": 0.8}',
        ),
    },
):

    @task
    def report(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build the report through the Task SDK, emit its gauges, log it, alert."""
        from waitwise.operators.notifications import WebhookNotifier, deliver_with
        from waitwise.triggers.report.monitor import run

        given = params or {}
        deliver = None
        hook = os.environ.get("WAITWISE_ALERT_WEBHOOK")
        try:
            deliver = deliver_with(WebhookNotifier(url=hook)) if hook else None
        except ValueError:
            logging.getLogger(__name__).exception("Alerts go to the task log only")
        return run(
            window_days=given.get("window_days", 7),
            report_dir=os.environ.get("WAITWISE_REPORT_DIR") or None,
            targets=dict(given.get("targets") or {}),
            deliver=deliver,
        )

    report()
