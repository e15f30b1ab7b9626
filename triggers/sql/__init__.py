"""Wait on a table: a query's first cell meets a declarative condition (``SqlConditionTrigger``).

- :mod:`.rules` (pure): the condition language, argument checks, error classification;
- :mod:`.pool` (I/O): pooled DB-API connections per Airflow connection, capped, off the loop;
- :mod:`.trigger`: the trigger kind.
"""

from __future__ import annotations

from waitwise.triggers.sql.pool import (
    DEFAULT_MAX_CONNECTIONS,
    ConnectionPool,
    SqlProber,
    SqlQuery,
    Statement,
    connection_cap,
    run_statement,
)
from waitwise.triggers.sql.rules import (
    CONDITION_OPS,
    Condition,
    ErrorClass,
    SqlCheckError,
    Verdict,
    check_parameters,
    check_sql,
    classify_error,
    describe_error,
)
from waitwise.triggers.sql.trigger import (
    DEFAULT_QUERY_TIMEOUT,
    PROBER,
    SqlConditionTrigger,
    check_sql_arguments,
)

__all__ = [
    "CONDITION_OPS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_QUERY_TIMEOUT",
    "PROBER",
    "Condition",
    "ConnectionPool",
    "ErrorClass",
    "SqlCheckError",
    "SqlConditionTrigger",
    "SqlProber",
    "SqlQuery",
    "Statement",
    "Verdict",
    "check_parameters",
    "check_sql",
    "check_sql_arguments",
    "classify_error",
    "connection_cap",
    "describe_error",
    "run_statement",
]
