"""Alerts through an Airflow notifier to a real local HTTP endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.triggers.report.test_alerts import report_at
from tests.triggers.report.test_report import NOW
from tests.triggers.store.fakes import MemoryKV
from waitwise.operators.notifications import WebhookNotifier, deliver_with
from waitwise.triggers.report.alerts import AlertLedger, run


class Endpoint:
    """A real HTTP server on localhost that keeps what it was sent; can refuse the first N."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, object]]] = []
        self.refuse = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if endpoint.refuse:
                    endpoint.refuse -= 1
                    self.send_response(503)
                else:
                    endpoint.received.append((self.path, body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    found = Endpoint()
    yield found
    found.server.shutdown()
    found.server.server_close()


async def test_alerts_reach_the_endpoint_once_with_recovery_across_a_restart(
    endpoint: Endpoint,
) -> None:
    kv = MemoryKV()  # the alert state's store (an Airflow Variable in the monitoring DAG)
    notifier = WebhookNotifier(url=endpoint.url + "/hook/{{ waitwise_alert.source }}")
    deliver = deliver_with(notifier)
    endpoint.refuse = 1  # the endpoint refuses the first alert
    sent = await run(report_at(NOW, breaker_open=True), AlertLedger(kv), deliver)
    assert [m.condition for m in sent] == ["success_rate"]  # the other episode went on
    # restart: a new process, a new ledger on the same state
    sent = await run(report_at(NOW + 3600, breaker_open=True), AlertLedger(kv), deliver)
    assert [m.condition for m in sent] == ["breaker"]
    assert sorted((path, body["kind"], body["condition"]) for path, body in endpoint.received) == [
        ("/hook/partner", "alert", "breaker"),
        ("/hook/partner", "alert", "success_rate"),
    ]
    # still degraded: nothing new; then healed: one recovery per episode
    assert await run(report_at(NOW + 7200, breaker_open=True), AlertLedger(kv), deliver) == []
    await run(report_at(NOW + 10_800, healthy=True), AlertLedger(kv), deliver)
    keys = [body["key"] for _, body in endpoint.received]
    assert keys == [
        f"success_rate:partner:{NOW:.0f}",
        f"breaker:partner:{NOW:.0f}",
        f"breaker:partner:{NOW:.0f}:recovered",
        f"success_rate:partner:{NOW:.0f}:recovered",
    ]
    assert notifier.url.endswith("{{ waitwise_alert.source }}")  # rendered copies only


def test_bad_notifier_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="url must be an http"):
        WebhookNotifier(url="ftp://x")
    templated = WebhookNotifier(url="{{ waitwise_alert.source }}")  # renders to no URL
    with pytest.raises(ValueError, match="url must render to an http"):
        templated({"waitwise_alert": {"source": "feed"}})
    with pytest.raises(TypeError, match="notifier must be an Airflow BaseNotifier"):
        deliver_with(print)  # type: ignore[arg-type]
