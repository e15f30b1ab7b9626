"""The monitoring run: the report's gauges, its text in the task log, its page on disk.

Airflow has no callback-driven gauges, so a source's health and breaker state would only
be emitted while one of its sensors happens to run; the monitoring DAG
(``dags/waitwise_monitoring.py``) calls :func:`run` on its schedule instead.

Gauges (tags ``source``, ``profile``, ``tier``; tiers: ``tier``), names in
:mod:`waitwise.triggers.metrics`: ``waitwise.source.health`` (0-100),
``waitwise.source.success_rate`` (percent), ``waitwise.source.breaker_open`` (1/0),
``waitwise.tier.success_rate`` (percent) and ``waitwise.tier.below_target`` (1/0).

Alerts (:mod:`.alerts`): after the gauges, through ``deliver`` (any Airflow notifier), with
their state kept in an Airflow Variable, so a restart loses none.

Cardinality: at most ``max_sources`` sources get gauges per run, the least healthy first
(then by name), so a deployment with thousands of sources does not flood its StatsD
server; the others are counted in the log. Tiers are three.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from waitwise.triggers import metrics
from waitwise.triggers.metrics import MetricsSink, StatsSink
from waitwise.triggers.store import AirflowStore, WaitStore

from . import alerts
from .alerts import AlertLedger, Message
from .cli import build
from .render import html_page, text
from .summary import DAY, Report

__all__ = ["MAX_SOURCES", "emit", "run"]

MAX_SOURCES: Final = 100
log = logging.getLogger(__name__)
_OPEN: Final = frozenset({"open", "forced_open"})


def emit(report: Report, sink: MetricsSink, max_sources: int = MAX_SOURCES) -> int:
    """Emit the report's gauges to ``sink``; return how many sources got them."""
    for tier in report.tiers:
        tags = {"tier": tier.tier}
        if tier.success_rate is not None:
            sink.gauge(metrics.TIER_SUCCESS_RATE, 100 * tier.success_rate, tags)
            if tier.target is not None:
                below = float(tier.success_rate < tier.target)
                sink.gauge(metrics.TIER_BELOW_TARGET, below, tags)
    ranked = sorted(
        report.sources, key=lambda s: (s.health if s.health is not None else 101, s.source)
    )
    for s in ranked[:max_sources]:
        tags = {"source": s.source, "profile": s.profile, "tier": s.tier}
        if s.health is not None:
            sink.gauge(metrics.SOURCE_HEALTH, float(s.health), tags)
        if s.success_rate is not None:
            sink.gauge(metrics.SOURCE_SUCCESS_RATE, 100 * s.success_rate, tags)
        sink.gauge(metrics.SOURCE_BREAKER_OPEN, float(s.breaker in _OPEN), tags)
    left = len(ranked) - max_sources
    if left > 0:
        log.info("%d healthier sources got no gauges (max_sources=%d)", left, max_sources)
    return min(len(ranked), max_sources)


def _log_alert(message: Message) -> None:
    log.warning("%s (%s)", message.text, message.key)


def run(
    *,
    window_days: float = 7.0,
    report_dir: str | None = None,
    store: WaitStore | None = None,
    sink: MetricsSink | None = None,
    now: float | None = None,
    targets: dict[str, float] | None = None,
    ledger: AlertLedger | None = None,
    deliver: Callable[[Message], None] | None = None,
) -> dict[str, Any]:
    """Build the report, emit its gauges, log it, write its page, alert; return a summary.

    For a task (a worker: the store and the alert state read through the Task SDK by
    default).

    :param report_dir: where ``waitwise-report.html`` is written (``None``: not written).
    :param ledger: the alert state (default: the Airflow Variable ``waitwise-alerts/state``).
    :param deliver: sends one alert (``waitwise.operators.notifications.deliver_with`` of any
        Airflow notifier); ``None``: alerts are logged as warnings only.
    :raises ValueError: for a window that is not a positive number of days.
    """
    if isinstance(window_days, bool) or not isinstance(window_days, int | float):
        raise ValueError(f"window_days must be a number of days, got {window_days!r}")
    if not 0 < window_days < 36_500:
        raise ValueError(f"window_days must be in (0, 36500), got {window_days!r}")
    for profile, reliability in (targets or {}).items():
        if isinstance(reliability, bool) or not isinstance(reliability, int | float):
            raise ValueError(f"targets[{profile!r}] must be a number, got {reliability!r}")
        if not 0 < reliability <= 1:
            raise ValueError(f"targets[{profile!r}] must be in (0, 1], got {reliability!r}")
    report = asyncio.run(
        build(
            store or AirflowStore(),
            now=time.time() if now is None else now,
            window_s=window_days * DAY,
            targets=targets,
        )
    )
    emitted = emit(report, sink or StatsSink())
    log.info("waitwise report\n%s", text(report))
    page = None
    if report_dir:
        page = Path(report_dir) / "waitwise-report.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(html_page(report), encoding="utf-8")
        log.info("HTML report written to %s", page)
    if ledger is None:
        from waitwise.triggers.store import VariableBackend

        ledger = AlertLedger(VariableBackend())
    sent = asyncio.run(alerts.run(report, ledger, deliver or _log_alert))
    return {
        "alerts": [m.key for m in sent],
        "sources": len(report.sources),
        "gauged_sources": emitted,
        "tiers": {
            t.tier: {"waits": t.waits, "success_rate": t.success_rate, "target": t.target}
            for t in report.tiers
        },
        "below_target": [s.source for s in report.sources if s.meets_target is False],
        "page": None if page is None else str(page),
    }
