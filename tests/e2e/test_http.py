"""Issue 13: HttpConditionSensor in a real Airflow against a real local HTTP server.

The ``ww_http`` connection is defined through the environment (``AIRFLOW_CONN_WW_HTTP``) with
basic auth and a secret header in its extra; the server (``EndpointServer``, a threaded
``http.server`` in this process) records every request with its arrival time.

- arrival: the endpoint answers 404, then ``{"status": "pending"}``, then ``"ready"`` ->
  success, 0 worker runs, the connection's credentials sent;
- deadline and schedule: an endpoint that never answers 200, ``Exponential(1, 2, cap 4)``
  and ``timeout=14``, ``soft_fail`` -> skipped at the deadline, 0 worker runs, the requests
  at +0 +1 +3 +7 +11 and the deadline poke at +14;
- failing: 503s -> probe errors backed off by the profile (1 s, then 2 s), the wait errors
  after ``max_probe_errors`` and the source's breaker (threshold 1) opens; the next run is
  rejected without a request;
- 401: the wait ends at its first request as a configuration error naming the connection;
- the password and the secret header never appear in any log.
"""

from __future__ import annotations

import itertools
import json
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import history
from devtools.airflow_harness import AirflowHarness
from tests.e2e.conftest import FIGURES
from tests.triggers.test_http import API_KEY, PASSWORD, EndpointServer, connection_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAGS = Path(__file__).parent / "dags_http"
DAG_IDS = ["ww_http_arrival", "ww_http_schedule", "ww_http_failing", "ww_http_auth"]


@dataclass
class Setup:
    airflow: AirflowHarness
    server: EndpointServer


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    server = EndpointServer()
    server.routes["/down"] = (503, {"detail": "maintenance"})
    server.routes["/private"] = (401, {"detail": "who are you"})
    harness = AirflowHarness(
        dags_folder=DAGS,
        data_dir=tmp_path_factory.mktemp("http-data"),
        extra_env={"AIRFLOW_CONN_WW_HTTP": connection_json(server.port)},
    )
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        harness.start(DAG_IDS)
        FIGURES["http harness ready"] = f"{harness.ready_s:.1f} s"
        assert harness.import_errors() == []
        yield Setup(harness, server)
    finally:
        harness.stop()
        signal.signal(signal.SIGTERM, previous)
        server.close()
        left = harness.pids()
        assert left == [], f"the harness left Airflow processes behind: {left}"


def wait_requests(server: EndpointServer, path: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.count(path) < count:
        assert time.monotonic() < deadline, f"{path}: {server.count(path)} of {count} requests"
        time.sleep(0.05)


def times(server: EndpointServer, path: str) -> list[float]:
    """Return the request times at ``path`` as offsets from the first, rounded to 10 ms."""
    at = [s.at for s in server.seen if s.path == path]
    return [round(t - at[0], 2) for t in at]


def test_arrival_ends_in_success_with_zero_worker_runs(setup: Setup) -> None:
    airflow, server = setup.airflow, setup.server
    run_id = airflow.trigger("ww_http_arrival", conf={"key": "k1"})
    wait_requests(server, "/arrival/k1", 2)  # 404s: not yet
    server.routes["/arrival/k1"] = (200, {"status": "pending"})
    wait_requests(server, "/arrival/k1", 4)  # a body that does not match: not yet
    landed = time.monotonic()
    server.routes["/arrival/k1"] = (200, {"status": "ready"})
    airflow.wait_for("ww_http_arrival", run_id, {"sense": "success"}, timeout=60)

    ti = airflow.task_instances("ww_http_arrival", run_id)["sense"]
    assert airflow.worker_runs(ti["id"]) == []
    last = [s for s in server.seen if s.path == "/arrival/k1"][-1]
    assert last.headers["X-Api-Key"] == API_KEY
    assert last.headers["Authorization"].startswith("Basic ")
    FIGURES["http: ready answer to the detecting request"] = f"{last.at - landed:.2f} s"
    FIGURES["http: arrival requests (1 s poll)"] = str(times(server, "/arrival/k1"))


def test_deadline_skips_after_the_schedule_the_profile_asks_for(setup: Setup) -> None:
    airflow, server = setup.airflow, setup.server
    run_id = airflow.trigger("ww_http_schedule", conf={"key": "s1"})
    airflow.wait_for("ww_http_schedule", run_id, {"sense": "skipped"}, timeout=90)

    ti = airflow.task_instances("ww_http_schedule", run_id)["sense"]
    assert airflow.worker_runs(ti["id"]) == []
    offsets = times(server, "/never/s1")
    # Nominal pokes from the wait's anchor (when the scheduler handed the task over):
    # Exponential(1, 2, cap 4) -> +0 +1 +3 +7 +11, and the deadline poke at +14.  The
    # triggerer picks the wait up a little after the anchor; it pokes at once, then goes on
    # with the first nominal time after that (the engine's restart rule).
    nominal = [0.0, 1.0, 3.0, 7.0, 11.0, 14.0]
    rest = len(offsets) - 1
    later = nominal[-rest:]
    shift = offsets[1] - later[0]  # the first request's place on the anchor's time line
    on_schedule = [abs(o - shift - n) < 0.3 for o, n in zip(offsets[1:], later, strict=True)]
    assert all(on_schedule), (offsets, shift)
    assert nominal[-rest - 1] <= -shift < later[0], (offsets, shift)
    FIGURES["http: schedule Exponential(1,2,cap 4), deadline 14 s (request times from anchor)"] = (
        str([round(o - shift, 2) for o in offsets])
    )


def test_503s_back_off_error_and_open_the_breaker(setup: Setup) -> None:
    airflow, server = setup.airflow, setup.server
    first = airflow.trigger("ww_http_failing")
    airflow.wait_for("ww_http_failing", first, {"sense": "failed"}, timeout=90)
    ti = airflow.task_instances("ww_http_failing", first)["sense"]
    assert airflow.worker_runs(ti["id"]) == []
    offsets = times(server, "/down")
    assert len(offsets) == 3, offsets  # max_probe_errors=2: the third error in a row ends it
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(offsets)]
    assert all(abs(g - e) < 0.5 for g, e in zip(gaps, [1.0, 2.0], strict=True)), gaps
    log = airflow.task_log("ww_http_failing", first, "sense")
    assert "HTTP 503" in log, log[-3000:]
    [record] = history.history_of(airflow, "e2e_http_down")
    assert (record["outcome"], record["pokes"], record["last_error_kind"]) == (
        "error",
        3,
        "HTTP503",
    )
    breaker = history.breaker_of(airflow, "e2e_http_down")
    assert breaker is not None
    assert breaker["state"] == "open"

    second = airflow.trigger("ww_http_failing")
    airflow.wait_for("ww_http_failing", second, {"sense": "failed"}, timeout=60)
    assert server.count("/down") == 3  # rejected by the breaker: no request
    assert history.history_of(airflow, "e2e_http_down")[-1]["outcome"] == "breaker_open"
    FIGURES["http: 503 request gaps (probe backoff 1 s, 2 s)"] = str(gaps)


def test_401_ends_the_wait_as_a_configuration_error(setup: Setup) -> None:
    airflow, server = setup.airflow, setup.server
    run_id = airflow.trigger("ww_http_auth")
    airflow.wait_for("ww_http_auth", run_id, {"sense": "failed"}, timeout=60)
    ti = airflow.task_instances("ww_http_auth", run_id)["sense"]
    assert airflow.worker_runs(ti["id"]) == []
    assert server.count("/private") == 1
    log = airflow.task_log("ww_http_auth", run_id, "sense")
    assert "HTTP 401" in log, log[-3000:]
    assert "credentials of http connection 'ww_http'" in log


def test_no_secret_in_any_log(setup: Setup) -> None:
    airflow = setup.airflow
    assert airflow.home is not None
    texts = [airflow.logs(name) for name in airflow.components]
    texts += [
        p.read_text(errors="replace") for p in (airflow.home / "logs").rglob("*") if p.is_file()
    ]
    leaks = [secret for secret in (PASSWORD, API_KEY) for text in texts if secret in text]
    assert leaks == []
    assert json.dumps(texts).count("X-Api-Key") == 0  # not even the header's name is logged
