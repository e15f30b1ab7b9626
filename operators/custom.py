"""A sensor for any registered probe: ``ConditionSensor`` (write your own check)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.triggers.base import StartTriggerArgs

from waitwise.operators.base import PolicySensor
from waitwise.triggers.custom import ProbeTrigger, check_probe_args
from waitwise.triggers.errors import PolicyConfigError


class ConditionSensor(PolicySensor):
    """Wait until a probe registered under the ``waitwise.probes`` entry point says so.

    Write the check as a small async probe in an installed package (see
    :mod:`waitwise.triggers.custom` for the contract and a full example) and get the poll
    policy, profile, deadline, retries, breaker, history and zero worker runs of every
    waitwise sensor.

    :param probe: the probe's registered name; an unknown one fails at DAG-parse time,
        naming the registered ones.
    :param args: the probe's arguments, plain JSON (templated), checked by the probe's
        ``check_args`` at DAG-parse time (unrendered) and in the triggerer (rendered).

    Every other keyword is :class:`~waitwise.operators.base.PolicySensor`'s or
    ``BaseSensorOperator``'s.  Deferrable only: a probe is async.
    """

    template_fields: Sequence[str] = ("args", "scheduled_at")
    ui_color = "#f4e3ff"

    def __init__(self, *, probe: str, args: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe = probe
        self.args = check_probe_args(probe, args)
        if not self.deferrable:
            raise PolicyConfigError(
                f"{self.task_id}: ConditionSensor is deferrable only (probes are async)"
            )
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{ProbeTrigger.__module__}.{ProbeTrigger.__qualname__}",
            next_method="execute_complete",
            trigger_kwargs=self.trigger_kwargs(started_at=None),
            next_kwargs=None,
            timeout=dt.timedelta(seconds=self.trigger_window()),
        )

    def trigger_kwargs(self, *, started_at: float | None) -> dict[str, Any]:
        """Return the trigger's kwargs (plain JSON; ``args`` render in the triggerer)."""
        return {
            "probe": self.probe,
            "args": self.args,
            **self.wait_spec(started_at=started_at).to_config(),
        }

    def execute(self, context: Any) -> Any:
        """Defer at once (``start_from_trigger=False``; otherwise no worker runs it)."""
        self.defer(
            trigger=ProbeTrigger(**self.trigger_kwargs(started_at=self.now())),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.trigger_window()),
        )
        return None  # unreachable: defer() raises TaskDeferred
