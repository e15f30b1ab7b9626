"""The tree drawn in ``errors.py`` is the real one; kinds travel as data."""

from __future__ import annotations

import re

import pytest

from waitwise.triggers import errors
from waitwise.triggers.errors import ProbeError, WaitwiseError, error_kind

_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)(?: \((?P<extra>[\w, ]+)\))?")


def _drawn() -> dict[str, tuple[str, set[str]]]:
    """Return ``{class: (drawn parent, drawn builtin bases)}`` from the module docstring."""
    tree = (errors.__doc__ or "").split("::", 1)[1].split("\n\n")[1]
    parents: dict[int, str] = {}
    drawn: dict[str, tuple[str, set[str]]] = {}
    for line in tree.splitlines():
        match = _LINE.match(line.strip("\n")[4:])
        if not match:
            continue
        depth = len(match["indent"]) // 4
        parents[depth] = match["name"]
        extra = {b.strip() for b in (match["extra"] or "").split(",") if b.strip()}
        drawn[match["name"]] = (parents.get(depth - 1, "Exception"), extra)
    return drawn


def _real() -> dict[str, tuple[str, set[str]]]:
    real = {}
    for name in errors.__all__:
        cls = getattr(errors, name)
        if not (isinstance(cls, type) and issubclass(cls, WaitwiseError)):
            continue
        ours = [b.__name__ for b in cls.__bases__ if issubclass(b, WaitwiseError)]
        builtin = {b.__name__ for b in cls.__bases__ if not issubclass(b, WaitwiseError)}
        real[name] = (ours[0] if ours else "Exception", builtin - {"Exception"})
    return real


def test_the_drawn_tree_is_the_real_one() -> None:
    assert _drawn() == _real()


def test_every_waitwise_error_in_the_package_is_in_the_tree() -> None:
    import waitwise.triggers as package

    def subclasses(cls: type) -> set[type]:
        found: set[type] = {cls}
        direct: list[type] = type.__subclasses__(cls)
        for sub in direct:
            found |= subclasses(sub)
        return found

    listed = {getattr(errors, name) for name in errors.__all__}
    ours = {c for c in subclasses(WaitwiseError) if c.__module__.startswith(package.__name__)}
    assert ours <= listed


def test_config_errors_are_value_errors_and_rebuild_errors_type_errors() -> None:
    assert issubclass(errors.PolicyConfigError, ValueError)
    assert issubclass(errors.TriggerArgumentError, TypeError)
    assert issubclass(errors.TriggerArgumentError, errors.PolicyConfigError)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ProbeError("x", kind="PermissionError"), "PermissionError"),
        (ProbeError.wrapping(TimeoutError("slow")), "TimeoutError"),
        (ProbeError("plain"), "ProbeError"),
        (ValueError("embedded null byte"), "ValueError"),
    ],
)
def test_an_errors_kind_is_data(exc: BaseException, kind: str) -> None:
    assert error_kind(exc) == kind


def test_a_probe_error_raised_from_a_cause_takes_its_kind() -> None:
    def check() -> None:
        try:
            raise ConnectionResetError("peer")
        except ConnectionResetError as cause:
            raise ProbeError("checking s3://bucket/key") from cause

    with pytest.raises(ProbeError) as raised:
        check()
    assert raised.value.kind == "ConnectionResetError"
