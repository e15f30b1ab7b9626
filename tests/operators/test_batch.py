"""FileBatchSensor without a scheduler: arguments, start_from_trigger args, rendering, poke."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from waitwise.operators import FileBatchSensor
from waitwise.triggers import FileBatchTrigger
from waitwise.triggers.errors import PolicyConfigError


def sensor(**overrides: Any) -> FileBatchSensor:
    kwargs: dict[str, Any] = {
        "task_id": "batch",
        "filepaths": ["in/a_{{ ds_nodash }}.csv", "in/b_{{ ds_nodash }}.csv"],
        "timeout": 600,
    }
    kwargs.update(overrides)
    return FileBatchSensor(**kwargs)


def test_starts_in_the_triggerer_and_the_triggerer_renders_each_path() -> None:
    op = sensor(complete=2, detect="poll")
    args = op.start_trigger_args
    assert args is not None
    assert args.trigger_kwargs is not None
    assert args.trigger_cls == "waitwise.triggers.batch.FileBatchTrigger"
    kwargs = json.loads(json.dumps(args.trigger_kwargs))
    assert (kwargs["complete"], kwargs["detect"]) == (2, "poll")
    trigger = FileBatchTrigger(**kwargs)
    trigger.task_instance = SimpleNamespace(task_id="batch", task=op)  # type: ignore[assignment]
    end = dt.datetime(2026, 11, 29, 6, tzinfo=dt.UTC)
    context: Any = {"ds_nodash": "20261129", "data_interval_end": end}
    trigger.render_template_fields(context=context)
    assert trigger.filepaths == ["in/a_20261129.csv", "in/b_20261129.csv"]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"filepaths": "in/a.csv"}, "filepaths must be a non-empty list"),
        ({"filepaths": ["in/a.csv", 3]}, r"filepaths\[1\] must be a non-empty string, got 3"),
        ({"complete": -1}, "complete must be 'all', 'any' or an integer >= 1 .*got -1"),
        ({"detect": "watch"}, "detect must be one of auto, events, poll, got 'watch'"),
        ({"confine": "no"}, "confine must be True or False, got 'no'"),
    ],
)
def test_bad_arguments_fail_at_parse_time(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(PolicyConfigError, match=match):
        sensor(**overrides)


def test_poke_mode_applies_the_same_rule(tmp_path: Path) -> None:
    op = sensor(filepaths=[str(tmp_path / "a.csv"), str(tmp_path / "b*.csv")], deferrable=False)
    assert op.poke(context={}) is False
    (tmp_path / "a.csv").write_text("a")
    assert op.poke(context={}) is False
    (tmp_path / "b1.csv").write_text("b")
    assert op.poke(context={}) is True
