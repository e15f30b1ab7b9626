"""A real headless Chromium for the browser tests, driven over the DevTools protocol.

- ``ensure_installed()`` finds Debian's ``chromium`` (``/usr/bin/chromium`` or on ``PATH``) and,
  when it is missing, installs it (``apt-get update && apt-get install chromium``, as root or
  through ``sudo -n``), as :mod:`devtools.postgres` does for the database server.  When the
  browser is there it runs no apt command, so ``python -m devtools.chromium install`` (the
  Makefile's ``chromium`` target) is idempotent and instant.
- ``open_page(url)`` starts Chromium headless on a fresh profile with
  ``--remote-debugging-port=0``, opens ``url`` in a tab of a fixed size and returns a
  :class:`Page`: what the page sent to its console (``console.error``/``assert``), the
  exceptions it did not catch and the browser's own error entries (a missing image, a blocked
  request), ``evaluate()`` for the rendered DOM, and ``screenshot()``.

Errors are read from the protocol's events, not from the browser's stderr: the events carry a
level and the page's URL, the log lines change between Chromium releases.  The flags are the
ones this closed network needs (no background networking, updates, sync or QUIC), else the
browser keeps trying to reach Google's hosts.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.apt import apt_install

APT_PACKAGES = ("chromium", "fonts-dejavu-core")  # the fonts: text in screenshots, not boxes
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root; the tests run in a throwaway container or a user's session
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
)
ERROR_LEVELS = frozenset({"error", "assert"})


class ChromiumUnavailable(RuntimeError):
    """Chromium is missing and could not be installed here."""


# ---------------------------------------------------------------- installing
def find_chromium() -> Path | None:
    """Return the Chromium executable (Debian's first), ``None`` when there is none."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


_REFUSED = (
    "Chromium is not installed and this user cannot install it: run `make chromium` as a "
    "user who may, or `sudo apt-get install -y chromium` once (the browser tests open "
    "the report in it)"
)


def ensure_installed(*, log: bool = True) -> tuple[Path, float]:
    """Return Chromium's executable and the seconds spent installing it (0 if present)."""
    found = find_chromium()
    if found is not None:
        return found, 0.0
    started = time.monotonic()
    apt_install(
        APT_PACKAGES, error=ChromiumUnavailable, refused=_REFUSED, tag="devtools.chromium", log=log
    )
    found = find_chromium()
    if found is None:
        raise ChromiumUnavailable("apt installed chromium but there is no chromium on PATH")
    return found, time.monotonic() - started


def version(executable: Path) -> str:
    """Return what ``chromium --version`` prints."""
    done = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    return done.stdout.strip() or done.stderr.strip()


# ---------------------------------------------------------------- the protocol
@dataclass(frozen=True, slots=True)
class ConsoleEntry:
    """One error the page or the browser reported: where it came from, its level, its text."""

    source: str  # "console", "exception" or the Log domain's source ("network", "security", ...)
    level: str
    text: str
    url: str = ""

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"[{self.source}:{self.level}] {self.text}{where}"


class _Connection:
    """One DevTools websocket: commands by id, events kept in arrival order."""

    def __init__(self, ws_url: str, timeout: float) -> None:
        from websockets.sync.client import connect  # a test dependency, only when a browser runs

        self.timeout = timeout
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(ws_url, max_size=None, open_timeout=timeout))
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        """Send a command and return its result (events read meanwhile are kept)."""
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline, method)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, session: str = "", after: int = 0) -> dict[str, Any]:
        """Return the first event ``method`` of ``session`` from ``events[after]`` on."""
        deadline = time.monotonic() + self.timeout
        seen = after
        while True:
            for event in self.events[seen:]:
                if event["method"] == method and event.get("sessionId", "") == session:
                    return event
            seen = len(self.events)
            reply = self._receive(deadline, method)
            if "method" in reply:
                self.events.append(reply)

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer from Chromium to {waiting_for} in {self.timeout} s")
        try:
            raw = self.ws.recv(timeout=left)
        except TimeoutError as exc:
            raise TimeoutError(
                f"no answer from Chromium to {waiting_for} in {self.timeout} s"
            ) from exc
        found: dict[str, Any] = json.loads(raw)
        return found

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()


def _errors(events: Sequence[dict[str, Any]], session: str) -> list[ConsoleEntry]:
    """Return the error entries among a tab's events (see :meth:`Page.errors`)."""
    found = []
    for event in events:
        if event.get("sessionId", "") != session:
            continue
        params = event.get("params", {})
        if event["method"] == "Runtime.consoleAPICalled" and params["type"] in ERROR_LEVELS:
            args = params.get("args", [])
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
            found.append(ConsoleEntry("console", params["type"], text))
        elif event["method"] == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            described = details.get("exception", {}).get("description", "")
            text = described or details.get("text", "")
            found.append(ConsoleEntry("exception", "error", text, details.get("url", "")))
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            found.append(
                ConsoleEntry(entry["source"], "error", entry["text"], entry.get("url", ""))
            )
    return found


@dataclass
class Page:
    """A tab that loaded one URL in a running headless Chromium."""

    url: str
    conn: _Connection
    session: str
    browser_version: str = ""
    load_s: float = 0.0

    def errors(self) -> list[ConsoleEntry]:
        """Return what the page reported as errors since it started loading.

        ``console.error``/``console.assert`` calls, uncaught exceptions, and the browser's
        error entries for the page (a resource that failed to load, a blocked request, a
        violated policy): what DevTools' console shows in red.
        """
        self.conn.send("Runtime.evaluate", {"expression": "0"}, self.session)  # flush events
        return _errors(self.conn.events, self.session)

    def evaluate(self, expression: str) -> Any:
        """Return the JSON value of a JavaScript expression evaluated in the page."""
        result = self.conn.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def dom(self) -> str:
        """Return the rendered document as HTML (what ``--dump-dom`` prints)."""
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(
        self, path: Path, *, selector: str | None = None, full_page: bool = True
    ) -> Path:
        """Write a PNG of the page (all of it, or the window) or of ``selector``'s element."""
        if selector is not None:
            box = self.evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                ".getBoundingClientRect(); return {x: r.x + scrollX, y: r.y + scrollY, "
                "width: r.width, height: r.height}; })()"
            )
        elif full_page:
            size = self.conn.send("Page.getLayoutMetrics", {}, self.session)["cssContentSize"]
            box = {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
        else:
            box = self.evaluate("({x: 0, y: 0, width: innerWidth, height: innerHeight})")
        shot = self.conn.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": {**box, "scale": 1}},
            self.session,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def _devtools_url(
    proc: subprocess.Popen[str], reader: list[threading.Thread], timeout: float
) -> str:
    """Return the browser's websocket URL, which Chromium prints on stderr once it listens.

    A thread reads stderr to its end (so a chatty browser never blocks on a full pipe); it is
    appended to ``reader`` for the caller to join once the browser has exited.
    """
    assert proc.stderr is not None
    found: list[str] = []
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match and not found:
                found.append(match.group(1))

    thread = threading.Thread(target=read, daemon=True)
    reader.append(thread)
    thread.start()
    deadline = time.monotonic() + timeout
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            thread.join(timeout=1)
            why = f"exited ({proc.returncode})" if proc.poll() is not None else "did not listen"
            raise ChromiumUnavailable(f"chromium {why} in {timeout} s:\n{''.join(lines)[-3000:]}")
        thread.join(timeout=0.05)
    return found[0]


def _authenticate(
    conn: _Connection,
    session: str,
    cookies: Sequence[Mapping[str, Any]],
    headers: Mapping[str, str] | None,
) -> None:
    """Give the tab its cookies and extra request headers before it navigates."""
    if cookies:
        conn.send("Network.setCookies", {"cookies": [dict(c) for c in cookies]}, session)
    if headers:
        conn.send("Network.enable", {}, session)
        conn.send("Network.setExtraHTTPHeaders", {"headers": dict(headers)}, session)


@contextlib.contextmanager
def open_page(
    url: str,
    *,
    width: int = 1280,
    height: int = 1600,
    timeout: float = 60.0,
    cookies: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> Iterator[Page]:
    """Start headless Chromium, load ``url`` in a ``width`` x ``height`` tab, yield the page.

    The browser runs on a fresh profile in a temporary directory, in its own process group,
    and is stopped (and the profile removed) on the way out.

    :param cookies: set before the page loads, each a DevTools ``Network.CookieParam``
        (``{"name": ..., "value": ..., "url": ...}``), e.g. an api-server's session cookie.
    :param headers: sent with the tab's requests (``Network.setExtraHTTPHeaders``), e.g.
        ``{"Authorization": "Bearer ..."}``.

    :raises ChromiumUnavailable: when Chromium is not installed (``make chromium``) or does
        not start.
    """
    executable = find_chromium()
    if executable is None:
        raise ChromiumUnavailable(
            "Chromium is not installed: run `make chromium` (Debian's package, through apt; "
            "`make test` does it before the tests)"
        )
    profile = tempfile.mkdtemp(prefix="waitwise-chromium-")
    proc = subprocess.Popen(
        [str(executable), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    conn: _Connection | None = None
    reader: list[threading.Thread] = []
    try:
        conn = _Connection(_devtools_url(proc, reader, timeout), timeout)
        target = conn.send("Target.createTarget", {"url": "about:blank"})
        attached = conn.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            conn.send(f"{domain}.enable", {}, session)
        conn.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        _authenticate(conn, session, cookies, headers)
        started, before = time.monotonic(), len(conn.events)
        navigated = conn.send("Page.navigate", {"url": url}, session)
        if navigated.get("errorText"):
            raise RuntimeError(f"Chromium could not open {url}: {navigated['errorText']}")
        conn.wait_for("Page.loadEventFired", session, after=before)  # not about:blank's
        page = Page(url, conn, session, conn.send("Browser.getVersion")["product"])
        page.load_s = time.monotonic() - started
        yield page
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.send("Browser.close")
            conn.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for thread in reader:
            thread.join(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: Sequence[str]) -> int:
    """``install``: make sure Chromium exists; ``smoke``: open a page, print its errors."""
    what = argv[0] if argv else "install"
    if what == "install":
        executable, spent = ensure_installed()
        how = f"installed in {spent:.1f} s" if spent else "already installed"
        print(f"Chromium: {executable}, {version(executable)} ({how})")
        return 0
    if what == "smoke" and len(argv) == 2:
        with open_page(argv[1]) as page:
            print(f"{page.browser_version}: loaded in {page.load_s:.2f} s")
            for entry in page.errors():
                print(entry)
        return 0
    print("usage: python -m devtools.chromium [install|smoke URL]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
