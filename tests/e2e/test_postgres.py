"""The key e2e scenarios where users run Airflow when they outgrow one machine (issue 9).

PostgreSQL (installed and started by devtools/postgres.py) with two triggerers of capacity 2
each (``pg_airflow`` in conftest.py), driving the DAGs the SQLite suite drives.  Chosen
against the time budget (~3 min with the start, on a busy 2-core machine): what depends on
the database or on several triggerers, not every SQLite test again.

- arrivals: sensors spread over both triggerers end in the triggerer (0 worker runs), the
  downstream task reads the payload XCom (JSON in PostgreSQL);
- the breaker: the 4 sensors of one run, 2 in each triggerer, fail together; threshold 4
  opens only if no update from either process is lost (Variables in PostgreSQL), then every
  sensor of the next run is rejected;
- deadlines: a hard timeout fails once without using retries (one short worker run, via the
  scheduler's trigger-timeout sweep), soft_fail skips with none;
- takeover: SIGKILL the triggerer running a wait; the other one continues it, the 40 s
  deadline unchanged;
- a triggerer frozen past the health threshold, then resumed (a long GC, a stalled host):
  the wait it ran is taken over and must be recorded and counted once.

Both triggerers make their first Task SDK call before the tests (``warm_up_triggerers``):
that call builds Airflow's in-process execution API and stops the heartbeat for 5-20 s.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from devtools import history
from devtools.airflow_harness import AirflowHarness
from devtools.postgres import PostgresServer
from tests.e2e.conftest import (
    FIGURES,
    PG_TRIGGERER_JOBS,
    PG_TRIGGERERS,
    live_triggerer_jobs,
    start_pg_triggerer,
    wait_both_triggerers_healthy,
)
from tests.e2e.test_profiles import triggerers_running

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def breaker_of(airflow: AirflowHarness, source: str) -> dict[str, Any]:
    snapshot = history.breaker_of(airflow, source)
    assert snapshot is not None, f"no breaker for {source}"
    return snapshot


def history_of(airflow: AirflowHarness, source: str) -> list[dict[str, Any]]:
    return history.history_of(airflow, source)


def _data(airflow: AirflowHarness) -> Path:
    assert airflow.data_dir is not None
    return airflow.data_dir


def _ts(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def _triggerer_of(
    airflow: AirflowHarness, dag_id: str, run_id: str, task_id: str, other_than: int = 0
) -> int:
    """Return the job id of the triggerer running a deferred task (once not ``other_than``)."""
    for _ in range(240):
        ti = airflow.task_instances(dag_id, run_id)[task_id]
        job = int((ti.get("triggerer_job") or {}).get("id") or 0)
        if job and job != other_than and ti["state"] == "deferred":
            return job
        time.sleep(0.25)
    raise AssertionError(f"{dag_id}/{task_id} never deferred in a triggerer: {ti}")


def test_airflow_runs_on_postgres_with_two_triggerers(
    pg_airflow: AirflowHarness, postgres_server: PostgresServer
) -> None:
    env = pg_airflow.env()
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert not (pg_airflow.home / "airflow.db").exists()  # type: ignore[operator]
    [(parsed,)] = postgres_server.query(
        "select count(*) from dag where dag_id = any(%s)", ["ww_arrival", "ww_breaker_pair"]
    )
    assert parsed == 2
    assert live_triggerer_jobs(postgres_server) == set(PG_TRIGGERER_JOBS.values())
    assert sorted(PG_TRIGGERER_JOBS) == sorted(PG_TRIGGERERS)


def test_arrivals_spread_over_both_triggerers_end_without_workers(
    pg_airflow: AirflowHarness,
) -> None:
    data = _data(pg_airflow)
    runs = {
        n: pg_airflow.trigger("ww_arrival", conf={"file": f"pg_arrival/{n}.csv"}) for n in range(4)
    }
    jobs = {n: _triggerer_of(pg_airflow, "ww_arrival", run, "sense") for n, run in runs.items()}
    assert len(set(jobs.values())) == 2, jobs  # capacity 2 each: 2 + 2

    (data / "pg_arrival").mkdir(exist_ok=True)
    for n in runs:
        (data / "pg_arrival" / f"{n}.csv").write_text(f"{n}\n")
    for n, run in runs.items():
        pg_airflow.wait_for("ww_arrival", run, {"sense": "success", "consume": "success"})
        sense = pg_airflow.task_instances("ww_arrival", run)["sense"]
        assert pg_airflow.worker_runs(sense["id"]) == []
        assert sense["try_number"] == 1
        xcom = pg_airflow.api(
            "GET",
            f"/dags/ww_arrival/dagRuns/{run}/taskInstances/consume/xcomEntries/return_value",
        )
        assert xcom["value"] == str(data / "pg_arrival" / f"{n}.csv")
    FIGURES["postgres: 4 arrivals over 2 triggerers, sensor worker runs"] = "0"


def test_two_triggerers_open_one_breaker_on_postgres(pg_airflow: AirflowHarness) -> None:
    sensors = {f"sense{i}": "skipped" for i in range(4)}
    first = pg_airflow.trigger("ww_breaker_pair")
    assert len(triggerers_running(pg_airflow, "ww_breaker_pair", first)) == 2
    pg_airflow.wait_for("ww_breaker_pair", first, sensors, timeout=120)
    # four concurrent failures from two processes: threshold 4 opens only if none is lost
    failed = [r for r in history_of(pg_airflow, "pair_feed") if r["run_id"] == first]
    assert sorted(r["task_id"] for r in failed) == sorted(sensors)
    assert {r["outcome"] for r in failed} == {"skipped"}
    assert breaker_of(pg_airflow, "pair_feed")["state"] == "open"

    second = pg_airflow.trigger("ww_breaker_pair")
    pg_airflow.wait_for("ww_breaker_pair", second, dict.fromkeys(sensors, "failed"), timeout=120)
    rejected = [r for r in history_of(pg_airflow, "pair_feed") if r["run_id"] == second]
    assert sorted(r["task_id"] for r in rejected) == sorted(sensors)
    assert {(r["outcome"], r["pokes"]) for r in rejected} == {("breaker_open", 0)}


def test_deadlines_on_postgres(pg_airflow: AirflowHarness) -> None:
    hard = pg_airflow.trigger("ww_timeout")
    soft = pg_airflow.trigger("ww_soft_fail")
    pg_airflow.wait_for("ww_timeout", hard, {"sense": "failed"}, timeout=120)
    pg_airflow.wait_for("ww_soft_fail", soft, {"sense": "skipped"}, timeout=120)

    hard_ti = pg_airflow.task_instances("ww_timeout", hard)["sense"]
    assert hard_ti["try_number"] == 1  # retries=2, yet no second try
    assert len(pg_airflow.worker_runs(hard_ti["id"])) == 1  # one short run raises the timeout
    assert "not found by the deadline" in pg_airflow.task_log("ww_timeout", hard, "sense")
    soft_ti = pg_airflow.task_instances("ww_soft_fail", soft)["sense"]
    assert soft_ti["try_number"] == 1
    assert pg_airflow.worker_runs(soft_ti["id"]) == []


def test_a_wait_moved_to_the_other_triggerer_is_recorded_once(
    pg_airflow: AirflowHarness, postgres_server: PostgresServer
) -> None:
    """Freeze the triggerer running a wait past the health threshold, then resume it.

    The other triggerer takes the wait over and ends it at its deadline (skipped); the
    frozen one, resumed, is told by Airflow 3.3 that its trigger was cancelled by a user
    action (so its ``on_kill`` runs and records ``cancelled``), yet every reader sees one
    record, ``skipped`` (how the wait ended beats a cancellation), and the breaker counts one
    failure (threshold 2: a second would open it).
    """
    wait_both_triggerers_healthy(pg_airflow, postgres_server)
    run_id = pg_airflow.trigger("ww_breaker", conf={"file": "pg_moved/never.csv"})
    job = _triggerer_of(pg_airflow, "ww_breaker", run_id, "sense")
    [frozen] = [name for name, j in PG_TRIGGERER_JOBS.items() if j == job]
    time.sleep(1.5)  # the wait has polled
    group = pg_airflow.components[frozen].proc.pid
    os.killpg(group, signal.SIGSTOP)  # the triggerer and its trigger runner
    try:
        _triggerer_of(pg_airflow, "ww_breaker", run_id, "sense", other_than=job)
        pg_airflow.wait_for("ww_breaker", run_id, {"sense": "skipped"}, timeout=90)
    finally:
        os.killpg(group, signal.SIGCONT)
    time.sleep(10)  # the resumed triggerer learns the wait is gone and drops it
    records = [r for r in history_of(pg_airflow, "e2e_feed") if r["run_id"] == run_id]
    breaker = breaker_of(pg_airflow, "e2e_feed")
    assert [r["outcome"] for r in records] == ["skipped"], records
    assert (breaker["consecutive_failures"], breaker["state"]) == (1, "closed"), breaker


def test_sigkilled_triggerer_hands_its_waits_to_the_other(
    pg_airflow: AirflowHarness, postgres_server: PostgresServer
) -> None:
    wait_both_triggerers_healthy(pg_airflow, postgres_server)
    data = _data(pg_airflow)
    run_id = pg_airflow.trigger("ww_restart", conf={"file": "pg_restart/r.csv"})
    job = _triggerer_of(pg_airflow, "ww_restart", run_id, "expires")
    _triggerer_of(pg_airflow, "ww_restart", run_id, "arrives")
    [victim] = [name for name, j in PG_TRIGGERER_JOBS.items() if j == job]
    time.sleep(3)  # both waits have polled
    killed_at = time.time()
    pg_airflow.kill_component(victim, signal.SIGKILL)
    (data / "pg_restart").mkdir(exist_ok=True)
    (data / "pg_restart" / "r.csv").write_text("late\n")
    try:
        survivor = next(name for name in PG_TRIGGERERS if name != victim)
        taken = _triggerer_of(pg_airflow, "ww_restart", run_id, "expires", other_than=job)
        assert taken == PG_TRIGGERER_JOBS[survivor]
        pg_airflow.wait_for(
            "ww_restart", run_id, {"arrives": "success", "expires": "skipped"}, timeout=150
        )
        tis = pg_airflow.task_instances("ww_restart", run_id)
        assert pg_airflow.worker_runs(tis["arrives"]["id"]) == []
        assert pg_airflow.worker_runs(tis["expires"]["id"]) == []
        started, ended = _ts(tis["expires"]["start_date"]), _ts(tis["expires"]["end_date"])
        assert started < killed_at
        # the 40 s deadline counts from the start; the takeover must not extend it
        assert 38.0 <= ended - started <= 40.0 + 8.0, (started, ended)
        FIGURES["postgres: takeover after SIGKILL, expiring wait start to end (40 s deadline)"] = (
            f"{ended - started:.1f} s"
        )
    finally:
        start_pg_triggerer(pg_airflow, postgres_server, victim)
