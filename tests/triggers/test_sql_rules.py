"""The SQL kind's pure rules: the condition language, argument checks, error classes."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pytest

from tests.test_layering import _violations
from waitwise.triggers.errors import PolicyConfigError, ProbeError
from waitwise.triggers.sql.rules import (
    Condition,
    ErrorClass,
    SqlCheckError,
    check_parameters,
    check_sql,
    classify_error,
    count_statements,
    first_cell,
    json_cell,
)

RULES = Path(__file__).resolve().parents[2] / "triggers" / "sql" / "rules.py"


def test_rules_module_is_pure() -> None:
    assert _violations(RULES) == []


@pytest.mark.parametrize(
    ("config", "cell", "expected"),
    [
        (None, 1, True),
        (None, 0, False),
        (None, None, False),
        (None, "", False),
        (None, True, True),
        ({"op": "truthy"}, decimal.Decimal("0.0"), False),
        ({"op": "is_null"}, None, True),
        ({"op": "is_null"}, 0, False),
        ({"op": "not_null"}, 0, True),
        ({"op": "not_null"}, None, False),
        ({"op": ">=", "value": 100}, 100, True),
        ({"op": ">=", "value": 100}, 99, False),
        ({"op": ">=", "value": 100}, decimal.Decimal("100.0"), True),
        ({"op": ">", "value": 0.1}, decimal.Decimal("0.1"), False),  # 0.1 as written
        ({"op": "<", "value": 5}, 4.5, True),
        ({"op": "<=", "value": 5}, 6, False),
        ({"op": "==", "value": "ready"}, "ready", True),
        ({"op": "!=", "value": "ready"}, "loading", True),
        ({"op": "==", "value": True}, True, True),
        ({"op": ">=", "value": 100}, None, False),  # NULL / no row: not met
        ({"op": "!=", "value": 1}, None, False),
    ],
)
def test_condition_table(config: Any, cell: object, expected: bool) -> None:
    assert Condition.from_config(config).holds(cell) is expected


@pytest.mark.parametrize(
    ("config", "cell"),
    [
        ({"op": ">=", "value": "2024-01-01"}, dt.date(2024, 1, 2)),
        ({"op": "==", "value": "100"}, 100),
        ({"op": "==", "value": 1}, True),
    ],
)
def test_comparing_different_types_is_a_permanent_error(config: Any, cell: object) -> None:
    with pytest.raises(SqlCheckError, match="compare in SQL instead"):
        Condition.from_config(config).holds(cell)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"op": "~"}, "condition op must be one of ==, !=, <, <=, >, >=, truthy"),
        ({"op": ">="}, "needs a value"),
        ({"op": ">=", "value": [1]}, "needs a value"),
        ({"op": ">=", "value": float("nan")}, "needs a value"),
        ({"op": "truthy", "value": 1}, "takes no value"),
        ({"value": 1}, "needs an 'op'"),
        ({"op": ">=", "value": 1, "col": 2}, r"unknown key\(s\) \['col'\]"),
        ("x >= 1", "must be a mapping"),
        (lambda cell: cell > 1, "must be a mapping"),
    ],
)
def test_bad_conditions_name_the_argument(config: object, match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        Condition.from_config(config)


@pytest.mark.parametrize("config", [None, {"op": "is_null"}, {"op": ">=", "value": 1.5}])
def test_condition_config_round_trip(config: Any) -> None:
    condition = Condition.from_config(config)
    assert Condition.from_config(condition.to_config()) == condition


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select 1", 1),
        ("select 1;", 1),
        ("select 1; ;\n", 1),
        ("select ';'", 1),
        ('select 1 as ";"', 1),
        ("select 'it''s; fine'", 1),
        ("select E'\\'; still'", 1),
        ("select $$a;b$$", 1),
        ("select $tag$ ; $tag$", 1),
        ("select 1 -- ; comment\n", 1),
        ("select /* ; /* nested ; */ ; */ 1", 1),
        ("select $1", 1),
        ("select 1; select 2", 2),
        ("select 1; drop table t", 2),
        ("-- only a comment", 0),
        ("", 0),
    ],
)
def test_count_statements(sql: str, expected: int) -> None:
    assert count_statements(sql) == expected


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("", "non-empty string"),
        (None, "non-empty string"),
        ("select 1; delete from t", "exactly one statement, got 2"),
        ("/* nothing */", "exactly one statement, got 0"),
    ],
)
def test_check_sql(sql: object, match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        check_sql(sql)


def test_check_parameters_accepts_json_scalars_and_lists() -> None:
    assert check_parameters({"day": "2024-01-01", "n": 3, "ids": (1, 2)}) == {
        "day": "2024-01-01",
        "n": 3,
        "ids": [1, 2],
    }
    assert check_parameters(("a", None, 1.5, True)) == ["a", None, 1.5, True]
    assert check_parameters(None) is None


@pytest.mark.parametrize(
    ("parameters", "match"),
    [
        ({"day": dt.date(2024, 1, 1)}, r"parameters\['day'\] must be a JSON scalar"),
        ({"f": float("inf")}, r"parameters\['f'\]"),
        ({"d": {"nested": 1}}, r"parameters\['d'\]"),
        ([1, [1, [2]]], r"parameters\[1\]"),
        ({1: "x"}, "keys must be strings, got 1"),
        ("2024-01-01", "must be a dict .* or a list"),
    ],
)
def test_check_parameters_names_the_bad_value(parameters: object, match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        check_parameters(parameters)


@pytest.mark.parametrize(
    ("row", "expected"),
    [(None, None), ((5, 6), 5), ([], None), ({"n": 7, "m": 8}, 7), ({}, None)],
)
def test_first_cell(row: object, expected: object) -> None:
    assert first_cell(row) == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (decimal.Decimal("12"), 12),
        (decimal.Decimal("1.50"), "1.50"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (float("nan"), "nan"),
        (None, None),
        ("x" * 300, "x" * 199 + "…"),
    ],
)
def test_json_cell(cell: object, expected: object) -> None:
    assert json_cell(cell) == expected


class OperationalError(Exception):
    """A driver's PEP 249 class, as drivers name them."""


class ProgrammingError(Exception):
    pass


class Error(Exception):
    pass


def _with_state(cls: type[Exception], attribute: str, code: str) -> Exception:
    exc = cls("boom")
    setattr(exc, attribute, code)
    return exc


@pytest.mark.parametrize(
    ("exc", "expected", "reason"),
    [
        (_with_state(OperationalError, "sqlstate", "08006"), "transient", "connection"),
        (_with_state(OperationalError, "sqlstate", "57P01"), "transient", "shutting down"),
        (_with_state(OperationalError, "sqlstate", "57014"), "transient", "statement timeout"),
        (_with_state(OperationalError, "pgcode", "53300"), "transient", "too many connections"),
        (_with_state(ProgrammingError, "sqlstate", "42601"), "permanent", "syntax"),
        (_with_state(ProgrammingError, "pgcode", "42P01"), "permanent", "undefined table"),
        (_with_state(ProgrammingError, "sqlstate", "42501"), "permanent", "permission denied"),
        (_with_state(Error, "sqlstate", "25006"), "permanent", "read-only"),
        (_with_state(OperationalError, "sqlstate", "28P01"), "permanent", "password"),
        (OperationalError("connection refused"), "transient", "DB-API OperationalError"),
        (ProgrammingError("bad"), "permanent", "DB-API ProgrammingError"),
        (Error("driver"), "transient", "database error"),
        (ConnectionRefusedError(111, "refused"), "transient", "network"),
        (TimeoutError(), "transient", "network or timeout"),
        (SqlCheckError("no SQL hook"), "permanent", "cannot succeed"),
        (LookupError("The conn_id `x` isn't defined"), "permanent", "not a database error"),
        (ProbeError("x"), "permanent", "not a database error"),
    ],
)
def test_classify_error(exc: Exception, expected: str, reason: str) -> None:
    verdict = classify_error(exc)
    assert verdict.error_class is ErrorClass(expected)
    assert reason in verdict.reason
