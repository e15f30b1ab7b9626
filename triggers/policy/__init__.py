"""Pure poll policies: no asyncio, no Airflow, no clock or global random inside."""

from __future__ import annotations
