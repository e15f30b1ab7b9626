"""What a file watch is: :class:`WatchSpec`, built from the trigger's kwargs by :func:`build_spec`.

The kwargs are the watch's one definition: :meth:`WatchSpec.to_config` is what
:meth:`~waitwise.triggers.asset.FileAssetTrigger.serialize` stores, and a part left unset
comes from the reliability profile (else the defaults here).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from waitwise.triggers.breaker import BreakerConfig
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import Exponential, IntervalPolicy
from waitwise.triggers.profiles import ReliabilityProfile, RetryStrategy, get_profile
from waitwise.triggers.spec import DEFAULT_RETRY, check_store, shared_policy, shared_retry
from waitwise.triggers.store import validate_source

__all__ = ["DEFAULT_POLL", "DETECT_MODES", "SPEC_VERSION", "UNSET", "WatchSpec", "build_spec"]

DETECT_MODES: Final = ("auto", "events", "poll")
DEFAULT_POLL: Final = Exponential(initial=5.0, factor=2.0, cap=60.0)
"""The poll policy of a watch without ``profile`` or ``poll``: 5 s, doubling to 1 min idle."""
SPEC_VERSION: Final = 1


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = _Unset()
"""Marks a kwarg not passed: the profile's value (or the default) applies."""

PolicyArg = IntervalPolicy | Mapping[str, Any] | _Unset
RetryArg = RetryStrategy | Mapping[str, Any] | _Unset
BreakerArg = BreakerConfig | Mapping[str, Any] | None | _Unset


def _fail(name: str, value: object, want: str) -> PolicyConfigError:
    return PolicyConfigError(f"{name} must be {want}, got {value!r}")


def _check_directory(directory: object) -> str:
    if not isinstance(directory, str) or not os.path.isabs(directory) or "\0" in directory:
        raise _fail("directory", directory, "an absolute path")
    return os.path.normpath(directory)


def _check_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not pattern or "/" in pattern or "\0" in pattern:
        raise _fail("pattern", pattern, "a glob on file names (no '/'), e.g. 'partner_*.xml'")
    return pattern


def _check_detect(detect: object) -> str:
    if detect not in DETECT_MODES:
        raise _fail("detect", detect, f"one of {list(DETECT_MODES)}")
    return str(detect)


def _optional_text(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(name, value, "a string or None")
    return value


def _policy(value: object) -> IntervalPolicy:
    if isinstance(value, Mapping):
        return shared_policy(value)
    if hasattr(value, "next_interval") and hasattr(value, "to_config"):
        return shared_policy(value.to_config())  # validates that it rebuilds
    raise _fail("poll", value, "an interval policy or its config")


def _retry(value: object) -> RetryStrategy:
    if isinstance(value, RetryStrategy):
        return value
    if isinstance(value, Mapping):
        return shared_retry(value)
    raise _fail("retry", value, "a RetryStrategy or its config")


def _breaker(value: object) -> BreakerConfig | None:
    if value is None or isinstance(value, BreakerConfig):
        return value
    if isinstance(value, Mapping):
        return BreakerConfig.from_config(value)
    raise _fail("breaker", value, "a BreakerConfig, its config or None")


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """Everything a file watch knows: what it watches and how (the trigger's kwargs).

    The shapes are :class:`~waitwise.triggers.spec.WaitSpec`'s (``poll``, ``retry``,
    ``breaker`` and ``store`` configs); a watch has no deadline, so no ``timeout``.

    :param directory: the absolute directory listed (not recursive).
    :param pattern: an :func:`fnmatch.fnmatchcase` glob on basenames; hidden files match only
        a pattern that starts with ``.``.
    :param detect: ``"events"`` (inotify; refused where the filesystem cannot notify),
        ``"poll"``, or ``"auto"`` (events where possible, else polling).
    :param poll: scan intervals while nothing changes (restarted after any change).
    :param retry: its ``max_probe_errors`` failed scans in a row count one breaker failure
        (failed scans back off by ``poll``, see :func:`scan_forever`).
    :param source: the data source's name: turns on history records and the breaker.
    :param profile: the profile's name, recorded with the history.
    :param tier: the profile's tier, a metric tag.
    :param breaker: the source's breaker config (``None``: none).
    :param store: where history and breaker state live (see
        :func:`~waitwise.triggers.spec.check_store`).
    """

    directory: str
    pattern: str = "*"
    detect: str = "auto"
    poll: IntervalPolicy = DEFAULT_POLL
    retry: RetryStrategy = DEFAULT_RETRY
    source: str | None = None
    profile: str | None = None
    tier: str | None = None
    breaker: BreakerConfig | None = None
    store: Mapping[str, str] = field(default_factory=lambda: {"kind": "airflow"})

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "directory", _check_directory(self.directory))
        set_(self, "pattern", _check_pattern(self.pattern))
        set_(self, "detect", _check_detect(self.detect))
        set_(self, "poll", _policy(self.poll))
        set_(self, "retry", _retry(self.retry))
        set_(self, "breaker", _breaker(self.breaker))
        for name in ("profile", "tier"):
            _optional_text(name, getattr(self, name))
        if self.source is not None:
            try:
                validate_source(self.source)
            except ValueError as exc:
                raise PolicyConfigError(f"source: {exc}") from exc
        set_(self, "store", check_store(self.store))

    def to_config(self) -> dict[str, Any]:
        """Return the spec as plain JSON, with ``version`` (the trigger's kwargs)."""
        return {
            "version": SPEC_VERSION,
            "directory": self.directory,
            "pattern": self.pattern,
            "detect": self.detect,
            "poll": self.poll.to_config(),
            "retry": self.retry.to_config(),
            "source": self.source,
            "profile": self.profile,
            "tier": self.tier,
            "breaker": self.breaker.to_config() if self.breaker else None,
            "store": dict(self.store),
        }

    @property
    def watch_id(self) -> str:
        """Return what the watch is in records and log lines: ``<directory>/<pattern>``."""
        return os.path.join(self.directory, self.pattern)

    @property
    def cursor_key(self) -> str:
        """Return the asset-state-store key of this watch's cursor (directory and pattern)."""
        blob = f"{self.directory}\0{self.pattern}".encode()
        return "waitwise.cursor." + hashlib.blake2b(blob, digest_size=8).hexdigest()

    def matches(self, name: str) -> bool:
        """Return whether basename ``name`` matches the pattern (hidden files: see above)."""
        if name.startswith(".") and not self.pattern.startswith("."):
            return False
        return fnmatch.fnmatchcase(name, self.pattern)


def build_spec(
    *,
    directory: str,
    pattern: str,
    detect: str,
    source: str | None,
    profile: str | ReliabilityProfile | None,
    poll: PolicyArg,
    retry: RetryArg,
    breaker: BreakerArg,
    tier: str | _Unset | None,
    store: Mapping[str, str] | _Unset,
) -> WatchSpec:
    """Return the spec of the trigger's kwargs; the unset ones come from ``profile``.

    The preset is looked up only when a part is unset, so kwargs written by
    :meth:`WatchSpec.to_config` (every part set) rebuild even for a custom profile's name.

    :raises PolicyConfigError: naming the parameter and value.
    """
    unset = any(isinstance(v, _Unset) for v in (poll, retry, breaker, tier))
    preset = get_profile(profile) if profile is not None and unset else None
    if isinstance(profile, ReliabilityProfile):
        name: str | None = profile.name
    else:
        name = _optional_text("profile", profile)
    return WatchSpec(
        directory=directory,
        pattern=pattern,
        detect=detect,
        poll=_policy(_given(poll, preset.poll if preset else DEFAULT_POLL)),
        retry=_retry(_given(retry, preset.retry if preset else DEFAULT_RETRY)),
        source=source,
        profile=name,
        tier=_optional_text("tier", _given(tier, preset.tier if preset else None)),
        breaker=_breaker(_given(breaker, preset.breaker if preset else None)),
        store=check_store(_given(store, {"kind": "airflow"})),
    )


def _given(value: Any, default: Any) -> Any:
    return default if isinstance(value, _Unset) else value
