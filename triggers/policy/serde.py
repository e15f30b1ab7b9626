"""Rebuild a policy from the plain-JSON config its ``to_config`` returned.

A trigger carries its policy in its serialized kwargs as ``policy.to_config()``, and the
triggerer that runs it calls :func:`policy_from_config` on that dict, so both ends agree
on the schedule. The config is ``{"kind": <discriminator>, <parameter>: <value>, ...}``,
and a wrapped policy (``inner``) is a nested config.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Final

from .backoff import Capped, Constant, Exponential, Linear
from .compat import AirflowExponential
from .errors import PolicyConfigError
from .jitter import DecorrelatedJitter, EqualJitter, FullJitter
from .protocol import JSON, IntervalPolicy

__all__ = ["POLICY_KINDS", "policy_from_config"]

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
"""The policy class for each ``"kind"`` a config may name."""


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
    build = POLICY_KINDS.get(kind) if isinstance(kind, str) else None
    if build is None:
        known = ", ".join(sorted(POLICY_KINDS))
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
