"""A throwaway S3-compatible server (moto's standalone server) on a free localhost port.

For the object-store tests and ``make bench``: real HTTP requests to a real S3 API, nothing
mocked in-process.  Like :mod:`devtools.postgres`:

- ``MotoServer.start()`` runs ``python -m moto.server -H 127.0.0.1 -p PORT`` as a child in its
  own process group (the interpreter running this module: moto comes with the test extras),
  logging to a file in a temporary directory, and returns once the server answers;
- ``requests()`` reads that log: werkzeug writes one line per request served
  (``"GET /bucket?list-type=2&prefix=in%2F HTTP/1.1" 200 -``), so tests and the bench count
  what the server itself saw, whichever client sent it;
- ``stop()`` terminates the process group (TERM, then KILL) and removes the directory; it also
  runs from ``atexit`` (and so on SIGTERM, turned into ``SystemExit``).

``airflow_conn()`` is the JSON of an Airflow ``aws`` connection pointing at the server
(``endpoint_url`` in the extra, as the amazon provider reads it), for ``AIRFLOW_CONN_<ID>``.
"""

from __future__ import annotations

import atexit
import contextlib
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_LIVE: set[MotoServer] = set()
# werkzeug colours the request of a non-2xx answer with ANSI codes inside the quotes
_ANSI = r"(?:\x1b\[[\d;]*m)*"
_REQUEST = re.compile(
    rf'"{_ANSI}(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+{_ANSI}" (?P<status>\d{{3}})'
)


@dataclass(frozen=True, slots=True)
class Request:
    """One request the server logged."""

    method: str
    path: str
    status: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(eq=False)
class MotoServer:
    """One moto server of our own: ``start()`` returns its endpoint URL, ``stop()`` removes it."""

    port: int = 0
    root: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    ready_s: float = 0.0

    @property
    def endpoint(self) -> str:
        """Return the server's URL (``endpoint_url`` of an S3 client)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "moto.log"

    def start(self, timeout: float = 30.0) -> str:
        """Start the server on a free port (or ``port``); return its endpoint once it answers."""
        started = time.monotonic()
        self.root = Path(tempfile.mkdtemp(prefix="waitwise-moto-"))
        _LIVE.add(self)
        _exit_on_sigterm()
        try:
            self.port = self.port or _free_port()
            self._launch()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_s = time.monotonic() - started
        return self.endpoint

    def _launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW"))}
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited ({self.proc.returncode}):\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def alive(self) -> bool:
        """Return whether the server process runs."""
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        """Return what the server logged."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def requests(self) -> list[Request]:
        """Return every request the server logged so far, oldest first."""
        return [
            Request(m["method"], m["path"], int(m["status"]))
            for m in _REQUEST.finditer(self.logs())
        ]

    def s3_requests(self) -> list[Request]:
        """Return the S3 API requests (not moto's own ``/moto-api`` calls)."""
        return [r for r in self.requests() if not r.path.startswith("/moto-api")]

    def reset(self) -> None:
        """Drop every bucket and object (moto's reset API)."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def airflow_conn(self, *, port: int | None = None) -> str:
        """Return an Airflow ``aws`` connection (JSON) to this server, or to ``port`` instead."""
        endpoint = f"http://127.0.0.1:{port}" if port else self.endpoint
        return json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }
        )

    def pids(self) -> list[int]:
        """Return the server's pid while it runs."""
        return [self.proc.pid] if self.alive() and self.proc is not None else []

    def stop(self, grace: float = 5.0) -> None:
        """Terminate the server's process group (TERM, then KILL); remove its directory."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        _LIVE.discard(self)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def _exit_on_sigterm() -> None:
    """Turn a TERM into ``SystemExit`` so ``atexit`` stops the server."""
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop(grace=2.0)


@contextlib.contextmanager
def running_moto() -> Iterator[MotoServer]:
    """Start a :class:`MotoServer`, yield it, and always stop it."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: Sequence[str]) -> int:
    """``smoke``: start the server, make a bucket, list it, stop."""
    if (argv[0] if argv else "smoke") != "smoke":
        print("usage: python -m devtools.moto_server [smoke]", file=sys.stderr)
        return 2
    with running_moto() as server:
        req = urllib.request.Request(f"{server.endpoint}/smoke", method="PUT")
        with urllib.request.urlopen(req, timeout=10):
            pass
        print(f"moto at {server.endpoint}, ready in {server.ready_s:.1f} s")
        print(f"requests: {server.s3_requests()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
