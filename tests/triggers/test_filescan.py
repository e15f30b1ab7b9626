"""Pooled checks: one listing per directory answers every query on it, as each alone would."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitwise.triggers.errors import ProbeError
from waitwise.triggers.filescan import LIST_FROM, FileQuery, Unfinished, check, check_all

NAMES = ["a.csv", "b.csv", "ab.json", ".hidden.csv", "dir", "c.txt", "link.csv"]
PATTERNS = ["a.csv", "*.csv", "a*", "?b.json", ".*", "*", "[ab].csv", "dir", "missing", "*.xml"]


def _layout(root: Path, present: set[str]) -> None:
    for name in present:
        if name == "dir":
            (root / "dir" / "sub").mkdir(parents=True)
            (root / "dir" / "sub" / "x").write_text("x")
        elif name == "link.csv":
            (root / "link.csv").symlink_to(root / "nowhere")  # dangling: never reported
        else:
            (root / name).write_text(name)


class Scandirs:
    """Counts os.scandir calls made by the pooled check."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        real = os.scandir

        def counting(path: Any = ".") -> Any:
            self.calls.append(str(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", counting)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(present=st.sets(st.sampled_from(NAMES)), patterns=st.lists(st.sampled_from(PATTERNS)))
def test_pooled_results_equal_each_query_checked_alone(
    tmp_path_factory: pytest.TempPathFactory, present: set[str], patterns: list[str]
) -> None:
    root = tmp_path_factory.mktemp("in")
    _layout(root, present)
    queries = [FileQuery(str(root / p)) for p in patterns]
    pooled = check_all(queries)  # sorted by name; glob's own order is the directory's
    assert pooled == [sorted(check(q), key=lambda f: f["path"]) for q in queries]


def test_one_listing_serves_every_glob_and_path_in_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.csv").write_text("a")
    scandirs = Scandirs(monkeypatch)
    queries = [FileQuery(str(tmp_path / f"f{i}.csv")) for i in range(50)]
    queries += [FileQuery(str(tmp_path / "*.csv")), FileQuery(str(tmp_path / "a.csv"))]
    results = check_all(queries)
    assert scandirs.calls == [str(tmp_path)]
    assert results[:50] == [[]] * 50
    assert [[f["path"] for f in r] for r in results[50:]] == [[str(tmp_path / "a.csv")]] * 2  # type: ignore[union-attr]


def test_a_few_plain_paths_are_asked_by_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scandirs = Scandirs(monkeypatch)
    check_all([FileQuery(str(tmp_path / f"f{i}")) for i in range(LIST_FROM - 1)])
    assert scandirs.calls == []
    check_all([FileQuery(str(tmp_path / f"f{i}")) for i in range(LIST_FROM)])
    assert scandirs.calls == [str(tmp_path)]


def test_files_being_written_are_left_out(tmp_path: Path) -> None:
    for name in ("done.csv", "open.csv"):
        (tmp_path / name).write_text(name)
    glob_q, plain_q = FileQuery(str(tmp_path / "*.csv")), FileQuery(str(tmp_path / "open.csv"))
    hidden = {str(tmp_path): Unfinished(frozenset({"open.csv"}), frozenset(), time.time() + 60)}
    results = check_all([glob_q, plain_q], hidden)
    assert [f["path"] for f in results[0]] == [str(tmp_path / "done.csv")]  # type: ignore[union-attr]
    assert results[1] == []


def test_a_file_changed_since_the_watch_began_waits_for_its_completion(tmp_path: Path) -> None:
    for name in ("old.csv", "new.csv", "closed.csv"):
        (tmp_path / name).write_text(name)
    os.utime(tmp_path / "old.csv", (0, 1_000))  # long before the watch began
    since = time.time() - 30  # the watch began before new.csv and closed.csv were written
    hidden = {str(tmp_path): Unfinished(frozenset(), frozenset({"closed.csv"}), since)}
    (result,) = check_all([FileQuery(str(tmp_path / "*.csv"))], hidden)
    assert sorted(Path(f["path"]).name for f in result) == ["closed.csv", "old.csv"]  # type: ignore[union-attr]


def test_a_directory_that_cannot_be_listed_fails_only_its_queries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    (good / "x.csv").write_text("x")
    real = os.scandir

    def failing(path: Any = ".") -> Any:
        if str(path) == str(bad):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", failing)
    results = check_all([FileQuery(str(bad / "*.csv")), FileQuery(str(good / "*.csv"))])
    assert isinstance(results[0], ProbeError)
    assert [f["path"] for f in results[1]] == [str(good / "x.csv")]  # type: ignore[union-attr]


@pytest.mark.parametrize("poison", ["bad\0name.csv", "bad\ud800name.csv"])
def test_a_path_the_filesystem_cannot_take_is_an_error_in_a_listing_too(
    tmp_path: Path, poison: str
) -> None:
    queries = [FileQuery(str(tmp_path / f"f{i}")) for i in range(LIST_FROM)]
    results = check_all([*queries, FileQuery(str(tmp_path / poison))])
    assert results[:LIST_FROM] == [[]] * LIST_FROM
    assert isinstance(results[-1], ValueError)  # UnicodeEncodeError is a ValueError


def test_a_glob_limit_caps_what_is_reported(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"part-{i:02}.csv").write_text("x")
    (result,) = check_all([FileQuery(str(tmp_path / "part-*.csv"), limit=7)])
    assert [Path(f["path"]).name for f in result] == [f"part-{i:02}.csv" for i in range(7)]  # type: ignore[union-attr]
