"""Async triggers that own the waiting: policy-driven polling, deadlines, breakers."""

from __future__ import annotations
