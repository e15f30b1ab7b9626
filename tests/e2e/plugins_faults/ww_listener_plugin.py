"""A real listener plugin for the e2e tests: every task success appends a line to a file.

The file is named by ``$WAITWISE_E2E_LISTENER_LOG`` (set for every component by the test's
harness); each line is ``<dag_id> <task_id> <map_index> <pid>``.  The plugin module itself is
the listener (``listeners = [module]``), as Airflow's example listener plugin does.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

LOG_ENV = "WAITWISE_E2E_LISTENER_LOG"


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    """Append the task instance that succeeded to the listener log."""
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    map_index = getattr(task_instance, "map_index", -1)
    line = f"{task_instance.dag_id} {task_instance.task_id} {map_index} {os.getpid()}\n"
    with open(path, "a", encoding="utf-8") as out:
        out.write(line)


class WaitwiseE2EListenerPlugin(AirflowPlugin):
    """Registers this module as a listener."""

    name = "waitwise_e2e_listener"
    # AirflowPlugin declares ``listeners: list[object]`` as a class attribute to override.
    listeners: list[object] = [sys.modules[__name__]]  # noqa: RUF012
