"""The pooling benchmark's layouts, arrival plans and strace parsing (not its results)."""

from __future__ import annotations

from pathlib import Path

from devtools.bench import _hosted as hosted
from devtools.bench import pooling as bench

TRACE = f"""\
101 access("{bench.MARKER}/4xpath-100-0/pooled/begin", F_OK) = -1 ENOENT (No such file)
101 openat(AT_FDCWD, "/d", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3
101 newfstatat(3, "", {{st_mode=S_IFDIR|0755, ...}}, AT_EMPTY_PATH) = 0
101 getdents64(3 <unfinished ...>
102 futex(0x1, FUTEX_WAKE, 1) = 0
101 <... getdents64 resumed>, 0x55 /* 4 entries */, 32768) = 112
101 close(3) = 0
101 access("{bench.MARKER}/4xpath-100-0/pooled/end", F_OK) = -1 ENOENT (No such file)
101 newfstatat(AT_FDCWD, "/d/f00000.csv", 0x7ffd, 0) = -1 ENOENT (No such file)
"""


def test_count_syscalls_counts_between_markers_once_per_call() -> None:
    counts = bench.count_syscalls(TRACE)
    assert dict(counts[("4xpath-100-0", "pooled")]) == {
        "openat": 1,
        "newfstatat": 1,
        "getdents64": 1,
        "futex": 1,
        "close": 1,
    }


def test_case_names_glob_queries_match_only_their_present_files() -> None:
    files, queries = bench._case_names(bench.SyscallCase(3, 10, present=2, globs=True))
    assert queries == ["f000_*.csv", "f001_*.csv", "f002_*.csv"]
    assert files[:2] == ["f000_0.csv", "f001_0.csv"]
    assert len(files) == 10


def test_stage_files_spreads_consecutive_files_over_directories(tmp_path: Path) -> None:
    paths, staging = hosted.stage_files(tmp_path, 6, create=True, dirs=3)
    assert [Path(p).relative_to(tmp_path / "data" / "batch").as_posix() for p in paths] == [
        "d000/f00000.csv",
        "d000/f00001.csv",
        "d001/f00002.csv",
        "d001/f00003.csv",
        "d002/f00004.csv",
        "d002/f00005.csv",
    ]
    assert (staging / "d002" / "f00005.csv").is_file()


def test_stage_files_one_directory_keeps_the_runner_bench_layout(tmp_path: Path) -> None:
    paths, _ = hosted.stage_files(tmp_path, 2, create=False)
    assert paths == [str(tmp_path / "data" / "batch" / f"f0000{i}.csv") for i in range(2)]


def test_group_paths_makes_batches_only_for_the_batch_trigger() -> None:
    paths = [f"/d/f{i}" for i in range(5)]
    assert hosted.group_paths("waitwise", paths, 2) == paths
    assert hosted.group_paths("batch", paths, 2) == [paths[0:2], paths[2:4], paths[4:5]]


def test_plan_trickle_creates_all_but_the_last_member_and_alternates_kinds(
    tmp_path: Path,
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    groups = [[str(tmp_path / f"b{b}_{m}") for m in range(3)] for b in range(4)]
    plan = hosted.plan_trickle(groups, staging, {"gap_s": 0.1, "seed": 1})
    assert sorted(a["trigger_id"] for a in plan) == [1, 2, 3, 4]
    assert [a["kind"] for a in plan] == ["close", "rename", "close", "rename"]
    for arrival in plan:
        members = groups[arrival["trigger_id"] - 1]
        assert arrival["path"] == members[-1]
        assert all(Path(m).is_file() for m in members[:-1])
        assert not Path(members[-1]).exists()
        assert arrival["staged"] is None or Path(arrival["staged"]).is_file()
    again = hosted.plan_trickle(groups, staging, {"gap_s": 0.1, "seed": 1})
    assert [(a["trigger_id"], a["gap_s"]) for a in again] == [
        (a["trigger_id"], a["gap_s"]) for a in plan
    ]


def test_land_stamps_before_the_close_and_renames_into_place(tmp_path: Path) -> None:
    staged = tmp_path / "s.tmp"
    staged.write_bytes(b"xy")
    plan = [
        {"trigger_id": 1, "path": str(tmp_path / "a"), "kind": "close", "staged": None},
        {"trigger_id": 2, "path": str(tmp_path / "b"), "kind": "rename", "staged": str(staged)},
    ]
    for arrival in plan:
        arrival["gap_s"] = 0.0
    landed: dict[int, float] = {}
    hosted.land(plan, 0.0, landed)
    assert sorted(landed) == [1, 2]
    assert (tmp_path / "a").read_bytes() == b"xy"
    assert (tmp_path / "b").read_bytes() == b"xy"
    assert not staged.exists()
