"""The package roots export what the README imports; ``__all__`` is complete and sorted."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

import waitwise.operators
import waitwise.triggers

ROOTS = [waitwise.triggers, waitwise.operators]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", ROOTS, ids=lambda m: m.__name__)
def test_all_is_sorted_and_unique(module: ModuleType) -> None:
    names = list(module.__all__)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert len(names) == len(set(names))


@pytest.mark.parametrize("module", ROOTS, ids=lambda m: m.__name__)
def test_all_names_what_the_root_defines_publicly(module: ModuleType) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert public == set(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_the_readmes_imports_work() -> None:
    imports = re.findall(r"^from (waitwise\.\S+) import (.+)$", README.read_text(), re.M)
    assert imports, "the README shows how to import waitwise"
    for module_name, names in imports:
        module = importlib.import_module(module_name)
        for name in re.split(r",\s*", names.strip("() ")):
            assert hasattr(module, name), f"from {module_name} import {name}"


def test_the_documented_shortcuts() -> None:
    from waitwise.operators import BreakerOverrideOperator, FileArrivalSensor
    from waitwise.triggers import HIGH, LOW, MEDIUM, FileArrivalTrigger, ReliabilityProfile

    assert FileArrivalSensor.__module__ == "waitwise.operators.file"
    assert BreakerOverrideOperator.__module__ == "waitwise.operators.breaker"
    # the class path stored in Airflow's trigger rows must never move
    assert f"{FileArrivalTrigger.__module__}.{FileArrivalTrigger.__qualname__}" == (
        "waitwise.triggers.file.FileArrivalTrigger"
    )
    assert all(isinstance(p, ReliabilityProfile) for p in (HIGH, MEDIUM, LOW))


@pytest.mark.parametrize("package", ["triggers", "operators"])
def test_py_typed_ships_with_each_package(package: str) -> None:
    assert (README.parent / package / "py.typed").is_file()
