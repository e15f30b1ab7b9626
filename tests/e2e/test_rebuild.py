"""Issue 8: a trigger row that cannot be rebuilt fails its own task, never the whole triggerer.

Airflow's triggerer turns only a ``TypeError`` raised by a trigger's constructor into "Trigger
failed to inflate" (that one task fails, through a short worker run); any other exception
escapes ``TriggerRunner.create_triggers``, the runner logs "Trigger runner failed" and exits,
the triggerer exits with it, and every wait it hosted is stranded until Airflow's safety-net
trigger timeout.

Scenario, against a real Airflow of its own (this module kills and restarts the triggerer, so
it never shares the session harness): two sensors of one run wait in the triggerer; the
triggerer is stopped; ONE sensor's trigger row is rewritten through Airflow's own ORM model
(``Trigger.kwargs``: serialized and Fernet-encrypted exactly as Airflow writes and reads it);
a new triggerer starts and the healthy sensor's file lands.  Expected: the damaged sensor
fails at once (not at the safety net), the healthy one succeeds, the triggerer keeps running.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.airflow_harness import (
    TERMINAL_STATES,
    AirflowHarness,
    ApiError,
    Component,
    _process_groups,
)
from tests.e2e.conftest import FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

DAGS = Path(__file__).parent / "dags_rebuild"
DAG_ID = "ww_rebuild"
RUNNER_FAILED = "Trigger runner failed"
# The sensors' timeout is 300 s, so Airflow's safety net would end them >= 360 s after their
# start; a damaged row must end its task well before that.
DAMAGED_ENDS_WITHIN_S = 60.0
HEALTHY_ENDS_WITHIN_S = 45.0

# Process groups of triggerers this module stopped or lost: none may outlive the module.
_RETIRED_GROUPS: list[int] = []

# How a row is damaged: kwargs to set and kwargs to drop.  ``unknown_kwarg`` is the control:
# Python itself raises TypeError for it, so it passed before the fix of issue 8 as well.
DAMAGES: dict[str, dict[str, Any]] = {
    "unknown_poll_kind": {"set": {"poll": {"kind": "no_such_policy"}}, "drop": []},
    "timeout_not_a_number": {"set": {"timeout": "soon"}, "drop": []},
    "poll_not_a_mapping": {"set": {"poll": "constant"}, "drop": []},
    "unknown_kwarg": {"set": {"no_such_kwarg": 1}, "drop": []},
}

# Run with the harness's environment: rewrites one task instance's trigger row through the ORM,
# then reads it back as TriggerRunner.create_triggers does (decrypt, decode) and tries to build
# the trigger class from it, to report what the constructor raises.
_REWRITE = r"""
import json, sys
from sqlalchemy import select
from airflow._shared.module_loading import import_string
from airflow.models.taskinstance import TaskInstance
from airflow.models.trigger import Trigger
from airflow.serialization.decoders import smart_decode_trigger_kwargs
from airflow.utils.session import create_session

spec = json.loads(sys.argv[1])
with create_session() as session:
    ti = session.scalars(
        select(TaskInstance).where(
            TaskInstance.dag_id == spec["dag_id"],
            TaskInstance.run_id == spec["run_id"],
            TaskInstance.task_id == spec["task_id"],
            TaskInstance.map_index == -1,
        )
    ).one()
    if ti.state != "deferred" or ti.trigger_id is None:
        sys.exit(f"{spec['task_id']} is {ti.state} (trigger {ti.trigger_id}): nothing to damage")
    trigger = session.get(Trigger, ti.trigger_id)
    before = trigger.kwargs
    kwargs = dict(before)
    for name in spec["drop"]:
        kwargs.pop(name)
    kwargs.update(spec["set"])
    trigger.kwargs = kwargs
    trigger_id, classpath = trigger.id, trigger.classpath
with create_session() as session:
    stored = session.get(Trigger, trigger_id).encrypted_kwargs
seen = {k: smart_decode_trigger_kwargs(v) for k, v in Trigger._decrypt_kwargs(stored).items()}
try:
    import_string(classpath)(**seen)
    rebuild = "built without error"
except Exception as exc:
    kind = type(exc)
    rebuild = (
        f"{kind.__module__}.{kind.__qualname__} (a TypeError: {isinstance(exc, TypeError)}): {exc}"
    )
out = {
    "trigger_id": trigger_id,
    "classpath": classpath,
    "encrypted": not stored.startswith("{"),
    "before": before,
    "after": seen,
    "rebuild": rebuild,
}
print(json.dumps(out, default=repr))
"""


@pytest.fixture(scope="module")
def rebuild_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHarness]:
    data = tmp_path_factory.mktemp("rebuild-data")
    harness = AirflowHarness(dags_folder=DAGS, data_dir=data)
    # A TERM to pytest (CI cancelling) must still run the clean-up below and atexit's.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        harness.start([DAG_ID])
        FIGURES["rebuild harness ready"] = f"{harness.ready_s:.1f} s"
        assert harness.import_errors() == []
        yield harness
    finally:
        harness.stop()
        signal.signal(signal.SIGTERM, previous)
        left = harness.pids()
        stray = _live_groups(_RETIRED_GROUPS)
        for pgid in stray:  # groups this module started: never leave them running
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        assert left == [], f"the harness left Airflow processes behind: {left}"
        assert stray == [], f"stopped triggerers left processes behind: {stray}"


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_trigger_row_fails_only_its_task(
    rebuild_airflow: AirflowHarness, damage: str
) -> None:
    airflow = rebuild_airflow
    assert airflow.data_dir is not None
    _ensure_triggerer(airflow)
    landing = airflow.data_dir / "rebuild" / f"{damage}.csv"
    run_id = airflow.trigger(DAG_ID, conf={"file": str(landing)})
    try:
        _deferred_in_a_triggerer(airflow, run_id)
        _stop_triggerer(airflow)
        rewrite = _damage_trigger_row(airflow, run_id, "damaged", DAMAGES[damage])
        restarted_at = time.time()
        triggerer = airflow.start_component("triggerer")

        # First let the new triggerer rebuild (or choke on) the damaged row: its task leaves
        # ``deferred`` (Airflow re-schedules it to fail, or a task-ending event ends it), or the
        # runner dies.  Only then land the file: the healthy sensor can succeed only if the
        # runner survived the rebuild.
        _poll(lambda: _left_deferral(airflow, run_id, "damaged") or _runner_gone(triggerer), 60)
        landing.parent.mkdir(parents=True, exist_ok=True)
        landing.write_text("landed\n")
        landed_at = time.time()
        _poll(
            lambda: _ended(airflow, run_id, "healthy") and _ended(airflow, run_id, "damaged"),
            HEALTHY_ENDS_WITHIN_S,
            give_up=lambda: _runner_gone(triggerer) and time.time() - landed_at > 10,
        )

        _check_outcome(airflow, run_id, triggerer, rewrite, restarted_at, landed_at, damage)
    finally:
        _forget_run(airflow, run_id)


def _check_outcome(
    airflow: AirflowHarness,
    run_id: str,
    triggerer: Component,
    rewrite: dict[str, Any],
    restarted_at: float,
    landed_at: float,
    damage: str,
) -> None:
    tis = airflow.task_instances(DAG_ID, run_id)
    healthy, damaged = tis["healthy"], tis["damaged"]
    log = triggerer.log_path.read_text(errors="replace")
    damaged_after = _after(damaged, restarted_at)
    healthy_after = _after(healthy, landed_at)
    why = _diagnosis(rewrite, tis, triggerer, log, damaged_after, healthy_after)

    assert RUNNER_FAILED not in log, f"the trigger runner died on the damaged row\n{why}"
    assert triggerer.alive(), f"the triggerer exited\n{why}"
    assert healthy["state"] == "success", f"the healthy sensor did not succeed\n{why}"
    assert damaged["state"] == "failed", f"the damaged sensor did not fail\n{why}"
    assert damaged["try_number"] == 1, why
    assert damaged_after is not None, why
    assert damaged_after <= DAMAGED_ENDS_WITHIN_S, f"the damaged sensor failed late\n{why}"
    # Still heartbeating (a loaded machine may delay one heartbeat past the 10 s threshold).
    health: dict[str, Any] = {}

    def heartbeating() -> bool:
        nonlocal health
        health = airflow.api("GET", "/monitor/health")["triggerer"]
        return bool(health["status"] == "healthy")

    assert _poll(heartbeating, 30), f"the triggerer is not healthy: {health}\n{why}"
    FIGURES[f"rebuild [{damage}]: damaged failed / healthy succeeded"] = (
        f"{damaged_after:.1f} s after the triggerer restart / "
        f"{healthy_after:.1f} s after its file landed"
    )


def _diagnosis(
    rewrite: dict[str, Any],
    tis: dict[str, dict[str, Any]],
    triggerer: Component,
    log: str,
    damaged_after: float | None,
    healthy_after: float | None,
) -> str:
    states = {k: (v["state"], v["try_number"]) for k, v in tis.items()}
    interesting = ("Trigger failed to inflate", RUNNER_FAILED, "Error", "died", "exited")
    lines = [ln for ln in log.splitlines() if any(word in ln for word in interesting)]
    return "\n".join(
        [
            f"damaged row: set {rewrite['after_patch']} -> rebuilding it raises: "
            f"{rewrite['rebuild']}",
            f"states (state, try): {states}",
            f"damaged ended {damaged_after} s after the restart, "
            f"healthy {healthy_after} s after its file landed",
            f"triggerer alive: {triggerer.alive()} (exit code {triggerer.proc.poll()})",
            "triggerer log, notable lines:",
            *[f"  {ln[:400]}" for ln in lines[-15:]],
            "triggerer log, tail:",
            *[f"  {ln[:400]}" for ln in log.splitlines()[-25:]],
        ]
    )


# ---------------------------------------------------------------- helpers
def _deferred_in_a_triggerer(airflow: AirflowHarness, run_id: str) -> None:
    """Wait until both sensors are ``deferred`` (REST API) with a triggerer job running them."""
    last: dict[str, Any] = {}

    def both() -> bool:
        nonlocal last
        last = airflow.task_instances(DAG_ID, run_id)
        return all(
            last.get(task, {}).get("state") == "deferred"
            and (last[task].get("triggerer_job") or {}).get("id")
            for task in ("healthy", "damaged")
        )

    if not _poll(both, 60):
        states = {k: v["state"] for k, v in last.items()}
        raise AssertionError(f"sensors never both deferred in a triggerer: {states}")


def _stop_triggerer(airflow: AirflowHarness) -> None:
    """TERM the triggerer (its clean shutdown hands the triggers back at once), KILL leftovers."""
    comp = airflow.components["triggerer"]
    _RETIRED_GROUPS.append(comp.proc.pid)
    airflow.kill_component("triggerer", signal.SIGTERM)
    if comp.alive() or _live_groups([comp.proc.pid]):
        airflow.kill_component("triggerer", signal.SIGKILL)


def _ensure_triggerer(airflow: AirflowHarness) -> None:
    """Start a triggerer if an earlier case left none running (it died on a damaged row)."""
    comp = airflow.components["triggerer"]
    if comp.alive():
        return
    _RETIRED_GROUPS.append(comp.proc.pid)
    airflow.kill_component("triggerer", signal.SIGKILL)
    airflow.start_component("triggerer")
    airflow.wait_healthy(90)


def _damage_trigger_row(
    airflow: AirflowHarness, run_id: str, task_id: str, damage: dict[str, Any]
) -> dict[str, Any]:
    """Rewrite one task instance's trigger kwargs through Airflow's ORM; return what it did."""
    spec = {"dag_id": DAG_ID, "run_id": run_id, "task_id": task_id, **damage}
    for attempt in range(3):  # the scheduler and api-server share the SQLite file
        done = subprocess.run(
            [sys.executable, "-c", _REWRITE, json.dumps(spec)],
            env=airflow.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode == 0 or "database is locked" not in done.stderr or attempt == 2:
            break
    assert done.returncode == 0, f"rewriting the trigger row failed:\n{done.stderr[-3000:]}"
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["encrypted"], out  # written the way Airflow writes it: Fernet-encrypted
    expected = {k: v for k, v in out["before"].items() if k not in damage["drop"]}
    expected.update(damage["set"])
    assert out["after"] == expected, out  # the triggerer will read exactly the damaged kwargs
    out["after_patch"] = {**damage["set"], **dict.fromkeys(damage["drop"], "<dropped>")}
    return out


def _forget_run(airflow: AirflowHarness, run_id: str) -> None:
    """Delete the run so that a damaged row left behind cannot reach the next case's triggerer.

    Its task instances go with it, so the next triggerer skips (and cleans) the orphaned row.
    Airflow deletes only finished runs: one still waiting is marked failed first.
    """
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}"
    with contextlib.suppress(ApiError, OSError):
        if airflow.api("GET", path)["state"] not in ("success", "failed"):
            airflow.api("PATCH", path, {"state": "failed"})
        airflow.api("DELETE", path)


def _ended(airflow: AirflowHarness, run_id: str, task_id: str) -> bool:
    return airflow.states(DAG_ID, run_id).get(task_id) in TERMINAL_STATES


def _left_deferral(airflow: AirflowHarness, run_id: str, task_id: str) -> bool:
    return airflow.states(DAG_ID, run_id).get(task_id) not in (None, "deferred")


def _runner_gone(triggerer: Component) -> bool:
    if not triggerer.alive():
        return True
    return RUNNER_FAILED in triggerer.log_path.read_text(errors="replace")


def _after(ti: dict[str, Any], since: float) -> float | None:
    if not ti.get("end_date"):
        return None
    return dt.datetime.fromisoformat(ti["end_date"]).timestamp() - since


def _poll(
    predicate: Callable[[], Any],
    timeout: float,
    every: float = 0.5,
    give_up: Callable[[], bool] = lambda: False,
) -> bool:
    """Return True once ``predicate()`` is true, False after ``timeout`` s or once ``give_up()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError, OSError):
            if predicate():
                return True
        if give_up():
            return False
        time.sleep(every)
    return False


def _live_groups(pgids: list[int]) -> list[int]:
    wanted = set(pgids)
    return sorted({pgid for _, pgid in _process_groups() if pgid in wanted})
