"""Profiles, the circuit breaker and re-opened waits in a real Airflow (state in Variables)."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest

from devtools import history
from devtools.airflow_harness import AirflowHarness
from tests.e2e.conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def breaker_of(airflow: AirflowHarness, source: str) -> dict[str, Any]:
    snapshot = history.breaker_of(airflow, source)
    assert snapshot is not None, f"no breaker for {source}"
    return snapshot


def history_of(airflow: AirflowHarness, source: str) -> list[dict[str, Any]]:
    return history.history_of(airflow, source)


def triggerers_running(airflow: AirflowHarness, dag_id: str, run_id: str) -> set[int]:
    """Return the triggerer job ids running the run's deferred sensors, once all have one."""
    for _ in range(120):
        tis = airflow.task_instances(dag_id, run_id).values()
        jobs = [int((ti.get("triggerer_job") or {}).get("id") or 0) for ti in tis]
        if all(jobs) and all(ti["state"] == "deferred" for ti in tis):
            return set(jobs)
        time.sleep(0.25)
    raise AssertionError(f"sensors never all deferred in a triggerer: {list(tis)}")


def _seconds(ti: dict[str, Any]) -> float:
    start = dt.datetime.fromisoformat(ti["start_date"])
    return (dt.datetime.fromisoformat(ti["end_date"]) - start).total_seconds()


def test_breaker_opens_rejects_fast_half_opens_and_closes(
    airflow: AirflowHarness, data_dir: Path
) -> None:
    for n in (1, 2):  # the file never arrives: two failed waits open the breaker
        run_id = airflow.trigger("ww_breaker", conf={"file": f"breaker/never{n}.csv"})
        airflow.wait_for("ww_breaker", run_id, {"sense": "skipped"}, timeout=90)
    breaker = breaker_of(airflow, "e2e_feed")
    assert breaker["state"] == "open"

    run_id = airflow.trigger("ww_breaker", conf={"file": "breaker/there.csv"})
    (data_dir / "breaker").mkdir(exist_ok=True)
    (data_dir / "breaker" / "there.csv").write_text("x")
    airflow.wait_for("ww_breaker", run_id, {"sense": "failed"}, timeout=60)
    rejected = airflow.task_instances("ww_breaker", run_id)["sense"]
    assert airflow.worker_runs(rejected["id"]) == []
    assert _seconds(rejected) < 5.0, rejected  # ends at once, no polling
    last = history_of(airflow, "e2e_feed")[-1]
    assert (last["outcome"], last["pokes"], last["run_id"]) == ("breaker_open", 0, run_id)
    FIGURES["breaker-rejected wait, task start to end (0 pokes, 0 worker runs)"] = (
        f"{_seconds(rejected):.2f} s"
    )

    time.sleep(max(breaker["opened_at"] + 45.0 - time.time(), 0) + 1)  # the cooldown
    run_id = airflow.trigger("ww_breaker", conf={"file": "breaker/there.csv"})
    airflow.wait_for("ww_breaker", run_id, {"sense": "success"}, timeout=60)
    assert breaker_of(airflow, "e2e_feed")["state"] == "closed"
    outcomes = [r["outcome"] for r in history_of(airflow, "e2e_feed")]
    assert outcomes == ["skipped", "skipped", "breaker_open", "success"]
    assert all(r["scheduled_at"] for r in history_of(airflow, "e2e_feed"))  # rendered


def test_two_triggerers_share_one_breaker(airflow: AirflowHarness) -> None:
    airflow.restart_component("triggerer", extra_args=["--capacity", "2"])
    airflow.start_component("triggerer#2", extra_args=["--capacity", "2"])
    try:
        sensors = {f"sense{i}": "skipped" for i in range(4)}
        first = airflow.trigger("ww_breaker_pair")
        assert len(triggerers_running(airflow, "ww_breaker_pair", first)) == 2
        airflow.wait_for("ww_breaker_pair", first, sensors, timeout=120)
        # four concurrent failures from two processes: threshold 4 opens only if none is lost
        assert breaker_of(airflow, "pair_feed")["state"] == "open"

        second = airflow.trigger("ww_breaker_pair")
        airflow.wait_for("ww_breaker_pair", second, dict.fromkeys(sensors, "failed"), timeout=120)
        rejected = [r for r in history_of(airflow, "pair_feed") if r["run_id"] == second]
        assert sorted(r["task_id"] for r in rejected) == sorted(sensors)
        assert {r["outcome"] for r in rejected} == {"breaker_open"}
    finally:
        airflow.kill_component("triggerer#2")
        airflow.restart_component("triggerer")


def test_partner_profile_reopens_then_gives_up(airflow: AirflowHarness) -> None:
    run_id = airflow.trigger("ww_reopen")
    airflow.wait_for("ww_reopen", run_id, {"sense": "skipped"}, timeout=120)

    sense = airflow.task_instances("ww_reopen", run_id)["sense"]
    # windows [0,4] [7,11] [14,18] s: two re-openings, then the deadline of the last
    assert 17.0 <= _seconds(sense) <= 30.0, sense
    assert airflow.worker_runs(sense["id"]) == []
    [record] = [r for r in history_of(airflow, "reopen_feed") if r["run_id"] == run_id]
    assert (record["outcome"], record["reopens"]) == ("skipped", 2)
    log = airflow.task_log("ww_reopen", run_id, "sense")  # the triggerer writes here
    assert len(re.findall(r"re-opening the wait", log)) == 2, log[-3000:]


def test_operators_can_force_the_breaker_open_and_reset_it(
    airflow: AirflowHarness, data_dir: Path
) -> None:
    (data_dir / "guarded.csv").write_text("x")
    admin = airflow.trigger("ww_admin", conf={"action": "force_open", "note": "vendor outage"})
    airflow.wait_for("ww_admin", admin, {"override": "success"})
    assert breaker_of(airflow, "e2e_admin_feed")["state"] == "forced_open"

    blocked = airflow.trigger("ww_guarded", conf={"file": "guarded.csv"})
    airflow.wait_for("ww_guarded", blocked, {"sense": "failed"}, timeout=60)
    assert "vendor outage" in airflow.task_log("ww_guarded", blocked, "sense")

    admin = airflow.trigger("ww_admin", conf={"action": "reset"})
    airflow.wait_for("ww_admin", admin, {"override": "success"})
    allowed = airflow.trigger("ww_guarded", conf={"file": "guarded.csv"})
    airflow.wait_for("ww_guarded", allowed, {"sense": "success"}, timeout=60)
    assert breaker_of(airflow, "e2e_admin_feed")["state"] == "closed"
