"""Issue 11: waitwise's metrics reach a real StatsD listener; alerts reach a real endpoint.

Against a real Airflow of its own (the session harness has no metrics configured), set up
through ``AIRFLOW__METRICS__*`` as a deployment would be: StatsD on, host 127.0.0.1, the port
of a UDP socket this test owns, a prefix of its own, and InfluxDB-style tags
(``statsd_influxdb_enabled``: Airflow appends ``,key=value`` to the name; Datadog-style tags
would need the ``datadog`` package, which Airflow's ``statsd`` extra does not bring).
The monitoring DAG is the shipped one (``dags_metrics/waitwise_monitoring.py`` is a link to
``dags/waitwise_monitoring.py``), its ``WAITWISE_ALERT_WEBHOOK`` a local HTTP server here.

Scenario: one run of two sensors (``metrics_good``, tier high: its file lands;
``metrics_late``, tier low: times out, skipped), then four monitoring runs:

A. the endpoint refuses: the alerts stay queued in the Variable ``waitwise-alerts/state``,
   each tried once;
   then the api-server (which serves every Variable read and write) is restarted;
B. the endpoint accepts: the queued alerts arrive, once each;
C. nothing changed: nothing new arrives (one alert per episode);
D. after ``metrics_late`` recovered (successes written to its history through the REST
   API, as waits would): one recovery per alert.

Every task is a new worker process, so the alert state crosses a process restart each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devtools import history
from devtools.airflow_harness import AirflowHarness
from tests.e2e.conftest import FIGURES
from waitwise.triggers.report.alerts import STATE_KEY
from waitwise.triggers.store import AirflowStore, RestBackend, WaitOutcome, WaitRecord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAGS = Path(__file__).parent / "dags_metrics"
SENSORS = "ww_metrics_sensors"
MONITORING = "waitwise_monitoring"
PREFIX = "ww_e2e"
GOOD = {"source": "metrics_good", "profile": "high", "tier": "high"}
LATE = {"source": "metrics_late", "profile": "low", "tier": "low"}
TRIGGER = {"trigger": "FileArrivalTrigger"}
SEEDED_SUCCESSES = 9  # 9 of 10 on time: over the low tier's 75% and its target (80%)


@dataclass(frozen=True)
class Metric:
    """One StatsD line: ``<prefix>.<name>[,k=v...]:<value>|<type>`` (InfluxDB-style tags)."""

    name: str
    tags: dict[str, str]
    value: float
    type: str

    @classmethod
    def parse(cls, line: str) -> Metric:
        head, _, rest = line.rpartition(":")
        value, _, kind = rest.partition("|")
        name, *pairs = head.split(",")
        tags = dict(pair.split("=", 1) for pair in pairs)
        return cls(name, tags, float(value), kind.partition("|")[0])


class StatsdListener:
    """A UDP socket on 127.0.0.1 and a thread keeping every line it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                data = self.sock.recv(65535)
                with self._lock:
                    self._lines.extend(data.decode(errors="replace").splitlines())

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def waitwise(self) -> list[Metric]:
        """Return the waitwise metrics received so far, the prefix taken off."""
        ours = f"{PREFIX}.waitwise."
        return [
            Metric.parse(line[len(PREFIX) + 1 :]) for line in self.lines() if line.startswith(ours)
        ]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class Webhook:
    """A local HTTP endpoint taking alerts as JSON; it answers 503 while ``refusing``."""

    def __init__(self) -> None:
        self.refusing = False
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                (hook.refused if hook.refusing else hook.accepted).append(body)
                self.send_response(503 if hook.refusing else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Setup:
    airflow: AirflowHarness
    statsd: StatsdListener
    webhook: Webhook


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    statsd, webhook = StatsdListener(), Webhook()
    harness = AirflowHarness(
        dags_folder=DAGS,
        data_dir=tmp_path_factory.mktemp("metrics-data"),
        extra_env={
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": PREFIX,
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
            "WAITWISE_ALERT_WEBHOOK": webhook.url,
        },
    )
    # A TERM to pytest (CI cancelling) must still run the clean-up below and atexit's.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        harness.start([SENSORS, MONITORING])
        FIGURES["metrics harness ready"] = f"{harness.ready_s:.1f} s"
        assert harness.import_errors() == []
        yield Setup(harness, statsd, webhook)
    finally:
        harness.stop()
        signal.signal(signal.SIGTERM, previous)
        statsd.close()
        webhook.close()
        left = harness.pids()
        assert left == [], f"the harness left Airflow processes behind: {left}"


def monitor(airflow: AirflowHarness) -> list[str]:
    """Run the monitoring DAG once; return the alert keys its run reports delivered."""
    run_id = airflow.trigger(MONITORING)
    airflow.wait_for(MONITORING, run_id, {"report": "success"}, timeout=90)
    path = f"/dags/{MONITORING}/dagRuns/{run_id}/taskInstances/report/xcomEntries/return_value"
    value = airflow.api("GET", path)["value"]
    summary = json.loads(value) if isinstance(value, str) else value
    return list(summary["alerts"])


def wait_scheduled_runs(airflow: AirflowHarness) -> None:
    """Let the monitoring DAG's own hourly run (created at parse, no source yet) finish."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = airflow.api("GET", f"/dags/{MONITORING}/dagRuns")["dag_runs"]
        if runs and all(run["state"] in ("success", "failed") for run in runs):
            return
        time.sleep(0.5)
    raise AssertionError(f"the scheduled monitoring run did not end: {runs}")


def alert_state(airflow: AirflowHarness) -> dict[str, Any]:
    """Return the alert state as the monitoring task left it (read through the REST API)."""

    async def read() -> str | None:
        backend = RestBackend(f"http://127.0.0.1:{airflow.port}")
        try:
            return await backend.get(STATE_KEY)
        finally:
            await backend.aclose()

    raw = asyncio.run(read())
    assert raw is not None
    state = json.loads(raw)
    assert isinstance(state, dict), state
    return state


def recover(airflow: AirflowHarness) -> None:
    """Write successful waits of ``metrics_late`` through the REST API, as waits would."""
    now = time.time()
    records = [
        WaitRecord(
            source=LATE["source"],
            profile=LATE["profile"],
            dag_id=SENSORS,
            task_id="never",
            run_id=f"seeded_{i}",
            try_number=1,
            started_at=now - 60 - i,
            ended_at=now - 50 - i,
            outcome=WaitOutcome.SUCCESS,
            first_seen_at=now - 55 - i,
            detected_at=now - 50 - i,
            pokes=5,
        )
        for i in range(SEEDED_SUCCESSES)
    ]

    async def write() -> None:
        backend = RestBackend(f"http://127.0.0.1:{airflow.port}")
        try:
            store = AirflowStore(backend)
            await store.append_many(records)
            await store.wait_compactions()  # the first append to a source compacts it
        finally:
            await backend.aclose()

    asyncio.run(write())


def landed(data_dir: Path, run_id: str) -> None:
    folder = data_dir / "metrics" / "good"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{run_id}.csv").write_text("day,value\n")


def test_metrics_reach_statsd_and_alerts_reach_the_webhook(setup: Setup) -> None:
    airflow, statsd, webhook = setup.airflow, setup.statsd, setup.webhook
    assert airflow.data_dir is not None
    started = time.monotonic()
    wait_scheduled_runs(airflow)

    run_id = airflow.trigger(SENSORS)
    time.sleep(2.0)  # the good file lands while its wait runs
    landed(airflow.data_dir, run_id)
    airflow.wait_for(SENSORS, run_id, {"arrives": "success", "never": "skipped"}, timeout=90)
    sensors_s = time.monotonic() - started
    recorded = {
        name: [r for r in history.history_of(airflow, name) if r["run_id"] == run_id]
        for name in (GOOD["source"], LATE["source"])
    }
    assert [r["outcome"] for r in recorded[GOOD["source"]]] == ["success"]
    assert [r["outcome"] for r in recorded[LATE["source"]]] == ["skipped"]

    # A: the endpoint refuses; the alerts stay queued in the Variable.
    webhook.refusing = True
    assert monitor(airflow) == []
    queued = alert_state(airflow)["outbox"]
    assert {(m["kind"], m["condition"], m["source"]) for m in queued} == {
        ("alert", "success_rate", "metrics_late"),
        ("alert", "health", "metrics_late"),
    }
    assert [m["key"] for m in webhook.refused] == [m["key"] for m in queued]  # one try each
    assert [m["attempts"] for m in queued] == [1, 1]
    assert webhook.accepted == []

    restarting = time.monotonic()
    airflow.restart_component("api-server", signal.SIGTERM)
    airflow.wait_healthy(90)
    restart_s = time.monotonic() - restarting

    # B: the endpoint is back: the queued alerts arrive, once each, in order.
    webhook.refusing = False
    delivered = monitor(airflow)
    keys = [m["key"] for m in queued]
    assert delivered == keys
    assert webhook.accepted == queued
    assert alert_state(airflow)["outbox"] == []

    # C: nothing changed: nothing new is sent.
    assert monitor(airflow) == []
    assert len(webhook.accepted) == len(queued)

    # D: metrics_late recovers: one recovery per alert, keyed after it.
    recover(airflow)
    recovered = monitor(airflow)
    assert recovered == [f"{key}:recovered" for key in sorted(keys)]
    recoveries = webhook.accepted[len(queued) :]
    assert [(m["kind"], m["source"]) for m in recoveries] == [("recovery", "metrics_late")] * 2
    assert alert_state(airflow) == {"open": {}, "outbox": [], "dead": []}

    time.sleep(1.0)  # UDP: let the last gauges in
    got = statsd.waitwise()
    unprefixed = [ln for ln in statsd.lines() if "waitwise." in ln and not ln.startswith(PREFIX)]
    assert unprefixed == []
    FIGURES["metrics: waitwise lines received (sample)"] = "\n  " + "\n  ".join(
        sorted({line for line in statsd.lines() if ".waitwise." in line})[:40]
    )
    FIGURES["metrics: sensors run / api-server restart / whole scenario"] = (
        f"{sensors_s:.1f} s / {restart_s:.1f} s / {time.monotonic() - started:.1f} s"
    )
    _check_wait_metrics(got, {name: records[0]["pokes"] for name, records in recorded.items()})
    _check_gauges(got)


def _seen(got: list[Metric]) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return {(m.name, m.type, tuple(sorted(m.tags.items()))) for m in got}


def _key(name: str, kind: str, tags: dict[str, str]) -> tuple[str, str, tuple[Any, ...]]:
    return (f"waitwise.{name}", kind, tuple(sorted(tags.items())))


def _check_wait_metrics(got: list[Metric], pokes: dict[str, int]) -> None:
    """The triggerer's metrics: pokes, the ends and their durations, tagged by source.

    ``pokes``: each source's pokes as its history record counts them.
    """
    seen = _seen(got)
    good, late = TRIGGER | GOOD, TRIGGER | LATE
    expected = {
        _key("pokes", "c", good),
        _key("pokes", "c", late),
        _key("waits.succeeded", "c", good),
        _key("wait_seconds", "ms", good),
        _key("waits.timed_out", "c", late),
        _key("wait_seconds", "ms", late),
    }
    assert expected <= seen, sorted(seen)
    counted = {
        tags["source"]: sum(m.value for m in got if m.name == "waitwise.pokes" and m.tags == tags)
        for tags in (good, late)
    }
    assert counted == pokes
    waited = [m.value for m in got if m.name == "waitwise.wait_seconds" and m.tags == late]
    assert len(waited) == 1
    assert waited[0] >= 3_000  # milliseconds, past the 3 s deadline


def _check_gauges(got: list[Metric]) -> None:
    """The monitoring DAG's gauges: per source (tagged as the waits) and per tier."""
    seen = _seen(got)
    expected = {
        _key(name, "g", tags)
        for name in ("source.health", "source.success_rate", "source.breaker_open")
        for tags in (GOOD, LATE)
    } | {
        _key(name, "g", {"tier": tier})
        for name in ("tier.success_rate", "tier.below_target")
        for tier in ("high", "low")
    }
    assert expected <= seen, sorted(seen)
    health = [m.value for m in got if m.name == "waitwise.source.health" and m.tags == LATE]
    assert health == [35.0, 35.0, 35.0, 100.0]  # 1 timeout of 1; then 9 successes of 10
    below = [
        m.value for m in got if m.name == "waitwise.tier.below_target" and m.tags["tier"] == "low"
    ]
    assert below == [1.0, 1.0, 1.0, 0.0]
