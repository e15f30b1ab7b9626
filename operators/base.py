"""What every waitwise sensor shares: argument checks, the trigger's window, the event mapping.

A waitwise sensor starts in the triggerer (``start_from_trigger``) and, on arrival or on a
soft-failed timeout, ends there with a task-ending event: no worker ever runs it.  A hard
timeout resumes one short worker run, because only a worker raising ``AirflowSensorTimeout``
fails a sensor without using its retries.

Deadlines.  ``timeout`` counts from the moment the scheduler hands the task to the triggerer
(for a try that starts in the triggerer) or from ``execute()`` (``start_from_trigger=False``).
The trigger recovers that anchor after a triggerer restart from the trigger timeout Airflow
persisted, so a restart neither resets nor extends it.  Airflow's own trigger timeout is set
``DEADLINE_GRACE`` seconds later as a safety net: if no triggerer runs the wait at its deadline,
Airflow's timeout sweep still ends it the way a sensor timeout ends (failed without retry, or
skipped with ``soft_fail``).  Retries: a timed-out sensor never retries.  A try that fails for
another reason (an unexpected error in the check) is retried per ``retries``/``retry_delay``
and the new try gets a new window of ``timeout`` seconds, as Airflow's reschedule-mode sensors
do for each try.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any, Final

from airflow.sdk.bases.sensor import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from waitwise.triggers.base import positive_seconds
from waitwise.triggers.errors import PolicyConfigError
from waitwise.triggers.events import WaitStatus
from waitwise.triggers.policy import (
    AirflowExponential,
    Constant,
    IntervalPolicy,
    policy_from_config,
)

DEADLINE_GRACE: Final = 60.0


def resolve_policy(
    poll: IntervalPolicy | Mapping[str, Any] | None,
    *,
    poke_interval: float,
    exponential_backoff: bool,
    max_wait: float | None,
) -> IntervalPolicy:
    """Return the policy a sensor polls with.

    ``poll`` wins; otherwise Airflow's own parameters keep their meaning: a constant
    ``poke_interval``, or Airflow's exponential backoff with ``max_wait`` when
    ``exponential_backoff=True``.

    :raises PolicyConfigError: naming ``poll`` and its value when it is not a policy.
    """
    if poll is None:
        if exponential_backoff:
            return AirflowExponential(poke_interval=poke_interval, max_wait=max_wait)
        return Constant(interval=poke_interval)
    if isinstance(poll, Mapping):
        return policy_from_config(poll)
    if not hasattr(poll, "next_interval") or not hasattr(poll, "to_config"):
        raise PolicyConfigError(
            f"poll must be a waitwise interval policy (e.g. Exponential(...)), got {poll!r}"
        )
    return poll


def airflow_timeout(timeout: float, execution_timeout: dt.timedelta | None) -> float:
    """Return the trigger timeout Airflow applies: ``timeout + grace``, capped as Airflow caps it.

    Mirrors ``TaskInstance.defer_task``: with an ``execution_timeout``, Airflow uses the
    smaller of the two.
    """
    window = timeout + DEADLINE_GRACE
    if execution_timeout is not None:
        window = min(window, execution_timeout.total_seconds())
    return window


def result_from_event(event: Mapping[str, Any] | None, *, task: str) -> dict[str, Any]:
    """Map a trigger event payload to the sensor's XCom value, or raise.

    :raises AirflowSensorTimeout: on ``timeout`` (Airflow turns it into failed-without-retry,
        or skipped under ``soft_fail``/``never_fail``).
    :raises AirflowSkipException: never here; ``resume_execution`` applies ``soft_fail``.
    :raises ValueError: on a payload that is not a waitwise event.
    """
    if not isinstance(event, Mapping) or "status" not in event:
        raise ValueError(f"{task}: not a waitwise trigger event: {event!r}")
    status = event["status"]
    if status == WaitStatus.SUCCESS:
        return dict(event)
    if status == WaitStatus.TIMEOUT:
        raise AirflowSensorTimeout(f"{task}: {event.get('message', 'timed out')}")
    raise ValueError(f"{task}: unknown wait status {status!r} in {dict(event)!r}")


class PolicySensor(BaseSensorOperator):
    """Base of waitwise sensors: validated arguments, a policy, zero-worker deferral.

    :param poll: the interval policy (``Exponential(...)``, ``FullJitter(...)``, ...). When
        omitted, ``poke_interval``/``exponential_backoff``/``max_wait`` keep Airflow's meaning.
    :param deferrable: wait in the triggerer (default).  ``False`` runs Airflow's classic
        ``poke``/``reschedule`` modes with the same check.
    :param start_from_trigger: skip the worker at the start as well (default when deferrable).
    """

    def __init__(
        self,
        *,
        poll: IntervalPolicy | Mapping[str, Any] | None = None,
        deferrable: bool = True,
        start_from_trigger: bool | None = None,
        **kwargs: Any,
    ) -> None:
        timeout = kwargs.get("timeout")
        if timeout is not None:
            positive_seconds("timeout", timeout)
        poke_interval = kwargs.get("poke_interval", 60)
        positive_seconds("poke_interval", poke_interval)
        super().__init__(**kwargs)
        self.policy = resolve_policy(
            poll,
            poke_interval=self.poke_interval,
            exponential_backoff=self.exponential_backoff,
            max_wait=_seconds_or_none(self.max_wait),
        )
        self.deferrable = deferrable
        self.start_from_trigger = deferrable if start_from_trigger is None else start_from_trigger
        if self.start_from_trigger and not deferrable:
            raise PolicyConfigError(
                "start_from_trigger=True needs deferrable=True, got deferrable=False"
            )

    def trigger_window(self) -> float:
        """Return the trigger timeout (seconds) handed to Airflow for this sensor."""
        return airflow_timeout(self.timeout, self.execution_timeout)

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger: return the payload, or raise the sensor timeout."""
        return result_from_event(event, task=self.task_id)

    def now(self) -> float:
        """Return the wall clock (epoch seconds) used as the anchor of a worker-started wait."""
        return time.time()


def _seconds_or_none(value: dt.timedelta | float | None) -> float | None:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value
