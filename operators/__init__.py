"""Deferrable sensors that start and end in the triggerer."""

from __future__ import annotations

from waitwise.operators.base import PolicySensor, result_from_event
from waitwise.operators.breaker import BreakerOverrideOperator
from waitwise.operators.custom import ConditionSensor
from waitwise.operators.file import FileArrivalSensor, FileBatchSensor
from waitwise.operators.http import HttpConditionSensor
from waitwise.operators.sql import SqlConditionSensor

__all__ = [
    "BreakerOverrideOperator",
    "ConditionSensor",
    "FileArrivalSensor",
    "FileBatchSensor",
    "HttpConditionSensor",
    "PolicySensor",
    "SqlConditionSensor",
    "result_from_event",
]
