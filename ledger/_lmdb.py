"""Everything that touches LMDB: settings, the shared environment, growth, errors.

The one module that imports ``lmdb`` (STYLE convention 1). RELIABILITY.md "Settings that
follow" is applied here: sync and metasync on, writemap and map_async off, a sparse map
grown under a file lock, ``reader_check()`` on open, ``max_readers`` 512, a small fixed
``max_dbs``. LMDB allows one environment per path per process, so environments are
shared through a registry, and each remembers the pid that opened it because a forked
child must not use it (py-lmdb#346).
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import lmdb

from .errors import (
    ForkSafetyError,
    LedgerFull,
    LedgerNotFound,
    LedgerWriteFailed,
    StorageError,
    UnsafeLocation,
)

T = TypeVar("T")

DB_NAMES = ("events", "ids", "refs", "study_blocks", "meta", "checkpoints", "exports", "leases")
DEFAULT_MAP_SIZE = 256 << 20
MAX_READERS = 512
_GROW_LOCK = "grow.lock"

_NETWORK_FS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb",
    "smb2",
    "smb3",
    "smbfs",
    "9p",
    "afs",
    "ceph",
    "glusterfs",
    "lustre",
    "gpfs",
    "beegfs",
    "sshfs",
    "davfs",
    "ncpfs",
}

_registry: dict[str, SharedEnv] = {}
_registry_lock = threading.Lock()


def filesystem_type(path: str) -> str:
    """The file system type of the mount holding ``path`` (Linux /proc), or ``""``."""
    real = os.path.realpath(path)
    best, best_type = "", ""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) < 5 or not right:
                    continue
                mount = fields[4].replace("\\040", " ")
                if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(
                    mount
                ) >= len(best):
                    best, best_type = mount, right.split()[0]
    except OSError:
        return ""
    return best_type


def check_location(path: str, *, allow_network_fs: bool = False) -> None:
    """Refuse network file systems, where LMDB's locks do not hold (RELIABILITY item 9)."""
    if allow_network_fs:
        return
    probe = path if os.path.exists(path) else os.path.dirname(os.path.abspath(path)) or "."
    fstype = filesystem_type(probe)
    if fstype in _NETWORK_FS or fstype.startswith("fuse"):
        raise UnsafeLocation(
            f"{path} is on a {fstype} file system, where LMDB's locks do not hold and "
            "concurrent writers can corrupt the ledger; put the ledger on a local disk "
            "(or pass --allow-network-fs if only one process will ever use it)"
        )


class SharedEnv:
    """One open LMDB environment, shared by every Ledger on the same path in a process."""

    def __init__(self, path: str, *, readonly: bool, map_size: int | None) -> None:
        self.path = path
        self.pid = os.getpid()
        self.refs = 0
        self.readonly = readonly
        self.write_lock = threading.RLock()
        creating = not os.path.exists(os.path.join(path, "data.mdb"))
        try:
            self.env = lmdb.open(
                path,
                subdir=True,
                map_size=map_size or DEFAULT_MAP_SIZE if creating else (map_size or 1 << 20),
                readonly=readonly,
                create=not readonly,
                sync=True,
                metasync=True,
                writemap=False,
                map_async=False,
                lock=True,
                max_readers=MAX_READERS,
                max_dbs=len(DB_NAMES) + 2,
                meminit=False,
            )
        except lmdb.Error as exc:
            raise translate(exc, path) from None
        if not creating and not map_size:
            self.env.set_mapsize(0)  # adopt the stored size (RELIABILITY pitfall 4)
        self.env.reader_check()
        try:
            if readonly:
                self.dbs = {
                    name: self.env.open_db(name.encode(), create=False) for name in DB_NAMES
                }
            else:
                self.dbs = {name: self.env.open_db(name.encode()) for name in DB_NAMES}
        except lmdb.Error as exc:
            self.env.close()
            raise translate(exc, path) from None

    def check_pid(self) -> None:
        if os.getpid() != self.pid:
            raise ForkSafetyError(
                f"this Ledger for {self.path} was opened in process {self.pid} and used in "
                f"forked process {os.getpid()}; LMDB environments cannot cross fork(): open "
                "the ledger in the child (use the 'spawn' or 'forkserver' start method)"
            )

    # -- transactions ----------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        self.check_pid()
        txn = self._begin(write=False)
        try:
            yield txn
        finally:
            txn.abort()

    def _begin(self, *, write: bool) -> lmdb.Transaction:
        for _ in range(3):
            try:
                return self.env.begin(write=write, buffers=not write)
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)  # another process grew the map: adopt its size
            except lmdb.Error as exc:
                raise translate(exc, self.path) from None
        raise StorageError(f"{self.path}: could not start a transaction (map keeps resizing)")

    def write(self, body: Callable[[lmdb.Transaction], T], *, max_size: int | None = None) -> T:
        """Run ``body`` in one write transaction and commit it; grow the map and retry the
        whole body when it is full. A failed body or commit leaves nothing behind."""
        self.check_pid()
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only")
        with self.write_lock:
            while True:
                txn = self._begin(write=True)
                try:
                    result = body(txn)
                    txn.commit()
                    return result
                except lmdb.MapFullError:
                    txn.abort()
                    self.grow(max_size)
                except lmdb.Error as exc:
                    txn.abort()
                    raise translate(exc, self.path) from None
                except BaseException:
                    txn.abort()
                    raise

    def grow(self, max_size: int | None) -> None:
        """Double the map under a file lock shared by every process of this ledger."""
        lock_path = os.path.join(self.path, _GROW_LOCK)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.env.set_mapsize(0)
            current = self.env.info()["map_size"]
            target = current * 2
            if max_size is not None and target > max_size:
                if current >= max_size:
                    raise LedgerFull(
                        f"{self.path} is full: the map reached its max_size ceiling of "
                        f"{max_size} bytes; nothing of this batch was written. Raise the "
                        "ceiling (max_size) or start a new ledger"
                    )
                target = max_size
            self.env.set_mapsize(target)
        except lmdb.Error as exc:
            raise translate(exc, self.path) from None
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def info(self) -> dict[str, Any]:
        return dict(self.env.info())

    def copy(self, dest: str, *, compact: bool = True) -> None:
        self.check_pid()
        try:
            self.env.copy(dest, compact=compact)
        except lmdb.Error as exc:
            raise translate(exc, self.path) from None

    def sync(self) -> None:
        self.env.sync(True)


def translate(exc: Exception, path: str) -> Exception:
    """One choke point from lmdb's errors to ours, with a message a user can act on."""
    if isinstance(exc, lmdb.MapFullError):
        return LedgerFull(f"{path} is full (map size reached); nothing of this batch was written")
    if isinstance(exc, lmdb.DiskError) or (
        isinstance(exc, lmdb.Error) and getattr(exc, "errno", None) in (errno.ENOSPC, errno.EIO)
    ):
        return LedgerWriteFailed(
            f"writing to {path} failed ({exc}): the disk is full or failing; nothing of this "
            "batch was written and the ledger is intact. Free space and retry"
        )
    if isinstance(exc, lmdb.ReadersFullError):
        return StorageError(
            f"{path}: too many readers ({exc}); stale readers of killed processes are cleared "
            "when the ledger is reopened"
        )
    if isinstance(exc, lmdb.InvalidError | lmdb.VersionMismatchError | lmdb.CorruptedError):
        return StorageError(f"{path} is not a readable ledger ({exc})")
    text = str(exc)
    if "No space left" in text or "Input/output error" in text:
        return LedgerWriteFailed(
            f"writing to {path} failed ({exc}): the disk is full or failing; nothing of this "
            "batch was written and the ledger is intact. Free space and retry"
        )
    return StorageError(f"{path}: storage error: {exc}")


def acquire(
    path: str,
    *,
    create: bool,
    readonly: bool = False,
    map_size: int | None = None,
    allow_network_fs: bool = False,
) -> SharedEnv:
    """The shared environment for ``path``, opened on first use."""
    real = os.path.realpath(path)
    with _registry_lock:
        shared = _registry.get(real)
        if shared is not None and shared.pid != os.getpid():
            # Inherited through fork: never touch it, and never close it from here.
            del _registry[real]
            shared = None
        if shared is None:
            exists = os.path.exists(os.path.join(real, "data.mdb"))
            if not exists and not create:
                if os.path.isdir(real) and os.listdir(real):
                    raise LedgerNotFound(f"{path} is a folder but holds no ledger (no data.mdb)")
                raise LedgerNotFound(
                    f"no ledger at {path}; check the path (--ledger or LEDGER_PATH), "
                    "or create one with `ledger init` or `ledger append`"
                )
            check_location(real, allow_network_fs=allow_network_fs)
            if not exists:
                os.makedirs(real, exist_ok=True)
            if readonly and not os.access(real, os.W_OK):
                readonly_env = True
            else:
                readonly_env = False
            shared = SharedEnv(real, readonly=readonly_env, map_size=map_size)
            _registry[real] = shared
        shared.refs += 1
        return shared


def release(shared: SharedEnv) -> None:
    with _registry_lock:
        shared.refs -= 1
        if shared.refs <= 0:
            if _registry.get(shared.path) is shared:
                del _registry[shared.path]
            if shared.pid == os.getpid():
                shared.env.close()


# Thin helpers so that the rest of the package never names lmdb.


def cursor_iter_from(txn: Any, db: Any, start: bytes) -> Iterator[tuple[bytes, Any]]:
    cur = txn.cursor(db)
    if not cur.set_range(start):
        return
    yield from cur.iternext(keys=True, values=True)


def last_item(txn: Any, db: Any) -> tuple[bytes, Any] | None:
    cur = txn.cursor(db)
    if not cur.last():
        return None
    return bytes(cur.key()), cur.value()


def block_at_or_before(txn: Any, db: Any, key: bytes) -> tuple[bytes, Any] | None:
    """The item with the greatest key <= ``key``."""
    cur = txn.cursor(db)
    if cur.set_range(key):
        if bytes(cur.key()) == key:
            return key, cur.value()
        if not cur.prev():
            return None
        return bytes(cur.key()), cur.value()
    if not cur.last():
        return None
    return bytes(cur.key()), cur.value()


def put_checked(txn: Any, key: bytes, value: bytes, *, db: Any, append: bool = False) -> None:
    """``put`` that raises instead of returning False (RELIABILITY pitfall 7)."""
    if not txn.put(key, value, db=db, append=append, overwrite=True):
        raise StorageError(f"store refused key {key.hex()} (out of order append?)")


def put_new(txn: Any, key: bytes, value: bytes, *, db: Any) -> bool:
    """Insert unless the key exists; False means it did (the caller decides)."""
    return bool(txn.put(key, value, db=db, overwrite=False))
