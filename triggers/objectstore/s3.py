"""S3 listings on the triggerer's own event loop (aiobotocore: async, one request a page).

A client is built per Airflow connection from what the amazon provider reads in an ``aws``
connection (keys, session token, role to assume, region, ``endpoint_url`` and
``config_kwargs`` in the extra) through the provider's own session factory, as its ``get_fs``
for ``ObjectStoragePath`` does, and lives as long as the loop (or until :meth:`aclose`).  The
connection is read with the async API; the session factory may call STS to assume a role, so
it runs in a worker thread.

Retries: botocore's own are off (one attempt per request) because the wait's retry strategy
owns the backoff after a probe error and the breaker counts failures; a request times out
after :data:`CONNECT_TIMEOUT_S` to connect and :data:`READ_TIMEOUT_S` to read unless the
connection's ``config_kwargs`` say otherwise.

Errors (:func:`classify`): connection failures, timeouts, 5xx and throttling are transient
(:class:`~waitwise.triggers.errors.ProbeError`); a missing bucket, denied access, invalid or
missing credentials end the wait (:class:`~waitwise.triggers.objectstore.query.ObjectStoreError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import Any, Final

from waitwise.triggers.errors import ProbeError
from waitwise.triggers.objectstore.query import PAGE_KEYS, Listing, ObjectEntry, ObjectStoreError

__all__ = ["CONNECT_TIMEOUT_S", "MAX_PAGES", "READ_TIMEOUT_S", "S3Lister", "classify"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 5.0
READ_TIMEOUT_S: Final = 20.0
MAX_PAGES: Final = 1_000
"""Pages one listing may take (a million keys): past it the prefix is too broad to poll."""

DEFAULT_CONN_ID: Final = "aws_default"
TRANSIENT_CODES: Final = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
    }
)


def classify(exc: BaseException, where: str) -> BaseException:
    """Return what a failed S3 call means for a wait: a transient or a final error.

    Transient (:class:`ProbeError`, kind: the S3 error code or the exception class): an HTTP
    status of 5xx or 429, a throttling code, a connection failure or a timeout.  Final
    (:class:`ObjectStoreError`): any other error the service answered (``NoSuchBucket``,
    ``AccessDenied``, ``InvalidAccessKeyId``, ``SignatureDoesNotMatch``, ...) and missing
    credentials.  Anything else is returned as it is (it ends the wait: a bug or a bad query).
    """
    from botocore.exceptions import (  # type: ignore[import-untyped]
        ClientError,
        HTTPClientError,
        NoCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        text = f"{where}: {code} (HTTP {status}): {error.get('Message') or exc}"
        if status >= 500 or status == 429 or code in TRANSIENT_CODES:
            return _transient(text, code, exc)
        return _final(text, code, exc)
    if isinstance(exc, NoCredentialsError):
        return _final(f"{where}: no AWS credentials in the connection or the environment",
                      "NoCredentials", exc)  # fmt: skip
    if isinstance(exc, BotoConnectionError | HTTPClientError | TimeoutError | ConnectionError):
        return _transient(f"{where}: {type(exc).__name__}: {exc}", type(exc).__name__, exc)
    return exc


def _transient(text: str, kind: str, cause: BaseException) -> ProbeError:
    error = ProbeError(text, kind=kind)
    error.__cause__ = cause
    return error


def _final(text: str, code: str, cause: BaseException) -> ObjectStoreError:
    error = ObjectStoreError(text, code=code)
    error.__cause__ = cause
    return error


class S3Lister:
    """Lists S3 prefixes with one aiobotocore client per connection, on the running loop.

    Bound to the loop that first uses it (the prober keeps one lister per loop).
    """

    def __init__(self) -> None:
        self._clients: dict[str | None, asyncio.Task[Any]] = {}
        self._stack = contextlib.AsyncExitStack()

    async def connect(self, conn_id: str | None) -> Any:
        """Return the client for ``conn_id``, built once (concurrent callers share the build).

        :raises Exception: the connection does not exist (``AirflowNotFoundException``; for
            the default connection ``aws_default`` the environment's credentials are used
            instead, as Airflow's AWS hooks do) or cannot be used.
        """
        task = self._clients.get(conn_id)
        if task is None:
            task = self._clients[conn_id] = asyncio.ensure_future(self._build(conn_id))
        try:
            return await asyncio.shield(task)
        except Exception:
            if self._clients.get(conn_id) is task:
                del self._clients[conn_id]  # try again at the next poke (a fixed connection)
            raise

    async def _build(self, conn_id: str | None) -> Any:
        conn = await _connection(conn_id)
        # Importing the provider, botocore and aiohttp (which builds SSL contexts as it is
        # imported), the session factory (which may call STS) and the files a client reads
        # (S3's service model, endpoint rules) all block, ~1 s on a busy machine: they run in
        # a worker thread, leaving ~40 ms of client building on the loop.
        wrapper, session = await asyncio.to_thread(_session, conn)
        from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
        from botocore import UNSIGNED  # type: ignore[import-untyped]

        options: dict[str, Any] = {
            "retries": {"max_attempts": 1, "mode": "standard"},
            "connect_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S,
        }
        options.update(wrapper.extra_config.get("config_kwargs", {}))
        if await session.get_credentials() is None:  # as Airflow's get_fs: anonymous access
            options["signature_version"] = UNSIGNED
        client = session.create_client(
            "s3",
            region_name=wrapper.region_name,
            endpoint_url=wrapper.get_service_endpoint_url(service_name="s3"),
            config=AioConfig(**options),
            verify=wrapper.verify,
        )
        return await self._stack.enter_async_context(client)

    async def list(self, listing: Listing) -> list[ObjectEntry]:
        """Return the objects of ``listing`` (every page; one request for a one-key listing).

        :raises ProbeError: a transient failure (see :func:`classify`).
        :raises ObjectStoreError: a failure waiting will not fix.
        """
        where = f"listing s3://{listing.bucket}/{listing.prefix}"
        client = await self.connect(listing.conn_id)
        request: dict[str, Any] = {
            "Bucket": listing.bucket,
            "Prefix": listing.prefix,
            "MaxKeys": 1 if listing.single else PAGE_KEYS,
        }
        if not listing.deep:
            request["Delimiter"] = "/"
        entries: list[ObjectEntry] = []
        for _ in range(MAX_PAGES):
            try:
                page = await client.list_objects_v2(**request)
            except Exception as exc:  # classified: transient, final or a bug
                raise classify(exc, where) from exc
            entries.extend(_entries(page))
            if listing.single or not page.get("IsTruncated"):
                return entries
            request["ContinuationToken"] = page["NextContinuationToken"]
        raise ObjectStoreError(
            f"{where}: more than {MAX_PAGES * PAGE_KEYS} keys; wait on a narrower prefix",
            code="PrefixTooBroad",
        )

    async def aclose(self) -> None:
        """Close every client (their HTTP sessions)."""
        self._clients.clear()
        await self._stack.aclose()


def _entries(page: dict[str, Any]) -> list[ObjectEntry]:
    return [
        ObjectEntry(
            key=obj["Key"],
            size=int(obj.get("Size", 0)),
            mtime=obj["LastModified"].timestamp(),
            etag=str(obj["ETag"]).strip('"') if obj.get("ETag") else None,
        )
        for obj in page.get("Contents", ())
    ]


async def _connection(conn_id: str | None) -> Any:
    """Return connection ``conn_id`` (async API), ``None`` for a missing default one."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = await BaseHook.aget_connection(conn_id or DEFAULT_CONN_ID)
    except AirflowNotFoundException:
        if conn_id is not None:
            raise
        log.info("No connection %r: using the environment's AWS credentials", DEFAULT_CONN_ID)
        conn = None
    return conn


def _session(conn: Any) -> tuple[Any, Any]:
    """Return the provider's view of ``conn`` and an aiobotocore session for it (blocking).

    Its data loader (the provider's, shared by every session) is warmed first: a throwaway
    sync client of the same service reads and caches the files an async client would read on
    the loop.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory
    from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

    for module in _CLIENT_MODULES:  # imported here, not on the loop at the first request
        importlib.import_module(module)
    wrapper = AwsConnectionWrapper(conn=conn)
    factory = BaseSessionFactory(
        conn=wrapper, region_name=wrapper.region_name, config=wrapper.botocore_config
    )
    session = factory.create_session(deferrable=True)
    _warm(session.get_component("data_loader"), wrapper.region_name or "us-east-1")
    return wrapper, session


_WARMED: set[int] = set()
_CLIENT_MODULES: Final = (
    "aiohttp",
    "aiobotocore.args",
    "aiobotocore.client",
    "aiobotocore.config",
    "aiobotocore.endpoint",
    "aiobotocore.httpsession",
    "aiobotocore.parsers",
    "aiobotocore.response",
    "aiobotocore.retries.standard",
)


def _warm(loader: Any, region: str) -> None:
    """Build one sync S3 client on ``loader`` (blocking) so its files are cached."""
    if id(loader) in _WARMED:
        return
    import botocore.session  # type: ignore[import-untyped]

    sync = botocore.session.Session()
    sync.register_component("data_loader", loader)
    sync.create_client("s3", region_name=region, aws_access_key_id="-", aws_secret_access_key="-")
    _WARMED.add(id(loader))
