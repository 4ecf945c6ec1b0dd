"""R18 environment refusals: network file systems (as /proc/self/mountinfo or statfs
report them, mocked here) are refused unless the user insists; ``lock=False`` is only
for reading a backup; a backup is never opened for writing."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger
from ledger.backup import backup
from ledger.errors import UnsafeLocation
from ledger.integrity import verify_isolated
from ledger.store import lmdb_env as _lmdb


@pytest.fixture
def fake_mounts(tmp_path, monkeypatch):
    """Make ``tmp_path/net`` look like a mount of the given type."""
    net = tmp_path / "net"
    net.mkdir()

    def mount(fstype: str) -> str:
        info = tmp_path / "mountinfo"
        info.write_text(
            "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"
            f"99 22 0:99 / {net} rw,relatime - {fstype} server:/export rw,vers=4.2\n"
        )
        monkeypatch.setattr(_lmdb, "MOUNTINFO", str(info))
        return str(net / "results.ledger")

    return mount


@pytest.mark.parametrize(
    "fstype", ["nfs", "nfs4", "cifs", "smb3", "9p", "ceph", "fuse.sshfs", "fuse"]
)
def test_network_file_systems_are_refused(fake_mounts, fstype):
    path = fake_mounts(fstype)
    with pytest.raises(UnsafeLocation) as info:
        Ledger(path)
    assert str(info.value) == (
        f"{path} is on a {fstype} file system, where LMDB's locks do not hold and concurrent "
        "writers can corrupt the ledger; put the ledger on a local disk (or pass "
        "--allow-network-fs if only one process will ever use it)"
    )
    assert not os.path.exists(path), "a refused ledger was created anyway"
    with Ledger(path, allow_network_fs=True) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs", "tmpfs", "zfs", "overlay"])
def test_local_file_systems_are_accepted(fake_mounts, fstype):
    with Ledger(fake_mounts(fstype)) as ledger:
        assert ledger.head.seq == 0


def test_statfs_is_the_fallback_when_mountinfo_cannot_be_read(tmp_path, monkeypatch):
    monkeypatch.setattr(_lmdb, "MOUNTINFO", str(tmp_path / "missing"))
    monkeypatch.setattr(_lmdb, "_statfs_type", lambda real: "nfs")
    with pytest.raises(UnsafeLocation, match="is on a nfs file system"):
        Ledger(tmp_path / "l")
    monkeypatch.setattr(_lmdb, "_statfs_type", lambda real: "fuse")
    with pytest.raises(UnsafeLocation, match="is on a fuse file system"):
        _lmdb.check_location(str(tmp_path / "deep" / "er" / "l"))


def test_statfs_magic_numbers_on_this_machine():
    assert _lmdb._statfs_type("/") not in ("nfs", "fuse")  # whatever / is, it is local here
    assert _lmdb._FS_MAGIC[0x6969] == "nfs" and _lmdb._FS_MAGIC[0x65735546] == "fuse"


def test_cli_refuses_without_the_flag(fake_mounts):
    path = fake_mounts("nfs4")
    runner = CliRunner()
    result = runner.invoke(cli, ["--ledger", path, "init"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "nfs4 file system" in result.stderr
    assert "--allow-network-fs" in result.stderr
    assert runner.invoke(cli, ["--ledger", path, "--allow-network-fs", "init"]).exit_code == 0
    assert runner.invoke(cli, ["--ledger", path, "status"]).exit_code == 1
    ok = runner.invoke(cli, ["--ledger", path, "status"], env={"LEDGER_ALLOW_NETWORK_FS": "1"})
    assert ok.exit_code == 0, ok.output


def test_lock_false_only_read_only_on_a_backup(tmp_path):
    live = str(tmp_path / "live.ledger")
    with Ledger(live) as ledger:
        ledger.append([{"type": "study_created", "study": "s"}])
    with pytest.raises(UnsafeLocation, match="only allowed read-only on a backup"):
        _lmdb.acquire(live, create=False, readonly=True, lock=False)
    dest = str(tmp_path / "backup")
    backup(live, dest)
    with pytest.raises(UnsafeLocation, match="is a backup made by `ledger backup`"):
        _lmdb.acquire(dest, create=False, readonly=False, lock=False)
    shared = _lmdb.acquire(dest, create=False, readonly=True, lock=False)
    try:
        assert shared.readonly and not shared.env.flags()["lock"]
        with Ledger(dest, create=False, readonly=True) as copy:
            assert copy.head.seq == 1
    finally:
        _lmdb.release(shared)
    assert not os.path.exists(os.path.join(dest, "lock.mdb")), "lock=False created a lock file"
    report = verify_isolated(dest, lock=False)
    assert report.ok and report.head_seq == 1
    assert not os.path.exists(os.path.join(dest, "lock.mdb"))


def test_settings_that_follow(tmp_path):
    """docs/reliability.md "Settings that follow", as the environment reports them."""
    with Ledger(tmp_path / "l") as ledger:
        flags = ledger._store.env.env.flags()
        info = ledger.storage_info()
    assert flags["sync"] and flags["metasync"] and flags["lock"] and flags["subdir"]
    assert not flags["writemap"] and not flags["map_async"]
    assert flags["meminit"], "unused page space must be zeroed, not leftover heap (R14)"
    assert info["max_readers"] == 512
