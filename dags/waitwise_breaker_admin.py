"""Kill switch: trigger with params to force a source's breaker open or closed, or reset it."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from waitwise.operators.breaker import ACTIONS, BreakerOverrideOperator

with DAG(
    "waitwise_breaker_admin",
    schedule=None,
    catchup=False,
    tags=["waitwise", "admin"],
    params={
        "source": Param("partner_feed", type="string", description="source name"),
        "action": Param("reset", enum=sorted(ACTIONS), description="what to do"),
        "note": Param("", type="string", description="why (shown in rejections)"),
    },
):
    BreakerOverrideOperator(
        task_id="override",
        source="{{ params.source }}",
        action="{{ params.action }}",
        note="{{ params.note }}",
    )
