"""A sensor for any registered probe: ``ConditionSensor`` (write your own check)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
    trigger_cls = ProbeTrigger
    ui_color = "#f4e3ff"

    def __init__(self, *, probe: str, args: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe = probe
        self.args = check_probe_args(probe, args)
        if not self.deferrable:
            raise PolicyConfigError(
                f"{self.task_id}: ConditionSensor is deferrable only (probes are async)"
            )
        self.start_in_triggerer()

    def trigger_kwargs(self, *, started_at: float | None) -> dict[str, Any]:
        """Return the trigger's kwargs (plain JSON; ``args`` render in the triggerer)."""
        return {
            "probe": self.probe,
            "args": self.args,
            **self.wait_spec(started_at=started_at).to_config(),
        }
