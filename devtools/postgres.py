"""A throwaway PostgreSQL server on a free localhost port, for the end-to-end suite.

Users outgrow SQLite: their Airflow runs on PostgreSQL with several triggerers.  This module
gives the suite such a database without anything installed or started by hand:

- ``ensure_installed()`` finds the server binaries (Debian's ``/usr/lib/postgresql/<v>/bin``,
  or ``pg_ctl`` on ``PATH``) and, when they are missing, installs Debian's ``postgresql``
  package (``apt-get update && apt-get install``, as root or through ``sudo -n``).  When the
  binaries are there it runs no apt command at all, so it is idempotent and instant;
  ``python -m devtools.postgres install`` is the Makefile's step before pytest.
- ``PostgresServer.start()`` runs ``initdb`` on a fresh cluster in a temporary directory and
  starts ``postgres`` in the foreground as a child (its own process group), listening on
  127.0.0.1 only, with a random password for a superuser ``waitwise`` and a database
  ``airflow``; it returns the SQLAlchemy URL Airflow takes (``postgresql+psycopg2://...``;
  Airflow derives ``postgresql+asyncpg://...`` from it for its async engine).
  PostgreSQL refuses to run as root: as root every server command runs as the ``postgres``
  system user the package creates (``setpriv``, no login shell, no PAM session).
- ``stop()`` asks the server for a fast shutdown, kills what is left and removes the
  directory; it also runs from ``atexit`` (and so on SIGTERM, turned into ``SystemExit``),
  after stopping any Airflow harness still running against it.

The cluster is for tests only: ``fsync``, ``synchronous_commit`` and ``full_page_writes`` are
off (durability after an OS crash, nothing a live server's behaviour depends on: isolation,
locking and constraint checks are PostgreSQL's own).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devtools.apt import apt_install

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"  # the system user Debian's package creates
APT_PACKAGE = "postgresql"
_LIVE: set[PostgresServer] = set()


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing and could not be installed here."""


# ---------------------------------------------------------------- installing
def _version_key(bindir: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", bindir.parent.name)) or (0,)


def find_bindir() -> Path | None:
    """Return the directory holding ``initdb`` and ``postgres`` (newest Debian one first)."""
    candidates = sorted(
        (b.parent for b in DEBIAN_ROOT.glob("*/bin/postgres")), key=_version_key, reverse=True
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres")):
            return bindir
    return None


_REFUSED = (
    "the PostgreSQL server is not installed and this user cannot install it: run "
    "`sudo apt-get install -y postgresql` once (the e2e suite runs Airflow on it)"
)


@contextlib.contextmanager
def _no_service_starts() -> Iterator[None]:
    """Keep apt from starting Debian's own cluster (port 5432): the suite starts its own.

    Debian's package scripts ask ``/usr/sbin/policy-rc.d`` first; 101 means "not allowed".
    Container images usually ship one; when there is none, one is in place for the install.
    """
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists() or os.geteuid() != 0:
        yield
        return
    policy.write_text("#!/bin/sh\n# devtools/postgres.py: no service starts during apt\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def ensure_installed(*, log: bool = True) -> tuple[Path, float]:
    """Return the server's bin directory and the seconds spent installing it (0 if present)."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir, 0.0
    started = time.monotonic()
    with _no_service_starts():
        apt_install(
            [APT_PACKAGE],
            error=PostgresUnavailable,
            refused=_REFUSED,
            tag="devtools.postgres",
            log=log,
        )
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(f"apt installed {APT_PACKAGE} but no server binaries were found")
    return bindir, time.monotonic() - started


# ---------------------------------------------------------------- running
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pss_kb(pid: int) -> int:
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
    return 0


def _children_of(ppid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[1]) == ppid:
                found.append(int(entry.name))
    return found


@dataclass(eq=False)
class PostgresServer:
    """One PostgreSQL cluster of our own: ``start()`` returns its URL, ``stop()`` removes it."""

    user: str = "waitwise"
    database: str = "airflow"
    port: int = 0
    root: Path | None = None
    bindir: Path | None = None
    password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    proc: subprocess.Popen[bytes] | None = None
    install_s: float = 0.0
    ready_s: float = 0.0
    peak_pss_mb: float = 0.0
    _stopping: threading.Event = field(default_factory=threading.Event)

    # ------------------------------------------------------------ set-up
    def _as_server_user(self, cmd: Sequence[str]) -> list[str]:
        """Run ``cmd`` as the ``postgres`` user when we are root (PostgreSQL refuses root)."""
        if os.geteuid() != 0:
            return list(cmd)
        return ["setpriv", f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}", "--init-groups",
                "--", *cmd]  # fmt: skip

    def _server_env(self) -> dict[str, str]:
        keep = ("PATH", "TZ")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update({"LC_ALL": "C", "LANG": "C"})
        if os.geteuid() == 0:
            env["HOME"] = str(self.root)
        return env

    def start(self, timeout: float = 60.0) -> str:
        """Install if needed, initdb, start the server, create the database; return the URL."""
        started = time.monotonic()
        self.bindir, self.install_s = ensure_installed()
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise PostgresUnavailable(
                    f"running as root and there is no {SERVER_USER!r} user to run the server as"
                ) from exc
        self.root = Path(tempfile.mkdtemp(prefix="waitwise-postgres-"))
        _LIVE.add(self)
        _exit_on_sigterm()
        try:
            if os.geteuid() == 0:
                shutil.chown(self.root, SERVER_USER, SERVER_USER)
            self.port = self.port or _free_port()
            self._initdb()
            self._launch()
            self._wait_ready(timeout)
            self._create_database()
        except BaseException:
            self.stop()
            raise
        self.ready_s = time.monotonic() - started - self.install_s
        threading.Thread(target=self._sample_memory, daemon=True).start()
        return self.url()

    def _initdb(self) -> None:
        assert self.root is not None
        assert self.bindir is not None
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(pwfile, SERVER_USER, SERVER_USER)
        cmd = [
            str(self.bindir / "initdb"),
            f"--pgdata={self.root / 'data'}",
            f"--username={self.user}",
            f"--pwfile={pwfile}",
            "--auth-local=trust",  # the socket lives in our 0700 directory
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        done = subprocess.run(
            self._as_server_user(cmd),
            env=self._server_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def _launch(self) -> None:
        assert self.root is not None
        assert self.bindir is not None
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "300",  # two triggerers, workers and pools: Airflow's many pools
            "shared_buffers": "64MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "log_lock_waits": "on",
            "deadlock_timeout": "1s",
            "log_line_prefix": "%m [%p] %a ",
        }
        cmd = [str(self.bindir / "postgres"), "-D", str(self.root / "data")]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self._as_server_user(cmd),
            env=self._server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _wait_ready(self, timeout: float) -> None:
        import psycopg2  # a test dependency, imported only when a server starts

        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}):\n{self.logs()}")
            try:
                psycopg2.connect(self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.dsn("postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()

    # ------------------------------------------------------------ using it
    def dsn(self, database: str | None = None) -> str:
        """Return a libpq connection string (TCP on 127.0.0.1, password auth)."""
        return (
            f"host=127.0.0.1 port={self.port} user={self.user} password={self.password} "
            f"dbname={database or self.database}"
        )

    def url(self, driver: str = "psycopg2") -> str:
        """Return the SQLAlchemy URL of the database (Airflow's ``sql_alchemy_conn``)."""
        return (
            f"postgresql+{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/"
            f"{self.database}"
        )

    def airflow_env(self) -> dict[str, str]:
        """Return the settings that put an Airflow harness on this server."""
        return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.url()}

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Run one statement in its own transaction and return its rows (tests' evidence)."""
        import psycopg2

        conn = psycopg2.connect(self.dsn())
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def logs(self) -> str:
        """Return what the server logged (errors, lock waits, deadlocks)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def pids(self) -> list[int]:
        """Return the server's live processes: the postmaster and its children."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid, *_children_of(self.proc.pid)]

    def memory_pss_mb(self) -> float:
        """Return the summed PSS of the server's processes (shared buffers counted once)."""
        return sum(_pss_kb(pid) for pid in self.pids()) / 1024

    def _sample_memory(self, every: float = 2.0) -> None:
        while not self._stopping.wait(every):
            self.peak_pss_mb = max(self.peak_pss_mb, self.memory_pss_mb())

    # ------------------------------------------------------------ tear-down
    def stop(self, grace: float = 15.0) -> None:
        """Fast shutdown (SIGINT), then SIGKILL what is left; remove the cluster's directory."""
        self._stopping.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            children = _children_of(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)  # fast shutdown: roll back, disconnect, exit
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                for pid in [proc.pid, *children]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            for pid in children:  # a child notices a dead postmaster by itself; be sure
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        _LIVE.discard(self)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def _exit_on_sigterm() -> None:
    """Turn a TERM into ``SystemExit`` so ``atexit`` stops the server (as the harness does)."""
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@atexit.register
def _stop_all() -> None:
    if not _LIVE:
        return
    harness = sys.modules.get("devtools.airflow_harness")
    if harness is not None:  # Airflow first: its processes hold connections to the server
        harness._stop_all()
    for server in list(_LIVE):
        server.stop(grace=5.0)


@contextlib.contextmanager
def running_postgres(**kwargs: object) -> Iterator[PostgresServer]:
    """Start a :class:`PostgresServer`, yield it, and always stop it."""
    server = PostgresServer(**kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: Sequence[str]) -> int:
    """``install``: make sure the server binaries exist; ``smoke``: start, query, stop."""
    what = argv[0] if argv else "install"
    if what == "install":
        bindir, spent = ensure_installed()
        how = f"installed in {spent:.1f} s" if spent else "already installed"
        print(f"PostgreSQL server: {bindir} ({how})")
        return 0
    if what == "smoke":
        with running_postgres() as server:
            [(version,)] = server.query("select version()")
            print(f"{version}\nready in {server.ready_s:.1f} s, pids {server.pids()}")
        return 0
    print("usage: python -m devtools.postgres [install|smoke]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
