"""Monitoring: every hour, the waitwise report's gauges, its text in the log, its HTML page.

Gauges go through Airflow's metrics (StatsD or OpenTelemetry, as configured): a source's
health, success rate and breaker state, each tier's success rate and whether it is under its
target. Trigger it with ``report_dir`` to also write ``waitwise-report.html`` there. The
presets' targets are known by name; give custom profiles' reliabilities in ``targets`` (the
default of the param), else their sources are reported with tier ``unknown``.

Alerts (a source under its success target, waits getting longer, timeouts clustering, its
breaker open, its health low; then their recoveries) go to the webhook named by the
``WAITWISE_ALERT_WEBHOOK`` environment variable, or to the task log only. Any Airflow notifier
fits: replace the ``deliver`` argument with ``deliver_with(SmtpNotifier(...))``, say.
"""

from __future__ import annotations

import datetime as dt
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
        "window_days": Param(7, type="number", minimum=0.01, description="report window"),
        "report_dir": Param("", type="string", description="write the HTML page here"),
        "targets": Param(
            {},
            type="object",
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
        hook = os.environ.get("WAITWISE_ALERT_WEBHOOK")
        return run(
            window_days=float(given.get("window_days", 7)),
            report_dir=str(given.get("report_dir") or "") or None,
            targets={str(k): float(v) for k, v in dict(given.get("targets") or {}).items()},
            deliver=deliver_with(WebhookNotifier(url=hook)) if hook else None,
        )

    report()
