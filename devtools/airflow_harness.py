"""Start a real local Airflow (api-server, scheduler, dag-processor, triggerer) for tests and bench.

One temporary AIRFLOW_HOME on SQLite with the LocalExecutor, free ports, every component in its
own process group so that it and its children can be stopped together.  The same class is used by
the pytest fixture (tests/e2e/conftest.py), ``make demo`` and ``make bench``.

Contract:
- ``start()`` returns once the api-server answers ``/api/v2/monitor/health`` with a healthy
  scheduler, dag-processor and triggerer, and (optionally) the given DAGs are parsed.
- ``stop()`` always terminates every process started (TERM, then KILL after a grace period),
  also when called from ``atexit`` after an interrupted run; ``pids()`` lists what is alive.
- ``worker_seconds(ti_id)`` sums the ``Workload finished duration=`` lines that LocalExecutor
  workers log for that task instance: the workers' own record of the time they spent on it.
- ``python=`` runs every component and CLI call with another interpreter (``python -m
  airflow``), e.g. a venv with waitwise installed from its wheel; by default the ``airflow``
  script beside this interpreter runs them.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
_LIVE: set[AirflowHarness] = set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def _confined_env(python: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Return ``env`` for processes that must see only ``python``'s own environment."""
    confined = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    confined["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", os.defpath)])
    # ``python -m airflow`` would put the working directory (a checkout, with its egg-info and
    # source folders) first on sys.path; safe-path mode keeps it off, in every child too.
    confined["PYTHONSAFEPATH"] = "1"
    return confined


class ApiError(RuntimeError):
    """The REST API answered with an HTTP error (the message carries its body)."""


@dataclass
class Component:
    """One Airflow process (a process-group leader) and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    generation: int = 0

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass(eq=False)
class AirflowHarness:
    """A real Airflow on SQLite with the LocalExecutor, started and stopped by the caller.

    ``python``: the interpreter of another environment (a venv's ``bin/python``, not resolved:
    a venv's interpreter is a symlink to the base one) that runs every component and CLI call.
    """

    dags_folder: Path
    data_dir: Path | None = None
    parallelism: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    home: Path | None = None
    keep_home: bool = False
    python: Path | None = None
    components: dict[str, Component] = field(default_factory=dict)
    port: int = 0
    ready_s: float = 0.0
    peak_pss_mb: float = 0.0
    _owns_home: bool = False
    _sampler: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    # ---------------------------------------------------------------- set-up
    def env(self) -> dict[str, str]:
        assert self.home is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        data_dir = self.data_dir or self.home / "data"
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                    f"http://127.0.0.1:{self.port}/execution/"
                ),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_CONN_FS_DEFAULT": json.dumps(
                    {"conn_type": "fs", "extra": {"path": str(data_dir)}}
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.python is not None:
            env = _confined_env(self.python, env)
        env.update(self.extra_env)
        return env

    @property
    def interpreter(self) -> str:
        """Return the Python executable that runs this instance's Airflow."""
        return str(self.python or sys.executable)

    def airflow_command(self) -> list[str]:
        """Return the command that runs Airflow's CLI for this instance."""
        if self.python is None:
            return [_airflow_bin()]
        return [str(self.python), "-m", "airflow"]

    def start(self, dag_ids: Iterable[str] = (), timeout: float = 180.0) -> None:
        """Migrate the database, start every component, wait until healthy and parsed."""
        if self.home is None:
            self.home = Path(tempfile.mkdtemp(prefix="waitwise-airflow-"))
            self._owns_home = True
        self.port = self.port or _free_port()
        (self.data_dir or self.home / "data").mkdir(parents=True, exist_ok=True)
        _LIVE.add(self)
        _exit_on_sigterm()
        started = time.monotonic()
        try:
            self._run_cli(["db", "migrate"], timeout=timeout)
            for name in COMPONENTS:
                self.start_component(name)
            self.wait_healthy(timeout)
            self.wait_dags_parsed(dag_ids, timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_s = time.monotonic() - started
        self._sampler = threading.Thread(target=self._sample_memory, daemon=True)
        self._sampler.start()

    def _sample_memory(self, every: float = 2.0) -> None:
        """Keep ``peak_pss_mb``: the largest summed PSS of all Airflow processes seen."""
        while not self._stopping.wait(every):
            self.peak_pss_mb = max(self.peak_pss_mb, self.memory_pss_mb())

    def _run_cli(self, args: list[str], timeout: float) -> str:
        done = subprocess.run(
            [*self.airflow_command(), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def cli(self, *args: str, timeout: float = 120.0) -> str:
        """Run an ``airflow`` CLI command against this instance and return its stdout."""
        return self._run_cli(list(args), timeout)

    def start_component(self, name: str, *, extra_args: Iterable[str] = ()) -> Component:
        """Start (or restart) one component; its log is appended under ``$AIRFLOW_HOME``."""
        assert self.home is not None
        previous = self.components.get(name)
        generation = previous.generation + 1 if previous else 0
        args = {
            "api-server": ["api-server", "--workers", "1", "--port", str(self.port)],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }[name.split("#")[0]]
        log_path = self.home / f"{name.replace('#', '-')}.{generation}.log"
        log = log_path.open("ab")
        proc = subprocess.Popen(
            [*self.airflow_command(), *args, *extra_args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.components[name] = Component(name, proc, log_path, generation)
        return self.components[name]

    # ------------------------------------------------------------ faults
    def kill_component(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a component's whole process group and reap it."""
        comp = self.components[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(comp.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            comp.proc.wait(timeout=30)
        if sig == signal.SIGKILL:
            _kill_group_leftovers(comp.proc.pid)

    def restart_component(
        self, name: str, sig: int = signal.SIGKILL, *, extra_args: Iterable[str] = ()
    ) -> Component:
        """Kill a component (SIGKILL by default) and start a fresh one."""
        self.kill_component(name, sig)
        return self.start_component(name, extra_args=extra_args)

    # ------------------------------------------------------------ tear-down
    def stop(self, grace: float = 15.0) -> None:
        """Stop every component: TERM to each process group, KILL what is left."""
        self._stopping.set()
        for comp in self.components.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(comp.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for comp in self.components.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                comp.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for comp in self.components.values():
            _kill_group_leftovers(comp.proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                comp.proc.wait(timeout=5)
        _LIVE.discard(self)
        if self._owns_home and not self.keep_home and self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)

    def pids(self) -> list[int]:
        """Return the PIDs of every live process in the components' process groups."""
        groups = {c.proc.pid for c in self.components.values()}
        return [pid for pid, pgid in _process_groups() if pgid in groups]

    # ------------------------------------------------------------ REST API
    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the public REST API (``/api/v2``) and return the decoded JSON."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v2{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise ApiError(f"{method} {path} -> {exc.code}: {detail}") from exc

    def wait_healthy(self, timeout: float = 120.0) -> None:
        """Wait until the api-server reports scheduler, dag-processor and triggerer healthy."""
        wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")

        def healthy() -> bool:
            health = self.api("GET", "/monitor/health")
            return all((health.get(part) or {}).get("status") == "healthy" for part in wanted)

        self._poll(healthy, timeout, "Airflow to become healthy")

    def wait_dags_parsed(self, dag_ids: Iterable[str], timeout: float = 120.0) -> None:
        """Wait until every DAG in ``dag_ids`` is known to the API (parsed and serialized)."""
        wanted = set(dag_ids)

        def parsed() -> bool:
            found = self.api("GET", "/dags?limit=1000")["dags"]
            return wanted <= {d["dag_id"] for d in found}

        if wanted:
            self._poll(parsed, timeout, f"DAGs {sorted(wanted)} to be parsed")

    def import_errors(self) -> list[dict[str, Any]]:
        """Return the DAG import errors Airflow recorded."""
        errors: list[dict[str, Any]] = self.api("GET", "/importErrors")["import_errors"]
        return errors

    def trigger(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        logical_date: datetime.datetime | None = None,
    ) -> str:
        """Trigger a DAG run now and return its run_id."""
        body = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": conf or {},
        }
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", body)
        return str(run["dag_run_id"])

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """Return the run's task instances by task_id (mapped ones as ``task_id[i]``)."""
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        out = {}
        for ti in tis["task_instances"]:
            suffix = f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""
            out[ti["task_id"] + suffix] = ti
        return out

    def states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Return ``{task_id: state}`` for a DAG run."""
        return {k: v["state"] for k, v in self.task_instances(dag_id, run_id).items()}

    def wait_for(
        self,
        dag_id: str,
        run_id: str,
        expected: Mapping[str, str | set[str]],
        timeout: float = 120.0,
    ) -> dict[str, str | None]:
        """Wait until each task in ``expected`` is in (one of) the given state(s).

        Fails early, with the components' log tails, when a task reaches another
        terminal state.
        """
        wanted = {k: {v} if isinstance(v, str) else set(v) for k, v in expected.items()}
        last: dict[str, str | None] = {}

        def reached() -> bool:
            nonlocal last
            last = self.states(dag_id, run_id)
            for task, states in wanted.items():
                state = last.get(task)
                if state in TERMINAL_STATES and state not in states:
                    raise AssertionError(
                        f"{dag_id}/{task} ended {state!r}, wanted {sorted(states)}; "
                        f"all: {last}\n{self.log_tails()}"
                    )
            return all(last.get(t) in s for t, s in wanted.items())

        self._poll(reached, timeout, f"{dag_id} tasks {expected}", lambda: f"{last}")
        return last

    # ------------------------------------------------------------ measurements
    def logs(self, name: str) -> str:
        """Return every log written by a component, all generations concatenated."""
        assert self.home is not None
        stem = name.replace("#", "-")
        parts = sorted(self.home.glob(f"{stem}.*.log"))
        return "".join(p.read_text(errors="replace") for p in parts)

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Return every log file Airflow wrote for a task (worker and triggerer parts)."""
        assert self.home is not None
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "".join(
            p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file()
        )

    def log_tails(self, lines: int = 40) -> str:
        """Return the last lines of every component's log, for failure messages."""
        out = []
        for name in self.components:
            tail = self.logs(name).splitlines()[-lines:]
            out.append(f"----- {name} -----\n" + "\n".join(tail))
        return "\n".join(out)

    def busy_workers(self) -> list[str]:
        """Return the titles of LocalExecutor workers that are running a workload now."""
        titles = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                if "LocalExecutor" in title and "<idle>" not in title:
                    titles.append(title.strip())
        return titles

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every worker is idle: its "Workload finished" record is then written."""
        self._poll(
            lambda: not self.busy_workers(), timeout, "workers to go idle", self.busy_workers
        )

    def worker_runs(self, ti_id: str) -> list[float]:
        """Return the durations of every worker run of a task instance (all tries).

        Waits for busy workers first, since a worker logs its record after the task's state
        is already final.
        """
        self.settle()
        return [d for tid, d in _workload_lines(self.logs("scheduler")) if tid == ti_id]

    def worker_seconds(self, ti_id: str) -> float:
        """Return the worker-seconds a task instance cost, from the workers' own records."""
        return sum(self.worker_runs(ti_id))

    def memory_pss_mb(self) -> float:
        """Return the summed PSS (or RSS where PSS is unreadable) of every Airflow process."""
        total = 0
        for pid in self.pids():
            total += _pss_kb(pid)
        return total / 1024

    # ------------------------------------------------------------ helpers
    def _poll(
        self,
        predicate: Any,
        timeout: float,
        what: str,
        detail: Any = lambda: "",
        every: float = 0.5,
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(urllib.error.URLError, ConnectionError, OSError):
                if predicate():
                    return
            dead = [c.name for c in self.components.values() if not c.alive()]
            if time.monotonic() > deadline or (dead and what.startswith("Airflow")):
                raise TimeoutError(
                    f"timed out after {timeout:.0f}s waiting for {what} "
                    f"(dead components: {dead}) {detail()}\n{self.log_tails()}"
                )
            time.sleep(every)


_WORKLOAD = re.compile(r"Workload finished.*")
_FIELD = re.compile(r"(\w+)=('[^']*'|\"[^\"]*\"|\S+)")


def _workload_lines(text: str) -> Iterator[tuple[str, float]]:
    for match in _WORKLOAD.finditer(text):
        fields = {k: v.strip("'\"") for k, v in _FIELD.findall(match.group(0))}
        if "workload_id" in fields and "duration" in fields:
            yield fields["workload_id"], float(fields["duration"])


def _process_groups() -> Iterator[tuple[int, int]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":
                yield int(entry.name), int(fields[2])


def _kill_group_leftovers(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _pss_kb(pid: int) -> int:
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
    return 0


def _exit_on_sigterm() -> None:
    """Turn a TERM into ``SystemExit`` so ``atexit`` stops every Airflow process we started."""
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@atexit.register
def _stop_all() -> None:
    for harness in list(_LIVE):
        harness.stop(grace=5.0)


@contextlib.contextmanager
def running_airflow(
    dags_folder: Path, dag_ids: Iterable[str] = (), **kwargs: Any
) -> Iterator[AirflowHarness]:
    """Start an :class:`AirflowHarness`, yield it, and always stop it."""
    harness = AirflowHarness(dags_folder=dags_folder, **kwargs)
    harness.start(dag_ids)
    try:
        yield harness
    finally:
        harness.stop()
