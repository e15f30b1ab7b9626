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
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from airflow.sdk.bases.sensor import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout, AirflowSkipException
from airflow.triggers.base import StartTriggerArgs

from waitwise.triggers import (
    AirflowExponential,
    Constant,
    IntervalPolicy,
    OnBreakerOpen,
    OnDeadline,
    PolicyConfigError,
    ReliabilityProfile,
    RetryStrategy,
    WaitSpec,
    WaitStatus,
    get_profile,
    runtime,
)
from waitwise.triggers.adaptive.policy import LEARNED, Adaptive
from waitwise.triggers.base import PolicyTrigger
from waitwise.triggers.engine.listeners import listeners_registered
from waitwise.triggers.policy import policy_from_config, positive_seconds, rebuildable, span_bound
from waitwise.triggers.spec import check_store
from waitwise.triggers.store import validate_source

DEADLINE_GRACE: Final = 60.0
SCHEDULED_AT: Final = (
    "{{ (data_interval_end if data_interval_end is defined and data_interval_end"
    " else dag_run.run_after) | string }}"
)
"""When the data was due, rendered by Airflow (in the triggerer on the start_from_trigger path)."""


def resolve_policy(
    poll: IntervalPolicy | Mapping[str, Any] | str | None,
    *,
    poke_interval: float,
    exponential_backoff: bool,
    max_wait: float | None,
    base: IntervalPolicy | None = None,
) -> IntervalPolicy:
    """Return the policy a sensor polls with.

    ``poll`` wins; otherwise ``base`` (the profile's), else Airflow's own parameters keep
    their meaning: a constant ``poke_interval``, or Airflow's exponential backoff with
    ``max_wait`` when ``exponential_backoff=True``.  ``poll="adaptive"`` learns from the
    source's history (:class:`~waitwise.triggers.adaptive.Adaptive`): ``poke_interval`` is
    its latency target, ``max_wait`` (default 1 h) its longest interval, and the policy above
    its cold start.

    :raises PolicyConfigError: naming ``poll`` and its value when it is not a policy.
    """
    if poll == "adaptive":
        fallback = resolve_policy(
            None,
            poke_interval=poke_interval,
            exponential_backoff=exponential_backoff,
            max_wait=max_wait,
            base=base,
        )
        longest = max(max_wait or 3600.0, poke_interval)
        return Adaptive(poke_interval, max_interval_s=longest, fallback=fallback)
    if isinstance(poll, str):
        raise PolicyConfigError(
            f"poll must be a waitwise interval policy (e.g. Exponential(...)) or 'adaptive', "
            f"got {poll!r}"
        )
    if poll is None and base is not None:
        return base
    if poll is None:
        if exponential_backoff:
            return AirflowExponential(poke_interval=poke_interval, max_wait=max_wait)
        return Constant(interval=poke_interval)
    if isinstance(poll, Mapping):
        return policy_from_config(poll)
    if isinstance(poll, type) or not hasattr(poll, "next_interval"):
        raise PolicyConfigError(
            f"poll must be a waitwise interval policy (e.g. Exponential(...)), got {poll!r}"
        )
    return rebuildable(poll, "poll")


def airflow_timeout(span: float, execution_timeout: dt.timedelta | None) -> float:
    """Return the trigger timeout Airflow applies: ``span + grace``, capped as Airflow caps it.

    ``span`` bounds the wait from its anchor to its last deadline (re-opened windows
    included).  Mirrors ``TaskInstance.defer_task``: with an ``execution_timeout``, Airflow
    uses the smaller of the two.
    """
    window = span + DEADLINE_GRACE
    if execution_timeout is not None:
        window = min(window, execution_timeout.total_seconds())
    return window


def result_from_event(
    event: Mapping[str, Any] | None, *, task: str, skip_on_breaker: bool = False
) -> dict[str, Any]:
    """Map a trigger event payload to the sensor's XCom value, or raise.

    :raises AirflowSensorTimeout: on ``timeout`` (Airflow turns it into failed-without-retry,
        or skipped under ``soft_fail``/``never_fail``).
    :raises AirflowSkipException: on ``breaker_open`` when the profile skips rejected waits.
    :raises AirflowException: on ``error`` and a failing ``breaker_open`` (retries apply).
    :raises ValueError: on a payload that is not a waitwise event.
    """
    if not isinstance(event, Mapping) or "status" not in event:
        raise ValueError(f"{task}: not a waitwise trigger event: {event!r}")
    status, message = event["status"], f"{task}: {event.get('message', '')}"
    if status == WaitStatus.SUCCESS:
        return dict(event)
    if status == WaitStatus.TIMEOUT:
        raise AirflowSensorTimeout(message)
    if status == WaitStatus.BREAKER_OPEN and skip_on_breaker:
        raise AirflowSkipException(message)
    if status in (WaitStatus.ERROR, WaitStatus.BREAKER_OPEN):
        raise AirflowException(message)
    raise ValueError(f"{task}: unknown wait status {status!r} in {dict(event)!r}")


class PolicySensor(BaseSensorOperator):
    """Base of waitwise sensors: validated arguments, a policy, zero-worker deferral.

    :param poll: the interval policy (``Exponential(...)``, ``FullJitter(...)``, ...). When
        omitted, the profile's poll policy, else ``poke_interval``/``exponential_backoff``/
        ``max_wait`` with Airflow's meaning.  ``"adaptive"`` (or ``Adaptive(...)``) learns
        where to poke from the source's history (needs ``source``; see
        :func:`resolve_policy`).
    :param profile: a :class:`~waitwise.triggers.profiles.ReliabilityProfile` or a preset
        name (``"high"``, ``"medium"``, ``"low"``).  Explicit ``timeout``, ``poll`` and
        ``soft_fail`` override the profile's.
    :param source: the data source's name (e.g. ``"partner_feed"``): turns on the wait history
        and the source's circuit breaker, shared by every sensor naming it.
    :param store: where history and breaker state live: ``{"kind": "airflow"}`` (Airflow
        Variables, default) or ``{"kind": "file", "root": "/shared/dir"}``.
    :param deferrable: wait in the triggerer (default).  ``False`` runs Airflow's classic
        ``poke``/``reschedule`` modes with the same check (no history or breaker).
    :param start_from_trigger: skip the worker at the start as well (default when deferrable).
    :param scheduled_at: when the data was due (templated; default: the run's data interval
        end, else its ``run_after``).  Learning counts arrivals from it; set it when the data
        is due at another time, e.g. ``"{{ data_interval_end + macros.timedelta(hours=6) }}"``.
    """

    def __init__(
        self,
        *,
        poll: IntervalPolicy | Mapping[str, Any] | str | None = None,
        profile: str | ReliabilityProfile | None = None,
        source: str | None = None,
        store: Mapping[str, Any] | None = None,
        deferrable: bool = True,
        start_from_trigger: bool | None = None,
        scheduled_at: str = SCHEDULED_AT,
        **kwargs: Any,
    ) -> None:
        self.profile = get_profile(profile) if profile is not None else None
        _apply_profile_defaults(self.profile, kwargs)
        _check_arguments(kwargs, deferrable=deferrable, start_from_trigger=start_from_trigger)
        super().__init__(**kwargs)
        self.policy = resolve_policy(
            poll,
            poke_interval=self.poke_interval,
            exponential_backoff=self.exponential_backoff,
            max_wait=_seconds_or_none(self.max_wait),
            base=self.profile.poll if self.profile else None,
        )
        self.source = _validated_source(source)
        if isinstance(self.policy, LEARNED) and self.source is None:
            raise PolicyConfigError(
                f"poll={self.policy!r} learns from a source's history: set source=<name>"
            )
        self.store = dict(check_store(store if store is not None else {"kind": "airflow"}))
        if not isinstance(scheduled_at, str) or not scheduled_at.strip():
            raise PolicyConfigError(
                f"scheduled_at must be a template or timestamp string, got {scheduled_at!r}"
            )
        self.scheduled_at = scheduled_at
        self.deferrable = deferrable
        self.start_from_trigger = deferrable if start_from_trigger is None else start_from_trigger
        if self.start_from_trigger and not deferrable:
            raise PolicyConfigError(
                "start_from_trigger=True needs deferrable=True, got deferrable=False"
            )

    @property
    def retry(self) -> RetryStrategy:
        """Return the retry strategy in force (the profile's, else the default)."""
        return self.profile.retry if self.profile else RetryStrategy()

    def trigger_window(self) -> float:
        """Return the trigger timeout (seconds) handed to Airflow for this sensor."""
        reopen = self.retry.on_deadline is OnDeadline.REOPEN
        max_reopens = self.retry.max_reopens if reopen else 0
        span = span_bound(self.timeout, max_reopens, self.retry.reopen_backoff)
        return airflow_timeout(span, self.execution_timeout)

    def wait_spec(self, *, started_at: float | None) -> WaitSpec:
        """Return the wait this sensor asks its trigger for."""
        profile = self.profile
        return WaitSpec(
            poll=self.policy,
            timeout=float(self.timeout),
            started_at=started_at,
            airflow_timeout=None if started_at else self.trigger_window(),
            soft_fail=bool(self.soft_fail or self.never_fail),
            end_from_trigger=not listeners_registered(),
            xcom_push=bool(self.do_xcom_push),
            retry=self.retry,
            source=self.source,
            profile=profile.name if profile else None,
            tier=profile.tier if profile else None,
            breaker=profile.breaker if profile else None,
            on_breaker_open=profile.on_breaker_open if profile else OnBreakerOpen.FAIL,
            store=self.store,
            scheduled_at=self.scheduled_at,
        )

    trigger_cls: ClassVar[type[PolicyTrigger]]
    """The trigger a subclass waits with (its class path is stored in Airflow's rows)."""

    def trigger_kwargs(self, *, started_at: float | None) -> dict[str, Any]:
        """Return the trigger's kwargs (plain JSON; templated fields render in the triggerer)."""
        raise NotImplementedError

    def start_in_triggerer(self) -> None:
        """Set ``start_trigger_args`` (a subclass calls it once its own arguments are set)."""
        cls = self.trigger_cls
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{cls.__module__}.{cls.__qualname__}",
            next_method="execute_complete",
            trigger_kwargs=self.trigger_kwargs(started_at=None),
            next_kwargs=None,
            timeout=dt.timedelta(seconds=self.trigger_window()),
        )

    def execute(self, context: Any) -> Any:
        """Defer at once (no synchronous first poke), or run classic poke/reschedule."""
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=self.trigger_cls(**self.trigger_kwargs(started_at=self.now())),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.trigger_window()),
        )
        return None  # unreachable: defer() raises TaskDeferred

    def execute_complete(self, context: Any, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger: return the payload, or raise (see result_from_event)."""
        skip = bool(self.profile and self.profile.on_breaker_open is OnBreakerOpen.SKIP)
        return result_from_event(event, task=self.task_id, skip_on_breaker=skip)

    def now(self) -> float:
        """Return the wall clock (epoch seconds) used as the anchor of a worker-started wait."""
        return runtime.current().clock.now()


_FLAGS: Final = ("soft_fail", "never_fail", "exponential_backoff", "do_xcom_push", "silent_fail")
_DURATIONS: Final = ("timeout", "poke_interval", "max_wait")


def _check_arguments(kwargs: Mapping[str, Any], **own: object) -> None:
    """Raise naming the first argument of the wrong type or range (strict booleans, durations).

    Airflow reads ``soft_fail="false"`` as true; a sensor must not.
    """
    flags = {name: kwargs[name] for name in _FLAGS if name in kwargs}
    flags.update({name: value for name, value in own.items() if value is not None})
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise PolicyConfigError(f"{name} must be True or False, got {value!r}")
    for name in _DURATIONS:
        if kwargs.get(name) is not None:
            positive_seconds(name, kwargs[name])


def _apply_profile_defaults(profile: ReliabilityProfile | None, kwargs: dict[str, Any]) -> None:
    """Fill ``timeout``/``soft_fail`` from the profile where the caller did not pass them."""
    if profile is None:
        return
    kwargs.setdefault("timeout", profile.timeout_s)
    if profile.retry.on_deadline is OnDeadline.SKIP:
        kwargs.setdefault("soft_fail", True)


def _validated_source(source: str | None) -> str | None:
    if source is None:
        return None
    try:
        return validate_source(source)
    except ValueError as exc:
        raise PolicyConfigError(f"source: {exc}") from exc


def _seconds_or_none(value: dt.timedelta | float | None) -> float | None:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value or None  # Airflow ignores max_wait=0
