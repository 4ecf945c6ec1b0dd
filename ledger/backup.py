"""Backups that exist only once they are complete and verified; restores that check first.

``env.copy`` does not fsync and refuses an existing target (docs/reliability.md, pitfall 8), and a
process killed half-way must never leave something that looks like a backup. So a backup
is written to a temporary folder next to its destination (``DEST.<pid>-<tag>.tmp``),
fsynced, verified in a child process, marked (``BACKUP.json`` holds its head, so it is
also an anchor), and only then renamed into place. The copy is a consistent snapshot of
one read transaction, so writers may keep appending meanwhile.

A backup folder is never opened for writing (``_lmdb.acquire`` refuses); ``restore``
verifies it, copies it next to the destination, verifies the copy, and renames it into
place, refusing to replace a live ledger.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from typing import Any, NamedTuple

from .errors import CorruptionError, LedgerError
from .fsync import fsync_dir, fsync_file
from .integrity import verify_isolated
from .log import Ledger
from .store import lmdb_env as _lmdb
from .store.location import is_url, mask

__all__ = ["BACKUP_FORMAT", "BackupError", "BackupResult", "backup", "restore"]

BACKUP_FORMAT = "results-ledger-backup/1"


class BackupError(LedgerError):
    """A backup or restore refused (target exists, not a backup, live ledger)."""


class BackupResult(NamedTuple):
    path: str
    ledger_id: str
    head_seq: int
    head_hash: str
    bytes: int


def _temporary_next_to(dest: str) -> str:
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = f"{dest}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    os.mkdir(tmp)
    return tmp


def _refuse_existing(dest: str, what: str) -> None:
    if os.path.lexists(dest):
        raise BackupError(
            f"{dest} already exists; {what} never replaces anything: choose a new path "
            "(e.g. one with the date in its name) or move the old one away"
        )


def _promote(tmp: str, dest: str) -> None:
    """Rename the finished folder into place and make the rename durable."""
    fsync_dir(tmp)
    try:
        os.rename(tmp, dest)
    except OSError as exc:
        raise BackupError(f"cannot move the finished copy to {dest}: {exc.strerror}") from None
    fsync_dir(os.path.dirname(dest))


def _drop_lock_file(folder: str) -> None:
    for name in ("lock.mdb", _lmdb._GROW_LOCK):
        try:
            os.unlink(os.path.join(folder, name))
        except FileNotFoundError:
            pass


def _refuse_urls(*locations: str | os.PathLike[str]) -> None:
    """Backups are copies of an LMDB folder; a shared ledger has its server's tools."""
    for location in locations:
        if is_url(location):
            raise BackupError(
                f"{mask(location)} is a PostgreSQL ledger: back it up with the server's own "
                "tools (pg_dump --schema=NAME, or continuous archiving), or keep a local "
                "replica with `ledger sync URL FOLDER`; `ledger backup` and `ledger "
                "restore` copy LMDB folders"
            )


def backup(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    compact: bool = True,
    allow_network_fs: bool = False,
) -> BackupResult:
    """Copy the ledger at ``source`` to the new folder ``dest``, verified.

    Raises ``BackupError`` when ``dest`` exists, ``CorruptionError`` when the copy does
    not verify (then nothing is left at ``dest``).
    """
    _refuse_urls(source, dest)
    source, dest = os.fspath(source), os.path.abspath(os.fspath(dest))
    _refuse_existing(dest, "a backup")
    with Ledger(source, create=False, readonly=True, allow_network_fs=allow_network_fs) as live:
        ledger_id = live.ledger_id
        _lmdb.check_location(dest, allow_network_fs=allow_network_fs)
        if os.path.realpath(dest).startswith(os.path.realpath(live.path) + os.sep):
            raise BackupError(f"{dest} is inside the ledger {source}; back up to another folder")
        tmp = _temporary_next_to(dest)
        try:
            shared = _lmdb.acquire(live.path, create=False, readonly=True)
            try:
                shared.copy(tmp, compact=compact)
            finally:
                _lmdb.release(shared)
            data = os.path.join(tmp, "data.mdb")
            fsync_file(data)
            report = verify_isolated(tmp, allow_network_fs=allow_network_fs)
            if not report.ok:
                raise CorruptionError(
                    f"the copy of {source} did not verify ({report.error}); nothing was "
                    f"written to {dest}. Run `ledger verify` on the ledger itself"
                )
            _drop_lock_file(tmp)
            marker = {
                "format": BACKUP_FORMAT,
                "ledger_id": ledger_id,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
                "events": report.events,
                "compact": compact,
            }
            _write_marker(tmp, marker)
            _refuse_existing(dest, "a backup")
            _promote(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return BackupResult(
        dest,
        ledger_id,
        report.head_seq,
        report.head_hash,
        os.path.getsize(os.path.join(dest, "data.mdb")),
    )


def _write_marker(folder: str, marker: dict[str, Any]) -> None:
    path = os.path.join(folder, _lmdb.BACKUP_MARKER)
    with open(path, "wb") as fh:
        fh.write((json.dumps(marker, sort_keys=True, indent=2) + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())


def read_marker(folder: str) -> dict[str, Any]:
    """The marker of a backup folder; ``BackupError`` when it is not a backup."""
    path = os.path.join(folder, _lmdb.BACKUP_MARKER)
    try:
        with open(path, "rb") as fh:
            marker = json.loads(fh.read(1 << 16))
    except FileNotFoundError:
        raise BackupError(
            f"{folder} is not a backup made by `ledger backup` (no {_lmdb.BACKUP_MARKER})"
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} is unreadable ({exc}); the backup is damaged") from None
    if not isinstance(marker, dict) or marker.get("format") != BACKUP_FORMAT:
        raise BackupError(f"{path} is not a results-ledger backup marker")
    return marker


def restore(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    allow_network_fs: bool = False,
) -> BackupResult:
    """Put the backup at ``source`` in place as a live ledger at ``dest``.

    The backup is verified (and must match its marker) before anything is written; the
    copy is verified again before it is renamed into place. Refuses a ``dest`` that holds
    a ledger or anything else.
    """
    _refuse_urls(source, dest)
    source, dest = os.fspath(source), os.path.abspath(os.fspath(dest))
    real = _lmdb.require_ledger(source)
    marker = read_marker(real)
    if os.path.exists(os.path.join(dest, "data.mdb")):
        raise BackupError(
            f"{dest} holds a ledger; restore never overwrites a live ledger: restore to a "
            "new path, or move the damaged ledger away first"
        )
    _refuse_existing(dest, "a restore")
    _lmdb.check_location(dest, allow_network_fs=allow_network_fs)
    report = verify_isolated(real, allow_network_fs=allow_network_fs)
    if not report.ok:
        raise CorruptionError(
            f"the backup {source} does not verify: {report.error}; nothing was restored"
        )
    if (report.head_seq, report.head_hash) != (marker.get("head_seq"), marker.get("head_hash")):
        raise CorruptionError(
            f"the backup {source} holds head {report.head_seq} {report.head_hash[:16]} but its "
            f"marker records {marker.get('head_seq')} {str(marker.get('head_hash'))[:16]}; "
            "the backup was modified: nothing was restored"
        )
    tmp = _temporary_next_to(dest)
    try:
        data = os.path.join(tmp, "data.mdb")
        shutil.copyfile(os.path.join(real, "data.mdb"), data)
        fsync_file(data)
        again = verify_isolated(tmp, allow_network_fs=allow_network_fs)
        if not again.ok or again.head_hash != report.head_hash:
            raise CorruptionError(
                f"the copy of {source} at {tmp} did not verify ({again.error}); nothing was "
                "restored (is the disk full or failing?)"
            )
        _drop_lock_file(tmp)
        _refuse_existing(dest, "a restore")
        _promote(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BackupResult(
        dest,
        str(marker.get("ledger_id")),
        report.head_seq,
        report.head_hash,
        os.path.getsize(os.path.join(dest, "data.mdb")),
    )
