"""The Airflow plugin: the report on the api-server and an entry in the UI's navigation.

Registered through the ``airflow.plugins`` entry point (``pyproject.toml``): installing
waitwise is enough. Every Airflow process that loads plugins imports this module, so it is
light: the FastAPI app (:mod:`.webapp`, which imports the api-server's security code) is
imported only when the api-server asks for :attr:`WaitwisePlugin.fastapi_apps`.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

__all__ = ["WaitwisePlugin"]


class WaitwisePlugin(AirflowPlugin):
    """Mounts the report app at ``/waitwise`` and adds "waitwise" to the UI's navigation."""

    name = "waitwise"
    external_views = [  # noqa: RUF012 - Airflow's own attribute, read from the instance
        {
            "name": "waitwise",
            "href": "/waitwise/report",
            "destination": "nav",
            "category": "browse",
            "url_route": "waitwise",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Return the app to mount (imported on first use)."""
        from .webapp import app

        return [{"app": app, "url_prefix": "/waitwise", "name": "waitwise report"}]
