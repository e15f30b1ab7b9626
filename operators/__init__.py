"""Deferrable sensors that start and end in the triggerer."""

from __future__ import annotations

from waitwise.operators.base import PolicySensor, result_from_event
from waitwise.operators.breaker import BreakerOverrideOperator
from waitwise.operators.file import FileArrivalSensor, FileBatchSensor

__all__ = [
    "BreakerOverrideOperator",
    "FileArrivalSensor",
    "FileBatchSensor",
    "PolicySensor",
    "result_from_event",
]
