"""HttpConditionTrigger against a real local HTTP server, with a fake clock for schedules."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from waitwise.triggers.conditions import parse_condition
from waitwise.triggers.errors import PolicyConfigError, ProbeError, TriggerArgumentError
from waitwise.triggers.http import (
    HttpAnswer,
    HttpConditionTrigger,
    HttpProber,
    HttpQuery,
    HttpRequest,
    HttpStatusError,
    build_request,
    check_http_options,
    close_clients,
    http_date,
    judge,
    retry_after_s,
)
from waitwise.triggers.metrics import PROBE_ERRORS
from waitwise.triggers.policy import Constant, Exponential
from waitwise.triggers.profiles import RetryStrategy
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.testing import FakeClock, RecordingSink

T0 = 1_700_000_000.0
PASSWORD = "pw-very-secret-1"
API_KEY = "key-very-secret-2"

Reply = tuple[int, Any]  # (status, JSON body or raw bytes or None)


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a timeout test) breaks the pipe: expected


@dataclass
class EndpointServer:
    """A real HTTP server on 127.0.0.1 in a thread; replies are set per path by the test.

    ``routes[path]`` is a reply, or a function of the request returning one; unknown paths
    answer 404.  Every request is kept in ``seen`` (with the monotonic time it arrived).
    """

    routes: dict[str, Reply | Callable[[Seen], Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    delay_s: dict[str, float] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                path = self.path.split("?", 1)[0]
                seen = Seen(
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    self.rfile.read(length),
                    time.monotonic(),
                )
                endpoint.seen.append(seen)
                if endpoint.delay_s.get(path):
                    time.sleep(endpoint.delay_s[path])
                route = endpoint.routes.get(path, (404, {"detail": "not found"}))
                status, body = route(seen) if callable(route) else route
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", str(body["location"]))
                    raw = b""
                self.send_header("Content-Type", "application/json")
                for name, value in endpoint.headers.get(path, {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(raw)

            do_GET = do_POST = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def count(self, path: str) -> int:
        """Return how many requests reached ``path`` (query string ignored)."""
        return sum(1 for s in self.seen if s.path.split("?", 1)[0] == path)

    def reset(self) -> None:
        self.routes.clear()
        self.seen.clear()
        self.delay_s.clear()
        self.headers.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def connection_json(port: int, **extra: Any) -> str:
    """Return an ``AIRFLOW_CONN_...`` value for the server (basic auth and a secret header)."""
    return json.dumps(
        {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "login": "robot",
            "password": PASSWORD,
            "extra": {"X-Api-Key": API_KEY, **extra},
        }
    )


@pytest.fixture(scope="module")
def server() -> Iterator[EndpointServer]:
    endpoint = EndpointServer()
    yield endpoint
    endpoint.close()


@pytest.fixture(autouse=True)
async def _conn(server: EndpointServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    server.reset()
    monkeypatch.setenv("AIRFLOW_CONN_WW_HTTP", connection_json(server.port))
    monkeypatch.setenv("AIRFLOW_CONN_WW_CLOSED", connection_json(closed_port()))
    yield
    await close_clients()


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed on exit: connections are refused


def make(**overrides: Any) -> HttpConditionTrigger:
    kwargs: dict[str, Any] = {
        "http_conn_id": "ww_http",
        "endpoint": "/status",
        "poll": Exponential(initial=1.0, factor=2.0, cap=8.0).to_config(),
        "timeout": 60.0,
        "started_at": T0,
    }
    kwargs.update(overrides)
    return HttpConditionTrigger(**kwargs)


async def run_one(
    trigger: HttpConditionTrigger, clock: FakeClock, sink: RecordingSink | None = None
) -> TriggerEvent:
    with use_runtime(Runtime(clock=clock, metrics=sink or RecordingSink())):
        gen = trigger.run()
        event = await anext(gen)
        with pytest.raises(StopAsyncIteration):
            await anext(gen)
    return event


class FlipsAt(FakeClock):
    """A fake clock that runs ``flip`` once virtual time reaches ``at``."""

    def __init__(self, at: float, flip: Callable[[], None]) -> None:
        super().__init__(now_s=T0)
        self.at, self.flip, self.flipped = at, flip, False

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.now_s >= self.at and not self.flipped:
            self.flipped = True
            self.flip()


READY = {"path": "$.status", "op": "==", "value": "ready"}


# ---------------------------------------------------------------- the trigger, end to end


async def test_404_until_ready_then_found_on_the_exact_schedule(server: EndpointServer) -> None:
    clock = FlipsAt(T0 + 5, lambda: server.routes.update({"/status": (200, {"status": "ready"})}))
    event = await run_one(make(), clock)

    assert clock.sleeps == [1.0, 2.0, 4.0]  # pokes at +0 +1 +3 +7 (found)
    assert event.payload["status"] == "success"
    assert event.payload["pokes"] == 4 == server.count("/status")
    [item] = event.payload["found"]
    assert item["path"] == f"http://127.0.0.1:{server.port}/status"
    assert item["member"] == "HTTP 200"
    assert item["size"] == len(b'{"status": "ready"}')
    assert abs(item["mtime"] - time.time()) < 60  # the server's Date header


async def test_the_condition_decides_and_the_matched_value_is_reported(
    server: EndpointServer,
) -> None:
    server.routes["/status"] = (200, {"status": "pending", "count": 3})
    clock = FlipsAt(
        T0 + 2, lambda: server.routes.update({"/status": (200, {"status": "ready", "count": 120})})
    )
    condition = {"all": [READY, {"path": "$.count", "op": ">=", "value": 100}]}
    event = await run_one(make(condition=condition), clock)

    assert event.payload["status"] == "success"
    assert event.payload["pokes"] == 3  # +0 and +1 pending, +3 ready
    assert event.payload["found"][0]["member"] == '$.status="ready", $.count=120'


async def test_the_request_carries_the_connection_and_the_sensor_arguments(
    server: EndpointServer,
) -> None:
    server.routes["/search"] = (200, {"status": "ready"})
    trigger = make(
        endpoint="search",
        method="POST",
        request_params={"day": "2024-01-01", "tag": ["a", "b"]},
        json={"q": 1},
        headers={"X-Team": "data"},
        condition=READY,
    )
    event = await run_one(trigger, FakeClock(now_s=T0))

    assert event.payload["status"] == "success"
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/search?day=2024-01-01&tag=a&tag=b")
    assert seen.headers["X-Api-Key"] == API_KEY  # from the connection's extra
    assert seen.headers["X-Team"] == "data"
    assert seen.headers["Authorization"].startswith("Basic ")
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {"q": 1}


async def test_deadline_ends_the_wait_as_a_timeout(server: EndpointServer) -> None:
    clock = FakeClock(now_s=T0)
    event = await run_one(make(timeout=10.0), clock)

    assert clock.sleeps == [1.0, 2.0, 4.0, 3.0]  # +7, then clamped to the deadline at +10
    assert event.payload["status"] == "timeout"
    assert server.count("/status") == 5


async def test_503s_are_probe_errors_backed_off_then_the_wait_errors(
    server: EndpointServer,
) -> None:
    server.routes["/status"] = (503, {"detail": "maintenance"})
    retry = RetryStrategy(probe_backoff=Constant(interval=3.0), max_probe_errors=2)
    sink = RecordingSink()
    clock = FakeClock(now_s=T0)
    event = await run_one(make(retry=retry.to_config()), clock, sink)

    assert clock.sleeps == [3.0, 3.0]  # the retry strategy's backoff, not the poll policy
    assert event.payload["status"] == "error"
    assert event.payload["errors"] == 3
    assert "HTTP 503" in event.payload["last_error"]
    assert sink.names().count(PROBE_ERRORS) == 3


async def test_429_then_recovery_is_found(server: EndpointServer) -> None:
    replies = iter([(429, {}), (500, {}), (200, {"status": "ready"})])
    server.routes["/status"] = lambda seen: next(replies)
    clock = FakeClock(now_s=T0)
    event = await run_one(make(condition=READY), clock)

    assert clock.sleeps == [1.0, 2.0]  # the default probe backoff: 1 s, then 2 s
    assert (event.payload["status"], event.payload["errors"]) == ("success", 2)


async def test_retry_after_is_honoured_but_never_past_the_deadline(server: EndpointServer) -> None:
    replies = iter([(429, {}), (503, {}), (200, {"status": "ready"})])
    server.routes["/status"] = lambda seen: next(replies)
    server.headers["/status"] = {"Retry-After": "7"}
    clock = FakeClock(now_s=T0)
    event = await run_one(make(condition=READY, timeout=10.0), clock)

    # 7 s asked, not the backoff's 1 s; then 2 s left before the deadline, its last poke.
    assert clock.sleeps == [7.0, 3.0]
    assert (event.payload["status"], event.payload["errors"]) == ("success", 2)


async def test_401_ends_the_wait_at_once_naming_the_connection_not_the_secret(
    server: EndpointServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/status"] = (401, {"detail": "bad token"})
    caplog.set_level(logging.DEBUG)
    event = await run_one(make(), FakeClock(now_s=T0))

    assert event.payload["status"] == "error"
    assert event.payload["pokes"] == 1
    message = event.payload["message"]
    assert "HTTP 401" in message
    assert "credentials of http connection 'ww_http'" in message
    assert "cannot work" in message  # not a transient error: no retry
    text = caplog.text + json.dumps(event.payload)
    assert PASSWORD not in text
    assert API_KEY not in text


@pytest.mark.parametrize(("status", "kind"), [(400, "HttpStatusError"), (410, "HttpStatusError")])
async def test_other_4xx_end_the_wait(server: EndpointServer, status: int, kind: str) -> None:
    server.routes["/status"] = (status, {})
    event = await run_one(make(), FakeClock(now_s=T0))
    assert event.payload["status"] == "error"
    assert event.payload["last_error"].startswith(f"{kind}: GET http://127.0.0.1")


async def test_connection_refused_is_a_probe_error() -> None:
    retry = RetryStrategy(probe_backoff=Constant(interval=1.0), max_probe_errors=1)
    event = await run_one(
        make(http_conn_id="ww_closed", retry=retry.to_config()), FakeClock(now_s=T0)
    )
    assert event.payload["status"] == "error"
    assert event.payload["errors"] == 2
    assert event.payload["last_error"].startswith("ConnectError: GET http://127.0.0.1")


async def test_a_slow_answer_times_out_as_a_probe_error(server: EndpointServer) -> None:
    server.routes["/status"] = (200, {})
    server.delay_s["/status"] = 0.5
    retry = RetryStrategy(probe_backoff=Constant(interval=1.0), max_probe_errors=1)
    started = time.monotonic()
    event = await run_one(make(request_timeout_s=0.1, retry=retry.to_config()), FakeClock(now_s=T0))
    assert event.payload["status"] == "error"
    assert "Timeout" in event.payload["last_error"]
    assert time.monotonic() - started < 1.0  # two requests of at most 0.1 s each


async def test_redirects_are_followed_and_the_final_url_reported(server: EndpointServer) -> None:
    server.routes["/old"] = (302, {"location": "/new"})
    server.routes["/new"] = (200, {"status": "ready"})
    event = await run_one(make(endpoint="/old", condition=READY), FakeClock(now_s=T0))
    assert event.payload["found"][0]["path"].endswith("/new")


async def test_a_redirect_loop_ends_the_wait(server: EndpointServer) -> None:
    server.routes["/loop"] = (302, {"location": "/loop"})
    event = await run_one(make(endpoint="/loop"), FakeClock(now_s=T0))
    assert event.payload["status"] == "error"
    assert event.payload["last_error"].startswith("TooManyRedirects")
    assert server.count("/loop") == 6  # the first request and 5 redirects


async def test_a_body_that_is_not_json_is_a_probe_error(server: EndpointServer) -> None:
    server.routes["/status"] = (200, b"<html>maintenance</html>")
    retry = RetryStrategy(probe_backoff=Constant(interval=1.0), max_probe_errors=1)
    event = await run_one(make(condition=READY, retry=retry.to_config()), FakeClock(now_s=T0))
    assert event.payload["last_error"].startswith("InvalidJson")


async def test_identical_requests_due_together_are_sent_once(server: EndpointServer) -> None:
    clock = FlipsAt(T0 + 5, lambda: server.routes.update({"/status": (200, {"status": "ready"})}))
    triggers = [make(condition=READY, seed=f"s{i}") for i in range(5)]
    triggers.append(make(condition={"path": "$.status", "op": "exists"}, seed="other"))
    with use_runtime(Runtime(clock=clock, metrics=RecordingSink())):
        events = await asyncio.gather(*(anext(t.run()) for t in triggers))

    assert {e.payload["status"] for e in events} == {"success"}
    assert {e.payload["pokes"] for e in events} == {4}
    # Six waits, one request a tick; the first tick may split in two batches, as the waits
    # read their connection concurrently and the hub starts with the first one ready.
    assert 4 <= server.count("/status") <= 5


async def test_one_batch_sends_each_distinct_request_once(server: EndpointServer) -> None:
    server.routes["/status"] = (200, {"status": "ready"})
    ready = await make(condition=READY).prepare()
    exists = await make(condition={"path": "$.status", "op": "exists"}).prepare()
    other = await make(endpoint="/other").prepare()
    with use_runtime(Runtime(clock=FakeClock(now_s=T0), metrics=RecordingSink())):
        results = await HttpProber().probe_batch([ready, ready, exists, other])
    assert [bool(r) for r in results] == [True, True, True, False]
    assert (server.count("/status"), server.count("/other")) == (1, 1)


async def test_an_unknown_connection_ends_the_wait() -> None:
    event = await run_one(make(http_conn_id="ww_nowhere"), FakeClock(now_s=T0))
    assert event.payload["status"] == "error"
    assert "ww_nowhere" in event.payload["message"]


async def test_a_rendered_endpoint_is_checked_again_in_the_triggerer() -> None:
    trigger = make()
    trigger.endpoint = "http://elsewhere.example/steal"  # as a template could render it
    event = await run_one(trigger, FakeClock(now_s=T0))
    assert event.payload["status"] == "error"
    assert "endpoint must be a path" in event.payload["message"]


# ---------------------------------------------------------------- serialization and checks


def test_serialize_round_trips_through_json() -> None:
    trigger = make(
        request_params={"a": 1},
        headers={"X-Team": "data"},
        expect_status=[204, 200],
        condition=READY,
        method="POST",
        data={"f": "v"},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "waitwise.triggers.http.HttpConditionTrigger"
    rebuilt = HttpConditionTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["expect_status"] == [200, 204]
    assert kwargs["condition"] == READY


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"endpoint": "https://other/x"}, "endpoint must be a path"),
        ({"method": "PUT"}, "method must be one of GET, HEAD, POST"),
        ({"json": {"a": 1}}, "needs method='POST'"),
        ({"headers": {"Authorization": "Bearer x"}}, "looks like a secret"),
        ({"headers": {"X-Auth-Token": "x"}}, "looks like a secret"),
        ({"headers": {"bad name": "x"}}, "not a header name"),
        ({"expect_status": []}, "non-empty set of status codes"),
        ({"expect_status": [700]}, "non-empty set of status codes"),
        ({"request_timeout_s": 0}, "request_timeout_s must be seconds"),
        ({"condition": {"path": "status", "op": "=="}}, "condition.path"),
        ({"http_conn_id": "bad id!"}, "http_conn_id must be a connection id"),
        ({"request_params": {"a": {"b": 1}}}, "params"),
        ({"verb": "GET"}, "unknown wait argument"),
    ],
)
def test_bad_arguments_raise_naming_them(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(TriggerArgumentError, match=message):
        make(**overrides)


def test_build_request_follows_the_hook_rules_and_hides_secrets() -> None:
    options = check_http_options(endpoint="v1/status", headers={"X-Team": "data"})
    request = build_request(
        options,
        conn_id="c",
        host="https://api.example.com/base/",
        schema=None,
        port=None,
        login="robot",
        password=PASSWORD,
        extra={"X-Api-Key": API_KEY, "timeout": 5, "verify": "false", "max_redirects": 2},
    )
    assert request.url == "https://api.example.com/base/v1/status"
    assert dict(request.headers) == {"X-Api-Key": API_KEY, "X-Team": "data"}
    assert request.auth == ("robot", PASSWORD)
    assert (request.verify, request.max_redirects) == (False, 2)
    assert PASSWORD not in repr(request)
    assert API_KEY not in repr(request)
    plain = build_request(
        options, conn_id="c", host="h", schema=None, port=8080, login=None, password=None, extra={}
    )
    assert (plain.url, plain.auth) == ("http://h:8080/v1/status", None)
    with pytest.raises(PolicyConfigError, match="has no host"):
        build_request(
            options,
            conn_id="c",
            host="",
            schema=None,
            port=None,
            login=None,
            password=None,
            extra={},
        )


def _query(expect: tuple[int, ...] = (200,), condition: Any = None) -> HttpQuery:
    request = HttpRequest("c", "GET", "http://h/x", (), None, (), None, 10.0)
    parsed = parse_condition(condition) if condition else None
    return HttpQuery(request, frozenset(expect), parsed)


@pytest.mark.parametrize(
    ("expect", "condition", "status", "body", "verdict"),
    [
        ((200,), None, 200, b"", "found"),
        ((200,), None, 404, b"", "not yet"),
        ((200,), None, 202, b"", "not yet"),
        ((200,), None, 304, b"", "not yet"),
        ((404,), None, 404, b"", "found"),  # waiting for something to go away
        ((200,), None, 401, b"", "PolicyConfigError"),
        ((200,), None, 403, b"", "PolicyConfigError"),
        ((200,), None, 400, b"", "HttpStatusError"),
        ((200,), None, 408, b"", "ProbeError"),
        ((200,), None, 429, b"", "ProbeError"),
        ((200,), None, 500, b"", "ProbeError"),
        ((200,), None, 503, b"", "ProbeError"),
        ((200,), READY, 200, b'{"status": "ready"}', "found"),
        ((200,), READY, 200, b'{"status": "late"}', "not yet"),
        ((200,), READY, 200, b"not json", "ProbeError"),
        ((200,), READY, 200, None, "HttpStatusError"),  # HEAD, or a body over the cap
    ],
)
def test_judge(
    expect: tuple[int, ...], condition: Any, status: int, body: bytes | None, verdict: str
) -> None:
    result = judge(_query(expect, condition), HttpAnswer(status, "http://h/x", body=body), T0)
    if isinstance(result, BaseException):
        assert type(result).__name__ == verdict
    else:
        assert ("found" if result else "not yet") == verdict


def test_judge_kinds_of_transient_errors() -> None:
    result = judge(_query(), HttpAnswer(503, "http://h/x", "Service Unavailable"), T0)
    assert isinstance(result, ProbeError)
    assert result.kind == "HTTP503"
    assert str(result) == "GET http://h/x: HTTP 503 Service Unavailable"
    assert isinstance(judge(_query(), HttpAnswer(418, "http://h/x"), T0), HttpStatusError)


@pytest.mark.parametrize(
    ("header", "date", "expected"),
    [
        (None, None, None),
        ("120", None, 120.0),
        (" 0 ", None, 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:27:00 GMT", 60.0),  # server clock
        ("Wed, 21 Oct 2015 07:28:00 GMT", None, 1_445_412_480.0 - T0),  # ours: in the past
        ("-5", None, None),
        ("\u00b2", None, None),  # a digit to str.isdigit, not to float()
        ("soon", None, None),
    ],
)
def test_retry_after_reads_seconds_or_a_date_on_the_servers_clock(
    header: str | None, date: str | None, expected: float | None
) -> None:
    answer = HttpAnswer(429, "http://h/x", date=http_date(date), retry_after=header)
    found = retry_after_s(answer, T0)
    assert found == (None if expected is None else max(expected, 0.0))
    result = judge(_query(), answer, T0)
    assert isinstance(result, ProbeError)
    assert result.retry_after_s == found
