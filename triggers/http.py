"""Wait until an HTTP endpoint answers with an expected status, or its JSON body matches.

The request comes from an Airflow ``http`` connection, read by id in the triggerer (host,
schema, port, login/password as basic auth, and the extra's keys as headers, as Airflow's
``HttpHook`` reads them) plus the sensor's own non-secret arguments: credentials never travel
in trigger kwargs.  What counts as arrived is data (``expect_status`` and an optional
:mod:`~waitwise.triggers.conditions` condition on the JSON body), so it can.

How an answer is read (:func:`judge`, pure):

- an expected status (and the condition true on the JSON body) — found;
- ``404`` — not yet; so are other statuses below 400 that were not expected (``202``, ...);
- ``5xx``, ``408``, ``429``, connection errors and timeouts — :class:`ProbeError` (the
  profile's probe backoff, or longer when the answer's ``Retry-After`` asks for it, never
  past the deadline; counted by the source's breaker when the wait gives up);
- ``401``/``403`` — the wait ends at once as a configuration error naming the connection;
- any other ``4xx`` — the wait ends at once (:class:`HttpStatusError`);
- an expected status whose body is not JSON when a condition needs it — a probe error.

Batching (:class:`HttpProber`): every HTTP query due in a hub tick is one batch; identical
requests in it are sent once and each query judges the shared answer.  One
``httpx.AsyncClient`` per connection and event loop, with at most :data:`CONN_LIMIT`
connections (and requests in flight) each, redirects followed up to :data:`MAX_REDIRECTS`.
A request is bounded by ``request_timeout_s`` from start to last byte; while a batch's slowest
request runs, the hub waits for it, so keep that timeout short.

Never logged or put in a message: the connection's password and extra headers (the request's
``repr`` leaves them out; an endpoint URL never carries them).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import httpx

from waitwise.triggers import runtime
from waitwise.triggers.base import PolicyTrigger, rebuilding
from waitwise.triggers.conditions import Condition, check_json, parse_condition
from waitwise.triggers.engine.probe import Prober
from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.engine.tick import PerLoop
from waitwise.triggers.errors import PolicyConfigError, ProbeError
from waitwise.triggers.events import FoundItem
from waitwise.triggers.file import check_conn_id
from waitwise.triggers.spec import WaitSpec

__all__ = [
    "CONN_LIMIT",
    "MAX_BODY",
    "MAX_REDIRECTS",
    "METHODS",
    "HttpAnswer",
    "HttpConditionTrigger",
    "HttpOptions",
    "HttpProber",
    "HttpQuery",
    "HttpRequest",
    "HttpStatusError",
    "build_request",
    "check_http_options",
    "close_clients",
    "judge",
    "retry_after_s",
]

log = logging.getLogger(__name__)

METHODS: Final = ("GET", "HEAD", "POST")
CONN_LIMIT: Final = 10
"""Connections (and requests in flight) per connection id and event loop."""
MAX_REDIRECTS: Final = 5
MAX_BODY: Final = 1 << 20
"""The most bytes of a body read; a larger one cannot be judged by a condition."""
MAX_TIMEOUT_S: Final = 300.0
TRANSIENT_STATUS: Final = frozenset({408, 429})
AUTH_STATUS: Final = frozenset({401, 403})
# Extra keys Airflow's HttpHook reads as options, not headers (it sends every other key).
_HOOK_OPTIONS: Final = frozenset(
    {
        "stream",
        "cert",
        "proxies",
        "proxy",
        "timeout",
        "verify",
        "verify_ssl",
        "allow_redirects",
        "max_redirects",
        "trust_env",
        "check_response",
        "srv_lookup",
        "auth_type",
        "auth_kwargs",
    }
)
# Header names that carry secrets: refused in the sensor's ``headers`` (use the connection).
_SECRET_HEADER: Final = re.compile(
    r"authorization|proxy-authorization|cookie|.*(token|secret|password|api[-_]?key).*", re.I
)
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")


# ---------------------------------------------------------------- pure: options and requests


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """The sensor's own request arguments, checked (see :func:`check_http_options`)."""

    endpoint: str
    method: str = "GET"
    params: tuple[tuple[str, str], ...] = ()
    json_body: Any = None
    data: str | tuple[tuple[str, str], ...] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    expect_status: frozenset[int] = frozenset({200})
    condition: Condition | None = None
    request_timeout_s: float = 10.0


def check_http_options(
    *,
    endpoint: object,
    method: object = "GET",
    params: object = None,
    json_body: object = None,
    data: object = None,
    headers: object = None,
    expect_status: object = (200,),
    condition: object = None,
    request_timeout_s: object = 10.0,
) -> HttpOptions:
    """Return the checked options; raise naming the first bad argument and its value.

    :raises PolicyConfigError: a bad argument (e.g. a secret header name in ``headers``: put
        it in the connection's extra instead).
    """
    if not isinstance(endpoint, str) or "://" in endpoint or endpoint.startswith("//"):
        raise PolicyConfigError(
            f"endpoint must be a path relative to the connection's host, got {endpoint!r}"
        )
    if method not in METHODS:
        raise PolicyConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if (json_body is not None or data is not None) and method != "POST":
        raise PolicyConfigError(f"a body (json/data) needs method='POST', got {method!r}")
    if json_body is not None and data is not None:
        raise PolicyConfigError("pass json or data, not both")
    return HttpOptions(
        endpoint=endpoint,
        method=method,
        params=_pairs("params", params, lists=True),
        json_body=check_json(json_body, "json") if json_body is not None else None,
        data=_data(data),
        headers=_headers(headers),
        expect_status=_statuses(expect_status),
        condition=parse_condition(condition) if condition is not None else None,
        request_timeout_s=_timeout(request_timeout_s),
    )


def _scalar(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PolicyConfigError(f"{name} values must be strings or numbers, got {value!r}")


def _pairs(name: str, value: object, *, lists: bool = False) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise PolicyConfigError(f"{name} must be a mapping, got {value!r}")
    out: list[tuple[str, str]] = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise PolicyConfigError(f"{name} keys must be strings, got {key!r}")
        items = item if lists and isinstance(item, list | tuple) else [item]
        out.extend((key, _scalar(f"{name}[{key!r}]", one)) for one in items)
    return tuple(out)


def _data(data: object) -> str | tuple[tuple[str, str], ...] | None:
    if data is None or isinstance(data, str):
        return data
    if isinstance(data, Mapping):
        return _pairs("data", data)
    raise PolicyConfigError(f"data must be a string or a mapping of form fields, got {data!r}")


def _headers(headers: object) -> tuple[tuple[str, str], ...]:
    pairs = _pairs("headers", headers)
    for name, _value in pairs:
        if not _HEADER_NAME.fullmatch(name):
            raise PolicyConfigError(f"headers: {name!r} is not a header name")
        if _SECRET_HEADER.fullmatch(name):
            raise PolicyConfigError(
                f"headers: {name!r} looks like a secret; put it in the http connection's extra "
                "(trigger arguments are stored in plain text)"
            )
    return pairs


def _statuses(expect_status: object) -> frozenset[int]:
    values = [expect_status] if isinstance(expect_status, int) else expect_status
    if not isinstance(values, Iterable) or isinstance(values, str | Mapping):
        raise PolicyConfigError(f"expect_status must be a set of status codes, got {values!r}")
    found = list(values)
    if not found or any(
        isinstance(s, bool) or not isinstance(s, int) or not 100 <= s <= 599 for s in found
    ):
        raise PolicyConfigError(
            "expect_status must be a non-empty set of status codes (100-599), "
            f"got {expect_status!r}"
        )
    return frozenset(found)


def _timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
        raise PolicyConfigError(
            f"request_timeout_s must be seconds in (0, {MAX_TIMEOUT_S:.0f}], got {value!r}"
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request, with everything that decides its answer (equal requests are sent once).

    The connection's headers and credentials are kept out of ``repr``.
    """

    conn_id: str
    method: str
    url: str
    params: tuple[tuple[str, str], ...]
    content: bytes | None
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    auth: tuple[str, str] | None = field(repr=False)
    timeout_s: float
    verify: bool | str = True
    follow_redirects: bool = True
    max_redirects: int = MAX_REDIRECTS
    trust_env: bool = True

    @property
    def display(self) -> str:
        """Return ``METHOD url`` for messages (the URL without user info)."""
        return f"{self.method} {_without_userinfo(self.url)}"


def _without_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def build_request(
    options: HttpOptions,
    *,
    conn_id: str,
    host: str | None,
    schema: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
) -> HttpRequest:
    """Return the request for ``options`` on an ``http`` connection (HttpHook's rules).

    The base URL is ``host`` when it has a scheme, else ``<schema or http>://<host>``, plus
    ``:<port>``; the endpoint is joined to it.  ``login`` makes basic auth; the extra's keys
    are headers, except HttpHook's options (``verify``, ``max_redirects``, ``allow_redirects``
    and ``trust_env`` are honoured, the others ignored); the sensor's ``headers`` come last.

    :raises PolicyConfigError: no host, or an extra that is not a mapping of headers.
    """
    if not host:
        raise PolicyConfigError(f"http connection {conn_id!r} has no host")
    base = host if "://" in host else f"{schema or 'http'}://{host}"
    if port:
        base = f"{base}:{port}"
    endpoint = options.endpoint
    url = f"{base.rstrip('/')}/{endpoint.lstrip('/')}" if endpoint else base
    headers = {
        str(k): _scalar(f"extra of connection {conn_id!r}", v)
        for k, v in extra.items()
        if k not in _HOOK_OPTIONS
    }
    headers.update(options.headers)
    content, content_type = _content(options)
    if content_type and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = content_type
    return HttpRequest(
        conn_id=conn_id,
        method=options.method,
        url=url,
        params=options.params,
        content=content,
        headers=tuple(sorted(headers.items())),
        auth=(login, password or "") if login else None,
        timeout_s=options.request_timeout_s,
        verify=_verify(extra.get("verify", extra.get("verify_ssl", True))),
        follow_redirects=_flag(extra.get("allow_redirects", True)),
        max_redirects=_redirects(extra.get("max_redirects")),
        trust_env=_flag(extra.get("trust_env", True)),
    )


def _content(options: HttpOptions) -> tuple[bytes | None, str | None]:
    if options.json_body is not None:
        text = json.dumps(options.json_body, separators=(",", ":"), sort_keys=True)
        return text.encode(), "application/json"
    if isinstance(options.data, str):
        return options.data.encode(), None
    if options.data is not None:
        return urllib.parse.urlencode(options.data).encode(), "application/x-www-form-urlencoded"
    return None, None


def _redirects(value: object) -> int:
    """Return the connection's ``max_redirects``, at most :data:`MAX_REDIRECTS`."""
    return min(int(str(value)), MAX_REDIRECTS) if str(value).isdigit() else MAX_REDIRECTS


def _flag(value: object) -> bool:
    return str(value).strip().lower() not in ("false", "0", "no", "off")


def _verify(value: object) -> bool | str:
    if isinstance(value, str) and value.strip().lower() not in ("true", "false", "0", "1"):
        return value  # a CA bundle path
    return _flag(value)


@dataclass(frozen=True, slots=True)
class HttpQuery:
    """What a wait asks the prober: a request and how to judge its answer."""

    request: HttpRequest
    expect_status: frozenset[int]
    condition: Condition | None

    @property
    def display(self) -> str:
        """Return the request as shown in messages."""
        return self.request.display


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What came back: the final status and URL, the length, the date and the body (capped).

    ``body`` is ``None`` for ``HEAD`` and for a body over :data:`MAX_BODY`; ``retry_after``
    the ``Retry-After`` header as sent (read by :func:`retry_after_s`).
    """

    status: int
    url: str
    reason: str = ""
    length: int = 0
    date: float | None = None
    body: bytes | None = b""
    retry_after: str | None = None


class HttpStatusError(Exception):
    """The endpoint answered a client error (4xx) that waiting cannot change."""


def judge(query: HttpQuery, answer: HttpAnswer, now: float) -> ProbeResult:
    """Return what ``answer`` means for ``query``: found, ``[]`` (not yet), or the error.

    See the module docstring for the rules.  Pure.
    """
    status, where = answer.status, f"{query.display}: HTTP {answer.status} {answer.reason}"
    if status in query.expect_status:
        return _judge_body(query, answer, now)
    if status == 404 or status < 400:
        return []
    if status in AUTH_STATUS:
        return PolicyConfigError(
            f"{where.rstrip()}: the server refused the credentials of http connection "
            f"{query.request.conn_id!r} (check its login/password and extra headers)"
        )
    if status >= 500 or status in TRANSIENT_STATUS:
        asked = retry_after_s(answer, now)
        return ProbeError(where.rstrip(), kind=f"HTTP{status}", retry_after_s=asked)
    return HttpStatusError(f"{where.rstrip()}; expected {sorted(query.expect_status)}")


def _judge_body(query: HttpQuery, answer: HttpAnswer, now: float) -> ProbeResult:
    member = f"HTTP {answer.status}"
    if query.condition is not None:
        if answer.body is None:
            return HttpStatusError(
                f"{query.display}: no body to check the condition on (HEAD, or over "
                f"{MAX_BODY} bytes)"
            )
        try:
            document = json.loads(answer.body)
        except ValueError as exc:
            return ProbeError(f"{query.display}: the body is not JSON: {exc}", kind="InvalidJson")
        if not query.condition.holds(document):
            return []
        matched = query.condition.matched(document)
        if matched:
            member = ", ".join(f"{k}={json.dumps(v)}" for k, v in matched.items())[:500]
    item = FoundItem(
        path=answer.url,
        size=answer.length,
        mtime=answer.date if answer.date is not None else now,
    )
    item["member"] = member
    return [item]


def retry_after_s(answer: HttpAnswer, now: float) -> float | None:
    """Return the seconds ``answer``'s ``Retry-After`` asks to wait (RFC 9110 10.2.3), or ``None``.

    Delay-seconds (digits) as given; an HTTP-date less the answer's own ``Date`` (the
    server's clock, so clock skew does not count; ``now`` when it sent none), at least 0;
    anything else, or no header, ``None``.
    """
    value = (answer.retry_after or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    at = http_date(value)
    if at is None:
        return None
    return max(at - (answer.date if answer.date is not None else now), 0.0)


def http_date(value: str | None) -> float | None:
    """Return the epoch seconds of an HTTP ``Date`` header, or ``None``."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- I/O: clients and prober


@dataclass
class _Client:
    client: httpx.AsyncClient
    slots: asyncio.Semaphore


_CLIENTS: Final[PerLoop[dict[tuple[Any, ...], _Client]]] = PerLoop(dict)


def _client_for(request: HttpRequest) -> _Client:
    """Return the running loop's client for the request's connection and TLS options."""
    clients = _CLIENTS.get()
    key = (request.conn_id, request.verify, request.max_redirects, request.trust_env)
    found = clients.get(key)
    if found is None or found.client.is_closed:
        client = httpx.AsyncClient(
            verify=request.verify,
            trust_env=request.trust_env,
            max_redirects=request.max_redirects,
            limits=httpx.Limits(max_connections=CONN_LIMIT, max_keepalive_connections=CONN_LIMIT),
        )
        found = clients[key] = _Client(client, asyncio.Semaphore(CONN_LIMIT))
    return found


async def close_clients() -> None:
    """Close the running loop's HTTP clients (tests; a triggerer's loop keeps them)."""
    clients = _CLIENTS.get()
    open_clients = list(clients.values())
    clients.clear()
    for entry in open_clients:
        await entry.client.aclose()


# Errors of the request itself (not of the network): retrying cannot help.
_PERMANENT: Final = (httpx.UnsupportedProtocol, httpx.TooManyRedirects, httpx.InvalidURL)


async def send(request: HttpRequest, *, read_body: bool) -> HttpAnswer | BaseException:
    """Send ``request`` once; return the answer, or the error (transient ones as ProbeError)."""
    slot = _client_for(request)
    try:
        async with slot.slots:  # waiting for a free connection is not the request's time
            async with asyncio.timeout(request.timeout_s):
                return await _exchange(slot.client, request, read_body)
    except _PERMANENT as exc:
        return exc
    except (httpx.TransportError, httpx.DecodingError, TimeoutError) as exc:
        error = ProbeError(f"{request.display}: {type(exc).__name__}: {exc}".rstrip(": "))
        error.__cause__ = exc
        return error
    except Exception as exc:  # anything else is this request's own failure: its waits end
        return exc


async def _exchange(client: httpx.AsyncClient, request: HttpRequest, read_body: bool) -> HttpAnswer:
    async with client.stream(
        request.method,
        request.url,
        params=request.params,
        content=request.content,
        headers=request.headers,
        auth=request.auth,
        timeout=httpx.Timeout(request.timeout_s, pool=None),
        follow_redirects=request.follow_redirects,
    ) as response:
        body: bytes | None = None
        if read_body and request.method != "HEAD":
            body = await _read_capped(response)
        length = len(body) if body is not None else _content_length(response)
        return HttpAnswer(
            status=response.status_code,
            url=_without_userinfo(str(response.url)),
            reason=response.reason_phrase,
            length=length,
            date=http_date(response.headers.get("date")),
            body=body,
            retry_after=response.headers.get("retry-after"),
        )


async def _read_capped(response: httpx.Response) -> bytes | None:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _content_length(response: httpx.Response) -> int:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


class HttpProber:
    """The HTTP kind's :class:`~waitwise.triggers.engine.probe.Prober`.

    Sends each distinct request of a batch once, concurrently (at most :data:`CONN_LIMIT` in
    flight per connection), and judges every query on its request's answer.
    """

    async def probe_batch(self, queries: Sequence[HttpQuery]) -> list[ProbeResult]:
        """Return one result per query (see :func:`judge`)."""
        distinct: dict[HttpRequest, bool] = {}
        for query in queries:
            distinct[query.request] = distinct.get(query.request, False) or (
                query.condition is not None
            )
        answers = await asyncio.gather(
            *(send(request, read_body=body) for request, body in distinct.items())
        )
        by_request = dict(zip(distinct, answers, strict=True))
        now = runtime.current().clock.now()
        results: list[ProbeResult] = []
        for query in queries:
            answer = by_request[query.request]
            results.append(
                answer if isinstance(answer, BaseException) else judge(query, answer, now)
            )
        return results

    def __repr__(self) -> str:
        return "HttpProber()"


class HttpConditionTrigger(PolicyTrigger):
    """Poll an HTTP endpoint until it answers an expected status (and a condition holds).

    :param http_conn_id: the Airflow ``http`` connection (host, schema, port, login/password,
        extra headers), read by id in the triggerer.
    :param endpoint: the path joined to the connection's base URL (templated).
    :param method: ``GET`` (default), ``HEAD`` or ``POST``.
    :param request_params: query parameters (values: strings, numbers, or lists of them;
        templated; HttpSensor's name).
    :param json: a JSON body (``POST``; templated).
    :param data: a raw string body or form fields (``POST``; templated).
    :param headers: non-secret headers; a name like ``Authorization`` or ``X-Api-Key`` is
        refused (put secrets in the connection).
    :param expect_status: the statuses that count as arrived (default ``[200]``).
    :param condition: a :mod:`~waitwise.triggers.conditions` condition on the JSON body of an
        expected answer (``None``: the status alone decides).
    :param request_timeout_s: seconds one request may take, start to last byte (default 10).
    :param wait: the :class:`~waitwise.triggers.spec.WaitSpec` fields.
    """

    prober: ClassVar[Prober] = HttpProber()

    def __init__(
        self,
        *,
        http_conn_id: str,
        endpoint: str,
        method: str = "GET",
        request_params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        expect_status: Sequence[int] = (200,),
        condition: Mapping[str, Any] | None = None,
        request_timeout_s: float = 10.0,
        **wait: Any,
    ) -> None:
        with rebuilding(type(self)):
            super().__init__(WaitSpec.from_config(wait))
            self.http_conn_id = check_conn_id("http_conn_id", http_conn_id)
            self.endpoint, self.request_params = endpoint, request_params
            self.json, self.data = json, data
            self.method, self.headers = method, headers
            self.expect_status, self.condition = expect_status, condition
            self.request_timeout_s = request_timeout_s
            self._options = self.options()
        self._query: HttpQuery | None = None

    def options(self) -> HttpOptions:
        """Return the checked options from the attributes (rendered by Airflow, maybe)."""
        return check_http_options(
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

    def kind_kwargs(self) -> dict[str, Any]:
        """Return the HTTP kind's kwargs (plain JSON), the templated ones as they are now.

        Never raises: a rendered value is checked when the wait starts (:meth:`prepare`).
        """
        checked = self._options  # the arguments Airflow does not render, checked at init
        return {
            "http_conn_id": self.http_conn_id,
            "endpoint": self.endpoint,
            "method": checked.method,
            "request_params": _plain(self.request_params),
            "json": _plain(self.json),
            "data": _plain(self.data),
            "headers": dict(checked.headers) or None,
            "expect_status": sorted(checked.expect_status),
            "condition": checked.condition.to_config() if checked.condition else None,
            "request_timeout_s": checked.request_timeout_s,
        }

    def describe(self) -> str:
        """Return the request waited for (``METHOD url``, or the endpoint before it is built)."""
        if self._query is not None:
            return self._query.display
        return f"{self.method} {self.endpoint} on {self.http_conn_id}"

    async def prepare(self) -> HttpQuery:
        """Read the connection (async API) and build the query from the rendered arguments.

        :raises PolicyConfigError: a bad rendered argument, or a connection with no host.
        """
        from airflow.sdk import BaseHook

        options = self.options()
        conn = await BaseHook.aget_connection(self.http_conn_id)
        extra = conn.extra_dejson
        if not isinstance(extra, Mapping):
            raise PolicyConfigError(f"the extra of connection {self.http_conn_id!r} is not JSON")
        request = build_request(
            options,
            conn_id=self.http_conn_id,
            host=conn.host,
            schema=conn.schema,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            extra=extra,
        )
        self._query = HttpQuery(request, options.expect_status, options.condition)
        return self._query


def _plain(value: object) -> Any:
    """Return ``value`` as plain JSON where it can be (a mapping as a dict, tuples as lists)."""
    try:
        return check_json(value, "argument")
    except PolicyConfigError:  # a rendered value: prepare() reports it
        return value
