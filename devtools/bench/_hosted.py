"""One measurement, in the process it measures: Airflow's TriggerRunner, N file triggers.

Started by :func:`devtools.bench.runner.run_runner_bench` as
``python -m devtools.bench._hosted CONFIG_JSON OUT_JSON``, one fresh interpreter per
measurement, so heap size, gc generations and the per-loop poll hub start clean.

Hosting.  ``TriggerRunner.arun()`` runs unchanged: its 1 s housekeeping loop
(``cleanup_finished_triggers`` over every trigger, ``sync_state_to_supervisor``,
``create_triggers``, ``cancel_triggers``), its block watchdog, and ``run_trigger`` for every
trigger (greenback portal, log context, span, the ``events`` deque).  Only ``init_comms`` is
replaced: instead of the socket to the parent process it installs :class:`StubSupervisor`,
which answers each ``TriggerStateChanges`` with a ``TriggerStateSync`` carrying the RunTrigger
workloads not yet handed over (the real supervisor drains its ``creating_triggers`` the same
way), after encoding the request frame as the real comms does (the child's share of a round
trip).  Any other request (connection, variable, XCom) raises: the triggers here use absolute
paths and need none.  Workloads carry Fernet-encrypted kwargs and a TaskInstance, as the
supervisor sends them.  Logging is configured as in the real triggerer child (JSON structlog),
written to /dev/null instead of the supervisor's log socket (so log costs are a lower bound).

Another build of waitwise.  With ``waitwise_path`` in the config (a directory holding a copy of
waitwise installed by ``pip install --no-deps --target DIR``; the parent puts it first on
``PYTHONPATH``), :func:`isolate_waitwise` also drops the editable install's meta-path finder
before anything imports waitwise: ``DIR`` wins for every module it has, but a module missing
from ``DIR`` (one that exists only in the other layout) would otherwise be served from the
working tree by that finder, mixing two builds in one process.  :func:`waitwise_origin` checks
after the measurement that every loaded ``waitwise`` module came from ``DIR`` and reports
``waitwise.triggers.__file__``.  Nothing here imports waitwise internals: triggers are built
from their public class path and kwargs, pokes are counted through the runtime's metrics sink.

Other shapes (:mod:`devtools.bench.pooling`; every key optional, the defaults are the runner
bench's): ``which="batch"`` hosts ``FileBatchTrigger``s of ``per_trigger`` files each
(``complete="all"``), so ``n`` counts files and the runner holds ``n / per_trigger`` triggers;
``dirs`` spreads the files over that many directories (a batch never spans two);
``detect_mode`` is waitwise's ``detect`` kwarg; ``existing_dirs`` creates the (empty) watched
directories before the triggers start; ``trickle`` lands one file per trigger at spread-out
moments instead of all at once (:func:`trickle`); ``stamp_yield`` also notes when each trigger
yields (before the runner's INFO log line and its ``events`` append); ``count_scans`` counts
``os.scandir`` and ``os.stat`` calls and hub ticks in the window; ``shard`` ``[k, m]`` hosts
only every m-th file from the k-th (another process hosts the rest of the same set).
"""

from __future__ import annotations

import asyncio
import cProfile
import datetime as dt
import gc
import itertools
import json
import math
import os
import random
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from devtools.bench._probes import (
    LoopProbe,
    PokeCounter,
    ScanCounter,
    StampedEvents,
    quantile,
    start_pyspy,
)

IDLE_INTERVAL = 5.0  # above this a run is hosting-only: no poke falls in the window


class StubSupervisor:
    """Stands in for ``TriggerCommsDecoder`` (see the module docstring)."""

    def __init__(self, workloads: list[Any]) -> None:
        self.pending = deque(workloads)
        self._ids = itertools.count(1)
        self._reader_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reader_task = asyncio.create_task(_forever())

    async def asend(self, msg: Any) -> Any:
        from airflow.jobs.triggerer_job_runner import messages
        from airflow.sdk.execution_time.comms import _RequestFrame

        _RequestFrame(id=next(self._ids), body=msg.model_dump()).as_bytes()
        if not isinstance(msg, messages.TriggerStateChanges):
            raise RuntimeError(f"bench triggers must not call the parent: {msg!r}")
        to_create, self.pending = list(self.pending), deque()
        return messages.TriggerStateSync.model_construct(
            to_create=to_create, to_cancel=set(), events_persisted=None
        )

    def send(self, msg: Any) -> Any:
        raise RuntimeError(f"bench triggers must not call the parent: {msg!r}")


async def _forever() -> None:
    await asyncio.Event().wait()


def phase(trigger_id: int) -> float:
    """Return trigger ``trigger_id``'s start offset as a fraction of the interval.

    Real sensors defer at different moments, so their pokes spread over the interval;
    triggers created in one burst would all poke in the same instant here, and detection
    latency would depend on where in the interval the files land.  A golden-ratio sequence
    spreads both kinds of trigger evenly and identically.
    """
    return (trigger_id * 0.6180339887498949) % 1.0


def hosted_runner(workloads: list[Any], interval: float, stamp_yield: bool = False) -> Any:
    """Return Airflow's ``TriggerRunner`` with only its parent connection stubbed.

    With ``stamp_yield``, ``runner.yielded`` maps each trigger id to when its ``run()`` first
    yielded (one generator layer around ``run``; no cost until it yields).
    """
    yielded: dict[int, float] = {}
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    class HostedRunner(TriggerRunner):
        async def init_comms(self) -> None:
            from airflow.sdk.execution_time import task_runner

            comms = StubSupervisor(workloads)
            await comms.start()
            self.comms_decoder = comms  # type: ignore[assignment]
            task_runner.SUPERVISOR_COMMS = comms  # type: ignore[assignment]

        async def run_trigger(self, trigger_id: int, *args: Any, **kwargs: Any) -> None:
            # Spread starts (see phase()); awaiting the real coroutine costs nothing per poke.
            await asyncio.sleep(phase(trigger_id) * min(interval, IDLE_INTERVAL))
            if stamp_yield:
                trigger: Any = kwargs["trigger"] if "trigger" in kwargs else args[0]
                trigger.run = _stamping(trigger.run, trigger_id, yielded)
            await super().run_trigger(trigger_id, *args, **kwargs)

    runner = HostedRunner()  # type: ignore[no-untyped-call]
    runner.events = StampedEvents()
    runner.yielded = yielded  # type: ignore[attr-defined]
    return runner


def _stamping(run: Any, trigger_id: int, yielded: dict[int, float]) -> Any:
    async def stamped() -> Any:
        async for event in run():
            yielded.setdefault(trigger_id, time.monotonic())
            yield event

    return stamped


def make_trigger(
    which: str,
    path: str | list[str],
    interval: float,
    started_at: float,
    detect_mode: str | None = None,
) -> Any:
    """Return one trigger; ``path`` is a batch's list of files for ``which="batch"``."""
    # detect only when asked: the runner bench's rows stay as they were measured.
    detect: dict[str, Any] = {"detect": detect_mode} if detect_mode else {}
    if which == "batch":
        from waitwise.triggers.batch import FileBatchTrigger

        return FileBatchTrigger(
            filepaths=list(path),
            complete="all",
            poll={"kind": "constant", "interval": interval},
            timeout=7 * 86400.0,
            started_at=started_at,
            **detect,
        )
    assert isinstance(path, str)
    if which == "floor":
        from devtools.bench._floor import LandingTrigger

        return LandingTrigger(path=path)
    if which == "stock":
        from airflow.providers.standard.triggers.file import FileTrigger

        return FileTrigger(filepath=path, poke_interval=interval)
    from waitwise.triggers.file import FileArrivalTrigger

    # Public class path and kwargs only (they are the same in every release); the poll
    # policy as plain JSON, what ``Constant(interval=...).to_config()`` returns.
    return FileArrivalTrigger(
        filepath=path,
        poll={"kind": "constant", "interval": interval},
        timeout=7 * 86400.0,
        started_at=started_at,
        **detect,
    )


def build_workloads(
    which: str,
    paths: list[Any],
    interval: float,
    detect_mode: str | None = None,
) -> list[Any]:
    """RunTrigger workloads as the supervisor sends them: encrypted kwargs and a task instance.

    One trigger per entry of ``paths`` (a list of files for ``which="batch"``).
    """
    from airflow.executors.workloads.task import TaskInstanceDTO
    from airflow.executors.workloads.trigger import RunTrigger
    from airflow.models.trigger import Trigger

    now = time.time()
    timeout_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    dag_version_id = uuid.uuid4()
    workloads = []
    for trigger_id, path in enumerate(paths, start=1):
        # waitwise pokes on a schedule anchored at started_at: spread the anchors the same
        # way, in the past (a wait does not start before its anchor).
        started_at = now - (1.0 - phase(trigger_id)) * interval
        trigger = make_trigger(which, path, interval, started_at, detect_mode)
        classpath, kwargs = trigger.serialize()
        ti = TaskInstanceDTO(
            id=uuid.uuid4(),
            task_id=f"wait_{trigger_id}",
            dag_id="bench_trigger_runner",
            run_id="bench",
            try_number=1,
            dag_version_id=dag_version_id,
            pool_slots=1,
            priority_weight=1,
        )
        encrypted = Trigger.encrypt_kwargs(kwargs)
        workloads.append(
            RunTrigger(
                id=trigger_id,
                classpath=classpath,
                encrypted_kwargs=encrypted,
                ti=ti,
                timeout_after=timeout_after,
            )
        )
    return workloads


def stage_files(work: Path, n: int, create: bool, dirs: int = 1) -> tuple[list[str], Path]:
    """Return the N watched paths (``data/batch/fNNNNN.csv``) and the staging directory.

    The files are created up front in ``data/staging``: on this VM's ext4 creating 10,000
    files takes ~3.5 s, far from "at once"; renaming ``staging`` to ``batch`` lands all of
    them in one syscall.  With ``dirs`` > 1, file i lives in ``batch/dNNN`` with NNN =
    i // (N / dirs) (consecutive files share a directory).
    """
    staging = work / "data" / "staging"
    staging.mkdir(parents=True)
    per_dir = max(1, -(-n // dirs))
    names = [
        f"f{i:05d}.csv" if dirs == 1 else f"d{i // per_dir:03d}/f{i:05d}.csv" for i in range(n)
    ]
    for sub in sorted({os.path.dirname(name) for name in names} - {""}):
        (staging / sub).mkdir()
    for name in names if create else ():
        (staging / name).write_bytes(b"x")
    return [str(work / "data" / "batch" / name) for name in names], staging


async def wait_started(runner: Any, run_task: Any, counter: PokeCounter, cfg: Any) -> None:
    """Return once all N triggers run and each has poked (one full round after creation)."""
    n, limit = cfg.get("n_triggers", cfg["n"]), time.monotonic() + 900
    while len(runner.triggers) < n or runner.to_create or runner.comms_decoder.pending:
        if run_task.done() or runner.failed_triggers or time.monotonic() > limit:
            failed = list(runner.failed_triggers)[:1]
            raise RuntimeError(f"setup stalled at {len(runner.triggers)}/{n}: {failed}")
        await asyncio.sleep(0.2)
    if cfg["which"] == "floor":
        return  # polls nothing
    target = counter.count + n if cfg["interval"] <= IDLE_INTERVAL else n
    # Every trigger pokes once when it starts: none counted in a minute means the counter
    # does not see this build's pokes; say so now rather than at the 15 min limit.
    silent_limit = time.monotonic() + 60 + min(cfg["interval"], IDLE_INTERVAL)
    while counter.count < target:
        if run_task.done() or time.monotonic() > limit:
            raise RuntimeError(f"triggers did not start: {counter.count}/{target} pokes")
        if counter.count == 0 and time.monotonic() > silent_limit:
            raise RuntimeError(f"no poke counted in 60 s ({cfg['which']}): see PokeCounter")
        await asyncio.sleep(0.2)


async def detect(
    cfg: dict[str, Any], staging: Path, runner: Any, probe: LoopProbe
) -> dict[str, Any]:
    """Land every file at once, time each trigger until its event is in ``runner.events``."""
    n = cfg.get("n_triggers", cfg["n"])
    sampler = start_pyspy(cfg.get("pyspy") and f"{cfg['pyspy']}.detect", 8)
    profiler = cProfile.Profile() if cfg.get("profile") else None
    if profiler:
        profiler.enable()
    cpu0 = time.process_time()
    staging.rename(staging.parent / "batch")  # noqa: ASYNC240 - the landing: one syscall
    if cfg["which"] == "floor":
        from devtools.bench._floor import landed as landing_signal

        landing_signal().set()
    landed = time.monotonic()
    while len(runner.events.stamps) < n and time.monotonic() < landed + 120:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu0
    if profiler:
        profiler.disable()
        profiler.dump_stats(f"{cfg['profile']}.detect")
    if sampler:
        await asyncio.to_thread(sampler.wait)
    latencies = [t - landed for t in runner.events.stamps.values()]
    yields = [t - landed for t in getattr(runner, "yielded", {}).values()]
    return {
        "detected": len(latencies),
        **(
            {
                "yield_p50_s": quantile(yields, 0.5),
                "yield_p99_s": quantile(yields, 0.99),
                "yield_max_s": max(yields),
            }
            if yields
            else {}
        ),
        "detect_p50_s": quantile(latencies, 0.5),
        "detect_p99_s": quantile(latencies, 0.99),
        "detect_max_s": max(latencies, default=float("nan")),
        "detect_cpu_ms_per_event": 1000 * cpu / max(len(latencies), 1),
        **probe.take("detect_"),
    }


async def steady_window(
    cfg: dict[str, Any], counter: PokeCounter, probe: LoopProbe
) -> dict[str, Any]:
    """Measure CPU, pokes, context switches and loop lag over ``cfg["window"]`` seconds."""
    proc = psutil.Process()
    scans = ScanCounter.current()
    scans0 = scans.snapshot() if scans else None
    ticks0 = hub_batches() if scans and cfg["which"] in WAITWISE_KINDS else None
    profiler = cProfile.Profile() if cfg.get("profile") else None
    sampler = start_pyspy(cfg.get("pyspy"), cfg["window"])
    t0, cpu0, pokes0 = time.monotonic(), time.process_time(), counter.count
    times0, ctx0 = proc.cpu_times(), proc.num_ctx_switches()
    if profiler:
        profiler.enable()
    await asyncio.sleep(cfg["window"])
    if profiler:
        profiler.disable()
        profiler.dump_stats(cfg["profile"])
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    pokes, n, files = counter.count - pokes0, cfg.get("n_triggers", cfg["n"]), cfg["n"]
    scanned = scans.since(scans0, wall) if scans and scans0 else {}
    if scans and ticks0 is not None:
        ticks = (hub_batches() or 0) - ticks0
        scanned["hub_ticks_per_s"] = ticks / wall
        scanned["scandir_per_tick"] = scanned["scandir_per_s"] * wall / ticks if ticks else math.nan
    times1, ctx1 = proc.cpu_times(), proc.num_ctx_switches()
    if sampler:
        await asyncio.to_thread(sampler.wait)
    user, system = times1.user - times0.user, times1.system - times0.system
    switches = sum(ctx1) - sum(ctx0)
    return {
        "cpu_pct": 100 * cpu / wall,
        "cpu_us_per_trigger_s": 1e6 * cpu / (n * wall),
        "pokes_per_trigger_s": pokes / (n * wall),
        "cpu_us_per_poke": 1e6 * cpu / pokes if pokes else float("nan"),
        "cpu_us_per_file_s": 1e6 * cpu / (files * wall),
        "pokes_per_s": pokes / wall,
        **scanned,
        "sys_cpu_share": system / max(user + system, 1e-9),
        "ctx_switches_per_s": switches / wall,
        **probe.take(),
    }


WAITWISE_KINDS = ("waitwise", "batch")


async def measure(cfg: dict[str, Any], work: Path) -> dict[str, Any]:
    """Host N triggers, measure the steady window, then (optionally) detection."""
    which, interval = cfg["which"], cfg["interval"]
    trickling = cfg.get("trickle")
    detecting = cfg["detect"] and interval <= IDLE_INTERVAL and not trickling
    groups, staging, plan = lay_out(cfg, work, detecting)
    cfg = {**cfg, "n": sum(len(g) if isinstance(g, list) else 1 for g in groups)}
    cfg["n_triggers"] = len(groups)
    n, n_triggers, mode = cfg["n"], len(groups), cfg.get("detect_mode")
    counter = PokeCounter()
    counter.install(which)
    if cfg.get("count_scans"):
        ScanCounter.install()
    build_workloads(which, groups[:1], interval, mode)  # imports and first-use caches before rss0
    rss0 = psutil.Process().memory_info().rss
    t_setup = time.monotonic()
    workloads = build_workloads(which, groups, interval, mode)
    runner = hosted_runner(workloads, interval, stamp_yield=bool(cfg.get("stamp_yield")))
    run_task = asyncio.create_task(runner.arun())
    await wait_started(runner, run_task, counter, cfg)
    setup_s = time.monotonic() - t_setup
    await asyncio.sleep(2.0)
    if cfg["gc_freeze"]:
        gc.freeze()
    probe = LoopProbe()
    probe_task = asyncio.create_task(probe.run())
    result = {k: cfg[k] for k in ("which", "n", "interval", "window", "gc_freeze")}
    result.update(n_triggers=n_triggers, setup_s=setup_s, code=code_under_test())
    result.update(await steady_window(cfg, counter, probe))
    rss = (psutil.Process().memory_info().rss - rss0) / 1024
    result.update(rss_kib_per_trigger=rss / n_triggers, rss_kib_per_file=rss / n)
    if which in WAITWISE_KINDS:
        result["batches_total"] = hub_batches()
        result["poke_metric_calls"] = counter.batches  # sink calls carrying waitwise.pokes
    if detecting:
        result.update(await detect(cfg, staging, runner, probe))
    if trickling:
        result.update(await trickle(cfg, plan, runner, probe, counter))
    probe_task.cancel()
    result.update(waitwise_origin(cfg))  # last: every module the run needed is loaded
    return result


def lay_out(
    cfg: dict[str, Any], work: Path, detecting: bool
) -> tuple[list[Any], Path, list[dict[str, Any]]]:
    """Return the triggers' paths (:func:`group_paths`), the staging directory, the arrivals."""
    paths, staging = stage_files(work, cfg["n"], create=detecting, dirs=cfg.get("dirs", 1))
    if cfg.get("shard"):
        first, every = cfg["shard"]
        paths = paths[first::every]
    groups = group_paths(cfg["which"], paths, cfg.get("per_trigger", 1))
    if cfg.get("existing_dirs") or cfg.get("trickle"):
        for directory in sorted({os.path.dirname(path) for path in paths}):
            os.makedirs(directory, exist_ok=True)
    plan = plan_trickle(groups, staging, cfg["trickle"]) if cfg.get("trickle") else []
    return groups, staging, plan


def group_paths(which: str, paths: list[str], per_trigger: int) -> list[Any]:
    """Return one entry per trigger: a path, or for ``batch`` a list of ``per_trigger`` paths."""
    if which != "batch":
        return list(paths)
    return [paths[i : i + per_trigger] for i in range(0, len(paths), per_trigger)]


def plan_trickle(groups: list[Any], staging: Path, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Create what is present before the triggers start; return the arrivals, in landing order.

    One arrival per trigger: its file (a batch's last member; the others are created now, so
    the arrival completes it).  Alternately written in place (open, write, pause
    ``write_s``, write, close: ``IN_CLOSE_WRITE``) and written in ``staging`` then renamed
    into place (``IN_MOVED_TO``); the order of the triggers is shuffled.
    """
    rng = random.Random(spec.get("seed", 0))
    plan = []
    for trigger_id, entry in enumerate(groups, start=1):
        members = [entry] if isinstance(entry, str) else list(entry)
        for present in members[:-1]:
            Path(present).write_bytes(b"x")
        plan.append({"trigger_id": trigger_id, "path": members[-1]})
    rng.shuffle(plan)
    for i, arrival in enumerate(plan):
        if i % 2:
            staged = staging / f"arrival{i:05d}.tmp"
            staged.write_bytes(b"xy")
            arrival.update(kind="rename", staged=str(staged))
        else:
            arrival.update(kind="close", staged=None)
        arrival["gap_s"] = rng.expovariate(1.0 / spec["gap_s"])
    return plan


def land(plan: list[dict[str, Any]], write_s: float, landed: dict[int, float]) -> None:
    """Land ``plan``'s files one by one (a thread: the loop never waits on it)."""
    for arrival in plan:
        time.sleep(arrival["gap_s"])
        if arrival["staged"]:
            landed[arrival["trigger_id"]] = time.monotonic()
            os.rename(arrival["staged"], arrival["path"])
            continue
        with open(arrival["path"], "wb", buffering=0) as file:
            file.write(b"x")
            time.sleep(write_s)  # being written: must not be reported yet
            file.write(b"y")
            landed[arrival["trigger_id"]] = time.monotonic()  # just before the close


async def trickle(
    cfg: dict[str, Any],
    plan: list[dict[str, Any]],
    runner: Any,
    probe: LoopProbe,
    counter: PokeCounter,
) -> dict[str, Any]:
    """Land one file per trigger at spread-out moments; time each until it yields."""
    spec, landed = cfg["trickle"], dict[int, float]()
    cpu0, start, pokes0 = time.process_time(), time.monotonic(), counter.count
    writer = threading.Thread(target=land, args=(plan, spec.get("write_s", 0.02), landed))
    writer.start()
    while writer.is_alive():  # noqa: ASYNC110 - a thread, not a task
        await asyncio.sleep(0.1)
    limit = time.monotonic() + 3 * cfg["interval"] + 5
    while len(runner.events.stamps) < len(plan) and time.monotonic() < limit:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - start
    result: dict[str, Any] = {
        "arrivals": len(plan),
        "trickle_s": wall,
        "trickle_cpu_pct": 100 * cpu / wall,
        "missed": sum(a["trigger_id"] not in runner.events.stamps for a in plan),
        "pokes_per_arrival": (counter.count - pokes0) / max(len(plan), 1),
        **probe.take("trickle_"),
    }
    for label, stamps in (("yield", runner.yielded), ("event", runner.events.stamps)):
        for kind in ("all", "close", "rename"):
            late = [
                stamps[a["trigger_id"]] - landed[a["trigger_id"]]
                for a in plan
                if a["trigger_id"] in stamps and kind in ("all", a["kind"])
            ]
            prefix = f"{label}_" if kind == "all" else f"{label}_{kind}_"
            result[f"{prefix}p50_s"] = quantile(late, 0.5)
            result[f"{prefix}p99_s"] = quantile(late, 0.99)
            result[f"{prefix}max_s"] = max(late, default=math.nan)
            if kind == "all":
                result[f"{label}_early"] = sum(t < 0 for t in late)  # before the close
    return result


def hub_batches() -> int | None:
    """Return the batches of the running loop's poll hub, on either layout (or ``None``).

    After the engine refactor the hub belongs to the runtime (``runtime.current().hub()``);
    in 0.1.0 it lived in ``waitwise.triggers._hub``'s per-loop registry.  Looked up by name,
    not imported statically: only one of the two exists in the build under test.
    """
    import importlib

    from waitwise.triggers import runtime

    current = runtime.current()
    if hasattr(current, "hub"):
        return int(current.hub().batches)
    try:
        old = importlib.import_module("waitwise.triggers._hub")
    except ImportError:
        return None
    return sum(int(h.batches) for h in old._HUBS.values())


def code_under_test() -> dict[str, Any]:
    """Return where ``waitwise.triggers`` was imported from and hashes of its sources.

    ``tree``: one hash over every ``.py`` file below the package (relative path and bytes), so
    two builds compare at a glance; ``modules``: a short hash per file (they change while
    others work).
    """
    import hashlib

    import waitwise.triggers

    root = Path(waitwise.triggers.__file__).parent
    tree = hashlib.sha1(usedforsecurity=False)
    modules = {}
    for path in sorted(root.rglob("*.py")):
        name, data = path.relative_to(root).as_posix(), path.read_bytes()
        tree.update(name.encode() + b"\0" + data + b"\0")
        modules[name] = hashlib.sha1(data, usedforsecurity=False).hexdigest()[:10]
    return {"path": str(root), "tree": tree.hexdigest()[:12], "modules": modules}


EDITABLE_FINDER_PREFIX = "__editable__"  # setuptools' editable-install finder modules


def isolate_waitwise(path: str) -> None:
    """Import waitwise from ``path`` only (see the module docstring); call before any import."""
    if any(name == "waitwise" or name.startswith("waitwise.") for name in sys.modules):
        raise RuntimeError("waitwise was imported before the bench could isolate it")

    def editable(hook: Any) -> bool:
        return str(getattr(hook, "__module__", "")).startswith(EDITABLE_FINDER_PREFIX)

    sys.meta_path[:] = [finder for finder in sys.meta_path if not editable(finder)]
    sys.path_hooks[:] = [hook for hook in sys.path_hooks if not editable(hook)]
    sys.path[:] = [entry for entry in sys.path if not entry.startswith(EDITABLE_FINDER_PREFIX)]
    sys.path_importer_cache.clear()
    if path not in sys.path:
        sys.path.insert(0, path)


def waitwise_origin(cfg: dict[str, Any]) -> dict[str, Any]:
    """Report where waitwise came from; raise if any module came from outside ``waitwise_path``."""
    import waitwise.triggers

    loaded = {
        name: module
        for name, module in list(sys.modules.items())
        if name == "waitwise" or name.startswith("waitwise.")
    }
    origin = {
        "waitwise_file": waitwise.triggers.__file__,
        "waitwise_path": cfg.get("waitwise_path"),
        "waitwise_modules": len(loaded),
    }
    if cfg.get("waitwise_path"):
        root = os.path.realpath(cfg["waitwise_path"]) + os.sep
        places = {
            name: [*getattr(module, "__path__", [])] or [getattr(module, "__file__", None) or "?"]
            for name, module in loaded.items()
        }
        foreign = {
            name: where
            for name, where in places.items()
            if not all(os.path.realpath(p).startswith(root) for p in where)
        }
        if foreign:
            raise RuntimeError(f"waitwise modules from outside {root}: {foreign}")
    return origin


def configure_like_triggerer_child() -> None:
    """Set up the process as the triggerer's child does before ``TriggerRunner.run``."""
    from airflow.sdk.log import configure_logging, reset_logging

    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
    reset_logging()  # type: ignore[no-untyped-call]
    sink = open(os.devnull, "wb")  # noqa: SIM115 - lives as long as the process
    configure_logging(json_output=True, output=sink, sending_to_supervisor=True)


async def write_and_exit(cfg: dict[str, Any], out: Path) -> None:
    result = await measure(cfg, out.parent)
    out.write_text(json.dumps(result, indent=1))  # noqa: ASYNC240 - measurement is over
    # Exit here: asyncio.run would cancel N live trigger tasks one by one on its way out.
    os._exit(0)


def main(argv: list[str]) -> None:
    out = Path(argv[1])
    try:
        cfg = json.loads(argv[0])
        if cfg.get("waitwise_path"):
            isolate_waitwise(cfg["waitwise_path"])
        configure_like_triggerer_child()
        asyncio.run(write_and_exit(cfg, out))
    except BaseException:
        # Airflow's logging setup swallows stderr here: leave the traceback for the parent.
        out.with_suffix(".err").write_text(traceback.format_exc())
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
