"""Trigger rows written by 0.1.0 inflate in this version, mean the same, and rebuild cleanly.

``data/trigger_kwargs_0.1.0.json`` holds rows recorded from the released 0.1.0 (git 0bff4ae):
the ``start_trigger_args`` kwargs a DAG serialized before an upgrade keeps handing the
scheduler (templated and rendered), and the kwargs of a trigger deferred from a worker.
Recorded by ``python -m devtools.record_kwargs`` run against a checkout of 0.1.0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow._shared.module_loading import import_string

from waitwise.triggers import FileArrivalTrigger, TriggerArgumentError, WaitSpec
from waitwise.triggers.spec import SPEC_VERSION

ROWS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "trigger_kwargs_0.1.0.json").read_text()
)["rows"]


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_0_1_0_row_inflates_and_means_the_same(name: str) -> None:
    row = ROWS[name]
    trigger = import_string(row["classpath"])(**row["kwargs"])
    assert isinstance(trigger, FileArrivalTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == row["classpath"]
    # the same values under the same keys; this version adds its version, the tier and the
    # path confinement (on by default: a relative path may not climb out of its base path)
    assert kwargs == {**row["kwargs"], "version": SPEC_VERSION, "tier": None, "confine": True}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_row_rewritten_by_this_version_rebuilds_to_itself(name: str) -> None:
    _classpath, kwargs = FileArrivalTrigger(**ROWS[name]["kwargs"]).serialize()
    rebuilt = FileArrivalTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize()[1] == kwargs


def test_a_row_from_a_future_version_fails_that_task_only() -> None:
    kwargs = dict(ROWS["defer/deferred"]["kwargs"], version=SPEC_VERSION + 1)
    with pytest.raises(TypeError, match="version must be 1 or 2, got 3"):
        FileArrivalTrigger(**kwargs)


def test_the_spec_reads_version_1_without_a_version_key() -> None:
    wait = dict(ROWS["start_from_trigger/low"]["kwargs"])
    for key in ("filepath", "fs_conn_id", "recursive"):
        del wait[key]
    spec = WaitSpec.from_config(wait)
    assert (spec.source, spec.profile, spec.retry.max_reopens) == ("partner_feed", "low", 2)
    assert spec.tier is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"poll": {"kind": "no_such_policy"}}, "policy kind must be one of"),
        ({"timeout": "soon"}, "timeout must be a number of seconds, got 'soon'"),
        ({"surprise": 1}, r"unknown wait argument\(s\) \['surprise'\]"),
        ({"retry": "often"}, "retry must be a config mapping"),
        ({"breaker": {"failure_threshold": -1}}, "failure_threshold"),
        ({"store": {"kind": "file", "root": "relative/dir"}}, "absolute dir"),
        ({"store": ["airflow"]}, "store must be a mapping"),
        ({"soft_fail": "false"}, "soft_fail must be True or False, got 'false'"),
        ({"started_at": float("nan")}, "started_at must be epoch seconds"),
        ({"filepath": None}, "filepath must be a non-empty string, got None"),
        ({"fs_conn_id": 7}, "fs_conn_id must be a connection id .*, got 7"),
        ({"poll": None}, "policy config must be a mapping"),
    ],
)
def test_a_damaged_row_raises_only_a_type_error_naming_the_problem(
    change: dict[str, Any], match: str
) -> None:
    kwargs = {**ROWS["start_from_trigger/plain"]["kwargs"], **change}
    with pytest.raises(TriggerArgumentError, match=match) as raised:
        FileArrivalTrigger(**kwargs)
    assert isinstance(raised.value, TypeError)  # what Airflow's triggerer handles
