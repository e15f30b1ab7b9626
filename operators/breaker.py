"""``BreakerOverrideOperator``: the operators' kill switch for a source's circuit breaker.

Run it from a DAG (``dags/waitwise_breaker_admin.py`` takes the source and action as params)
so an override goes through Airflow's own permissions and audit log, and reaches the same
store the sensors use, with any executor and any number of triggerers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Final

from airflow.sdk import BaseOperator

from waitwise.triggers import BreakerSnapshot, BreakerState, PolicyConfigError, metrics, runtime
from waitwise.triggers.breaker import force
from waitwise.triggers.spec import check_store
from waitwise.triggers.store import validate_source

ACTIONS: Final[Mapping[str, BreakerState | str]] = {
    "force_open": BreakerState.FORCED_OPEN,
    "force_closed": BreakerState.FORCED_CLOSED,
    "reset": "reset",
}


class BreakerOverrideOperator(BaseOperator):
    """Force a source's breaker open or closed, or reset it to closed with clean counters.

    :param source: the source name the sensors use (templated).
    :param action: ``"force_open"`` (reject every wait until reset), ``"force_closed"``
        (allow every wait, never trip) or ``"reset"`` (templated).
    :param note: why, shown in rejection messages and the audit trail (templated).
    :param store: the store the sensors use (default: Airflow Variables).

    Returns the new breaker snapshot as its XCom.
    """

    template_fields: Sequence[str] = ("source", "action", "note")

    def __init__(
        self,
        *,
        source: str,
        action: str,
        note: str = "",
        store: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source, self.action, self.note = source, action, note
        self.store = dict(check_store(store if store is not None else {"kind": "airflow"}))
        if "{{" not in action and action not in ACTIONS:
            raise PolicyConfigError(f"action must be one of {sorted(ACTIONS)}, got {action!r}")

    def execute(self, context: Any) -> dict[str, Any]:
        """Apply the override through the store (a read-modify-write, like the sensors')."""
        if self.action not in ACTIONS:
            raise PolicyConfigError(f"action must be one of {sorted(ACTIONS)}, got {self.action!r}")
        source = validate_source(self.source)
        snapshot = asyncio.run(self._apply(source, ACTIONS[self.action]))
        self.log.info("Breaker of %s is now %s: %s", source, snapshot.state.value, snapshot.reason)
        tags = {"source": source, "action": self.action}
        runtime.current().metrics.incr(metrics.breaker_event("BreakerForced"), tags)
        return snapshot.to_json_dict()

    async def _apply(self, source: str, target: Any) -> BreakerSnapshot:
        rt = runtime.current()
        store, now = rt.store_for(self.store), rt.clock.now()

        def update(current: BreakerSnapshot | None) -> BreakerSnapshot:
            return force(current or BreakerSnapshot(source), target, now, note=self.note)[0]

        return await store.update_breaker(source, update)
