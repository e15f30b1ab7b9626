"""A table condition that costs no worker time: :class:`SqlConditionSensor`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowException

from waitwise.operators.base import PolicySensor
from waitwise.triggers.sql import (
    DEFAULT_QUERY_TIMEOUT,
    Condition,
    ErrorClass,
    SqlConditionTrigger,
    Statement,
    check_sql_arguments,
    classify_error,
    describe_error,
    run_statement,
)


class SqlConditionSensor(PolicySensor):
    """Wait until a query's first cell meets a condition (a partition landed, a count reached).

    A zero-worker replacement for Airflow's ``SqlSensor``: it starts in the triggerer and
    ends there.  Checks run on a few pooled connections per Airflow connection (at most
    ``[waitwise] sql_max_connections`` per triggerer, default 4, however many sensors
    wait), off the event loop, each in a transaction that is rolled back (``READ ONLY`` on
    PostgreSQL): the sensor never commits.  Identical checks due together run once.

    The XCom ``return_value`` is the wait's payload; ``found[0]["value"]`` is the first cell
    that met the condition.

    :param conn_id: an Airflow connection with a SQL hook (``DbApiHook``).
    :param sql: one statement (templated).  Put values in ``parameters``, not in the SQL.
    :param parameters: bound by the driver, never formatted into the SQL (templated): a
        dict for ``%(name)s`` placeholders, a list for ``%s``; JSON scalars or lists.
    :param condition: ``None`` (truthy first cell, as ``SqlSensor``) or data such as
        ``{"op": ">=", "value": 100}``; ops ``==, !=, <, <=, >, >=, truthy, is_null,
        not_null``.  No row counts as NULL; a comparison with NULL is not met.
    :param query_timeout: seconds one check may run (default 30); longer is a probe error.

    Errors: connection failures, a server shutting down, timeouts (``OperationalError``,
    SQLSTATE classes 08, 53, 57, ...) are probe errors retried with the profile's backoff
    and counted by the ``source``'s breaker; a syntax error, an undefined table or column,
    permission denied, a write, or an unknown ``conn_id`` end the wait at once (see
    :func:`waitwise.triggers.sql.classify_error`).

    Every other keyword is :class:`~waitwise.operators.base.PolicySensor`'s (``poll``,
    ``profile``, ``source``, ``store``, ``deferrable``, ``start_from_trigger``) or Airflow's
    ``BaseSensorOperator``'s (``timeout``, ``soft_fail``, ...).
    """

    template_fields: Sequence[str] = ("sql", "parameters", "scheduled_at")
    trigger_cls = SqlConditionTrigger
    ui_color = "#c9e4ca"

    def __init__(
        self,
        *,
        conn_id: str,
        sql: str,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        condition: Mapping[str, Any] | Condition | None = None,
        query_timeout: float | dt.timedelta = DEFAULT_QUERY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            checked = check_sql_arguments(conn_id, sql, parameters, condition, query_timeout)
        except ValueError as exc:
            raise type(exc)(f"{self.task_id}: {exc}") from exc
        self.conn_id, self.sql, self.parameters, self.condition, self.query_timeout = checked
        self.start_in_triggerer()

    def trigger_kwargs(self, *, started_at: float | None) -> dict[str, Any]:
        """Return the trigger's kwargs (plain JSON; templated fields render in the triggerer)."""
        return {
            "conn_id": self.conn_id,
            "sql": self.sql,
            "parameters": self.parameters,
            "condition": self.condition.to_config(),
            "query_timeout": self.query_timeout,
            **self.wait_spec(started_at=started_at).to_config(),
        }

    def poke(self, context: Any) -> bool:
        """Check once on a worker (``deferrable=False`` only): the trigger's statement and rule.

        A transient error is logged and counts as "not yet"; a permanent one fails the try.
        """
        try:
            cell = self._check_once()
        except Exception as exc:
            verdict = classify_error(exc)
            if verdict.error_class is ErrorClass.TRANSIENT:
                self.log.warning("Check failed (%s), poking again: %s", verdict.reason, exc)
                return False
            raise AirflowException(f"{self.task_id}: {describe_error(exc, verdict)}") from exc
        self.log.info("First cell %r; condition %s", cell, self.condition.describe())
        return self.condition.holds(cell)

    def _check_once(self) -> object:
        """Open a connection through the hook, run the statement, close it (blocking)."""
        from airflow.sdk import BaseHook

        statement = Statement(
            conn_id=self.conn_id,
            sql=self.sql,
            parameters_json=json.dumps(self.parameters, sort_keys=True),
            timeout_s=self.query_timeout,
        )
        connection = BaseHook.get_connection(self.conn_id)
        hook: Any = connection.get_hook()  # type: ignore[no-untyped-call]
        conn = hook.get_conn()
        try:
            hook.set_autocommit(conn, False)
            postgres = connection.conn_type in ("postgres", "postgresql")
            return run_statement(conn, statement, postgres=postgres)
        finally:
            conn.close()
