"""Async triggers that own the waiting: policy-driven polling, deadlines, breakers.

The public API; everything else is reached through its module.  Layers, innermost first:
``policy/`` (pure time arithmetic), ``breaker/`` (the pure breaker and its async ledger),
``spec`` and ``profiles`` (pure value objects), ``store/`` (history and breaker state),
``engine/`` (the async machinery every kind shares), ``base`` and the trigger kinds.
"""

from __future__ import annotations

from waitwise.triggers.adaptive import Adaptive, RecentAverage
from waitwise.triggers.asset import FileAssetTrigger
from waitwise.triggers.base import PolicyTrigger
from waitwise.triggers.batch import FileBatchTrigger
from waitwise.triggers.breaker import BreakerConfig, BreakerSnapshot, BreakerState
from waitwise.triggers.conditions import parse_condition
from waitwise.triggers.custom import ProbeTrigger
from waitwise.triggers.errors import (
    CheckError,
    ConfigError,
    PolicyConfigError,
    ProbeError,
    TriggerArgumentError,
    WaitwiseError,
)
from waitwise.triggers.events import FoundItem, WaitPayload, WaitStatus
from waitwise.triggers.file import FileArrivalTrigger
from waitwise.triggers.http import HttpConditionTrigger
from waitwise.triggers.policy import (
    AirflowExponential,
    Capped,
    Constant,
    DecorrelatedJitter,
    EqualJitter,
    Exponential,
    FullJitter,
    IntervalPolicy,
    Linear,
    PollState,
)
from waitwise.triggers.profiles import (
    HIGH,
    LOW,
    MEDIUM,
    AlertThresholds,
    OnBreakerOpen,
    OnDeadline,
    ReliabilityProfile,
    RetryStrategy,
    get_profile,
)
from waitwise.triggers.runtime import Runtime, use_runtime
from waitwise.triggers.spec import WaitSpec
from waitwise.triggers.sql import SqlConditionTrigger
from waitwise.triggers.store import AirflowStore, FileStore, WaitOutcome, WaitRecord, WaitStore

__all__ = [
    "HIGH",
    "LOW",
    "MEDIUM",
    "Adaptive",
    "AirflowExponential",
    "AirflowStore",
    "AlertThresholds",
    "BreakerConfig",
    "BreakerSnapshot",
    "BreakerState",
    "Capped",
    "CheckError",
    "ConfigError",
    "Constant",
    "DecorrelatedJitter",
    "EqualJitter",
    "Exponential",
    "FileArrivalTrigger",
    "FileAssetTrigger",
    "FileBatchTrigger",
    "FileStore",
    "FoundItem",
    "FullJitter",
    "HttpConditionTrigger",
    "IntervalPolicy",
    "Linear",
    "OnBreakerOpen",
    "OnDeadline",
    "PolicyConfigError",
    "PolicyTrigger",
    "PollState",
    "ProbeError",
    "ProbeTrigger",
    "RecentAverage",
    "ReliabilityProfile",
    "RetryStrategy",
    "Runtime",
    "SqlConditionTrigger",
    "TriggerArgumentError",
    "WaitOutcome",
    "WaitPayload",
    "WaitRecord",
    "WaitSpec",
    "WaitStatus",
    "WaitStore",
    "WaitwiseError",
    "get_profile",
    "parse_condition",
    "use_runtime",
]
