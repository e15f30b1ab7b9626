"""Fan-in: N sensors of ONE source whose files land at the same moment, in a real Airflow.

``python -m devtools.bench.fanin --n 1000`` (``--n 100`` for a quick look).  Issue 15: every
wait's ending writes the source's history and feeds its breaker; when a source's files land
together those endings must not queue behind each other.

One real Airflow (:mod:`devtools.airflow_harness`: SQLite, LocalExecutor), DAGs generated into
a temporary dags folder (:func:`write_dags`; the e2e test keeps its own copy in
``tests/e2e/dags_fanin``), each kind run in turn.  A kind of more than :data:`DAG_SIZE` tasks is
split over ``ceil(N / DAG_SIZE)`` DAGs of the same kind (``fanin_waitwise_00``, ...), whose runs
are triggered together and wait for the same landing (:func:`dag_ids`): one DAG of 1,000
tasks is too slow for Airflow's scheduler and dag-processor here, and each trigger the
triggerer starts carries its whole serialized DAG.

1. ``fanin_seed``: ``SEED`` sensors of the source whose files never land (2 s timeout,
   ``soft_fail``): the breaker then holds ``SEED`` consecutive failures, so the fan-in's
   successes MUST change it (reset the count, enter the window).  Its threshold is above
   ``SEED``: it stays closed.
2. ``fanin_floor``: N tasks ending through :class:`FloorTrigger`, a trigger that checks its
   path once a second off the loop and yields ``TaskSuccessEvent``: what Airflow itself costs.
3. ``fanin_waitwise``: N ``FileArrivalSensor``s, ``source="fanin_src"``, a profile with a
   breaker and a 1 s constant poll.

For each fan-in: trigger its DAGs, wait until all N tasks are ``deferred`` in a triggerer,
let every trigger settle into polling (``--settle``), stage the N files in one directory and
rename it into place (one syscall: all land at once), then wait until all N tasks are done.
Per task the latency is its ``end_date`` (REST API) minus the rename; the table reports
first / median / p90 / last per kind and ``last / floor last`` (goal: within 2x).

Checks, reading ``fanin_src``'s history and breaker with waitwise's own reader over the
REST API (:mod:`devtools.history`: loose records and segments, de-duplicated):

- history: every fan-in task must have exactly one record with outcome ``success``;
- breaker: it must be ``closed`` with no consecutive
  failures, and, since the window holds ``SEED + N`` outcomes, exactly ``SEED`` failures
  followed by ``N`` successes: one lost (or doubled) update shows.

Airflow settings for N (see :func:`airflow_env`): ``[triggerer] capacity`` and
``max_trigger_to_select_per_loop``, ``[core] max_active_tasks_per_dag`` (and each DAG's
``max_active_tasks``), ``[scheduler] max_dagruns_per_loop_to_schedule`` (every DAG of a kind
in one scheduler loop), ``[scheduler] max_tis_per_query``, ``[api] maximum_page_limit`` (the
REST API caps pages at 100 by default), longer DAG-parse timeouts; ``PYTHONPATH`` holds the
repo root so that the dag-processor and the triggerer import :class:`FloorTrigger` from here.
``[core] parallelism`` stays small: tasks that start from the trigger are deferred by the
scheduler directly (``DagRun.schedule_tis``) and these end in the triggerer, so no worker
slot is ever used; each pre-forked LocalExecutor worker would only cost memory.

``--waitwise-path DIR`` runs another build (``pip install --no-deps --target DIR``): DIR
comes first on every component's ``PYTHONPATH``, ahead of the editable install's finder
(which setuptools appends to ``sys.meta_path``); the report says where the triggerer's
``waitwise.triggers`` came from.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseOperator
from airflow.triggers.base import (
    BaseTrigger,
    StartTriggerArgs,
    TaskSuccessEvent,
    TriggerEvent,
)

from devtools import history
from devtools.airflow_harness import TERMINAL_STATES, AirflowHarness

REPO = Path(__file__).resolve().parents[2]
SOURCE = "fanin_src"
SEED = 3  # failed waits before the fan-in: its successes must then change the breaker
KINDS = ("floor", "waitwise")
DAG_IDS = {"seed": "fanin_seed", "floor": "fanin_floor", "waitwise": "fanin_waitwise"}
DAG_SIZE = 100  # most tasks per DAG: a kind of more is split over several DAGs (dag_ids)
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
LANDED = "landed"
GOAL = 2.0  # waitwise's last done within this multiple of the floor's last


# ----------------------------------------------------------------- the floor
class FloorTrigger(BaseTrigger):
    """Check ``path`` once a second off the loop; yield ``TaskSuccessEvent`` once it exists."""

    def __init__(self, *, path: str, interval: float = 1.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.path, self.interval = path, interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "devtools.bench.fanin.FloorTrigger", {"path": self.path, "interval": self.interval}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while not await asyncio.to_thread(os.path.exists, self.path):  # noqa: ASYNC110
            await asyncio.sleep(self.interval)  # polls on purpose: the floor of a polling wait
        yield TaskSuccessEvent()


class FloorSensor(BaseOperator):
    """Start in the triggerer with :class:`FloorTrigger` and end there (no worker run)."""

    template_fields = ("path",)

    def __init__(self, *, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls="devtools.bench.fanin.FloorTrigger",
            next_method="execute_complete",
            trigger_kwargs={"path": path, "interval": 1.0},
            next_kwargs=None,
            timeout=dt.timedelta(hours=1),
        )

    def execute(self, context: Any) -> None:
        self.defer(trigger=FloorTrigger(path=self.path), method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> None:
        return None


# ----------------------------------------------------------------- the DAGs
def task_ids(n: int) -> list[str]:
    return [f"t{i:04d}" for i in range(n)]


def dag_ids(kind: str, n: int) -> list[str]:
    """Return the ids of the DAGs holding the ``n`` tasks of ``kind`` (one unless n > DAG_SIZE)."""
    if kind == "seed" or n <= DAG_SIZE:
        return [DAG_IDS[kind]]
    return [f"{DAG_IDS[kind]}_{k:02d}" for k in range(-(-n // DAG_SIZE))]


def shard_tasks(n: int, shard: int, shards: int) -> list[str]:
    """Return the task ids of DAG ``shard`` of ``shards``: ids are unique across a kind's DAGs."""
    return task_ids(n)[shard * DAG_SIZE : (shard + 1) * DAG_SIZE] if shards > 1 else task_ids(n)


def _profiles(n: int) -> tuple[Any, Any]:
    from waitwise.triggers.breaker import BreakerConfig
    from waitwise.triggers.policy import Constant
    from waitwise.triggers.profiles import ReliabilityProfile

    # The window keeps every outcome of the seed and the fan-in: the check counts them all.
    breaker = BreakerConfig(failure_threshold=SEED + 2, window=SEED + n, cooldown_s=600.0)
    fanin = ReliabilityProfile(
        name="fanin",
        arrival_window_s=60.0,
        reliability=0.99,
        timeout_s=3600.0,
        poll=Constant(interval=1.0),
        breaker=breaker,
    )
    seed = fanin.override(name="fanin_seed", arrival_window_s=2.0, timeout_s=2.0)
    return fanin, seed


def build_dag(kind: str, n: int, fileloc: str, shard: int = 0, xcom: bool = True) -> DAG:
    """Return DAG ``shard`` of ``kind`` ("seed", "floor" or "waitwise") for fan-ins of ``n``.

    ``xcom=False``: the waitwise sensors do not push their payload XCom (``do_xcom_push``).
    """
    from waitwise.operators.file import FileArrivalSensor

    fanin, seed = _profiles(n)
    path = "{{ dag_run.conf['dir'] }}/"
    ids = dag_ids(kind, n)
    mine = shard_tasks(n, shard, len(ids))
    with DAG(
        ids[shard],
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        max_active_tasks=max(len(mine), SEED) + 10,
    ) as dag:
        if kind == "seed":
            for task_id in task_ids(SEED):
                FileArrivalSensor(
                    task_id=task_id,
                    filepath=path + task_id,
                    profile=seed,
                    source=SOURCE,
                    soft_fail=True,
                )
        for task_id in mine if kind == "floor" else ():
            FloorSensor(task_id=task_id, path=path + task_id)
        for task_id in mine if kind == "waitwise" else ():
            FileArrivalSensor(
                task_id=task_id,
                filepath=path + task_id,
                profile=fanin,
                source=SOURCE,
                do_xcom_push=xcom,
            )
    dag.fileloc = fileloc  # the DAG file, not this module
    return dag


_DAG_FILE = '''"""Airflow DAG file generated by devtools.bench.fanin: {kind} DAG {shard}, N={n}."""

from __future__ import annotations

from devtools.bench.fanin import build_dag

dag = build_dag({kind!r}, {n}, __file__, {shard}, xcom={xcom})
'''


def write_dags(folder: Path, n: int, xcom: bool = True) -> list[str]:
    """Write one file per DAG for fan-ins of ``n`` into ``folder``; return the DAG ids."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in DAG_IDS:
        for shard, dag_id in enumerate(dag_ids(kind, n)):
            text = _DAG_FILE.format(kind=kind, n=n, shard=shard, xcom=xcom)
            (folder / f"{dag_id}.py").write_text(text)
            written.append(dag_id)
    return written


# ----------------------------------------------------------------- the Airflow
def airflow_env(n: int, waitwise_path: str | None = None) -> dict[str, str]:
    """Return the extra environment an Airflow running N waits of one source needs."""
    path = [waitwise_path, str(REPO), os.environ.get("PYTHONPATH")]
    shards = dag_ids("waitwise", n)
    return {
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
        "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, n + 100)),
        "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": str(max(50, n + 10)),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(max(16, n + 10)),
        "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": str(max(16, n + 10)),
        "AIRFLOW__SCHEDULER__MAX_DAGRUNS_PER_LOOP_TO_SCHEDULE": str(max(20, 2 * len(shards))),
        "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": str(max(1000, 2 * n)),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        # parse once: re-parsing 1,000 sensors every 30 s would take most of a core
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
    }


def harness_for(
    dags_folder: Path, data_dir: Path, n: int, waitwise_path: str | None = None
) -> AirflowHarness:
    return AirflowHarness(
        dags_folder=dags_folder,
        data_dir=data_dir,
        parallelism=2,  # no task of these DAGs ever runs on a worker (module docstring)
        extra_env=airflow_env(n, waitwise_path),
    )


def _get_all(airflow: AirflowHarness, path: str, key: str) -> list[dict[str, Any]]:
    """Return every item of a paged REST list (``limit``/``offset``)."""
    items: list[dict[str, Any]] = []
    sep = "&" if "?" in path else "?"
    while True:
        page = airflow.api("GET", f"{path}{sep}limit=1000&offset={len(items)}")
        items.extend(page[key])
        if not page[key] or len(items) >= page["total_entries"]:
            return items


def task_instances(airflow: AirflowHarness, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return _get_all(airflow, f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")


def count_in(airflow: AirflowHarness, dag_id: str, run_id: str, states: set[str]) -> int:
    query = "&".join(f"state={s}" for s in sorted(states))
    page = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?{query}&limit=1")
    return int(page["total_entries"])


def _poll(what: str, predicate: Any, timeout: float, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# ----------------------------------------------------------------- one fan-in
@dataclass
class FanIn:
    """One fan-in: per-task latency from the landing to the task's end.

    ``runs``: the run of each of the kind's DAGs (dag_id -> run_id), triggered together.
    """

    kind: str
    n: int
    runs: dict[str, str]
    latencies: list[float] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    deferred_s: float = 0.0  # DAG run created -> all N deferred in a triggerer
    started_s: float = 0.0  # DAG run created -> all N triggers running

    @property
    def run_id(self) -> str:
        """Return the run id of a fan-in of one DAG."""
        if len(self.runs) != 1:
            raise ValueError(f"{self.kind} ran {len(self.runs)} DAGs: use runs")
        return next(iter(self.runs.values()))

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def first(self) -> float:
        return min(self.latencies)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def last(self) -> float:
        return max(self.latencies)


def _all_deferred_in_triggerer(airflow: AirflowHarness, runs: dict[str, str], n: int) -> bool:
    if sum(count_in(airflow, d, r, {"deferred"}) for d, r in runs.items()) < n:
        return False
    tis = [ti for d, r in runs.items() for ti in task_instances(airflow, d, r)]
    return all((ti.get("triggerer_job") or {}).get("id") for ti in tis)


def _done(airflow: AirflowHarness, runs: dict[str, str]) -> int:
    return sum(count_in(airflow, d, r, set(TERMINAL_STATES)) for d, r in runs.items())


def started_triggers(airflow: AirflowHarness, dag_id: str, run_id: str) -> int:
    """Return how many of the run's tasks have a trigger that logged "trigger ... starting".

    A task is ``deferred`` and assigned to a triggerer before its trigger runs: for a task
    that starts from the trigger, the triggerer's parent sends the whole serialized DAG with
    each trigger and its runner renders the task's templates from it, which at N=1000 takes
    the better part of a minute.  The runner's first line for each trigger goes to the
    task's ``*.trigger.<job>.log`` file.
    """
    assert airflow.home is not None
    folder = airflow.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    started = 0
    for task_dir in folder.glob("task_id=*"):
        logs = task_dir.glob("*.trigger.*.log")
        started += any(" starting" in log.read_text(errors="replace") for log in logs)
    return started


def fan_in(
    airflow: AirflowHarness,
    kind: str,
    n: int,
    data_dir: Path,
    *,
    settle: float,
    timeout: float,
) -> FanIn:
    """Run one fan-in of ``kind`` ("floor" or "waitwise") and return its latencies."""
    folder = Path(tempfile.mkdtemp(prefix=f"fanin-{kind}-", dir=data_dir))
    staging, landed = folder / "staging", folder / LANDED
    staging.mkdir()
    for task_id in task_ids(n):
        (staging / task_id).write_text("x")
    begun = time.monotonic()
    runs = {d: airflow.trigger(d, conf={"dir": str(landed)}) for d in dag_ids(kind, n)}
    _poll(
        f"{n} {kind} tasks deferred in a triggerer",
        lambda: _all_deferred_in_triggerer(airflow, runs, n),
        timeout=120 + n * 0.3,
    )
    result = FanIn(kind, n, runs, deferred_s=time.monotonic() - begun)
    _poll(
        f"{n} {kind} triggers started",
        lambda: sum(started_triggers(airflow, d, r) for d, r in runs.items()) >= n,
        timeout=120 + n * 0.5,
        every=2.0,
    )
    result.started_s = time.monotonic() - begun
    time.sleep(settle)  # every trigger has poked (and a wait been admitted) at least once
    os.rename(staging, landed)
    landed_at = time.time()
    _poll(f"{n} {kind} tasks done", lambda: _done(airflow, runs) >= n, timeout=timeout)
    for ti in (ti for d, r in runs.items() for ti in task_instances(airflow, d, r)):
        result.states[ti["state"]] = result.states.get(ti["state"], 0) + 1
        ended = dt.datetime.fromisoformat(ti["end_date"]).timestamp()
        result.latencies.append(ended - landed_at)
    return result


def seed(airflow: AirflowHarness, data_dir: Path) -> str:
    """Run the seed DAG: ``SEED`` failed (skipped) waits of the source; return its run_id."""
    folder = Path(tempfile.mkdtemp(prefix="fanin-seed-", dir=data_dir))
    run_id = airflow.trigger(DAG_IDS["seed"], conf={"dir": str(folder / "never")})
    airflow.wait_for(DAG_IDS["seed"], run_id, dict.fromkeys(task_ids(SEED), "skipped"), 120)
    return run_id


# ----------------------------------------------------------------- the store checks
def store_values(airflow: AirflowHarness, source: str = SOURCE) -> dict[str, Any]:
    """Return every Variable under ``waitwise/<source>/`` (key -> decoded JSON, or the text)."""
    prefix = f"waitwise/{source}/"
    found = _get_all(airflow, f"/variables?variable_key_pattern={prefix}", "variables")
    values: dict[str, Any] = {}
    for var in found:
        if var["key"].startswith(prefix):
            try:
                values[var["key"]] = json.loads(var["value"])
            except (TypeError, ValueError):
                values[var["key"]] = var["value"]
    return values


@dataclass
class StoreCheck:
    """What the store holds after a fan-in."""

    records: int  # records of the fan-in run
    present: int  # distinct fan-in tasks with a success record
    duplicates: int  # records beyond one per task and try
    wrong_outcome: list[str]
    breaker: dict[str, Any] | None
    breaker_problems: list[str]
    keys: int  # Variables under the source's prefix

    @property
    def ok(self) -> bool:
        return not self.breaker_problems and not self.wrong_outcome and self.present_all

    present_all: bool = False


def check_store(airflow: AirflowHarness, run: str | FanIn, n: int, successes: int) -> StoreCheck:
    """Check the fan-in's history and the breaker after ``successes`` fan-in successes.

    ``run``: the fan-in (all its DAGs' runs), or the run id of a fan-in of one DAG.
    """
    values = store_values(airflow)  # every key: loose records, segments, the breaker
    runs = run.runs if isinstance(run, FanIn) else None
    mine = [
        r
        for r in history.history_of(airflow, SOURCE)
        if (runs.get(r["dag_id"]) if runs is not None else run) == r["run_id"]
    ]
    tries = {(r["dag_id"], r["task_id"], r.get("map_index", -1), r.get("try_number")) for r in mine}
    wrong = sorted(
        f"{r['task_id']}:{r.get('outcome')}" for r in mine if r.get("outcome") != "success"
    )
    present = len({r["task_id"] for r in mine if r.get("outcome") == "success"})
    snapshot = history.breaker_of(airflow, SOURCE)
    check = StoreCheck(
        records=len(mine),
        present=present,
        duplicates=len(mine) - len(tries),
        wrong_outcome=wrong[:10],
        breaker=snapshot,
        breaker_problems=breaker_problems(snapshot, successes),
        keys=len(values),
    )
    check.present_all = present == n
    return check


def breaker_problems(snapshot: dict[str, Any] | None, successes: int) -> list[str]:
    """Return what is wrong with the breaker after ``SEED`` failures, then ``successes``."""
    if snapshot is None:
        return ["no breaker snapshot under the source's prefix"]
    problems = []
    if snapshot.get("state") != "closed":
        problems.append(f"state {snapshot.get('state')!r}, not 'closed'")
    if snapshot.get("consecutive_failures") != 0:
        problems.append(f"consecutive_failures {snapshot.get('consecutive_failures')}, not 0")
    outcomes = list(snapshot.get("outcomes") or [])
    expected = [False] * SEED + [True] * successes
    if outcomes != expected:
        problems.append(
            f"outcomes: {outcomes.count(False)} failures + {outcomes.count(True)} successes "
            f"({len(outcomes)}), expected {SEED} + {successes}: "
            f"{'lost' if len(outcomes) < len(expected) else 'extra'} updates"
        )
    return problems


# ----------------------------------------------------------------- the whole bench
@dataclass
class Report:
    n: int
    runs: dict[str, FanIn]
    store: StoreCheck
    ready_s: float
    wall_s: float
    peak_pss_mb: float
    waitwise_file: str
    tree: str
    triggerer_blocked: int

    @property
    def ratio(self) -> float:
        return self.runs["waitwise"].last / self.runs["floor"].last


def waitwise_origin(airflow: AirflowHarness) -> str:
    """Return where the triggerer's interpreter (its env) imports ``waitwise.triggers`` from."""
    code = "import waitwise.triggers as t; print(t.__file__)"
    done = subprocess.run(
        [airflow.interpreter, "-c", code],
        env=airflow.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return (done.stdout.strip() or done.stderr.strip()[-300:]).replace(str(REPO), "<repo>")


def tree_state() -> str:
    """Return HEAD and the changed files under triggers/ (read-only git calls)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip()

    changed = git("status", "--short", "--", "triggers").splitlines()
    head = git("log", "-1", "--format=%h %s")[:80]
    return f"HEAD {head}; triggers/ changes: {', '.join(c.strip() for c in changed) or 'none'}"


def measure(
    n: int,
    *,
    settle: float | None = None,
    waitwise_path: str | None = None,
    keep_home: bool = False,
    label: str | None = None,
    xcom: bool = True,
) -> Report:
    """Start an Airflow for fan-ins of ``n``, run seed, floor, waitwise; return the report."""
    started = time.monotonic()
    settle = settle if settle is not None else 3.0 + n / 500
    with tempfile.TemporaryDirectory(prefix="waitwise-fanin-") as tmp:
        dags, data = Path(tmp) / "dags", Path(tmp) / "data"
        data.mkdir()
        ids = write_dags(dags, n, xcom)
        airflow = harness_for(dags, data, n, waitwise_path)
        airflow.keep_home = keep_home
        airflow.start(ids, timeout=300 + n * 0.2)
        try:
            if airflow.import_errors():
                raise RuntimeError(f"DAG import errors: {airflow.import_errors()}")
            origin = waitwise_origin(airflow)
            seed(airflow, data)
            runs = {
                kind: fan_in(airflow, kind, n, data, settle=settle, timeout=300 + n * 1.5)
                for kind in KINDS
            }
            store = check_store(airflow, runs["waitwise"], n, n)
            blocked = airflow.logs("triggerer").count("async thread was blocked")
        finally:
            airflow.stop()
    return Report(
        n=n,
        runs=runs,
        store=store,
        ready_s=airflow.ready_s,
        wall_s=time.monotonic() - started,
        peak_pss_mb=airflow.peak_pss_mb,
        waitwise_file=origin,
        tree=label or tree_state(),
        triggerer_blocked=blocked,
    )


def table(report: Report) -> str:
    floor = report.runs["floor"]
    lines = [
        f"Fan-in: {report.n} sensors of one source, files landing at once, 1 s poll "
        f"(one real Airflow, SQLite + LocalExecutor; {report.tree})",
        "",
        "| N | kind | first done | median | p90 | last | last / floor last | states |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        run = report.runs[kind]
        ratio = f"**{run.last / floor.last:.1f}x**" if kind == "waitwise" else "1.0x"
        states = ", ".join(f"{k} {v}" for k, v in sorted(run.states.items()))
        lines.append(
            f"| {run.n} | {kind} | {run.first:.1f} s | {run.median:.1f} s | "
            f"{run.quantile(0.9):.1f} s | {run.last:.1f} s | {ratio} | {states} |"
        )
    store = report.store
    snap = store.breaker or {}
    outcomes = list(snap.get("outcomes") or [])
    verdict = "PASS" if report.ratio <= GOAL and store.ok else "FAIL"
    lines += [
        "",
        f"goal last <= {GOAL:g}x floor last: {report.ratio:.1f}x; "
        f"history: {store.present}/{report.n} present ({store.records} records, "
        f"{store.duplicates} duplicates, {store.keys} Variables under waitwise/{SOURCE}/)"
        + (f", not success: {store.wrong_outcome}" if store.wrong_outcome else ""),
        f"breaker: state {snap.get('state')}, consecutive_failures "
        f"{snap.get('consecutive_failures')}, outcomes {outcomes.count(False)} F + "
        f"{outcomes.count(True)} T (expected {SEED} + {report.n}), version {snap.get('version')}"
        + (f"; PROBLEMS: {store.breaker_problems}" if store.breaker_problems else "; consistent"),
        f"-> {verdict}",
        f"harness ready {report.ready_s:.0f} s"
        + (f", whole bench {report.wall_s:.0f} s, " if report.wall_s else ", ")
        + f"all {report.n} deferred / triggers running after {floor.deferred_s:.0f} / "
        f"{floor.started_s:.0f} s (floor), {report.runs['waitwise'].deferred_s:.0f} / "
        f"{report.runs['waitwise'].started_s:.0f} s (waitwise), peak PSS "
        f"{report.peak_pss_mb:.0f} MB, triggerer 'blocked' warnings {report.triggerer_blocked}, "
        f"waitwise from {report.waitwise_file}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="sensors of the one source")
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds from all triggers running to the landing (default 3 + N/500)",
    )
    parser.add_argument("--waitwise-path", default=None, help="another build (pip --target)")
    parser.add_argument("--keep-home", action="store_true", help="keep AIRFLOW_HOME (logs)")
    parser.add_argument("--label", default=None, help="what is measured (default: git state)")
    parser.add_argument(
        "--no-xcom",
        action="store_true",
        help="waitwise sensors with do_xcom_push=False: the engine's cost without the payload",
    )
    args = parser.parse_args(argv)
    report = measure(
        args.n,
        settle=args.settle,
        waitwise_path=args.waitwise_path,
        keep_home=args.keep_home,
        label=args.label if args.label or not args.no_xcom else "do_xcom_push=False",
        xcom=not args.no_xcom,
    )
    print(table(report))
    sys.stdout.flush()
    return report


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
