"""Run SQL checks off the event loop on a few reused connections per Airflow connection.

Airflow pools do not cap tasks that start in the triggerer, so 1,000 waiting SQL sensors in
one triggerer must not open 1,000 database connections.  Here, per Airflow connection id and
per triggerer process:

- one :class:`ConnectionPool`: one hook, and at most ``cap`` DB-API connections (default
  :data:`DEFAULT_MAX_CONNECTIONS`, ``[waitwise] sql_max_connections`` in Airflow's config,
  e.g. ``AIRFLOW__WAITWISE__SQL_MAX_CONNECTIONS=2``).  The cap is the size of the pool's own
  thread pool, and each worker thread owns at most one connection, opened on first use and
  reused by every later check; so the cap holds whatever the number of waits, loops or
  overlapping batches;
- each tick, :class:`SqlProber` runs every due check of a connection in at most ``cap``
  thread hops (the distinct statements split into ``cap`` chunks); identical
  ``(conn_id, sql, parameters, query_timeout)`` checks run once and answer every wait that
  asked.

Read-only: each statement runs in its own transaction, which is always rolled back; on
PostgreSQL the transaction is also ``READ ONLY`` (a write fails with SQLSTATE 25006) and
``statement_timeout`` is set to the wait's ``query_timeout``.  The sensor never commits.
The connection is read through Airflow's async API on the loop
(:meth:`SqlProber.use`); the hook then opens DB-API connections in the worker threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, cast

from waitwise.triggers import runtime
from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.errors import ProbeError
from waitwise.triggers.events import FoundItem
from waitwise.triggers.sql.rules import (
    Condition,
    ErrorClass,
    SqlCheckError,
    classify_error,
    describe_error,
    first_cell,
    json_cell,
)

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "ConnectionPool",
    "SqlProber",
    "SqlQuery",
    "Statement",
    "connection_cap",
    "run_statement",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS: Final = 4
CLIENT_GRACE_S: Final = 5.0
"""Seconds past ``query_timeout`` after which a chunk that has not answered (a server that
does not enforce the timeout, a black-holed network) is reported as a transient error."""
_POSTGRES_TYPES: Final = frozenset({"postgres", "postgresql"})


def connection_cap() -> int:
    """Return the connection cap per Airflow connection (``[waitwise] sql_max_connections``)."""
    from airflow.sdk.configuration import conf

    cap = conf.getint("waitwise", "sql_max_connections", fallback=DEFAULT_MAX_CONNECTIONS)
    return max(int(cap), 1)


@dataclass(frozen=True, slots=True)
class Statement:
    """One distinct check to run: what identical waits share (``key``)."""

    conn_id: str
    sql: str
    parameters_json: str
    timeout_s: float

    @property
    def key(self) -> tuple[str, str, str, float]:
        """Return the identity under which equal checks run once a tick."""
        return (self.conn_id, self.sql, self.parameters_json, self.timeout_s)

    @property
    def parameters(self) -> Any:
        """Return the bound parameters (a dict, a list, or ``None``)."""
        return json.loads(self.parameters_json)


@dataclass(frozen=True, slots=True)
class SqlQuery:
    """What one SQL wait asks the prober: a statement and the condition on its first cell."""

    statement: Statement
    condition: Condition = field(default_factory=Condition)

    @property
    def conn_id(self) -> str:
        """Return the Airflow connection id."""
        return self.statement.conn_id


def run_statement(conn: Any, statement: Statement, *, postgres: bool) -> object:
    """Run ``statement`` on the DB-API connection ``conn``; return its first cell (blocking).

    The transaction is always rolled back: the check never commits.  On PostgreSQL it is
    ``READ ONLY`` with a ``statement_timeout`` (milliseconds, set with a bound parameter).
    Shared by the trigger's worker threads and the sensor's ``poke``.
    """
    cursor = conn.cursor()
    try:
        if postgres:
            cursor.execute("SET TRANSACTION READ ONLY")
            timeout_ms = str(max(int(statement.timeout_s * 1000), 1))
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", (timeout_ms,))
        parameters = statement.parameters
        if parameters is None:
            cursor.execute(statement.sql)
        else:
            cursor.execute(statement.sql, parameters)
        row = cursor.fetchone() if cursor.description else None
        return first_cell(row)
    finally:
        try:
            cursor.close()
        finally:
            conn.rollback()


def _fingerprint(connection: Any) -> str:
    parts = [
        getattr(connection, name, None)
        for name in ("conn_type", "host", "login", "password", "schema", "port", "extra")
    ]
    blob = json.dumps(parts, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ConnectionPool:
    """One Airflow connection's hook and its at most ``cap`` DB-API connections.

    Blocking work runs in the pool's own ``cap`` worker threads; each thread keeps its
    connection (``threading.local``) and reopens it only when it broke.
    """

    def __init__(self, connection: Any, cap: int) -> None:
        self.conn_id: str = connection.conn_id
        self.connection = connection
        self.fingerprint = _fingerprint(connection)
        self.cap = cap
        self.postgres = connection.conn_type in _POSTGRES_TYPES
        self.opened = 0
        """DB-API connections opened so far (evidence for tests and logs)."""
        self.executed = 0
        """Statements run so far (after identical checks were merged)."""
        self._executor = ThreadPoolExecutor(cap, thread_name_prefix=f"waitwise-sql-{self.conn_id}")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._hook: Any = None
        self._open: list[Any] = []

    async def run(self, statements: Sequence[Statement]) -> list[object]:
        """Return each statement's first cell, or the exception it raised, in order."""
        if not statements:
            return []
        chunks = [list(statements[i :: self.cap]) for i in range(min(self.cap, len(statements)))]
        loop = asyncio.get_running_loop()
        limit = max(s.timeout_s for s in statements) + CLIENT_GRACE_S
        futures = [loop.run_in_executor(self._executor, self._run_chunk, c) for c in chunks]
        answers = await asyncio.gather(
            *(asyncio.wait_for(f, limit) for f in futures), return_exceptions=True
        )
        cells: dict[int, object] = {}
        for index, (chunk, answer) in enumerate(zip(chunks, answers, strict=True)):
            for j, _statement in enumerate(chunk):
                at = index + j * self.cap
                if isinstance(answer, BaseException):
                    cells[at] = _unanswered(answer, limit)
                else:
                    cells[at] = answer[j]
        return [cells[i] for i in range(len(statements))]

    def _run_chunk(self, chunk: list[Statement]) -> list[object]:
        return [self._run_one(statement) for statement in chunk]

    def _run_one(self, statement: Statement) -> object:
        """Run one statement on this thread's connection (blocking); retry a stale one once."""
        for attempt in (1, 2):
            reused = getattr(self._local, "conn", None) is not None
            try:
                conn = self._thread_connection()
            except Exception as exc:  # cannot connect: the statement's result is the error
                return exc
            try:
                with self._lock:
                    self.executed += 1
                return run_statement(conn, statement, postgres=self.postgres)
            except Exception as exc:  # classified by the prober
                if _usable(conn):
                    return exc
                self._drop(conn)
                if not (reused and attempt == 1):
                    return exc
                log.info("A pooled connection of %s broke (%s); reconnecting", self.conn_id, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _thread_connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        hook = self._get_hook()
        conn = hook.get_conn()
        try:
            hook.set_autocommit(conn, False)  # a transaction to roll back, always
        except Exception:
            conn.close()
            raise
        with self._lock:
            self._open.append(conn)
            self.opened += 1
        self._local.conn = conn
        return conn

    def _get_hook(self) -> Any:
        with self._lock:
            if self._hook is None:
                from airflow.providers.common.sql.hooks.sql import DbApiHook

                hook = self.connection.get_hook()
                if not isinstance(hook, DbApiHook):
                    raise SqlCheckError(
                        f"connection {self.conn_id!r} (type {self.connection.conn_type!r}) has "
                        f"no SQL hook: {type(hook).__name__} is not a DbApiHook"
                    )
                hook.connection = self.connection  # no second, blocking connection lookup
                self._hook = hook
            return self._hook

    def _drop(self, conn: Any) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
        _close_quietly(conn)

    def open_connections(self) -> int:
        """Return how many DB-API connections the pool holds now."""
        with self._lock:
            return len(self._open)

    def close(self, *, wait: bool = False) -> None:
        """Stop the worker threads (running checks finish first) and close every connection."""

        def finish() -> None:
            self._executor.shutdown(wait=True)
            with self._lock:
                conns, self._open = self._open, []
            for conn in conns:
                _close_quietly(conn)

        if wait:
            finish()
        else:
            threading.Thread(target=finish, name=f"waitwise-sql-close-{self.conn_id}").start()


def _usable(conn: Any) -> bool:
    """Return whether ``conn`` still works after a failed statement (its rollback succeeds)."""
    if getattr(conn, "closed", False):
        return False
    try:
        conn.rollback()
    except Exception:  # broken: the caller drops it
        return False
    return True


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken connection may fail: nothing more to do
        log.debug("Closing a pooled connection failed", exc_info=True)


def _unanswered(exc: BaseException, limit: float) -> BaseException:
    if isinstance(exc, TimeoutError):
        return ProbeError(f"no answer within {limit:g}s (query_timeout + grace)", kind="Timeout")
    if isinstance(exc, asyncio.CancelledError):  # queued in a pool replaced meanwhile
        return ProbeError("the connection's pool was replaced before this check ran")
    return exc


class SqlProber:
    """The SQL kind's :class:`~waitwise.triggers.engine.probe.Prober` (one per process).

    :meth:`use` registers the Airflow connection a wait read (on the loop, async API); the
    pool is replaced when the connection changed (a rotated password), the old one closed
    once its running checks finish.
    """

    def __init__(self) -> None:
        self._pools: dict[str, ConnectionPool] = {}
        self._lock = threading.Lock()

    def use(self, connection: Any) -> ConnectionPool:
        """Return the pool for ``connection`` (made, or replaced if the connection changed)."""
        fingerprint = _fingerprint(connection)
        with self._lock:
            pool = self._pools.get(connection.conn_id)
            if pool is not None and pool.fingerprint == fingerprint:
                return pool
            fresh = ConnectionPool(connection, connection_cap())
            self._pools[connection.conn_id] = fresh
        if pool is not None:
            log.info("Connection %s changed: replacing its pool", connection.conn_id)
            pool.close()
        return fresh

    def pool(self, conn_id: str) -> ConnectionPool | None:
        """Return the pool of ``conn_id``, if a wait registered it."""
        with self._lock:
            return self._pools.get(conn_id)

    def close(self) -> None:
        """Close every pool and wait for it (tests; a process that stops)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close(wait=True)

    async def probe_batch(self, queries: Sequence[SqlQuery]) -> list[ProbeResult]:
        """Run each distinct statement once, each connection's in at most ``cap`` threads."""
        distinct: dict[str, dict[tuple[str, str, str, float], Statement]] = {}
        for query in queries:
            distinct.setdefault(query.conn_id, {})[query.statement.key] = query.statement
        cells: dict[tuple[str, str, str, float], object] = {}
        conn_ids = list(distinct)
        answers = await asyncio.gather(
            *(self._run(conn_id, list(distinct[conn_id].values())) for conn_id in conn_ids)
        )
        for conn_id, answer in zip(conn_ids, answers, strict=True):
            cells.update(zip(distinct[conn_id], answer, strict=True))
        now = runtime.current().clock.now()
        return [judge(query, cells[query.statement.key], now) for query in queries]

    async def _run(self, conn_id: str, statements: list[Statement]) -> list[object]:
        pool = self.pool(conn_id)
        if pool is None:
            missing = SqlCheckError(f"connection {conn_id!r} was not registered with use()")
            return [missing] * len(statements)
        return await pool.run(statements)

    def __repr__(self) -> str:
        return "SqlProber()"


def judge(query: SqlQuery, cell: object, now: float) -> ProbeResult:
    """Return the wait's result for ``cell`` (a first cell, or the exception raised)."""
    if isinstance(cell, BaseException):
        return _as_result(query, cell)
    try:
        met = query.condition.holds(cell)
    except SqlCheckError as exc:
        return SqlCheckError(f"{query.conn_id}: {exc}")
    if not met:
        return []
    item: dict[str, Any] = {
        "path": f"{query.conn_id}: {query.condition.describe()}",
        "size": 1,
        "mtime": now,
        "value": json_cell(cell),
    }
    return [cast("FoundItem", item)]  # a FoundItem with the cell's value added


def _as_result(query: SqlQuery, exc: BaseException) -> BaseException:
    verdict = classify_error(exc)
    text = f"{query.conn_id}: {describe_error(exc, verdict)}"
    error = ProbeError(text) if verdict.error_class is ErrorClass.TRANSIENT else SqlCheckError(text)
    error.__cause__ = exc
    return error
