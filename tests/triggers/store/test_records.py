from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waitwise.triggers.store import (
    WaitOutcome,
    WaitRecord,
    WaitRecordError,
    validate_source,
)

from .fakes import NOT_IN_0_1_0, T0, make_record

GOOD = make_record(1).to_json_dict()


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (WaitOutcome.SUCCESS, True),
        (WaitOutcome.TIMEOUT, False),
        (WaitOutcome.SKIPPED, False),
        (WaitOutcome.ERROR, False),
        (WaitOutcome.REOPENED, None),
        (WaitOutcome.BREAKER_OPEN, None),
        (WaitOutcome.CANCELLED, None),
    ],
)
def test_breaker_verdict_per_outcome(outcome, verdict):
    assert outcome.breaker_verdict is verdict


def test_key_and_order():
    record = make_record(1, map_index=3, try_number=2)
    assert (record.key, record.order) == (
        ("ingest", "wait_for_file", "run-1", 3, 2),
        (record.ended_at, record.started_at, record.key),
    )


@pytest.mark.parametrize("source", ["finance", "a", "A.b-c_9", "x" * 100])
def test_valid_sources(source):
    assert validate_source(source) == source


@pytest.mark.parametrize("source", ["", ".x", "-x", "a/b", "a b", "x" * 101, None, 5, "é"])
def test_invalid_sources(source):
    with pytest.raises(WaitRecordError, match="source must match"):
        validate_source(source)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"profile": ""}, "profile must be a non-empty str, got ''"),
        ({"run_id": None}, "run_id must be a non-empty str, got None"),
        ({"try_number": -1}, "try_number must be an int >= 0, got -1"),
        ({"pokes": True}, "pokes must be an int >= 0, got True"),
        ({"error_count": 1.0}, "error_count must be an int >= 0, got 1.0"),
        ({"map_index": -2}, "map_index must be an int >= -1, got -2"),
        ({"started_at": math.nan}, "started_at must be epoch seconds >= 0, got nan"),
        ({"ended_at": -1.0}, "ended_at must be epoch seconds >= 0, got -1.0"),
        ({"detected_at": "now"}, "detected_at must be None or epoch seconds, got 'now'"),
        ({"outcome": "success"}, "outcome must be a WaitOutcome, got 'success'"),
        ({"last_error_kind": 3}, "last_error_kind must be None or a str, got 3"),
        ({"schema": 4}, "schema must be 1, 2 or 3, got 4"),
        ({"model_version": 3}, "model_version must be None or a str, got 3"),
        ({"eta_at": math.inf}, "eta_at must be None or epoch seconds, got inf"),
        ({"schema": 2, "eta_high_at": 5.0}, "a schema-2 record has no eta_high_at, got 5.0"),
        ({"last_miss_at": -5.0}, "last_miss_at must be None or epoch seconds, got -5.0"),
        ({"schema": 1, "last_miss_at": 5.0}, "a schema-1 record has no last_miss_at, got 5.0"),
    ],
)
def test_invalid_fields_name_field_and_value(changes, message):
    with pytest.raises(WaitRecordError) as excinfo:
        replace(make_record(1), **changes)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("text", "wait record must be an object, got 'text'"),
        ({**GOOD, "schema": 99}, "unsupported wait record schema 99"),
        ({k: v for k, v in GOOD.items() if k != "schema"}, "unsupported wait record schema None"),
        (
            {k: v for k, v in GOOD.items() if k != "run_id"},
            "wait record fields differ from schema: ['run_id']",
        ),
        ({**GOOD, "colour": "red"}, "wait record fields differ from schema: ['colour']"),
        ({**GOOD, "outcome": "meh"}, "unknown outcome 'meh'"),
        ({**GOOD, "pokes": -1}, "pokes must be an int >= 0, got -1"),
    ],
)
def test_damaged_json_is_rejected_with_a_clear_error(data, message):
    with pytest.raises(WaitRecordError) as excinfo:
        WaitRecord.from_json_dict(data)
    assert str(excinfo.value) == message


V1 = {k: v for k, v in GOOD.items() if k not in NOT_IN_0_1_0} | {"schema": 1}
"""A record as 0.1.0 wrote it: schema 1, no last_miss_at."""
V2 = {k: v for k, v in GOOD.items() if k not in NOT_IN_0_1_0[1:]} | {"schema": 2}
"""A record as 0.2 wrote it: schema 2, no prediction."""


def test_schema_1_records_are_read_as_they_are_and_written_back_unchanged():
    record = WaitRecord.from_json_dict(V1)
    assert (record.schema, record.last_miss_at, record.to_json_dict()) == (1, None, V1)


def test_a_schema_1_record_with_last_miss_at_is_damaged():
    with pytest.raises(WaitRecordError, match=r"fields differ from schema: \['last_miss_at'\]"):
        WaitRecord.from_json_dict({**V1, "last_miss_at": 1.0})


def test_schema_2_records_are_read_as_they_are_and_written_back_unchanged():
    record = WaitRecord.from_json_dict(V2)
    assert (record.schema, record.eta_at, record.to_json_dict()) == (2, None, V2)


def test_a_schema_2_record_with_a_prediction_is_damaged():
    with pytest.raises(WaitRecordError, match=r"fields differ from schema: \['eta_at'\]"):
        WaitRecord.from_json_dict({**V2, "eta_at": 1.0})


def test_new_records_are_schema_3_with_last_miss_at_and_the_prediction():
    record = make_record(1, last_miss_at=T0 + 50, model_version="12-ab", eta_at=T0 + 60)
    data = record.to_json_dict()
    assert (record.schema, data["last_miss_at"], data["model_version"], data["eta_at"]) == (
        3,
        T0 + 50,
        "12-ab",
        T0 + 60,
    )


def test_optional_fields_may_be_absent_in_json():
    data = {k: v for k, v in GOOD.items() if k not in ("pokes", "deadline_at")}
    assert WaitRecord.from_json_dict(data) == replace(make_record(1), pokes=0)


times = st.floats(0, 4e9, allow_nan=False)
names = st.text(min_size=1, max_size=250)


@st.composite
def records(draw: st.DrawFn) -> WaitRecord:
    return WaitRecord(
        source=draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", fullmatch=True)),
        profile=draw(names),
        dag_id=draw(names),
        task_id=draw(names),
        run_id=draw(names),
        try_number=draw(st.integers(0, 10**6)),
        started_at=draw(times),
        ended_at=draw(times),
        outcome=draw(st.sampled_from(WaitOutcome)),
        map_index=draw(st.integers(-1, 10**6)),
        scheduled_at=draw(st.none() | times),
        deadline_at=draw(st.none() | times),
        first_seen_at=draw(st.none() | times),
        detected_at=draw(st.none() | times),
        pokes=draw(st.integers(0, 10**9)),
        reopens=draw(st.integers(0, 100)),
        error_count=draw(st.integers(0, 10**9)),
        last_error_kind=draw(st.none() | st.text()),
        last_miss_at=draw(st.none() | times),
    )


@given(records())
def test_record_round_trips_through_json(record):
    assert WaitRecord.from_json_dict(json.loads(json.dumps(record.to_json_dict()))) == record
