"""Rebuild a policy from the plain-JSON config its ``to_config`` returned.

A trigger carries its policy in its serialized kwargs as ``policy.to_config()``, and the
triggerer that runs it calls :func:`policy_from_config` on that dict, so both ends agree
on the schedule. The config is ``{"kind": <discriminator>, <parameter>: <value>, ...}``,
and a wrapped policy (``inner``) is a nested config.

Custom policies: the triggerer never imports DAG files, so a policy class defined there
cannot be rebuilt.  A package registers its policies under the entry-point group
:data:`ENTRY_POINT_GROUP` (name = the policy's ``kind``, value = ``module:Class``), installed
wherever the scheduler and triggerers run; :func:`policy_kinds` finds them.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Final

from .backoff import Capped, Constant, Exponential, Linear
from .compat import AirflowExponential
from .errors import PolicyConfigError
from .jitter import DecorrelatedJitter, EqualJitter, FullJitter
from .protocol import JSON, IntervalPolicy

__all__ = [
    "ENTRY_POINT_GROUP",
    "POLICY_KINDS",
    "policy_from_config",
    "policy_kinds",
    "rebuildable",
]

ENTRY_POINT_GROUP: Final = "waitwise.policies"
log = logging.getLogger(__name__)

POLICY_KINDS: Final[Mapping[str, Callable[..., IntervalPolicy]]] = {
    AirflowExponential.kind: AirflowExponential,
    Capped.kind: Capped,
    Constant.kind: Constant,
    DecorrelatedJitter.kind: DecorrelatedJitter,
    EqualJitter.kind: EqualJitter,
    Exponential.kind: Exponential,
    FullJitter.kind: FullJitter,
    Linear.kind: Linear,
}
"""The built-in policy class for each ``"kind"`` a config may name."""


@functools.cache
def policy_kinds() -> Mapping[str, Callable[..., IntervalPolicy]]:
    """Return every policy kind: the built-in ones and those registered by entry point.

    A registered kind never replaces a built-in one; one that fails to load is logged and
    left out (its configs then fail with "policy kind must be one of ...").
    """
    kinds = dict(POLICY_KINDS)
    kinds.update(_learned_kinds())
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in kinds:
            continue
        try:
            kinds[entry.name] = entry.load()
        except Exception:  # a broken plugin must not break the built-in kinds
            log.exception("Cannot load waitwise policy %s = %s", entry.name, entry.value)
    return kinds


def _learned_kinds() -> dict[str, Callable[..., IntervalPolicy]]:
    """Return the policies that learn from history (imported here: they build on this package)."""
    from waitwise.triggers.adaptive.policy import Adaptive, RecentAverage

    return {Adaptive.kind: Adaptive, RecentAverage.kind: RecentAverage}


def policy_from_config(config: Mapping[str, JSON]) -> IntervalPolicy:
    """Return the policy described by ``config``: the inverse of ``to_config``.

    :param config: ``{"kind": ..., <parameter>: <value>, ...}``; nested mappings are
        rebuilt as inner policies.
    :raises PolicyConfigError: naming the unknown kind, the unknown or missing fields,
        or the invalid parameter and its value.
    """
    if not isinstance(config, Mapping):
        raise PolicyConfigError(f"policy config must be a mapping, got {config!r}")
    kind = config.get("kind")
    kinds = policy_kinds()
    build = kinds.get(kind) if isinstance(kind, str) else None
    if build is None:
        known = ", ".join(sorted(kinds))
        raise PolicyConfigError(f"policy kind must be one of {known}; got {kind!r}")
    params = {name: value for name, value in config.items() if name != "kind"}
    _check_fields(kind, build, params)
    return build(**{name: _decode(value) for name, value in params.items()})


def _check_fields(
    kind: object, build: Callable[..., IntervalPolicy], params: Mapping[str, JSON]
) -> None:
    accepted = inspect.signature(build).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise PolicyConfigError(f"{kind!r} policy got unknown fields {unknown}")
    required = (n for n, p in accepted.items() if p.default is inspect.Parameter.empty)
    missing = sorted(set(required) - set(params))
    if missing:
        raise PolicyConfigError(f"{kind!r} policy is missing fields {missing}")


def _decode(value: JSON) -> object:
    return policy_from_config(value) if isinstance(value, Mapping) else value


def rebuildable(policy: object, name: str = "poll") -> IntervalPolicy:
    """Return ``policy`` if a triggerer can rebuild it from its config, else raise naming it.

    The check a DAG needs at parse time: an instance (not a class) whose ``to_config`` is
    plain JSON and gives back an equal policy through :func:`policy_from_config`, which
    knows only the built-in kinds and those registered by entry point.

    :raises PolicyConfigError: naming ``name``, the value and what is wrong.
    """
    if isinstance(policy, type) or not hasattr(policy, "next_interval"):
        hint = " (an instance, e.g. Exponential(...), not the class)" * isinstance(policy, type)
        raise PolicyConfigError(f"{name} must be an interval policy{hint}, got {policy!r}")
    try:
        config = policy.to_config()  # type: ignore[attr-defined]
        rebuilt = policy_from_config(json.loads(json.dumps(config)))
    except Exception as exc:  # any way of failing here would fail in the triggerer
        raise PolicyConfigError(
            f"{name}={policy!r} cannot be rebuilt by a triggerer: {exc}. A custom policy "
            f"must be registered under the entry-point group {ENTRY_POINT_GROUP!r}"
        ) from exc
    if rebuilt != policy:
        raise PolicyConfigError(f"{name}={policy!r} rebuilds as {rebuilt!r} from its config")
    return rebuilt
