"""Write your own check: an async *probe* registered by entry point, everything else for free.

A probe is a small async callable that answers "has it arrived?" for plain-JSON ``args``.  A
package registers it under the entry-point group :data:`ENTRY_POINT_GROUP`, installed wherever
the dag-processor and the triggerers run (the triggerer never imports DAG files)::

    # pyproject.toml of your package
    [project.entry-points."waitwise.probes"]
    queue_drained = "my_company.probes:QueueDrained"

    # my_company/probes.py
    class QueueDrained:
        def check_args(self, args):                      # optional: at DAG-parse time
            if not isinstance(args.get("queue"), str):
                raise ValueError("queue must be a string")

        async def __call__(self, args, context):
            conn = await context.connection("rabbit")    # credentials come from Airflow
            depth = await fetch_depth(conn, args["queue"])   # your async I/O
            return depth == 0                            # True, False, or found items

    # a DAG
    ConditionSensor(task_id="drained", probe="queue_drained", args={"queue": "orders"},
                    profile="high", source="rabbit_orders")

:class:`~waitwise.operators.custom.ConditionSensor` / :class:`ProbeTrigger` then give it the
poll policy, profile, deadline, retries, breaker, history, metrics and zero worker runs.

The contract (:class:`Probe`): called on the triggerer's event loop, it must not block (use
async clients, or ``await asyncio.to_thread(...)``) and must be read-only (a trigger may run
twice).  Return ``True`` (arrived: one found item named after the probe), ``False`` (not
yet) or a list of found items (``{"path": str, "size": int, "mtime": float}``; empty means
not yet).  Raise :class:`~waitwise.triggers.errors.ProbeError` for a transient failure
(retried with the profile's probe backoff, counted by the breaker when the wait gives up);
``TimeoutError`` and ``ConnectionError`` count as transient too.  Any other exception ends
that wait alone, as an error.  A probe with a ``probe_batch(args_list, context)`` method is
handed every due query of the tick at once instead (one result per args, in order; a result
may be an exception).  Equal args due in one tick are probed once.

The registered object is a class (instantiated once per process, without arguments), an
instance or an async function.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

from waitwise.triggers import runtime
from waitwise.triggers.base import PolicyTrigger, rebuilding
from waitwise.triggers.conditions import check_json
from waitwise.triggers.engine.probe import Prober
from waitwise.triggers.engine.progress import ProbeResult
from waitwise.triggers.engine.tick import PerLoop
from waitwise.triggers.errors import PolicyConfigError, ProbeError
from waitwise.triggers.events import FoundItem
from waitwise.triggers.spec import WaitSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_ARGS_CHARS",
    "MAX_CALLS",
    "BatchProbe",
    "CustomProber",
    "Probe",
    "ProbeContext",
    "ProbeQuery",
    "ProbeTrigger",
    "check_probe_args",
    "clear_probe_cache",
    "load_probe",
    "probe_names",
    "to_result",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "waitwise.probes"
MAX_ARGS_CHARS: Final = 16_384
"""The longest ``args`` (as JSON text): they are stored in the trigger row."""
MAX_CALLS: Final = 32
"""Calls of one probe in flight at once, per event loop."""
_TRANSIENT: Final = (ProbeError, TimeoutError, ConnectionError)


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """What a probe gets besides its args.

    :param probe: the registered name the probe was called by.
    :param now: the runtime clock's wall time (epoch seconds) for this batch.
    """

    probe: str
    now: float

    async def connection(self, conn_id: str) -> Any:
        """Return the Airflow connection ``conn_id`` (async API; never in a probe's args)."""
        from airflow.sdk import BaseHook

        return await BaseHook.aget_connection(conn_id)


class Probe(Protocol):
    """A registered check (see the module docstring for the contract)."""

    async def __call__(
        self, args: Mapping[str, Any], context: ProbeContext
    ) -> list[FoundItem] | bool:
        """Return whether (or what) arrived for ``args``; raise ProbeError when unsure."""
        ...


@runtime_checkable
class BatchProbe(Protocol):
    """A probe that answers every due query of a tick in one call (optional)."""

    async def probe_batch(
        self, args: Sequence[Mapping[str, Any]], context: ProbeContext
    ) -> Sequence[list[FoundItem] | bool | BaseException]:
        """Return one result per args, in order."""
        ...


@functools.cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}


_LOADED: dict[str, Any] = {}


def probe_names() -> list[str]:
    """Return the registered probe names, sorted."""
    return sorted(_entry_points())


def load_probe(name: object) -> Probe:
    """Return the probe registered as ``name`` (loaded once per process).

    :raises PolicyConfigError: an unknown name (the message lists the registered ones), or a
        registered one that fails to load.
    """
    if isinstance(name, str) and name in _LOADED:
        return _LOADED[name]  # type: ignore[no-any-return]
    entry = _entry_points().get(name) if isinstance(name, str) else None
    if entry is None:
        known = ", ".join(probe_names()) or "none"
        raise PolicyConfigError(
            f"probe {name!r} is not registered under the entry-point group "
            f"{ENTRY_POINT_GROUP!r} (registered: {known})"
        )
    try:
        found = entry.load()
        probe = found() if isinstance(found, type) else found
    except Exception as exc:  # a broken plugin: this probe's waits fail, naming it
        raise PolicyConfigError(f"probe {name!r} = {entry.value} cannot be loaded: {exc}") from exc
    if not callable(probe) and not isinstance(probe, BatchProbe):
        raise PolicyConfigError(f"probe {name!r} = {entry.value} is not callable")
    _LOADED[entry.name] = probe
    return probe  # type: ignore[no-any-return]


def clear_probe_cache() -> None:
    """Forget the registered probes (tests that install one; a new plugin in a process)."""
    _entry_points.cache_clear()
    _LOADED.clear()


def check_probe_args(name: object, args: object) -> dict[str, Any]:
    """Return ``args`` as plain JSON once the probe ``name`` accepts them.

    :raises PolicyConfigError: an unknown probe, args that are not a JSON object or too
        long, or args the probe's ``check_args`` refuses (its message, naming the probe).
    """
    probe = load_probe(name)
    value = check_json({} if args is None else args, "args")
    if not isinstance(value, dict):
        raise PolicyConfigError(f"args must be a mapping, got {args!r}")
    if len(json.dumps(value)) > MAX_ARGS_CHARS:
        raise PolicyConfigError(f"args of probe {name!r} are longer than {MAX_ARGS_CHARS} chars")
    check = getattr(probe, "check_args", None)
    if check is not None:
        try:
            check(value)
        except (ValueError, TypeError, KeyError) as exc:
            raise PolicyConfigError(f"probe {name!r} refuses args {value!r}: {exc}") from exc
    return value


@dataclass(frozen=True, slots=True)
class ProbeQuery:
    """One custom check: the probe's name and its args (canonical JSON, so equal is equal)."""

    probe: str
    args_json: str

    @classmethod
    def of(cls, probe: str, args: Mapping[str, Any]) -> ProbeQuery:
        """Return the query for ``args`` (keys sorted)."""
        return cls(probe, json.dumps(args, sort_keys=True, separators=(",", ":")))

    @property
    def args(self) -> dict[str, Any]:
        """Return a fresh copy of the args (a probe may not change another's)."""
        value: dict[str, Any] = json.loads(self.args_json)
        return value


def to_result(name: str, value: object, now: float) -> ProbeResult:
    """Return the engine's result for what probe ``name`` returned or raised.

    ``True``: one item ``{"path": "probe:<name>", "size": 0, "mtime": now}``; ``False``:
    ``[]``; a list of items: checked and returned; ``TimeoutError``/``ConnectionError``:
    a :class:`ProbeError` wrapping it; any other exception as it is; anything else: a
    ``TypeError`` (the wait ends: the probe broke its contract).
    """
    if isinstance(value, BaseException):
        if isinstance(value, ProbeError) or not isinstance(value, _TRANSIENT):
            return value
        return ProbeError.wrapping(value)
    if value is True:
        return [FoundItem(path=f"probe:{name}", size=0, mtime=now)]
    if value is False:
        return []
    if isinstance(value, list) and all(_is_item(item) for item in value):
        return [
            FoundItem(path=i["path"], size=int(i["size"]), mtime=float(i["mtime"])) for i in value
        ]
    return TypeError(
        f"probe {name!r} returned {value!r}: expected True, False or a list of "
        "{'path': str, 'size': int, 'mtime': float}"
    )


def _is_item(item: object) -> bool:
    return (
        isinstance(item, Mapping)
        and isinstance(item.get("path"), str)
        and isinstance(item.get("size"), int)
        and isinstance(item.get("mtime"), int | float)
    )


_SLOTS: Final[PerLoop[dict[str, asyncio.Semaphore]]] = PerLoop(dict)


class CustomProber:
    """The :class:`~waitwise.triggers.engine.probe.Prober` of every registered probe.

    Groups a batch by probe, probes equal args once, calls a :class:`BatchProbe` once per
    tick and any other probe concurrently (at most :data:`MAX_CALLS` in flight each).
    """

    async def probe_batch(self, queries: Sequence[ProbeQuery]) -> list[ProbeResult]:
        """Return one result per query (see :func:`to_result`)."""
        now = runtime.current().clock.now()
        by_probe: dict[str, list[ProbeQuery]] = {}
        for query in dict.fromkeys(queries):  # distinct, in order
            by_probe.setdefault(query.probe, []).append(query)
        answered = await asyncio.gather(
            *(self._probe_one_kind(name, distinct, now) for name, distinct in by_probe.items())
        )
        results = {q: r for batch in answered for q, r in batch.items()}
        return [results[query] for query in queries]

    async def _probe_one_kind(
        self, name: str, queries: list[ProbeQuery], now: float
    ) -> dict[ProbeQuery, ProbeResult]:
        context = ProbeContext(name, now)
        try:
            probe = load_probe(name)
            if isinstance(probe, BatchProbe):
                values = await probe.probe_batch([q.args for q in queries], context)
                if len(values) != len(queries):
                    raise TypeError(f"probe {name!r} gave {len(values)} results for {len(queries)}")
            else:
                values = await asyncio.gather(
                    *(self._call(probe, name, q, context) for q in queries)
                )
        except Exception as exc:  # the probe failed as a whole: each of its queries gets it
            values = [exc] * len(queries)
        return {q: to_result(name, v, now) for q, v in zip(queries, values, strict=True)}

    async def _call(
        self, probe: Probe, name: str, query: ProbeQuery, context: ProbeContext
    ) -> list[FoundItem] | bool | BaseException:
        slots = _SLOTS.get()
        slot = slots.get(name)
        if slot is None:
            slot = slots[name] = asyncio.Semaphore(MAX_CALLS)
        async with slot:
            try:
                return await probe(query.args, context)
            except Exception as exc:  # classified by to_result: transient or the end
                return exc

    def __repr__(self) -> str:
        return "CustomProber()"


class ProbeTrigger(PolicyTrigger):
    """Poll a registered probe (:data:`ENTRY_POINT_GROUP`) with plain-JSON ``args``.

    :param probe: the probe's registered name; an unknown one is an error naming the
        registered ones.
    :param args: the probe's arguments, plain JSON (templated by the sensor; checked by the
        probe's ``check_args`` here and again once rendered).
    :param wait: the :class:`~waitwise.triggers.spec.WaitSpec` fields.
    """

    prober: ClassVar[Prober] = CustomProber()

    def __init__(self, *, probe: str, args: Mapping[str, Any] | None = None, **wait: Any) -> None:
        with rebuilding(type(self)):
            super().__init__(WaitSpec.from_config(wait))
            self.args = check_probe_args(probe, args)
        self.probe = probe
        self._query: ProbeQuery | None = None

    def kind_kwargs(self) -> dict[str, Any]:
        """Return the probe's name and args."""
        return {"probe": self.probe, "args": self.args}

    def describe(self) -> str:
        """Return ``probe <name> <args>`` (args cut at 200 characters)."""
        text = json.dumps(self.args, sort_keys=True)
        return f"probe {self.probe} {text[:200]}"

    async def prepare(self) -> ProbeQuery:
        """Check the (rendered) args with the probe and return the query."""
        self.args = check_probe_args(self.probe, self.args)
        self._query = ProbeQuery.of(self.probe, self.args)
        return self._query
