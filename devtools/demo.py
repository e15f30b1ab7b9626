"""``make demo``: the exercise's three sources over two compressed weeks in a real Airflow.

What it does (``python -m devtools.demo --help`` for the knobs):

1. starts a real Airflow (SQLite, LocalExecutor, api-server, scheduler, dag-processor,
   triggerer on free ports) on ``dags/``, with ``WAITWISE_DEMO_COMPRESSED=1`` so the three tier
   DAGs use the demo's compressed profiles (:mod:`waitwise.triggers.simulate.wiring`), alerts
   going to a local webhook this process serves, and the scheduler making no runs of its own;
2. writes the first days' history from a replay of the scenario (the trigger's own scheduling
   code, learning as it goes: :mod:`waitwise.triggers.simulate.history`);
3. runs the last days live: per day, one run of each tier DAG (its logical date on the
   simulated calendar), the simulator landing each file at its compressed offset after the
   sensor started; the partner is down on the outage days, so its breaker opens, the next
   partner wait is rejected, and after the cool-down one probe wait closes it; the monitoring
   DAG runs once the breaker is open (an alert) and at the end (its recovery);
4. prints the report (per tier: success against the target, waits, pokes per wait in the first
   and the last days, worker runs) and writes the HTML page, stops every process, and exits
   non-zero when anything the demo claims did not happen.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.server
import json
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.airflow_harness import AirflowHarness
from waitwise.triggers.report.cli import build
from waitwise.triggers.report.render import html_page, text
from waitwise.triggers.report.summary import DAY
from waitwise.triggers.simulate.demo import DEMO_SOURCES, Landing, plan_days
from waitwise.triggers.simulate.history import arrivals_for, replayed_records
from waitwise.triggers.simulate.land import content, land, land_day
from waitwise.triggers.simulate.wiring import DEMO_ENV, adaptive_for, profile_for
from waitwise.triggers.store import AirflowStore, RestBackend, WaitRecord

ROOT = Path(__file__).resolve().parents[1]
SEED = 35
DAYS = 16
LIVE = 5
OUTAGE = (12, 13)
MONITORING = "waitwise_monitoring"
DAGS = [f"waitwise_{s.name}" for s in DEMO_SOURCES]


# --------------------------------------------------------------------------- the webhook
class AlertSink:
    """A local webhook receiving the monitoring DAG's alerts (a real HTTP endpoint)."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    sink.alerts.append(json.loads(body or b"{}"))
                except ValueError:
                    sink.alerts.append({"raw": body.decode(errors="replace")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- the days
@dataclass
class DayResult:
    """How one live day went, per source: sensor state, pokes, worker runs of the sensor."""

    day: int
    ds: str
    states: dict[str, str] = field(default_factory=dict)
    pokes: dict[str, int | None] = field(default_factory=dict)
    sensor_worker_runs: dict[str, int] = field(default_factory=dict)


@dataclass
class Demo:
    """The scenario of one demo run and what it saw."""

    harness: AirflowHarness
    data: Path
    days: int
    live: int
    outage: tuple[int, ...]
    seed: int
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))
    results: list[DayResult] = field(default_factory=list)
    breaker_states: list[tuple[int, str]] = field(default_factory=list)
    landings: list[Landing] = field(default_factory=list)

    def __post_init__(self) -> None:
        outages = {"partner": set(self.outage)}
        self.landings = plan_days(self.days, self.seed, outages)

    @property
    def first_live(self) -> int:
        return self.days - self.live

    def logical_date(self, day: int) -> dt.datetime:
        """Day ``day`` of the simulated calendar: the last day is today, at this time."""
        return self.now - dt.timedelta(days=self.days - 1 - day)


def _store(harness: AirflowHarness) -> tuple[AirflowStore, RestBackend]:
    backend = RestBackend(f"http://127.0.0.1:{harness.port}")
    return AirflowStore(backend), backend


async def _seed(harness: AirflowHarness, by_source: dict[str, list[WaitRecord]]) -> None:
    store, backend = _store(harness)
    try:
        for records in by_source.values():
            await store.append_many(records)
        await store.wait_compactions()
    finally:
        await backend.aclose()


def seed_history(demo: Demo) -> dict[str, list[WaitRecord]]:
    """Write the replayed days' records (days before the live ones); return them by source."""
    last = demo.logical_date(demo.days - 1)
    by_source = {}
    for src in DEMO_SOURCES:
        profile = profile_for(src.name, compressed=True)
        mine = [x for x in demo.landings if x.source == src.name and x.day < demo.first_live]
        arrivals = arrivals_for(mine, last, demo.days, profile.timeout_s)
        by_source[src.name] = replayed_records(
            arrivals,
            adaptive_for(src.name, compressed=True),
            source=src.name,
            profile=profile.name,
            dag_id=f"waitwise_{src.name}",
            task_id=f"wait_{src.name}",
            soft_fail=src.name == "partner",
            seed=demo.seed,
        )
    asyncio.run(_seed(demo.harness, by_source))
    return by_source


def _payload(harness: AirflowHarness, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    value = harness.api("GET", path)["value"]
    return json.loads(value) if isinstance(value, str) else dict(value)


def run_day(demo: Demo, day: int) -> DayResult:
    """Run day ``day`` live: one run per tier DAG, its files landing on the scenario's plan."""
    harness, logical = demo.harness, demo.logical_date(day)
    ds = logical.strftime("%Y%m%d")
    runs = {
        s.name: harness.trigger(f"waitwise_{s.name}", logical_date=logical) for s in DEMO_SOURCES
    }
    started = {}
    waiting = {"deferred", "success", "skipped", "failed"}
    for name, run_id in runs.items():
        harness.wait_for(f"waitwise_{name}", run_id, {f"wait_{name}": waiting}, timeout=120)
        started[name] = time.time()
    land_day(demo.data, [x for x in demo.landings if x.day == day], DEMO_SOURCES, ds, started)
    result = DayResult(day, ds)
    for name, run_id in runs.items():
        dag_id, sensor = f"waitwise_{name}", f"wait_{name}"
        ended = {"success", "skipped", "failed"}
        states = harness.wait_for(dag_id, run_id, {sensor: ended, f"load_{name}": ended}, 180)
        ti = harness.task_instances(dag_id, run_id)[sensor]
        result.states[name] = str(states[sensor])
        result.sensor_worker_runs[name] = len(harness.worker_runs(ti["id"]))
        result.pokes[name] = (
            _payload(harness, dag_id, run_id, sensor)["pokes"]
            if states[sensor] == "success"
            else None
        )
    return result


def breaker_state(harness: AirflowHarness, source: str) -> str:
    from devtools.history import breaker_of

    snapshot = breaker_of(harness, source)
    return "closed" if snapshot is None else str(snapshot.get("state", "closed"))


def run_monitoring(demo: Demo) -> None:
    run_id = demo.harness.trigger(MONITORING, conf={"window_days": demo.days + 1})
    demo.harness.wait_for(MONITORING, run_id, {"report": "success"}, timeout=180)


# --------------------------------------------------------------------------- the report
def progress(day: int, days: int, ds: str, note: str) -> None:
    done = day + 1
    bar = "#" * done + "." * (days - done)
    print(f"  [{bar}] day {done:>2}/{days} {ds[:4]}-{ds[4:6]}-{ds[6:]}  {note}", flush=True)


def _mean(values: Sequence[int]) -> float:
    return statistics.fmean(values) if values else float("nan")


def pokes_table(
    history: dict[str, list[WaitRecord]], first: int = 4
) -> tuple[str, dict[str, tuple[float, float]]]:
    """Return pokes per detected wait in the first and last ``first`` days, per source."""
    lines = [f"{'source':<10}{'first days':>12}{'last days':>12}"]
    found = {}
    for name, records in history.items():
        hits = [
            r.pokes for r in sorted(records, key=lambda r: r.scheduled_at or 0) if r.detected_at
        ]
        early, late = _mean(hits[:first]), _mean(hits[-first:])
        found[name] = (early, late)
        lines.append(f"{name:<10}{early:>12.1f}{late:>12.1f}")
    return "\n".join(lines), found


async def _history(harness: AirflowHarness) -> dict[str, list[WaitRecord]]:
    store, backend = _store(harness)
    try:
        return {s.name: await store.history(s.name) for s in DEMO_SOURCES}
    finally:
        await backend.aclose()


async def _report(harness: AirflowHarness, days: int) -> Any:
    store, backend = _store(harness)
    try:
        return await build(store, now=time.time() + 1, window_s=(days + 1) * DAY)
    finally:
        await backend.aclose()


# --------------------------------------------------------------------------- main
def play(demo: Demo, sink: AlertSink) -> list[str]:
    """Play the scenario; return the claims that did not hold (empty: all held)."""
    t0 = time.monotonic()
    seed_history(demo)
    for day in range(demo.first_live):
        progress(day, demo.days, demo.logical_date(day).strftime("%Y%m%d"), "replayed")
    print(f"  {demo.first_live} days replayed into the history in {time.monotonic() - t0:.1f}s")
    for day in range(demo.first_live, demo.days):
        result = run_day(demo, day)
        demo.results.append(result)
        state = breaker_state(demo.harness, "partner")
        demo.breaker_states.append((day, state))
        notes = ", ".join(
            f"{n} {result.states[n]}" + (f" ({result.pokes[n]} pokes)" if result.pokes[n] else "")
            for n in result.states
        )
        outage = " [partner outage]" if day in demo.outage else ""
        progress(day, demo.days, result.ds, f"{notes}; partner breaker {state}{outage}")
        if day == demo.outage[-1]:
            run_monitoring(demo)
            print(f"  monitoring: {len(sink.alerts)} alert(s) delivered to {sink.url}")
    run_monitoring(demo)
    return check(demo, sink)


def check_learning(history: dict[str, list[WaitRecord]]) -> list[str]:
    """Return the sources whose detected waits did not get cheaper as the policy learned."""
    _, found = pokes_table(history)
    early = sum(e for e, _ in found.values())
    late = sum(x for _, x in found.values())
    return [] if late < early else [f"pokes per wait did not fall: {found}"]


def check_days(demo: Demo) -> list[str]:
    """Return the live days' broken claims: outcomes per tier, zero-worker sensors."""
    broken = []
    for result in demo.results:
        day, states = result.day, result.states
        broken += [
            f"day {day}: {name} sensor used a worker ({states[name]})"
            for name, runs in result.sensor_worker_runs.items()
            if runs and states[name] != "failed"
        ]
        broken += [
            f"day {day}: {n} ended {states[n]}"
            for n in ("financial", "customer")
            if states[n] != "success"
        ]
        if day in demo.outage and states["partner"] != "skipped":
            broken.append(f"day {day}: partner outage not skipped")
    return broken


def check(demo: Demo, sink: AlertSink) -> list[str]:
    """Return what the demo claims and did not see."""
    broken = check_days(demo)
    opened = [d for d, s in demo.breaker_states if s == "open"]
    if not opened:
        broken.append("the partner's breaker never opened")
    if demo.breaker_states and demo.breaker_states[-1][1] != "closed":
        broken.append(f"the partner's breaker ended {demo.breaker_states[-1][1]}")
    kinds = [(a.get("kind"), a.get("condition")) for a in sink.alerts]
    if not any(k == "alert" and c == "breaker" for k, c in kinds):
        broken.append(f"no breaker alert was delivered (got {kinds})")
    if not any(k == "recovery" and c == "breaker" for k, c in kinds):
        broken.append(f"no breaker recovery was delivered (got {kinds})")
    return broken


@dataclass
class Outcome:
    """What one demo run showed (the e2e test asserts on it)."""

    demo: Demo
    alerts: list[dict[str, Any]]
    history: dict[str, list[WaitRecord]]
    batch: dict[str, Any]
    broken: list[str]
    page: Path
    seconds: float
    peak_mb: float


def warm_up(harness: AirflowHarness, data: Path, day: dt.datetime) -> dict[str, Any]:
    """Run the batch example once, its drop already there: the triggerer's first trigger pays
    Airflow's one-off start-up costs (~5 s), not the first live day's sensors."""
    ds = day.strftime("%Y%m%d")
    drop = data / "partner_drop" / ds
    land(data, f"partner_drop/{ds}/manifest.json", '{"parts": 3}\n')
    for i in range(3):
        land(data, f"partner_drop/{ds}/part-{i}.xml", content("partner", ds))
    run_id = harness.trigger("waitwise_batch_example", logical_date=day)
    harness.wait_for("waitwise_batch_example", run_id, {"arrivals": "success"}, timeout=180)
    payload = _payload(harness, "waitwise_batch_example", run_id, "wait_partner_drop")
    found, pokes = len(payload["found"]), payload["pokes"]
    print(f"  batch example: {found} files of {drop.name}/ in one wait, {pokes} poke(s)")
    return payload


def run(args: argparse.Namespace) -> Outcome:
    """Start Airflow, play the scenario, read the report; stop everything."""
    outage = (args.days - args.live + 1, args.days - args.live + 2)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    data, reports = work / "data", work / "report"
    reports.mkdir(parents=True)
    t0 = time.monotonic()
    sink = AlertSink()
    harness = AirflowHarness(
        dags_folder=ROOT / "dags",
        data_dir=data,
        home=work / "home",
        extra_env={
            DEMO_ENV: "1",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the demo's runs
            "WAITWISE_ALERT_WEBHOOK": sink.url,
            "WAITWISE_REPORT_DIR": str(reports),
        },
    )
    print("Starting a local Airflow (api-server, scheduler, dag-processor, triggerer)...")
    harness.start([*DAGS, MONITORING, "waitwise_batch_example"])
    print(f"Airflow ready in {harness.ready_s:.0f}s; {args.days} days, the last {args.live} live:")
    demo = Demo(harness, data, args.days, args.live, outage, args.seed)
    try:
        batch = warm_up(harness, data, demo.logical_date(demo.first_live - 1))
        broken = play(demo, sink)
        history = asyncio.run(_history(harness))
        broken += check_learning(history)
        report = asyncio.run(_report(harness, args.days))
    finally:
        harness.stop()
        sink.close()
    print()
    print(text(report))
    page = reports / "waitwise-report.html"
    page.write_text(html_page(report), encoding="utf-8")
    return Outcome(
        demo,
        list(sink.alerts),
        history,
        batch,
        broken,
        page,
        time.monotonic() - t0,
        harness.peak_pss_mb,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--live", type=int, default=LIVE, help="last days run live (>= 5)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--work", type=Path, default=ROOT / ".demo", help="where it all goes")
    args = parser.parse_args(argv)
    if not 5 <= args.live <= args.days:
        parser.error("--live must be at least 5 (a normal day, two outage days, two after)")
    out = run(args)
    table, _ = pokes_table(out.history)
    print("Pokes per detected wait, adaptive polling learning from the history:")
    print(table)
    live_runs = sum(sum(r.sensor_worker_runs.values()) for r in out.demo.results)
    print(f"\nSensor worker runs over the live days: {live_runs} (waits stay in the triggerer)")
    alerts = [f"{a.get('kind')}:{a.get('condition')}:{a.get('source')}" for a in out.alerts]
    print("Alerts delivered:", ", ".join(alerts) or "none")
    print(f"HTML report: {out.page}")
    print(f"Total {out.seconds:.0f}s; peak memory of the Airflow processes {out.peak_mb:.0f} MB")
    for line in out.broken:
        print(f"BROKEN: {line}")
    return 1 if out.broken else 0


if __name__ == "__main__":
    sys.exit(main())
