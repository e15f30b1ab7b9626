"""The mount table as data: which filesystem holds a path, and whether inotify sees it all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from waitwise.triggers import mounts


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mounts, "_LOGGED", set())


MOUNTINFO = "\n".join(
    [
        "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw",
        "30 22 0:40 / /mnt/nfs rw,relatime shared:9 - nfs4 server:/export rw,vers=4.2",
        "31 22 0:41 / /mnt/smb rw - cifs //host/share rw",
        "32 22 0:42 / /mnt/ssh rw,nosuid - fuse.sshfs me@host:/ rw,user_id=0",
        "33 22 0:43 / /tmp rw - tmpfs tmpfs rw",
        "34 22 0:44 / /var/lib/docker/x rw - overlay overlay rw,lowerdir=/a",
        "35 22 8:2 / /data rw - xfs /dev/sdb rw",
        "36 22 8:3 / /srv/my\\040disk rw - btrfs /dev/sdc rw",
        "37 30 0:45 / /mnt/nfs/local rw - ext4 /dev/sdd rw",
        "38 22 0:46 / /data rw master:3 - nfs host:/x rw",  # mounted over /data: wins
        "garbage line",
    ]
)


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/", "ext4"),
        ("/home/me", "ext4"),
        ("/mnt/nfs/a/b", "nfs4"),
        ("/mnt/nfsother", "ext4"),
        ("/mnt/nfs/local/x", "ext4"),
        ("/mnt/smb", "cifs"),
        ("/mnt/ssh/dir", "fuse.sshfs"),
        ("/tmp/x", "tmpfs"),
        ("/var/lib/docker/x/y", "overlay"),
        ("/data/in", "nfs"),
        ("/srv/my disk/in", "btrfs"),
    ],
)
def test_fstype_of_takes_the_longest_and_topmost_mount(path: str, fstype: str) -> None:
    assert mounts.fstype_of(path, MOUNTINFO) == fstype


@pytest.mark.parametrize(
    ("fstype", "remote"),
    [
        ("nfs4", True),
        ("nfs", True),
        ("cifs", True),
        ("smb3", True),
        ("fuse.sshfs", True),
        ("fuse.s3fs", True),
        ("fuseblk", True),
        ("9p", True),
        ("ceph", True),
        ("lustre", True),
        ("ext4", False),
        ("tmpfs", False),
        ("overlay", False),
        ("xfs", False),
        ("btrfs", False),
    ],
)
def test_remote_filesystem_types(fstype: str, remote: bool) -> None:
    assert mounts.is_remote_fstype(fstype) is remote


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/mnt/nfs/in", False), ("/mnt/ssh/in", False), ("/srv/my disk", True), ("/tmp", True)],
)
def test_can_notify_reads_the_mount_table(
    monkeypatch: pytest.MonkeyPatch, path: str, expected: bool
) -> None:
    monkeypatch.setattr(mounts, "read_mountinfo", lambda: MOUNTINFO)
    monkeypatch.setattr(os.path, "realpath", lambda p: p)
    assert mounts.can_notify(path) is expected


def test_can_notify_is_false_without_a_mount_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable() -> str:
        raise FileNotFoundError(mounts.MOUNTINFO)

    monkeypatch.setattr(mounts, "read_mountinfo", unreadable)
    assert mounts.can_notify("/tmp") is False


def test_can_notify_on_this_machine_s_tmp_path(tmp_path: Path) -> None:
    fstype = mounts.fstype_of(os.path.realpath(tmp_path), mounts.read_mountinfo())
    assert fstype is not None
    assert mounts.can_notify(str(tmp_path)) is not mounts.is_remote_fstype(fstype)
