"""Deferrable sensors that start and end in the triggerer."""

from __future__ import annotations
