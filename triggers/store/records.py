"""One finished (or re-opened) wait, as adaptive, monitoring and alerting read it.

A record is keyed by task instance try, ``(dag_id, task_id, run_id, map_index,
try_number)``: a trigger that runs twice (HA, restart) upserts the same key, so the
wait is recorded once. Every timestamp is float epoch seconds UTC; ``None`` means
"did not happen" (never seen, never detected) or "unknown" (no logical date).

Derived figures the readers need and how to get them::

    arrival delay   first_seen_at - scheduled_at   (arrival-pattern learning)
    detection lag   detected_at - first_seen_at    (poll-interval tuning)
    wait duration   ended_at - started_at          (worker/triggerer cost)
    slack           deadline_at - detected_at      (alert before the deadline)
    arrival bounds  (last_miss_at, first_seen_at]  (the data landed in between)

Schemas: 2 adds ``last_miss_at``; 3 (current) adds what a learned policy predicted
(``model_version``, ``eta_at`` and its 80% interval ``eta_low_at``/``eta_high_at``), so
the prediction's error can be measured against ``first_seen_at``.  Older records are read
as they are: ``schema`` stays, the fields they lack are ``None`` (unknown), and
:meth:`WaitRecord.to_json_dict` writes them back without those fields.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, Final, TypeAlias

from waitwise.triggers.errors import WaitRecordError

WAIT_RECORD_SCHEMA: Final = 3
READABLE_SCHEMAS: Final = (1, 2, 3)
SOURCE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""Source names double as file and key names: no ``/``, no leading dot, <= 100 chars."""

WaitKey: TypeAlias = tuple[str, str, str, int, int]


def validate_source(source: object) -> str:
    """Return ``source`` if valid, else raise :class:`WaitRecordError`.

    :param source: a name matching :data:`SOURCE_PATTERN`.
    """
    if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
        raise WaitRecordError(f"source must match {SOURCE_PATTERN.pattern}, got {source!r}")
    return source


class WaitOutcome(enum.Enum):
    """How a wait ended; :attr:`breaker_verdict` is what the breaker learns."""

    SUCCESS = "success"  # the data arrived and was detected
    TIMEOUT = "timeout"  # the deadline passed; the task fails
    SKIPPED = "skipped"  # the deadline passed; the task was skipped (soft_fail / profile)
    REOPENED = "reopened"  # the deadline passed and the wait was re-opened
    BREAKER_OPEN = "breaker_open"  # rejected by the open breaker, zero pokes
    ERROR = "error"  # probe errors exhausted their retries, or the check crashed
    CANCELLED = "cancelled"  # the trigger was cancelled (task cleared or marked)

    @property
    def breaker_verdict(self) -> bool | None:
        """Return ``True``/``False`` for a breaker success/failure, else ``None``.

        ``REOPENED`` is an intermediate step (the final record decides), and waits the
        breaker rejected or that were cancelled say nothing about the source.
        """
        return _VERDICTS[self]


_VERDICTS: Final = {
    WaitOutcome.SUCCESS: True,
    WaitOutcome.TIMEOUT: False,
    WaitOutcome.SKIPPED: False,
    WaitOutcome.ERROR: False,
    WaitOutcome.REOPENED: None,
    WaitOutcome.BREAKER_OPEN: None,
    WaitOutcome.CANCELLED: None,
}
_NAMES: Final = ("profile", "dag_id", "task_id", "run_id")
_COUNTS: Final = ("try_number", "pokes", "reopens", "error_count")
_TIMES: Final = ("started_at", "ended_at")
_OPTIONAL_TIMES: Final = (
    "scheduled_at",
    "deadline_at",
    "first_seen_at",
    "detected_at",
    "last_miss_at",
    "eta_at",
    "eta_low_at",
    "eta_high_at",
)
_SINCE_SCHEMA_3: Final = ("model_version", "eta_at", "eta_low_at", "eta_high_at")
_ADDED_AFTER: Final = {1: ("last_miss_at", *_SINCE_SCHEMA_3), 2: _SINCE_SCHEMA_3}
"""The fields a record of each older schema does not have."""


def _is_time(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0


@dataclass(frozen=True, slots=True)
class WaitRecord:
    """A wait's history entry.

    :param source: the data source waited for (see :func:`validate_source`).
    :param profile: the reliability profile name in force.
    :param try_number: the task instance try; with dag/task/run/map_index the key.
    :param started_at: when the wait (this try) started polling.
    :param ended_at: when this record was written: detection, deadline or give-up.
    :param outcome: how the wait ended.
    :param map_index: ``-1`` for unmapped tasks, as in Airflow.
    :param scheduled_at: the run's logical date / data interval end, if any.
    :param deadline_at: the absolute deadline the wait had, if any.
    :param first_seen_at: when the data was first observed, if ever.
    :param detected_at: when the wait declared success, if it did.
    :param pokes: probes made by this try, including failed ones.
    :param reopens: how many times the wait re-opened after a deadline.
    :param error_count: probes that raised a transient error.
    :param last_error_kind: class name of the last probe error, if any.
    :param last_miss_at: the last poke that found nothing, if any: the data arrived
        after it (and at or before ``first_seen_at``). ``None`` in schema-1 records.
    :param model_version: the arrival model the wait planned its pokes with, if any.
    :param eta_at: the predicted median arrival when the wait started, if any.
    :param eta_low_at: the low end of the prediction's 80% interval.
    :param eta_high_at: the high end of the prediction's 80% interval.
    :param schema: record schema version; readers reject versions they do not know.
    """

    source: str
    profile: str
    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    started_at: float
    ended_at: float
    outcome: WaitOutcome
    map_index: int = -1
    scheduled_at: float | None = None
    deadline_at: float | None = None
    first_seen_at: float | None = None
    detected_at: float | None = None
    pokes: int = 0
    reopens: int = 0
    error_count: int = 0
    last_error_kind: str | None = None
    last_miss_at: float | None = None
    model_version: str | None = None
    eta_at: float | None = None
    eta_low_at: float | None = None
    eta_high_at: float | None = None
    schema: int = WAIT_RECORD_SCHEMA

    def __post_init__(self) -> None:
        if _plainly_valid(self):
            return
        validate_source(self.source)
        for name in _ADDED_AFTER.get(self.schema, ()):
            if getattr(self, name) is not None:
                value = getattr(self, name)
                raise WaitRecordError(f"a schema-{self.schema} record has no {name}, got {value!r}")
        for name, ok, want in _CHECKS:
            value = getattr(self, name)
            if not ok(value):
                raise WaitRecordError(f"{name} must be {want}, got {value!r}")

    @property
    def key(self) -> WaitKey:
        """Return the idempotency key (dag_id, task_id, run_id, map_index, try)."""
        return (self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number)

    @property
    def order(self) -> tuple[float, float, WaitKey]:
        """Return the history sort key: by ``ended_at``, ties by start, then key."""
        return (self.ended_at, self.started_at, self.key)

    def to_json_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict, the inverse of :meth:`from_json_dict`."""
        data = {name: getattr(self, name) for name in _FIELD_ORDER}
        data["outcome"] = self.outcome.value
        for name in _ADDED_AFTER.get(self.schema, ()):
            del data[name]
        return data

    @classmethod
    def from_json_dict(cls, data: object) -> WaitRecord:
        """Rebuild a record, raising :class:`WaitRecordError` on damaged input.

        :param data: a decoded JSON object as written by :meth:`to_json_dict`.
        """
        if not isinstance(data, Mapping):
            raise WaitRecordError(f"wait record must be an object, got {data!r}")
        schema = data.get("schema")
        if type(schema) is not int or schema not in READABLE_SCHEMAS:
            raise WaitRecordError(f"unsupported wait record schema {schema!r}")
        names = data.keys()
        expected = _FIELDS - frozenset(_ADDED_AFTER.get(schema, ()))
        unknown, missing = names - expected, _REQUIRED - names
        if unknown or missing:
            diff = sorted(map(str, unknown | missing))
            raise WaitRecordError(f"wait record fields differ from schema: {diff}")
        values = dict(data)
        outcome = values["outcome"]
        values["outcome"] = _OUTCOMES.get(outcome) if isinstance(outcome, str) else None
        if values["outcome"] is None:
            raise WaitRecordError(f"unknown outcome {outcome!r}")
        return cls(**values)


def _check(names: tuple[str, ...], ok: Callable[[Any], bool], want: str) -> _Checks:
    return tuple((name, ok, want) for name in names)


_Checks: TypeAlias = tuple[tuple[str, Callable[[Any], bool], str], ...]
_CHECKS: Final[_Checks] = (
    *_check(_NAMES, lambda v: isinstance(v, str) and v != "", "a non-empty str"),
    *_check(_COUNTS, lambda v: type(v) is int and v >= 0, "an int >= 0"),
    *_check(("map_index",), lambda v: type(v) is int and v >= -1, "an int >= -1"),
    *_check(_TIMES, _is_time, "epoch seconds >= 0"),
    *_check(_OPTIONAL_TIMES, lambda v: v is None or _is_time(v), "None or epoch seconds"),
    *_check(("outcome",), lambda v: isinstance(v, WaitOutcome), "a WaitOutcome"),
    *_check(("last_error_kind",), lambda v: v is None or isinstance(v, str), "None or a str"),
    *_check(("model_version",), lambda v: v is None or isinstance(v, str), "None or a str"),
    *_check(("schema",), lambda v: type(v) is int and v in READABLE_SCHEMAS, "1, 2 or 3"),
)
"""Every field's check, built once (records are decoded by the 100,000)."""
_FIELD_ORDER: Final = tuple(f.name for f in fields(WaitRecord))
_FIELDS: Final = frozenset(_FIELD_ORDER)
_REQUIRED: Final = frozenset(f.name for f in fields(WaitRecord) if f.default is MISSING)
_OUTCOMES: Final = {outcome.value: outcome for outcome in WaitOutcome}
_NUMBER: Final = (int, float)
_INF: Final = math.inf


def _time(value: object) -> bool:
    return type(value) in _NUMBER and 0 <= value < _INF  # type: ignore[operator]


def _plainly_valid(r: WaitRecord) -> bool:
    """Return True if ``r`` passes every check, in one expression (the common case).

    Stricter than the checks (exact types), so a record it rejects is checked field by
    field, which raises with the field's name; it exists because history reads decode
    records by the 100,000.
    """
    return bool(
        type(r.source) is str
        and SOURCE_PATTERN.fullmatch(r.source)
        and type(r.profile) is str
        and r.profile
        and type(r.dag_id) is str
        and r.dag_id
        and type(r.task_id) is str
        and r.task_id
        and type(r.run_id) is str
        and r.run_id
        and type(r.try_number) is int
        and r.try_number >= 0
        and type(r.pokes) is int
        and r.pokes >= 0
        and type(r.reopens) is int
        and r.reopens >= 0
        and type(r.error_count) is int
        and r.error_count >= 0
        and type(r.map_index) is int
        and r.map_index >= -1
        and _time(r.started_at)
        and _time(r.ended_at)
        and (r.scheduled_at is None or _time(r.scheduled_at))
        and (r.deadline_at is None or _time(r.deadline_at))
        and (r.first_seen_at is None or _time(r.first_seen_at))
        and (r.detected_at is None or _time(r.detected_at))
        and type(r.outcome) is WaitOutcome
        and (r.last_error_kind is None or type(r.last_error_kind) is str)
        and type(r.schema) is int
        and (r.last_miss_at is None or (r.schema >= 2 and _time(r.last_miss_at)))
        and r.schema in READABLE_SCHEMAS
        and (
            (
                r.schema == 3
                and (r.model_version is None or type(r.model_version) is str)
                and (r.eta_at is None or _time(r.eta_at))
                and (r.eta_low_at is None or _time(r.eta_low_at))
                and (r.eta_high_at is None or _time(r.eta_high_at))
            )
            or (
                r.schema < 3
                and r.model_version is None
                and r.eta_at is None
                and r.eta_low_at is None
                and r.eta_high_at is None
            )
        )
    )
