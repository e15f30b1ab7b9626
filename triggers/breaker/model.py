"""Breaker data: its states, the per-source config and the persisted snapshot.

Both value objects validate on construction and round-trip through plain JSON-able
dicts; the transitions that move a snapshot between states live in
:mod:`waitwise.triggers.breaker.machine`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, TypeGuard

from waitwise.triggers.errors import BreakerConfigError, BreakerSnapshotError

__all__ = [
    "SNAPSHOT_SCHEMA",
    "BreakerConfig",
    "BreakerConfigError",
    "BreakerSnapshot",
    "BreakerSnapshotError",
    "BreakerState",
]

SNAPSHOT_SCHEMA: Final = 2
"""Version of :meth:`BreakerSnapshot.to_json_dict`; 1 (0.1.0) had no ``counted``."""

COUNTED_MAX: Final = 256
"""How many recently counted waits a snapshot remembers (their ids, newest last)."""


class BreakerState(enum.Enum):
    """Breaker states; the two ``FORCED_*`` states are the operators' kill switch."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    FORCED_CLOSED = "forced_closed"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seconds(value: object) -> TypeGuard[float]:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _require(error: type[ValueError], name: str, value: object, ok: bool, want: str) -> None:
    if not ok:
        raise error(f"{name} must be {want}, got {value!r}")


def _require_counts(obj: object, names: tuple[str, ...], low: int, error: type[ValueError]) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(error, name, value, _is_int(value) and value >= low, f"an int >= {low}")


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """How a source's breaker trips and recovers.

    :param failure_threshold: open after this many consecutive failed waits (>= 1).
    :param failure_rate: also open when the failed share of the last ``window``
        waits is at least this, in (0, 1]; ``None`` disables the rate rule.
    :param window: how many recent outcomes the snapshot keeps (>= 1).
    :param min_calls: the rate rule needs at least this many outcomes (1..window).
    :param cooldown_s: seconds from opening to half-open (> 0).
    :param half_open_max_probes: probing waits allowed at once while half-open.
    :param probe_timeout_s: seconds after which in-flight probes count as
        abandoned (> 0); ``None`` means ``cooldown_s``.
    """

    failure_threshold: int = 5
    failure_rate: float | None = None
    window: int = 20
    min_calls: int = 10
    cooldown_s: float = 300.0
    half_open_max_probes: int = 1
    probe_timeout_s: float | None = None

    def __post_init__(self) -> None:
        err, rate, probe = BreakerConfigError, self.failure_rate, self.probe_timeout_s
        counts = ("failure_threshold", "window", "min_calls", "half_open_max_probes")
        _require_counts(self, counts, 1, err)
        window_ok = self.min_calls <= self.window
        _require(err, "min_calls", self.min_calls, window_ok, f"<= window ({self.window})")
        rate_ok = rate is None or (_is_seconds(rate) and 0 < rate <= 1)
        _require(err, "failure_rate", rate, rate_ok, "None or in (0, 1]")
        cooldown_ok = _is_seconds(self.cooldown_s) and self.cooldown_s > 0
        _require(err, "cooldown_s", self.cooldown_s, cooldown_ok, "finite seconds > 0")
        probe_ok = probe is None or (_is_seconds(probe) and probe > 0)
        _require(err, "probe_timeout_s", probe, probe_ok, "None or finite seconds > 0")

    @property
    def effective_probe_timeout_s(self) -> float:
        """Return ``probe_timeout_s``, defaulting to ``cooldown_s``."""
        return self.cooldown_s if self.probe_timeout_s is None else self.probe_timeout_s

    def to_config(self) -> dict[str, Any]:
        """Return a plain JSON-able dict, the inverse of :meth:`from_config`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BreakerConfig:
        """Build a config from :meth:`to_config` output; unknown keys are rejected.

        :param config: parameter name -> value; missing ones take their defaults.
        """
        if not isinstance(config, Mapping):
            raise BreakerConfigError(f"breaker config must be a mapping: {config!r}")
        unknown = sorted(set(config) - {f.name for f in fields(cls)})
        if unknown:
            raise BreakerConfigError(f"unknown breaker config parameter(s): {unknown}")
        return cls(**config)


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """Everything the store persists for one source's breaker.

    :param source: the source this breaker guards.
    :param outcomes: recent wait outcomes, newest last, ``True`` = success.
    :param opened_at: when it last opened; required while ``OPEN``.
    :param half_open_probes_in_flight: probes granted and not yet reported.
    :param half_open_started_at: when the newest probe slot was granted; required
        while probes are in flight.
    :param reason: why the breaker is in its state (shown in rejections).
    :param version: bumped by the store on every persisted update.
    :param counted: ids of the last :data:`COUNTED_MAX` waits whose outcome was counted, so
        a wait that two triggerers both ran (HA, a takeover) counts once.
    """

    source: str
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    outcomes: tuple[bool, ...] = ()
    opened_at: float | None = None
    half_open_probes_in_flight: int = 0
    half_open_started_at: float | None = None
    reason: str = ""
    version: int = 0
    counted: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        err, state, outcomes = BreakerSnapshotError, self.state, self.outcomes
        source_ok = isinstance(self.source, str) and self.source != ""
        _require(err, "source", self.source, source_ok, "a non-empty str")
        _require(err, "state", state, isinstance(state, BreakerState), "a BreakerState")
        counts = ("consecutive_failures", "half_open_probes_in_flight", "version")
        _require_counts(self, counts, 0, err)
        ok = isinstance(outcomes, tuple) and all(type(o) is bool for o in outcomes)
        _require(err, "outcomes", outcomes, ok, "a tuple of bools")
        _require(err, "reason", self.reason, isinstance(self.reason, str), "a str")
        ok = isinstance(self.counted, tuple) and all(isinstance(c, str) for c in self.counted)
        _require(err, "counted", self.counted, ok, "a tuple of str")
        times = {
            "opened_at": state is BreakerState.OPEN,
            "half_open_started_at": self.half_open_probes_in_flight != 0,
        }
        for name, required in times.items():
            value = getattr(self, name)
            ok = _is_seconds(value) or (value is None and not required)
            _require(err, name, value, ok, "epoch seconds" + ("" if required else " or None"))

    def to_json_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict, the inverse of :meth:`from_json_dict`."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(
            state=self.state.value, outcomes=list(self.outcomes), counted=list(self.counted)
        )
        return {"schema": SNAPSHOT_SCHEMA, **data}

    @classmethod
    def from_json_dict(cls, data: object) -> BreakerSnapshot:
        """Rebuild a snapshot; raise :class:`BreakerSnapshotError` on damaged input.

        :param data: a decoded JSON object as written by :meth:`to_json_dict`.
        """
        if not isinstance(data, Mapping):
            raise BreakerSnapshotError(f"breaker snapshot must be an object: {data!r}")
        schema = data.get("schema")
        if schema not in (1, SNAPSHOT_SCHEMA) or isinstance(schema, bool):
            raise BreakerSnapshotError(f"unsupported schema {schema!r}")
        expected = {"schema"} | {f.name for f in fields(cls)} - (
            {"counted"} if schema == 1 else set()
        )
        if set(data) != expected:
            diff = sorted(map(str, set(data) ^ expected))
            raise BreakerSnapshotError(f"snapshot fields differ from schema: {diff}")
        values = {k: v for k, v in data.items() if k != "schema"}
        try:
            values["state"] = BreakerState(values["state"])
        except ValueError:
            raise BreakerSnapshotError(f"unknown state {values['state']!r}") from None
        for name in ("outcomes", "counted"):
            if isinstance(values.get(name), list):  # anything else fails validation
                values[name] = tuple(values[name])
        return cls(**values)
