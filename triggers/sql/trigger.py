"""Wait until a SQL query's first cell meets a condition: :class:`SqlConditionTrigger`."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Final

from waitwise.triggers.base import PolicyTrigger, rebuilding
from waitwise.triggers.engine.probe import Prober
from waitwise.triggers.policy import positive_seconds
from waitwise.triggers.spec import WaitSpec
from waitwise.triggers.sql.pool import SqlProber, SqlQuery, Statement
from waitwise.triggers.sql.rules import Condition, check_parameters, check_sql

__all__ = ["DEFAULT_QUERY_TIMEOUT", "PROBER", "SqlConditionTrigger", "check_sql_arguments"]

DEFAULT_QUERY_TIMEOUT: Final = 30.0
PROBER: Final = SqlProber()
"""The one SQL prober of this process (its pools are per triggerer process)."""


def check_sql_arguments(
    conn_id: object, sql: object, parameters: object, condition: object, query_timeout: object
) -> tuple[str, str, Any, Condition, float]:
    """Return the SQL kind's arguments checked and normalized; raise naming the bad one.

    Only their form: looking the connection up at DAG-parse time would be database access
    at the top level of a DAG file.

    :raises PolicyConfigError: naming the argument and its value.
    """
    from waitwise.triggers.file import check_conn_id

    return (
        check_conn_id("conn_id", conn_id),
        check_sql(sql),
        check_parameters(parameters),
        Condition.from_config(condition),
        positive_seconds("query_timeout", query_timeout),
    )


class SqlConditionTrigger(PolicyTrigger):
    """Poll a SQL query until its first cell meets ``condition``, on shared pooled connections.

    :param conn_id: an Airflow connection whose hook is a ``DbApiHook`` (PostgreSQL, MySQL,
        SQLite, ...: any ``common.sql`` provider).
    :param sql: one statement; ``sql`` is templated, but prefer bound ``parameters`` for
        values (Jinja pastes text into SQL).
    :param parameters: bound by the driver (PEP 249), never formatted into the SQL: a dict
        for named placeholders (``%(name)s`` on PostgreSQL), a list for positional ones;
        JSON scalars or lists of them.  Templated.
    :param condition: ``None`` (the first cell is truthy) or a
        :class:`~waitwise.triggers.sql.rules.Condition` config such as
        ``{"op": ">=", "value": 100}``.  No row counts as a NULL first cell.
    :param query_timeout: seconds one check may run (PostgreSQL ``statement_timeout``); a
        check that times out is a transient probe error.
    :param wait: the :class:`~waitwise.triggers.spec.WaitSpec` fields (``poll``,
        ``timeout``, ...); an unknown one is an error.

    Rebuilt from a damaged row, the constructor raises only ``TypeError``.
    """

    # Airflow stores the class path in its trigger rows: the package's, not this module's, so
    # the module can move inside the package without a migration of stored rows.
    __module__ = "waitwise.triggers.sql"

    prober: ClassVar[Prober] = PROBER

    def __init__(
        self,
        *,
        conn_id: str,
        sql: str,
        parameters: dict[str, Any] | list[Any] | None = None,
        condition: dict[str, Any] | None = None,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        **wait: Any,
    ) -> None:
        with rebuilding(type(self)):
            super().__init__(WaitSpec.from_config(wait))
            checked = check_sql_arguments(conn_id, sql, parameters, condition, query_timeout)
        self.conn_id, self.sql, self.parameters, self.condition, self.query_timeout = checked

    def kind_kwargs(self) -> dict[str, Any]:
        """Return the SQL kind's kwargs (plain JSON)."""
        return {
            "conn_id": self.conn_id,
            "sql": self.sql,
            "parameters": self.parameters,
            "condition": self.condition.to_config(),
            "query_timeout": self.query_timeout,
        }

    def describe(self) -> str:
        """Return the connection and the start of the statement, for log lines and messages."""
        text = " ".join(self.sql.split())
        short = text if len(text) <= 60 else text[:59] + "…"
        return f"{self.conn_id}: {short} ({self.condition.describe()})"

    async def prepare(self) -> SqlQuery:
        """Check the rendered ``sql``/``parameters``; read the connection (async API).

        :raises PolicyConfigError: rendered arguments that are not valid.
        :raises AirflowNotFoundException: an unknown connection id (ends the wait).
        """
        from airflow.sdk import BaseHook

        sql = check_sql(self.sql)  # templated: rendered in the triggerer since __init__
        parameters = check_parameters(self.parameters)
        connection = await BaseHook.aget_connection(self.conn_id)
        PROBER.use(connection)
        statement = Statement(
            conn_id=self.conn_id,
            sql=sql,
            parameters_json=json.dumps(parameters, sort_keys=True),
            timeout_s=self.query_timeout,
        )
        return SqlQuery(statement, self.condition)
