"""Everything that touches the lmdb module: settings, the shared environment, growth, errors.

The one module that imports ``lmdb`` (docs/architecture.md, Layers). docs/reliability.md "Settings that
follow" is applied here: sync and metasync on, writemap and map_async off, a sparse map
grown under a file lock, ``reader_check()`` on every open, ``max_readers`` 512, a small
fixed ``max_dbs``. LMDB allows one environment per path per process, so environments are
shared through a registry, and each remembers the pid that opened it because a forked
child must not use it (py-lmdb#346).

Remapping (``set_mapsize``) replaces the memory map under every open transaction of the
process, so it waits for this process's readers to finish (``_RemapGate``) and for its
writer (``write_lock``); across processes, growth is serialised by ``grow.lock``.
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

from ledger.errors import (
    ForkSafetyError,
    LedgerFull,
    LedgerNotFound,
    LedgerWriteFailed,
    StorageError,
    UnsafeLocation,
)

T = TypeVar("T")

DB_NAMES = (
    "events",
    "ids",
    "refs",
    "study_blocks",
    "meta",
    "checkpoints",
    "exports",
    "leases",
    "cursors",
)
# Tables added after format 2 shipped: a read-only open of an older ledger finds them
# missing and reads them as empty (a write open creates them).
OPTIONAL_DBS = frozenset({"cursors"})
DEFAULT_MAP_SIZE = 256 << 20
MAX_READERS = 512
BACKUP_MARKER = "BACKUP.json"
MOUNTINFO = "/proc/self/mountinfo"
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
    "coda",
    "glusterfs",
    "lustre",
    "gpfs",
    "beegfs",
    "sshfs",
    "davfs",
    "ncpfs",
}
# statfs(2) f_type magic numbers, for when /proc/self/mountinfo cannot be read.
_FS_MAGIC = {
    0x6969: "nfs",
    0x517B: "smb",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x01021997: "9p",
    0x5346414F: "afs",
    0x00C36400: "ceph",
    0x73757245: "coda",
    0x0BD00BD0: "lustre",
    0x47504653: "gpfs",
    0x564C: "ncpfs",
    0x65735546: "fuse",
}
_DISK_ERRNOS = (errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT)

_registry: dict[str, SharedEnv] = {}
_registry_lock = threading.Lock()


# -- where a ledger may live ------------------------------------------------------------


def _mountinfo_type(real: str) -> str:
    best, best_type = "", ""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as fh:
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


def _statfs_type(real: str) -> str:
    """The file system type from ``statfs(2)``'s magic number (Linux), or ``""``."""
    import ctypes  # lazily: only when /proc cannot tell, and it costs start-up time
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        buf = ctypes.create_string_buffer(256)
        if libc.statfs(os.fsencode(real), buf) != 0:
            return ""
    except (OSError, AttributeError):
        return ""
    magic = ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF
    return _FS_MAGIC.get(magic, "")


def filesystem_type(path: str) -> str:
    """The file system type of the mount holding ``path``, or ``""`` when unknown.

    /proc/self/mountinfo names the type (``nfs4``, ``fuse.sshfs``...); statfs(2) is the
    fallback where it cannot be read.
    """
    real = os.path.realpath(path)
    return _mountinfo_type(real) or _statfs_type(real)


def check_location(path: str, *, allow_network_fs: bool = False) -> None:
    """Refuse network file systems, where LMDB's locks do not hold (docs/reliability.md, pitfall 9)."""
    if allow_network_fs:
        return
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    fstype = filesystem_type(probe)
    if fstype in _NETWORK_FS or fstype.startswith("fuse"):
        raise UnsafeLocation(
            f"{path} is on a {fstype} file system, where LMDB's locks do not hold and "
            "concurrent writers can corrupt the ledger; put the ledger on a local disk "
            "(or pass --allow-network-fs if only one process will ever use it)"
        )


def is_backup(path: str) -> bool:
    """A folder written by ``ledger backup`` (it holds the marker file)."""
    return os.path.isfile(os.path.join(path, BACKUP_MARKER))


def require_ledger(path: str) -> str:
    """The real path of the ledger at ``path``; ``LedgerNotFound`` when none is there.

    Looks at the files only (never maps them), so it is safe on a damaged ledger.
    """
    real = os.path.realpath(path)
    if not os.path.exists(os.path.join(real, "data.mdb")):
        if os.path.isdir(real) and os.listdir(real):
            raise LedgerNotFound(f"{path} is a folder but holds no ledger (no data.mdb)")
        raise LedgerNotFound(
            f"no ledger at {path}; check the path (--ledger or LEDGER_PATH), "
            "or create one with `ledger init` or `ledger append`"
        )
    return real


def refuse_foreign_folder(path: str, real: str) -> None:
    """A ledger is created only in a new or empty folder: ``--ledger somefolder`` with a
    typo must not turn a folder of other files into a ledger (issue 18)."""
    if os.path.exists(real) and not os.path.isdir(real):
        raise LedgerNotFound(f"{path} is a file, not a ledger folder; choose a new path")
    if not os.path.isdir(real):
        return
    others = sorted(set(os.listdir(real)) - {"lock.mdb", _GROW_LOCK})
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise LedgerNotFound(
            f"{path} is a folder holding other files ({shown}), not a ledger; a ledger is "
            "created only in a new or empty folder: check the path or choose another"
        )


class _RemapGate:
    """Readers share it; a remap takes it alone (a thread's own nested reads excepted).

    A waiting remap goes first: new readers wait behind it (a thread already reading may
    nest), so a stream of readers cannot starve the writer that needs to grow the map.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._waiting = 0
        self._exclusive = False
        self._mine = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        nested = getattr(self._mine, "n", 0) > 0
        with self._cond:
            while self._exclusive or (self._waiting and not nested):
                self._cond.wait()
            self._shared += 1
        self._mine.n = getattr(self._mine, "n", 0) + 1
        try:
            yield
        finally:
            self._mine.n -= 1
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        mine = getattr(self._mine, "n", 0)
        with self._cond:
            self._waiting += 1
            try:
                while self._exclusive or self._shared > mine:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class SharedEnv:
    """One open LMDB environment, shared by every Ledger on the same path in a process."""

    def __init__(
        self,
        path: str,
        *,
        readonly: bool,
        map_size: int | None,
        max_readers: int = MAX_READERS,
        lock: bool = True,
    ) -> None:
        self.path = path
        self.pid = os.getpid()
        self.refs = 0
        self.readonly = readonly
        self.lock = lock
        self.write_lock = threading.RLock()
        self.stale_readers = 0
        self._gate = _RemapGate()
        creating = not os.path.exists(os.path.join(path, "data.mdb"))
        self.env = self._open_env(path, creating, readonly, map_size, max_readers, lock)
        for attempt in range(5):
            try:
                if not creating or attempt:
                    # Adopt the stored size (docs/reliability.md, pitfall 4); an explicit size may
                    # only raise it, never shrink it.
                    self.env.set_mapsize(0)
                    if map_size and map_size > self.env.info()["map_size"]:
                        self.env.set_mapsize(map_size)
                self.reader_check()
                if readonly:
                    self.dbs = {name: self._open_existing(name) for name in DB_NAMES}
                else:
                    self.dbs = {name: self.env.open_db(name.encode()) for name in DB_NAMES}
                break
            except lmdb.MapResizedError:
                # Another process grew the map between our adopting its size and opening
                # the tables (R1 met this with four writers): adopt it again.
                if attempt < 4:
                    continue
                self.env.close()
                raise StorageError(f"{path}: could not open (the map keeps resizing)") from None
            except lmdb.Error as exc:
                self.env.close()
                raise translate(exc, path) from None

    @staticmethod
    def _open_env(
        path: str,
        creating: bool,
        readonly: bool,
        map_size: int | None,
        max_readers: int,
        lock: bool,
    ) -> Any:
        """``lmdb.open`` with the settings of docs/reliability.md. Opening starts a
        transaction, which meets ``MAP_RESIZED`` when another process grows the map at
        that moment (R1 met it once in a few hundred restarts under load): open again."""
        for attempt in range(5):
            try:
                return lmdb.open(
                    path,
                    subdir=True,
                    map_size=(map_size or DEFAULT_MAP_SIZE) if creating else 1 << 20,
                    readonly=readonly,
                    create=not readonly,
                    sync=True,
                    metasync=True,
                    writemap=False,
                    map_async=False,
                    lock=lock,
                    max_readers=max_readers,
                    max_dbs=len(DB_NAMES) + 2,
                    # Zero fresh pages before they are written: with meminit off, LMDB
                    # writes leftover heap bytes into unused page space, and those held
                    # the unredacted input (R14 found canaries in data.mdb that way).
                    meminit=True,
                )
            except lmdb.MapResizedError:
                if attempt == 4:
                    raise StorageError(f"{path}: could not open (the map keeps resizing)") from None
            except lmdb.Error as exc:
                raise translate(exc, path) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_existing(self, name: str) -> Any:
        """A table of a read-only environment; None for an optional one it lacks."""
        try:
            return self.env.open_db(name.encode(), create=False)
        except lmdb.NotFoundError:
            if name in OPTIONAL_DBS:
                return None
            raise

    def check_pid(self) -> None:
        if os.getpid() != self.pid:
            raise ForkSafetyError(
                f"this Ledger for {self.path} was opened in process {self.pid} and used in "
                f"forked process {os.getpid()}; LMDB environments cannot cross fork(): open "
                "the ledger in the child (use the 'spawn' or 'forkserver' start method)"
            )

    def reader_check(self) -> int:
        """Free the reader slots of dead processes (docs/reliability.md, pitfall 5); how many."""
        if not self.lock:
            return 0
        try:
            self.stale_readers = self.env.reader_check()
        except lmdb.Error as exc:
            raise translate(exc, self.path) from None
        return self.stale_readers

    # -- transactions ----------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        self.check_pid()
        for _ in range(3):
            with self._gate.shared():
                txn = self._try_begin(write=False)
                if txn is not None:
                    try:
                        yield txn
                    except lmdb.Error as exc:  # a damaged page, mid-read
                        raise translate(exc, self.path) from None
                    finally:
                        txn.abort()
                    return
            self._adopt_size()
        raise StorageError(f"{self.path}: could not start a transaction (map keeps resizing)")

    def _try_begin(self, *, write: bool) -> lmdb.Transaction | None:
        """A transaction, or None when another process grew the map (adopt and retry)."""
        for attempt in range(2):
            try:
                if write:
                    return self.env.begin(write=True)
                return self.env.begin(buffers=True)  # type: ignore[return-value]
            except lmdb.MapResizedError:
                return None
            except lmdb.ReadersFullError as exc:
                if attempt or not self.reader_check():
                    raise translate(exc, self.path) from None
            except lmdb.Error as exc:
                raise translate(exc, self.path) from None
        return None  # pragma: no cover

    def _adopt_size(self) -> None:
        """Map the size another process grew the file to (``MapResizedError``)."""
        with self.write_lock, self._gate.exclusive():
            try:
                self.env.set_mapsize(0)
            except lmdb.Error as exc:
                raise translate(exc, self.path) from None

    def write(self, body: Callable[[lmdb.Transaction], T], *, max_size: int | None = None) -> T:
        """Run ``body`` in one write transaction and commit it; grow the map and retry the
        whole body when it is full. A failed body or commit leaves nothing behind."""
        self.check_pid()
        if self.readonly:
            raise StorageError(f"{self.path} is open read-only")
        with self.write_lock:
            for _ in range(64):
                txn = self._try_begin(write=True)
                if txn is None:
                    self._adopt_size()
                    continue
                try:
                    result = body(txn)
                    txn.commit()
                    return result
                except lmdb.MapFullError:
                    # put() or commit() may raise it, and the transaction is dead
                    # (docs/reliability.md, pitfall 3): abort, grow, redo the whole batch.
                    txn.abort()
                    self.grow(max_size)
                except lmdb.Error as exc:
                    txn.abort()
                    raise translate(exc, self.path) from None
                except BaseException:
                    txn.abort()
                    raise
        raise StorageError(f"{self.path}: the batch did not fit after repeated map growth")

    def grow(self, max_size: int | None) -> None:
        """Double the map under a file lock shared by every process of this ledger.

        When another process grew the file meanwhile, its size is adopted instead of
        doubling again; the new size is persisted by the retried (non-empty) commit.
        """
        with self.write_lock, self._gate.exclusive():
            had = self.env.info()["map_size"]
            lock_path = os.path.join(self.path, _GROW_LOCK)
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StorageError(f"{self.path}: cannot open {_GROW_LOCK}: {exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self.env.set_mapsize(0)  # the size stored by the last commit of anyone
                if self.env.info()["map_size"] > had:
                    return
                # Ours may be larger than the stored one (grown, not yet committed).
                current = had
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
        """A consistent snapshot of the store into the empty folder ``dest`` (no fsync)."""
        self.check_pid()
        try:
            with self._gate.shared():  # no remap under the copy's own read transaction
                self.env.copy(dest, compact=compact)
        except lmdb.Error as exc:
            raise translate(exc, self.path) from None

    def sync(self) -> None:
        self.env.sync(True)


_DISK_ADVICE = (
    "the disk is full or failing; nothing of this batch was written and the ledger is "
    "intact. Free space (or raise the file size limit) and retry"
)


def _disk_detail(exc: Exception, path: str) -> str:
    """LMDB reports a short write as EIO ("Input/output error"), and a write that runs
    out of space part-way is a short write: say so when the file system is nearly full,
    so a full disk is not mistaken for a failing one."""
    text = str(exc)
    if "Input/output error" not in text and getattr(exc, "errno", None) != errno.EIO:
        return text
    try:
        st = os.statvfs(path if os.path.isdir(path) else os.path.dirname(path) or ".")
    except OSError:
        return text
    free = st.f_bavail * st.f_frsize
    if free >= 1 << 20:
        return text
    return f"{text}: No space left on device (a short write; {free:,} bytes free)"


def translate(exc: Exception, path: str) -> Exception:
    """One choke point from lmdb's errors to ours, with a message a user can act on."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if isinstance(exc, lmdb.MapFullError):
        return LedgerFull(f"{path} is full (map size reached); nothing of this batch was written")
    if (
        isinstance(exc, lmdb.DiskError)
        or code in _DISK_ERRNOS
        or any(
            s in text for s in ("No space left", "Input/output error", "File too large", "quota")
        )
    ):
        return LedgerWriteFailed(
            f"writing to {path} failed ({_disk_detail(exc, path)}): {_DISK_ADVICE}"
        )
    if isinstance(exc, lmdb.PanicError):
        return LedgerWriteFailed(
            f"{path}: a write failed half-way ({exc}); nothing of the batch was committed. "
            "Close and reopen the ledger (or restart the process) and run `ledger verify`"
        )
    if isinstance(exc, lmdb.ReadersFullError):
        return StorageError(
            f"{path}: too many readers ({exc}); stale readers of killed processes are cleared "
            "when the ledger is reopened"
        )
    if isinstance(exc, lmdb.ReadonlyError) or code in (errno.EACCES, errno.EROFS, errno.EPERM):
        return StorageError(
            f"{path}: permission denied ({exc}); the ledger folder and its files must be "
            "writable by this user (a read-only backup opens with lock=False)"
        )
    if isinstance(exc, lmdb.InvalidError | lmdb.VersionMismatchError):
        return StorageError(f"{path} is not a readable ledger ({exc}); restore a backup")
    if isinstance(exc, lmdb.CorruptedError | lmdb.PageNotFoundError | lmdb.BadTxnError):
        return StorageError(
            f"{path}: the ledger files are damaged ({exc}); run `ledger verify` and restore "
            "a backup (`ledger restore`)"
        )
    return StorageError(f"{path}: storage error: {exc}")


def acquire(
    path: str,
    *,
    create: bool,
    readonly: bool = False,
    map_size: int | None = None,
    allow_network_fs: bool = False,
    max_readers: int = MAX_READERS,
    lock: bool = True,
) -> SharedEnv:
    """The shared environment for ``path``, opened on first use; stale readers of dead
    processes are cleared on every call.

    ``max_readers`` sizes the reader table only when this call creates lock.mdb (LMDB
    keeps an existing table, and only ever grows it). ``lock=False`` is accepted only
    ``readonly`` on a folder marked as a backup (nothing can be writing to it); a backup
    is never opened for writing. Raises ``ForkSafetyError`` in a child forked while the
    path was open, ``UnsafeLocation`` on a network file system.
    """
    real = os.path.realpath(path)
    with _registry_lock:
        shared = _registry.get(real)
        if shared is not None and shared.pid != os.getpid():
            raise ForkSafetyError(
                f"{path} was open in process {shared.pid} when this process was forked from "
                "it; LMDB cannot open the same ledger again in a forked child. Start workers "
                "with the 'spawn' or 'forkserver' method, or close the ledger before fork()"
            )
        if shared is None:
            exists = os.path.exists(os.path.join(real, "data.mdb"))
            if not exists and not create:
                require_ledger(path)
            if not exists:
                refuse_foreign_folder(path, real)
            backup = exists and is_backup(real)
            if backup and not readonly:
                raise UnsafeLocation(
                    f"{path} is a backup made by `ledger backup` and is never written to; "
                    "restore it first: `ledger restore BACKUP DEST`"
                )
            if not lock and not (readonly and backup):
                raise UnsafeLocation(
                    f"{path}: opening without LMDB's lock is only allowed read-only on a "
                    f"backup (a folder holding {BACKUP_MARKER}); a live ledger needs the lock"
                )
            check_location(real, allow_network_fs=allow_network_fs)
            if not exists:
                os.makedirs(real, exist_ok=True)
            readonly_env = readonly and (backup or not os.access(real, os.W_OK))
            shared = SharedEnv(
                real,
                readonly=readonly_env or not lock,
                map_size=map_size,
                max_readers=max_readers,
                lock=lock,
            )
            _registry[real] = shared
        else:
            shared.reader_check()
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
    """``put`` that raises instead of returning False (docs/reliability.md, pitfall 7)."""
    if not txn.put(key, value, db=db, append=append, overwrite=True):
        raise StorageError(f"store refused key {key.hex()} (out of order append?)")


def put_new(txn: Any, key: bytes, value: bytes, *, db: Any) -> bool:
    """Insert unless the key exists; False means it did (the caller decides)."""
    return bool(txn.put(key, value, db=db, overwrite=False))
