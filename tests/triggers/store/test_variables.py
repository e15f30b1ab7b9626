"""The Airflow Variables adapter, against a fake of the Task SDK's Variable API."""

from __future__ import annotations

import threading

import pytest

from waitwise.triggers.store import AirflowStore, VariableBackend
from waitwise.triggers.store.variables import DESCRIPTION

from .fakes import SRC, make_record


class FakeVariable:
    """Class-method API of ``airflow.sdk.Variable``; records the calling thread."""

    values: dict[str, object]
    calls: list[tuple[str, str | None, bool]]
    loop_thread: int

    @classmethod
    def reset(cls) -> None:
        cls.values, cls.calls = {}, []
        cls.loop_thread = threading.get_ident()

    @classmethod
    def _log(cls, op: str, key: str | None) -> None:
        cls.calls.append((op, key, threading.get_ident() == cls.loop_thread))

    @classmethod
    def get(cls, key, default=None):
        cls._log("get", key)
        return cls.values.get(key, default)

    @classmethod
    def set(cls, key, value, description=None):
        cls._log("set", f"{key}|{description}")
        cls.values[key] = value

    @classmethod
    def delete(cls, key):
        cls._log("delete", key)
        cls.values.pop(key, None)

    @classmethod
    def keys(cls, prefix=None):
        cls._log("keys", prefix)
        return [k for k in cls.values if k.startswith(prefix)]


@pytest.fixture
def invalidated():
    return []


@pytest.fixture
def backend(invalidated):
    FakeVariable.reset()
    return VariableBackend(FakeVariable, invalidate=invalidated.append)


async def test_operations_map_to_the_variable_api_off_the_loop_thread(backend, invalidated):
    await backend.set("waitwise/a", "1")
    got = (await backend.get("waitwise/a"), await backend.get("missing"))
    keys = await backend.keys("waitwise/")
    await backend.delete("waitwise/a")
    await backend.delete("waitwise/a")
    assert (got, keys, FakeVariable.values, invalidated) == (
        ("1", None),
        ["waitwise/a"],
        {},
        ["waitwise/a", "missing"],
    )
    assert FakeVariable.calls == [
        ("set", f"waitwise/a|{DESCRIPTION}", False),
        ("get", "waitwise/a", False),
        ("get", "missing", False),
        ("keys", "waitwise/", False),
        ("delete", "waitwise/a", False),
        ("delete", "waitwise/a", False),
    ]


async def test_non_string_values_read_as_absent(backend):
    FakeVariable.values["waitwise/x"] = {"not": "a str"}
    assert await backend.get("waitwise/x") is None


async def test_airflow_store_over_variables(backend):
    store = AirflowStore(backend, settle_s=0)
    await store.append(make_record(1))
    assert await store.history(SRC) == [make_record(1)]


def test_default_uses_the_task_sdk():
    from airflow.sdk import Variable
    from airflow.sdk.execution_time.cache import SecretCache

    backend = VariableBackend()
    assert (backend._api, backend._invalidate) == (Variable, SecretCache.invalidate_variable)
