"""Issue 11: the report plugin on a real api-server with real users, tokens and a browser.

This module runs its own Airflow, not the session's: that one lets every request in as an
admin (``simple_auth_manager_all_admins``), under which no refusal could be seen.  Here
``[core] simple_auth_manager_all_admins`` is off and three users log in with the passwords
Airflow generated for them (``POST /auth/token``): alice (admin), bob (viewer) and carol
(viewer), whom the auth manager (:mod:`tests.e2e.auth_manager`) refuses the DAG
``wwp_partner``.  The history, one source per DAG, is written through waitwise's own store
over the REST API with alice's token, and read back by the plugin through Airflow's ORM.

Asserted: the plugin refuses a request without a token (401), with a malformed or forged
one (403); each user gets 200 and the sources of exactly the DAGs they may read, in the JSON
and the HTML, by bearer token and by the UI's session cookie; and the page, and the plugin's
view in Airflow's UI (the navigation entry's frame), render in headless Chromium without
errors, their charts drawn (screenshots kept).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from devtools.airflow_harness import AirflowHarness, ApiError
from devtools.chromium import Page, open_page
from tests.browser.conftest import ARTIFACTS
from tests.e2e.conftest import FIGURES
from waitwise.triggers.store import (
    AirflowStore,
    CompactionPolicy,
    RestBackend,
    WaitOutcome,
    WaitRecord,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).parent / "dags_plugin"
DAG_IDS = ("wwp_fin", "wwp_partner")
SOURCES = {"fin_feed": "wwp_fin", "partner_feed": "wwp_partner"}  # source -> its DAG
USERS = {"alice": "admin", "bob": "viewer", "carol": "viewer"}
ADMIN = "alice"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # in AIRFLOW_HOME
WAIT_S = {"fin_feed": 60.0, "partner_feed": 600.0}
DEADLINE_S = 1_800.0
DAYS_AGO = (1, 2, 3, 4)
DAY = 86_400.0
SUCCESSES_TIMEOUTS = {"fin_feed": (4, 0), "partner_feed": (3, 1)}
SEEN = {  # user -> the sources in their report
    "alice": ["fin_feed", "partner_feed"],
    "bob": ["fin_feed", "partner_feed"],
    "carol": ["fin_feed"],  # tests/e2e/auth_manager.py hides wwp_partner from her
}


def request(
    url: str,
    *,
    method: str = "GET",
    token: str | None = None,
    cookie: str | None = None,
    body: Any = None,
) -> tuple[int, bytes]:
    """Return the status and body of one HTTP request (an error status is an answer too)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        headers["Cookie"] = f"_token={cookie}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass(eq=False)
class UsersHarness(AirflowHarness):
    """The harness on an api-server with real users: its own REST calls carry alice's token."""

    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def password(self, user: str) -> str:
        """Return the password Airflow generated for ``user`` (at the api-server's start)."""
        assert self.home is not None
        passwords: dict[str, str] = json.loads((self.home / PASSWORDS_FILE).read_text())
        return passwords[user]

    def token(self, user: str) -> str:
        """Return a JWT for ``user``, got as a client gets one: ``POST /auth/token``."""
        if user not in self.tokens:
            login = {"username": user, "password": self.password(user)}
            status, raw = request(f"{self.url}/auth/token", method="POST", body=login)
            assert status == 201, (status, raw)
            self.tokens[user] = json.loads(raw)["access_token"]
        return self.tokens[user]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        token = None if path == "/monitor/health" else self.token(ADMIN)
        status, raw = request(f"{self.url}/api/v2{path}", method=method, token=token, body=body)
        if status >= 400:
            raise ApiError(f"{method} {path} -> {status}: {raw[:2000].decode(errors='replace')}")
        return json.loads(raw or b"null")


def record(source: str, days_ago: int, now: float) -> WaitRecord:
    """Return a source's wait of ``days_ago`` days before ``now``: partner's of day 2 timed out."""
    wait_s, start = WAIT_S[source], now - days_ago * DAY - 3_600
    timed_out = (source, days_ago) == ("partner_feed", 2)
    return WaitRecord(
        source=source,
        profile="high" if source == "fin_feed" else "low",
        dag_id=SOURCES[source],
        task_id="wait",
        run_id=f"run-{days_ago}",
        try_number=1,
        scheduled_at=start,
        started_at=start,
        ended_at=start + (DEADLINE_S if timed_out else wait_s),
        outcome=WaitOutcome.TIMEOUT if timed_out else WaitOutcome.SUCCESS,
        deadline_at=start + DEADLINE_S,
        first_seen_at=None if timed_out else start + wait_s - 5,
        detected_at=None if timed_out else start + wait_s,
        last_miss_at=start + wait_s - 30,
        pokes=10 if timed_out else 4,
    )


async def seed(harness: UsersHarness) -> None:
    """Write a wait a day per source through waitwise's store over the REST API, as alice."""
    backend = RestBackend(harness.url, token=harness.token(ADMIN))
    try:
        store = AirflowStore(backend, compaction=CompactionPolicy(every=None))  # none behind
        now = time.time()
        for source in SOURCES:
            await store.append_many([record(source, d, now) for d in DAYS_AGO])
    finally:
        await backend.aclose()


@pytest.fixture(scope="module")
def users_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UsersHarness]:
    harness = UsersHarness(
        dags_folder=DAGS,
        data_dir=tmp_path_factory.mktemp("plugin-data"),
        extra_env={
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{user}:{role}" for user, role in USERS.items()
            ),
            "AIRFLOW__CORE__AUTH_MANAGER": "tests.e2e.auth_manager.OneDagHiddenAuthManager",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
            ),
        },
    )
    # A TERM to pytest (CI cancelling) must still run the clean-up below and atexit's.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        harness.start(DAG_IDS)
        FIGURES["plugin harness ready (real users)"] = f"{harness.ready_s:.1f} s"
        assert harness.import_errors() == []
        asyncio.run(seed(harness))
        yield harness
    finally:
        harness.stop()
        signal.signal(signal.SIGTERM, previous)
        assert harness.pids() == []


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Return where screenshots are kept, beside the browser tests' (tests/browser)."""
    where = ARTIFACTS / "browser"
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_the_api_server_has_real_users(users_airflow: UsersHarness) -> None:
    url = users_airflow.url
    assert request(f"{url}/api/v2/dags")[0] == 401  # no admin is injected into requests
    assert request(f"{url}/auth/token")[0] == 403  # the all-admins token is not handed out
    wrong = {"username": "alice", "password": "not-her-password"}
    assert request(f"{url}/auth/token", method="POST", body=wrong)[0] == 401
    listed = {}
    for user in USERS:
        status, raw = request(f"{url}/api/v2/dags", token=users_airflow.token(user))
        listed[user] = (status, sorted(d["dag_id"] for d in json.loads(raw)["dags"]))
    assert listed == {
        "alice": (200, ["wwp_fin", "wwp_partner"]),
        "bob": (200, ["wwp_fin", "wwp_partner"]),
        "carol": (200, ["wwp_fin"]),  # Airflow's own API hides the DAG from her too
    }


@pytest.mark.parametrize("path", ["/waitwise/report", "/waitwise/report.json"])
def test_a_request_without_a_token_is_refused(users_airflow: UsersHarness, path: str) -> None:
    status, raw = request(users_airflow.url + path)
    assert (status, json.loads(raw)) == (401, {"detail": "Not authenticated"})


@pytest.mark.parametrize("path", ["/waitwise/report", "/waitwise/report.json"])
def test_a_bad_or_forged_token_is_refused(users_airflow: UsersHarness, path: str) -> None:
    admin = users_airflow.token(ADMIN)
    claims = jwt.decode(admin, options={"verify_signature": False})  # alice's, still valid
    algorithm = jwt.get_unverified_header(admin)["alg"]
    forged = jwt.encode(claims, "not the api-server's secret key " * 4, algorithm=algorithm)
    answers = {
        "malformed bearer": request(users_airflow.url + path, token="not-a-jwt"),
        "forged bearer": request(users_airflow.url + path, token=forged),
        "forged cookie": request(users_airflow.url + path, cookie=forged),
    }
    assert {k: (s, json.loads(raw)) for k, (s, raw) in answers.items()} == {
        k: (403, {"detail": "Invalid JWT token"}) for k in answers
    }


@pytest.mark.parametrize("user", list(USERS))
def test_a_user_gets_the_sources_of_the_dags_they_may_read(
    users_airflow: UsersHarness, user: str
) -> None:
    token = users_airflow.token(user)
    status, raw = request(f"{users_airflow.url}/waitwise/report.json", token=token)
    assert status == 200, raw
    found = json.loads(raw)
    assert [(s["source"], s["waits"], s["successes"], s["timeouts"]) for s in found["sources"]] == [
        (source, 4, *SUCCESSES_TIMEOUTS[source]) for source in SEEN[user]
    ]
    for how in ({"token": token}, {"cookie": token}):  # bearer, and the UI's session cookie
        status, page = request(f"{users_airflow.url}/waitwise/report", **how)
        assert status == 200
        assert {s: s in page.decode() for s in SOURCES} == {s: s in SEEN[user] for s in SOURCES}


def wait_until(page: Page, expression: str, timeout: float = 30.0) -> Any:
    """Return the first truthy value of ``expression`` in ``page`` (polled: the UI renders late)."""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expression)):
        assert time.monotonic() < deadline, f"never true in {timeout} s: {expression}"
        time.sleep(0.2)
    return value


def drawn(page: Page, doc: str) -> dict[str, Any]:
    """Return what the report in ``doc`` (a document expression) shows, chart by chart."""
    found: dict[str, Any] = page.evaluate(
        f"""(() => {{ const d = {doc}, all = s => [...d.querySelectorAll(s)];
        const drawn = e => {{
          const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; }};
        return {{
          charts: ['svg#tiers', 'table#sources', 'svg#pokes', 'svg#timeouts']
            .map(s => all(s).filter(drawn).length),
          rows: all('#sources tr').slice(1).map(r => [r.cells[0].innerText, r.cells[2].innerText]),
          tier_bars: all('#tiers rect.rate').filter(drawn).length,
          trend_points: all('svg.trend').map(s => s.querySelectorAll('circle').length),
          poke_bars: all('#pokes rect.bar').filter(drawn).length,
          timeout_hours: all('#timeouts rect.hour').filter(drawn).length,
        }}; }})()"""
    )
    return found


def test_the_report_page_in_chromium(users_airflow: UsersHarness, artifacts: Path) -> None:
    bearer = {"Authorization": f"Bearer {users_airflow.token('carol')}"}  # as an API client
    with open_page(f"{users_airflow.url}/waitwise/report", headers=bearer) as page:
        assert page.errors() == []
        assert drawn(page, "document") == {
            "charts": [1, 1, 1, 1],
            "rows": [["fin_feed", "4"]],  # carol may not read wwp_partner
            "tier_bars": 1,
            "trend_points": [4],  # a point per day with a successful wait
            "poke_bars": 1,
            "timeout_hours": 0,
        }
        shot = page.screenshot(artifacts / "plugin-report-carol.png")
    FIGURES["plugin: the report as carol in Chromium"] = f"{shot} (loaded in {page.load_s:.2f} s)"


def test_the_plugin_view_in_airflows_ui(users_airflow: UsersHarness, artifacts: Path) -> None:
    cookie = {"name": "_token", "value": users_airflow.token(ADMIN), "url": users_airflow.url}
    with open_page(f"{users_airflow.url}/plugin/waitwise", cookies=[cookie]) as page:  # as a UI
        frame = "document.querySelector('iframe')"
        src = wait_until(page, f"{frame} && {frame}.getAttribute('src')")
        inside = f"{frame}.contentDocument"
        wait_until(page, f"!!{inside} && {inside}.querySelectorAll('table#sources').length")
        assert src == "/waitwise/report"  # the navigation entry's frame, same origin
        assert drawn(page, inside) == {
            "charts": [1, 1, 1, 1],
            "rows": [["fin_feed", "4"], ["partner_feed", "4"]],
            "tier_bars": 2,
            "trend_points": [4, 3],
            "poke_bars": 2,
            "timeout_hours": 1,  # partner's timed-out wait
        }
        assert page.errors() == []  # the UI's and the frame's
        shot = page.screenshot(artifacts / "plugin-view-alice.png", full_page=False)
    FIGURES["plugin: its view in Airflow's UI as alice"] = f"{shot} (loaded in {page.load_s:.2f} s)"
