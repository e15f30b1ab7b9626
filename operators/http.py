"""An HTTP sensor that costs no worker time: ``HttpConditionSensor``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from waitwise.operators.base import PolicySensor
from waitwise.triggers.conditions import Condition
from waitwise.triggers.file import check_conn_id
from waitwise.triggers.http import (
    HttpAnswer,
    HttpConditionTrigger,
    HttpQuery,
    build_request,
    check_http_options,
    http_date,
    judge,
)


class HttpConditionSensor(PolicySensor):
    """Wait until an endpoint answers an expected status, or a field of its JSON body matches.

    A deferrable, declarative counterpart of Airflow's ``HttpSensor``: instead of a
    ``response_check`` callable (which cannot travel to a triggerer), ``condition`` is data
    (:mod:`waitwise.triggers.conditions`), e.g. ``{"path": "$.status", "op": "==", "value":
    "ready"}``.  It starts in the triggerer and ends there: arrival and a ``soft_fail`` timeout
    cost zero worker-seconds.  ``404`` means not yet; ``5xx``, ``408``, ``429``, connection
    errors and timeouts are probe errors retried with the profile's backoff (and counted by
    the source's breaker); ``401``/``403`` fail the task as a configuration error; another
    ``4xx`` fails it too.  The XCom ``return_value`` is the wait's payload; its ``found`` item
    has the final URL (``path``), the body length (``size``), the ``Date`` header (``mtime``)
    and what matched (``member``: the condition's matched values, or ``HTTP <status>``).

    :param http_conn_id: the Airflow ``http`` connection (host, schema, port, login/password,
        extra headers); secrets belong there, never in the other arguments.
    :param endpoint: the path joined to the connection's base URL (templated).
    :param method: ``GET`` (default), ``HEAD`` or ``POST``.
    :param request_params: query parameters (HttpSensor's name) (templated).
    :param json: a JSON body for ``POST`` (templated).
    :param data: a raw string body or form fields for ``POST`` (templated).
    :param headers: non-secret headers (``Authorization``, ``X-Api-Key`` and the like are
        refused: put them in the connection's extra).
    :param expect_status: the statuses that count as arrived (default ``{200}``).
    :param condition: a condition on the JSON body of an expected answer (a mapping, or a
        parsed :class:`~waitwise.triggers.conditions.Condition`).
    :param request_timeout_s: seconds one request may take, start to last byte (default 10).

    Every other keyword is :class:`~waitwise.operators.base.PolicySensor`'s (``poll``,
    ``profile``, ``source``, ``store``, ``deferrable``, ...) or ``BaseSensorOperator``'s
    (``timeout``, ``soft_fail``, ...).
    """

    template_fields: Sequence[str] = ("endpoint", "request_params", "json", "data", "scheduled_at")
    trigger_cls = HttpConditionTrigger
    template_fields_renderers = {"json": "json", "request_params": "json"}  # noqa: RUF012  Airflow's spelling
    ui_color = "#e8f7e4"

    def __init__(
        self,
        *,
        http_conn_id: str = "http_default",
        endpoint: str,
        method: str = "GET",
        request_params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        expect_status: Sequence[int] | set[int] | int = (200,),
        condition: Mapping[str, Any] | Condition | None = None,
        request_timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.http_conn_id = check_conn_id("http_conn_id", http_conn_id)
        options = check_http_options(
            endpoint=endpoint,
            method=method,
            params=request_params,
            json_body=json,
            data=data,
            headers=headers,
            expect_status=expect_status,
            condition=condition,
            request_timeout_s=request_timeout_s,
        )
        self.endpoint, self.method = endpoint, method
        self.request_params = dict(request_params) if request_params is not None else None
        self.json, self.data = json, dict(data) if isinstance(data, Mapping) else data
        self.headers = dict(options.headers) or None
        self.expect_status = sorted(options.expect_status)
        self.condition = options.condition.to_config() if options.condition else None
        self.request_timeout_s = options.request_timeout_s
        self.start_in_triggerer()

    def trigger_kwargs(self, *, started_at: float | None) -> dict[str, Any]:
        """Return the trigger's kwargs (plain JSON; templated fields render in the triggerer)."""
        return {
            "http_conn_id": self.http_conn_id,
            "endpoint": self.endpoint,
            "method": self.method,
            "request_params": self.request_params,
            "json": self.json,
            "data": self.data,
            "headers": self.headers,
            "expect_status": self.expect_status,
            "condition": self.condition,
            "request_timeout_s": self.request_timeout_s,
            **self.wait_spec(started_at=started_at).to_config(),
        }

    def poke(self, context: Any) -> bool:
        """Check once on a worker (``deferrable=False`` only): the trigger's rules.

        Not yet: ``False``.  Any error (transient or not) raises: Airflow's retries apply.
        """
        from airflow.sdk import BaseHook

        query = self._query(BaseHook.get_connection(self.http_conn_id))
        request = query.request
        self.log.info("Poking %s", request.display)
        with httpx.Client(
            verify=request.verify, trust_env=request.trust_env, max_redirects=request.max_redirects
        ) as client:
            response = client.request(
                request.method,
                request.url,
                params=request.params,
                content=request.content,
                headers=request.headers,
                auth=request.auth,
                timeout=request.timeout_s,
                follow_redirects=request.follow_redirects,
            )
        answer = HttpAnswer(
            status=response.status_code,
            url=str(response.url),
            reason=response.reason_phrase,
            length=len(response.content),
            date=http_date(response.headers.get("date")),
            body=response.content if request.method != "HEAD" else None,
        )
        result = judge(query, answer, self.now())
        if isinstance(result, BaseException):
            raise result
        return bool(result)

    def _query(self, conn: Any) -> HttpQuery:
        options = check_http_options(
            endpoint=self.endpoint,
            method=self.method,
            params=self.request_params,
            json_body=self.json,
            data=self.data,
            headers=self.headers,
            expect_status=self.expect_status,
            condition=self.condition,
            request_timeout_s=self.request_timeout_s,
        )
        request = build_request(
            options,
            conn_id=self.http_conn_id,
            host=conn.host,
            schema=conn.schema,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
        )
        return HttpQuery(request, options.expect_status, options.condition)
