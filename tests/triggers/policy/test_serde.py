from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given

from tests.triggers.policy.strategies import policies
from waitwise.triggers.policy import (
    ENTRY_POINT_GROUP,
    JSON,
    POLICY_KINDS,
    AirflowExponential,
    Capped,
    Constant,
    DecorrelatedJitter,
    EqualJitter,
    Exponential,
    FullJitter,
    IntervalPolicy,
    Linear,
    PolicyConfigError,
    policy_from_config,
    policy_kinds,
    rebuildable,
    serde,
)
from waitwise.triggers.policy._base import PolicyBase


@pytest.mark.parametrize(
    ("policy", "config"),
    [
        (Constant(5), {"kind": "constant", "interval": 5.0}),
        (
            Linear(1, 2, 10),
            {"kind": "linear", "initial": 1.0, "increment": 2.0, "cap": 10.0},
        ),
        (
            Exponential(1, 2, 60),
            {"kind": "exponential", "initial": 1.0, "factor": 2.0, "cap": 60.0},
        ),
        (
            AirflowExponential(5),
            {"kind": "airflow_exponential", "poke_interval": 5.0, "max_wait": None},
        ),
        (
            AirflowExponential(5, 60),
            {"kind": "airflow_exponential", "poke_interval": 5.0, "max_wait": 60.0},
        ),
        (
            FullJitter(Constant(5)),
            {"kind": "full_jitter", "inner": {"kind": "constant", "interval": 5.0}},
        ),
        (
            EqualJitter(Constant(5)),
            {"kind": "equal_jitter", "inner": {"kind": "constant", "interval": 5.0}},
        ),
        (
            DecorrelatedJitter(1, 30),
            {"kind": "decorrelated_jitter", "base": 1.0, "cap": 30.0},
        ),
        (
            Capped(FullJitter(Constant(5)), 3),
            {
                "kind": "capped",
                "inner": {
                    "kind": "full_jitter",
                    "inner": {"kind": "constant", "interval": 5.0},
                },
                "cap": 3.0,
            },
        ),
    ],
)
def test_config_is_plain_json_and_rebuilds_the_policy(policy, config):
    assert policy.to_config() == config
    assert policy_from_config(json.loads(json.dumps(config))) == policy


def test_optional_fields_take_their_defaults():
    config: dict[str, JSON] = {"kind": "airflow_exponential", "poke_interval": 5}
    assert policy_from_config(config) == AirflowExponential(5, None)


def test_every_built_in_policy_has_a_kind():
    # By name: dataclass(slots=True) leaves the pre-slots class among the subclasses.
    expected = {cls.kind: cls.__name__ for cls in PolicyBase.__subclasses__()}
    del expected["planned"]  # one wait's plan, built for each wait, never rebuilt from kwargs
    kinds = {**POLICY_KINDS, **serde._learned_kinds()}
    assert {kind: cls.__name__ for kind, cls in kinds.items()} == expected


KINDS = (
    "adaptive, airflow_exponential, capped, constant, decorrelated_jitter, equal_jitter, "
    "exponential, full_jitter, linear, recent_average"
)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([1], "policy config must be a mapping, got [1]"),
        ({"interval": 5}, f"policy kind must be one of {KINDS}; got None"),
        ({"kind": "fibonacci"}, f"policy kind must be one of {KINDS}; got 'fibonacci'"),
        ({"kind": 3}, f"policy kind must be one of {KINDS}; got 3"),
        (
            {"kind": "constant", "interval": 5, "intervl": 6, "jitter": True},
            "'constant' policy got unknown fields ['intervl', 'jitter']",
        ),
        (
            {"kind": "linear", "initial": 1},
            "'linear' policy is missing fields ['cap', 'increment']",
        ),
        ({"kind": "constant", "interval": -1}, "Constant.interval must be >= 0.01, got -1"),
        ({"kind": "constant", "interval": "5"}, "Constant.interval must be a number, got '5'"),
        (
            {"kind": "full_jitter", "inner": {"kind": "nope"}},
            f"policy kind must be one of {KINDS}; got 'nope'",
        ),
        (
            {"kind": "full_jitter", "inner": 5},
            "FullJitter.inner must be an interval policy, got 5",
        ),
    ],
)
def test_rejects_bad_configs_naming_the_problem(config, message):
    with pytest.raises(PolicyConfigError, match=f"^{re.escape(message)}$"):
        policy_from_config(config)


@given(policies)
def test_round_trip_through_json_is_the_identity(policy: IntervalPolicy):
    config = json.loads(json.dumps(policy.to_config()))
    assert policy_from_config(config) == policy
    assert policy_from_config(config).to_config() == policy.to_config()


POLICY_MODULE = '''
from dataclasses import dataclass

@dataclass(frozen=True)
class Fibonacci:
    """A user's policy, shipped in an installed package and registered by entry point."""

    unit: float = 1.0
    kind = "fibonacci"
    max_interval = float("inf")

    def next_interval(self, state, rng):
        a, b = 1, 1
        for _ in range(max(state.attempt - 1, 0)):
            a, b = b, a + b
        return self.unit * a

    def to_config(self):
        return {"kind": self.kind, "unit": self.unit}
'''


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real distribution on sys.path that registers a policy under waitwise.policies."""
    (tmp_path / "fib_policy.py").write_text(POLICY_MODULE)
    info = tmp_path / "fib_policy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fib-policy\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nfibonacci = fib_policy:Fibonacci\n"
        "constant = fib_policy:Fibonacci\n"  # may not shadow a built-in kind
        "broken = fib_policy:Missing\n"  # fails to load: left out, logged
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    policy_kinds.cache_clear()
    yield
    policy_kinds.cache_clear()


@pytest.mark.usefixtures("installed_plugin")
def test_a_policy_registered_by_entry_point_is_rebuilt_and_validated() -> None:
    kinds = policy_kinds()
    assert kinds["constant"] is Constant
    assert "broken" not in kinds
    policy = policy_from_config({"kind": "fibonacci", "unit": 2.0})
    assert type(policy).__name__ == "Fibonacci"
    assert rebuildable(policy) == policy
    with pytest.raises(PolicyConfigError, match="unknown fields"):
        policy_from_config({"kind": "fibonacci", "unit": 2.0, "speed": 3})


def test_an_unregistered_custom_policy_is_refused_at_parse_time() -> None:
    class Local(Constant):
        kind = "local_only"

    with pytest.raises(PolicyConfigError, match=r"entry-point group 'waitwise\.policies'"):
        rebuildable(Local(interval=3.0))
