"""The auth manager of tests/e2e/test_plugin.py: Airflow's SimpleAuthManager, one DAG hidden.

SimpleAuthManager grants DAG access by role only (a viewer reads every DAG), so the test
needs this subclass to have a user who may not read one DAG.  Airflow 3.3 asks
``is_authorized_dag`` for each DAG id, also when listing them (``get_authorized_dag_ids``
-> ``filter_authorized_dag_ids``), which is what the plugin's report uses.  The api-server
imports it from ``[core] auth_manager`` (``PYTHONPATH`` holds the repo root).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

HIDDEN: Final = frozenset({("carol", "wwp_partner")})
"""(user, DAG id) pairs refused, whatever the user's role."""


class OneDagHiddenAuthManager(SimpleAuthManager):
    """SimpleAuthManager that refuses the pairs in :data:`HIDDEN`, for every method."""

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: SimpleAuthManagerUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        if details is not None and (user.get_name(), details.id) in HIDDEN:
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
