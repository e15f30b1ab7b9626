"""Durable wait history and breaker state: one interface, a local file backend and an Airflow backend."""

from __future__ import annotations
