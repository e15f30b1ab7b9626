"""Equal configs give one shared instance; invalid configs still raise every time."""

from __future__ import annotations

import pytest

from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.policy import Exponential
from waitwise.triggers.profiles import OnDeadline, RetryStrategy
from waitwise.triggers.spec import DEFAULT_RETRY, shared_policy, shared_retry


def test_equal_configs_share_one_instance() -> None:
    config = Exponential(initial=1.0, factor=2.0, cap=8.0).to_config()
    assert shared_policy(dict(config)) is shared_policy(dict(reversed(list(config.items()))))
    retry = RetryStrategy(on_deadline=OnDeadline.SKIP).to_config()
    assert shared_retry(retry) is shared_retry(dict(retry))
    assert shared_retry(None) is DEFAULT_RETRY


@pytest.mark.parametrize("attempt", [1, 2])
def test_invalid_configs_raise_every_time(attempt: int) -> None:
    with pytest.raises(PolicyConfigError, match="factor"):
        shared_policy({"kind": "exponential", "initial": 1.0, "factor": 0.5, "cap": 8.0})
