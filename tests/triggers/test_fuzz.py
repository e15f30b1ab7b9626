"""Whatever a stored trigger row holds, rebuilding it constructs the trigger or raises only a
``TypeError`` (which Airflow's triggerer handles by failing that task), and never hangs."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from waitwise.triggers import FileArrivalTrigger, WaitSpec, WaitwiseError
from waitwise.triggers.policy import policy_from_config

ROWS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "trigger_kwargs_0.1.0.json").read_text()
)["rows"]
GOOD = {name: row["kwargs"] for name, row in ROWS.items()}

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def damaged_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A recorded row with some values replaced, some keys dropped and some added."""
    row = dict(GOOD[draw(st.sampled_from(sorted(GOOD)))])
    keys = sorted(row)
    for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
        row[key] = draw(json_value)
    for key in draw(st.lists(st.sampled_from(keys), max_size=2, unique=True)):
        row.pop(key, None)
    row.update(
        draw(
            st.dictionaries(
                st.sampled_from(["version", "tier", "confine", "extra"]), json_value, max_size=2
            )
        )
    )
    return row


@settings(max_examples=400, deadline=None)
@given(damaged_rows())
def test_a_damaged_row_constructs_or_raises_a_type_error(kwargs: dict[str, Any]) -> None:
    try:
        trigger = FileArrivalTrigger(**kwargs)
    except TypeError:  # Airflow: "failed to inflate", that task fails; nothing else is hurt
        return
    _classpath, again = trigger.serialize()
    assert FileArrivalTrigger(**json.loads(json.dumps(again))).serialize()[1] == again


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "kind",
                "interval",
                "initial",
                "factor",
                "cap",
                "inner",
                "base",
                "increment",
                "poke_interval",
                "max_wait",
            ]
        ),
        json_value,
        max_size=5,
    )
)
def test_a_policy_config_builds_or_raises_a_waitwise_error(config: dict[str, Any]) -> None:
    with contextlib.suppress(WaitwiseError):
        policy_from_config(config)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*sorted(WaitSpec.__dataclass_fields__), "version"]), json_value, max_size=6
    )
)
def test_a_spec_config_builds_or_raises_a_waitwise_error(config: dict[str, Any]) -> None:
    with contextlib.suppress(WaitwiseError):
        WaitSpec.from_config(config)
