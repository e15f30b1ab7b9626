"""The declarative condition language: paths, operators, parse-time errors, round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waitwise.triggers.conditions import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_SUBJECT,
    AllOf,
    Compare,
    JsonPath,
    Not,
    Op,
    json_equal,
    parse_condition,
    parse_path,
)
from waitwise.triggers.errors import PolicyConfigError

DOC = {
    "status": "ready",
    "count": 120,
    "ratio": 0.5,
    "flag": False,
    "none": None,
    "items": [{"count": 100, "name": "a"}, {"count": 7}],
    "odd key": {"it's": 1},
    "tags": [],
}


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$", ()),
        ("$.status", ("status",)),
        ("$.items[0].count", ("items", 0, "count")),
        ("$.items[-1]", ("items", -1)),
        ('$["odd key"]', ("odd key",)),
        ("$['odd key']['it\\'s']", ("odd key", "it's")),
        ('$["a\\\\b"]', ("a\\b",)),
        ("$.a-b_c", ("a-b_c",)),
    ],
)
def test_paths_parse_to_their_steps(text: str, steps: tuple[Any, ...]) -> None:
    assert parse_path(text).steps == steps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status", "starting with '\\$'"),
        ("$.", "a name after '.' at position 2"),
        ("$.1a", "a name after '.' at position 2"),
        ("$[", "an integer index or a quoted key after '\\[' at position 2"),
        ("$['a'", "the closing '] at position 4"),
        ("$['a\\n']", "the only escapes"),
        ("$status", "'.' or '\\[' at position 1"),
        ("$" + ".a" * 33, "more than 32 steps"),
    ],
)
def test_bad_paths_are_refused_naming_where(text: str, message: str) -> None:
    with pytest.raises(PolicyConfigError, match=message):
        parse_path(text)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.status", "ready"),
        ("$.items[0].count", 100),
        ("$.items[-1].count", 7),
        ("$.items[2]", "MISSING"),
        ("$.items.count", "MISSING"),  # a key step on a list
        ("$.status[0]", "MISSING"),  # an index step on a string
        ("$.none", None),
        ('$["odd key"]["it\'s"]', 1),
    ],
)
def test_select_finds_the_value_or_missing(path: str, expected: Any) -> None:
    found = parse_path(path).select(DOC)
    assert (repr(found) if expected == "MISSING" else found) == expected


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"path": "$.status", "op": "==", "value": "ready"}, True),
        ({"path": "$.status", "op": "!=", "value": "ready"}, False),
        ({"path": "$.count", "op": "==", "value": 120.0}, True),
        ({"path": "$.flag", "op": "==", "value": 0}, False),  # a boolean is not a number
        ({"path": "$.flag", "op": "==", "value": False}, True),
        ({"path": "$.items[0].count", "op": ">=", "value": 100}, True),
        ({"path": "$.items[0].count", "op": ">", "value": 100}, False),
        ({"path": "$.ratio", "op": "<", "value": 1}, True),
        ({"path": "$.status", "op": "<", "value": 5}, False),  # string vs number: false
        ({"path": "$.status", "op": "<=", "value": "ready"}, True),
        ({"path": "$.status", "op": "in", "value": ["ready", "done"]}, True),
        ({"path": "$.status", "op": "not_in", "value": ["ready", "done"]}, False),
        ({"path": "$.status", "op": "matches", "value": "rea"}, False),  # anchored
        ({"path": "$.status", "op": "matches", "value": "rea.*"}, True),
        ({"path": "$.count", "op": "matches", "value": ".*"}, False),  # strings only
        ({"path": "$.none", "op": "exists"}, True),
        ({"path": "$.gone", "op": "exists"}, False),
        ({"path": "$.gone", "op": "not_exists"}, True),
        ({"path": "$.tags", "op": "truthy"}, False),
        ({"path": "$.tags", "op": "falsy"}, True),
        ({"path": "$.gone", "op": "falsy"}, True),
        ({"path": "$.gone", "op": "!=", "value": 1}, False),  # missing: false but for two ops
        ({"path": "$.gone", "op": "not_in", "value": [1]}, False),
        (
            {
                "all": [
                    {"path": "$.count", "op": ">", "value": 1},
                    {"path": "$.flag", "op": "falsy"},
                ]
            },
            True,
        ),
        ({"any": [{"path": "$.gone", "op": "exists"}, {"path": "$.tags", "op": "truthy"}]}, False),
        ({"not": {"path": "$.gone", "op": "exists"}}, True),
    ],
)
def test_operators(condition: dict[str, Any], holds: bool) -> None:
    assert parse_condition(condition).holds(DOC) is holds


def test_matched_reports_the_values_that_held() -> None:
    condition = parse_condition(
        {
            "any": [
                {"path": "$.status", "op": "==", "value": "ready"},
                {"path": "$.items[0].count", "op": ">", "value": 1000},
            ]
        }
    )
    assert condition.matched(DOC) == {"$.status": "ready"}
    assert str(condition) == '($.status == "ready" or $.items[0].count > 1000)'


def test_a_long_subject_does_not_match() -> None:
    condition = parse_condition({"path": "$", "op": "matches", "value": "a*"})
    assert condition.holds("a" * MAX_SUBJECT)
    assert not condition.holds("a" * (MAX_SUBJECT + 1))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("$.a == 1", "condition must be a mapping"),
        ({"path": "$.a"}, "needs both 'path' and 'op'"),
        ({"path": "$.a", "op": "~", "value": 1}, "condition.op must be one of"),
        ({"path": "$.a", "op": "=="}, "op '==' needs a 'value'"),
        ({"path": "$.a", "op": "exists", "value": 1}, "op 'exists' takes no 'value'"),
        ({"path": "$.a", "op": "<", "value": [1]}, "must be a number or a string"),
        ({"path": "$.a", "op": "in", "value": "ab"}, "must be a list"),
        ({"path": "$.a", "op": "matches", "value": "("}, "bad regular expression"),
        ({"path": "$.a", "op": "matches", "value": "a" * 300}, "at most 256 characters"),
        ({"path": "$.a", "op": "==", "value": float("nan")}, "condition.value must be a finite"),
        ({"path": "$.a", "op": "==", "value": {1: 2}}, "keys must be strings"),
        ({"path": "$.a", "op": "==", "value": object()}, "must be a JSON value"),
        ({"path": "$.a", "op": "==", "value": 1, "x": 2}, r"unexpected key\(s\) \['x'\]"),
        ({"all": []}, r"condition\.all must be a non-empty list"),
        ({"all": [{"path": "$.a", "op": "exists"}], "any": []}, "unexpected key"),
        ({"any": [{"path": "$.a", "op": "exists"}, {"path": "$.b", "op": "?"}]}, r"any\[1\]\.op"),
        ({"not": {"all": [{"path": "a", "op": "exists"}]}}, r"condition\.not\.all\[0\]\.path"),
        ({"unknown": 1}, "must have 'path' and 'op'"),
    ],
)
def test_parse_errors_name_the_bad_part(config: Any, message: str) -> None:
    with pytest.raises(PolicyConfigError, match=message):
        parse_condition(config)


def test_size_and_depth_are_capped() -> None:
    leaf = {"path": "$.a", "op": "exists"}
    with pytest.raises(PolicyConfigError, match=f"more than {MAX_NODES} nodes"):
        parse_condition({"all": [leaf] * MAX_NODES})
    deep: dict[str, Any] = leaf
    for _ in range(8):
        deep = {"not": deep}
    with pytest.raises(PolicyConfigError, match="deeper than 8 levels"):
        parse_condition(deep)


def test_a_parsed_condition_is_accepted_as_it_is() -> None:
    condition = AllOf((Compare(JsonPath(("a",)), Op.EXISTS),))
    assert parse_condition(condition) == condition


# ---------------------------------------------------------------- properties

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
steps = st.lists(st.text(max_size=6) | st.integers(-3, 3), max_size=4).map(tuple)
paths = steps.map(JsonPath)


def _compare_configs() -> st.SearchStrategy[dict[str, Any]]:
    unary = st.sampled_from(["exists", "not_exists", "truthy", "falsy"])
    ordered = st.sampled_from(["<", "<=", ">", ">="])
    return st.one_of(
        st.builds(lambda p, o: {"path": str(p), "op": o}, paths, unary),
        st.builds(
            lambda p, o, v: {"path": str(p), "op": o, "value": v},
            paths,
            st.sampled_from(["==", "!="]),
            json_values,
        ),
        st.builds(
            lambda p, o, v: {"path": str(p), "op": o, "value": v},
            paths,
            ordered,
            st.integers() | st.text(max_size=5),
        ),
        st.builds(
            lambda p, o, v: {"path": str(p), "op": o, "value": v},
            paths,
            st.sampled_from(["in", "not_in"]),
            st.lists(json_scalars, max_size=3),
        ),
        st.builds(
            lambda p, v: {"path": str(p), "op": "matches", "value": v},
            paths,
            st.sampled_from(["a.*", "[0-9]+", "ready|done", ""]),
        ),
    )


conditions = st.recursive(
    _compare_configs(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=6,
)


@given(steps)
def test_a_path_round_trips_through_its_text(path_steps: tuple[Any, ...]) -> None:
    assert parse_path(str(JsonPath(path_steps))).steps == path_steps


def _size(config: dict[str, Any], depth: int = 1) -> tuple[int, int]:
    """Return (nodes, depth) of a condition config."""
    children = (
        config.get("all") or config.get("any") or ([config["not"]] if "not" in config else [])
    )
    sizes = [_size(child, depth + 1) for child in children]
    return 1 + sum(n for n, _ in sizes), max([depth, *(d for _, d in sizes)])


def _within_limits(config: dict[str, Any]) -> bool:
    nodes, depth = _size(config)
    return nodes <= MAX_NODES and depth <= MAX_DEPTH


@settings(max_examples=200)
@given(conditions)
def test_a_condition_round_trips_through_plain_json(config: dict[str, Any]) -> None:
    if not _within_limits(config):
        with pytest.raises(PolicyConfigError, match=r"nodes|deeper"):
            parse_condition(config)
        return
    condition = parse_condition(config)
    again = parse_condition(json.loads(json.dumps(condition.to_config())))
    assert again == condition
    assert again.to_config() == condition.to_config()


@settings(max_examples=300)
@given(conditions.filter(_within_limits), json_values)
def test_evaluation_never_raises_and_not_inverts(config: dict[str, Any], doc: Any) -> None:
    condition = parse_condition(config)
    holds = condition.holds(doc)
    assert isinstance(holds, bool)
    negated = Not(condition)
    assert negated.holds(doc) is (not holds)
    assert isinstance(condition.matched(doc), dict)


@given(json_values)
def test_a_value_equals_itself_and_its_json_copy(value: Any) -> None:
    assert json_equal(value, json.loads(json.dumps(value)))
    condition = parse_condition({"path": "$.x", "op": "==", "value": value})
    assert condition.holds({"x": value})
    assert not parse_condition({"path": "$.x", "op": "!=", "value": value}).holds({"x": value})


@given(paths, json_values)
def test_exists_and_not_exists_are_complements(path: JsonPath, doc: Any) -> None:
    exists = parse_condition({"path": str(path), "op": "exists"}).holds(doc)
    assert parse_condition({"path": str(path), "op": "not_exists"}).holds(doc) is (not exists)
