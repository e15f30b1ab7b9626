"""Whether Airflow listener plugins (OpenLineage, say) are installed where this code runs.

A task that ends in the triggerer with a task-ending event bypasses Airflow's listener hooks
(``on_task_instance_success`` and the others never fire for it), which is why Airflow refuses
operators declaring ``end_from_trigger`` when listeners exist.  waitwise ends its tasks in the
triggerer only when no listener would miss them: the sensor checks while its DAG is parsed,
and the trigger checks again in the triggerer; with listeners the task resumes on a worker
(one short run), whose end the listeners see.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def listeners_registered() -> bool:
    """Return whether this process has Airflow listener plugins (Airflow caches the lookup)."""
    try:
        from airflow.listeners.listener import get_listener_manager

        return bool(get_listener_manager().has_listeners)
    except Exception:  # an Airflow without the core listener module: resume on a worker
        log.exception("Cannot tell whether listeners are installed; assuming they are")
        return True
