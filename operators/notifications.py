"""Notifiers for waitwise's degradation alerts, and the adapter any Airflow notifier fits.

:func:`deliver_with` turns any :class:`~airflow.sdk.BaseNotifier` (Slack, SMTP, a provider's
own) into the ``deliver`` callable of :func:`waitwise.triggers.report.alerts.run`: each alert
renders a fresh copy of the notifier with the alert in the template context as
``waitwise_alert`` (``{{ waitwise_alert.text }}``, ``.key``, ``.kind``, ``.source``, ...), so
``SmtpNotifier(subject="{{ waitwise_alert.text }}", ...)`` works unchanged.
:class:`WebhookNotifier` posts the alert as JSON, for endpoints that take it as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from waitwise.triggers.report.alerts import Message

__all__ = ["WebhookNotifier", "deliver_with"]


class WebhookNotifier(BaseNotifier):
    """POST the alert (``waitwise_alert`` in the context) as JSON to ``url``.

    :param url: the endpoint (templated).
    :param headers: extra request headers (an ``Authorization`` one, say).
    :param timeout_s: the request's timeout; a non-2xx answer or a timeout raises, so the
        alert stays queued for the next run.
    """

    template_fields = ("url",)

    def __init__(
        self, *, url: str, headers: Mapping[str, str] | None = None, timeout_s: float = 10.0
    ) -> None:
        super().__init__()
        if not isinstance(url, str) or not (_is_http(url) or "{{" in url):
            raise ValueError(f"url must be an http(s) URL or a template, got {url!r}")
        if not isinstance(timeout_s, int | float) or not 0 < timeout_s <= 300:
            raise ValueError(f"timeout_s must be in (0, 300], got {timeout_s!r}")
        self.url, self.headers, self.timeout_s = url, dict(headers or {}), float(timeout_s)

    def notify(self, context: Any) -> None:
        """Send the alert; raise on a failed delivery."""
        import httpx  # Airflow's own dependency

        if not _is_http(self.url):  # a template rendered into something else
            raise ValueError(f"url must render to an http(s) URL, got {self.url!r}")
        alert = context.get("waitwise_alert")
        if alert is None:
            raise ValueError("WebhookNotifier sends waitwise alerts: no waitwise_alert in context")
        answer = httpx.post(self.url, json=alert, headers=self.headers, timeout=self.timeout_s)
        answer.raise_for_status()


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def deliver_with(notifier: BaseNotifier) -> Callable[[Message], None]:
    """Return a ``deliver`` callable sending each alert through a fresh copy of ``notifier``.

    A copy per alert: Airflow renders a notifier's templates in place, once.
    """
    if not isinstance(notifier, BaseNotifier):
        raise TypeError(f"notifier must be an Airflow BaseNotifier, got {notifier!r}")

    def deliver(message: Message) -> None:
        copy.deepcopy(notifier)({"waitwise_alert": message.to_json_dict()})

    return deliver
