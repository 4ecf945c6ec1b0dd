"""The shared backend: one ledger per PostgreSQL schema, for runners on many hosts.

Every SQL statement of the backend is in this module. The tables mirror the logical
tables of ``ledger.store.base``; values are the same bytes the LMDB backend stores, so
blocks, columns, the chain and every projection work unchanged:

    head(one, seq, hash)             one row; ``SELECT ... FOR UPDATE`` is the write lock
    meta(key, value)                 format_version, ledger_id, pg_layout
    blocks(first_seq, last_seq, data, columns_at, head_len)   the log: append-only
    block_studies(study, first_seq)          append-only (trigger)
    ids(key, value)                          append-only (trigger)
    refs(key, value)                 the rules' reference state (updated as runs close)
    aux(tbl, key, value)             checkpoints, exports, leases, cursors

An append is one transaction: lock the head row, check the rules against the state at
the head, number the events head+1.. in our code (never a database sequence: sequences
are not transactional, so commit order could differ from seq order and a reader could
see a gap), chain, insert, move the head, commit. Commit order is seq order, and a
rolled-back batch uses no seq. The head lock serialises writers on every host; readers
never wait for it (MVCC).

Errors are translated in one place (``_translated``): a server that cannot be reached,
a connection lost mid-transaction or a restart is ``StoreUnavailable`` (nothing of the
batch was written; lost during COMMIT its outcome is unknown, and re-sending is safe
because ids derive from content); refused credentials are ``AuthenticationFailed``.
Messages name the ledger by its URL with the password masked, never the password.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from ledger.errors import (
    AuthenticationFailed,
    ForkSafetyError,
    LedgerError,
    LedgerNotFound,
    LedgerWriteFailed,
    StorageError,
    StoreUnavailable,
)

from .base import AUX_TABLES, COLUMNS, EVENTS, WHOLE, BlockParts, Buffer, unknown_table
from .location import PgLocation, parse_pg

__all__ = ["LAYOUT_VERSION", "PostgresStore", "layout_sql"]

T = TypeVar("T")

LAYOUT_VERSION = 1
"""The table layout of this module (``meta.pg_layout``); the ledger's own format version
(blocks, columns) is ``ledger.commit.FORMAT_VERSION`` and is checked above the seam."""

_INSTALL_HINT = "pip install 'results-ledger[postgres]'"
_CONNECT_TIMEOUT = 10


def layout_sql(schema: str) -> list[str]:
    """The statements that create a ledger in ``schema`` (idempotent)."""
    s = f'"{schema}"'
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value bytea NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {s}.head (one boolean PRIMARY KEY DEFAULT true "
        "CHECK (one), seq bigint NOT NULL, hash bytea NOT NULL)",
        # columns_at, head_len: where the block's parts are (ledger.store.base.BlockParts),
        # so a reader is sent only what it needs: a decode the events, a rebuild of a
        # block of metrics events only its header and columns (a fifth of the bytes).
        f"CREATE TABLE IF NOT EXISTS {s}.blocks (first_seq bigint PRIMARY KEY, "
        "last_seq bigint NOT NULL UNIQUE, data bytea NOT NULL, "
        "columns_at integer NOT NULL, head_len integer NOT NULL)",
        # Blocks are already dense msgpack: storing them uncompressed saves the pglz
        # pass on every append and read.
        f"ALTER TABLE {s}.blocks ALTER COLUMN data SET STORAGE EXTERNAL",
        f"CREATE TABLE IF NOT EXISTS {s}.block_studies (study bytea NOT NULL, "
        "first_seq bigint NOT NULL, PRIMARY KEY (study, first_seq))",
        f"CREATE TABLE IF NOT EXISTS {s}.ids (key bytea PRIMARY KEY, value bytea NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {s}.refs (key bytea PRIMARY KEY, value bytea NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {s}.aux (tbl text NOT NULL, key bytea NOT NULL, "
        "value bytea NOT NULL, PRIMARY KEY (tbl, key))",
        f"""CREATE OR REPLACE FUNCTION {s}.refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the ledger''s % table is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END $$""",
        *(
            f"CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE OR DELETE ON {s}.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {s}.refuse_change()"
            for table in ("blocks", "block_studies", "ids")
        ),
        *(
            f"CREATE OR REPLACE TRIGGER append_only_truncate BEFORE TRUNCATE ON {s}.{table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.refuse_change()"
            for table in ("blocks", "block_studies", "ids", "head")
        ),
        f"CREATE OR REPLACE TRIGGER head_kept BEFORE DELETE ON {s}.head "
        f"FOR EACH ROW EXECUTE FUNCTION {s}.refuse_change()",
        f"INSERT INTO {s}.head (one, seq, hash) VALUES (true, 0, '\\x{'00' * 32}') "
        "ON CONFLICT DO NOTHING",
        f"INSERT INTO {s}.meta (key, value) VALUES ('pg_layout', '{LAYOUT_VERSION}') "
        "ON CONFLICT DO NOTHING",
    ]


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StorageError(
            f"a postgresql:// ledger needs the psycopg package: {_INSTALL_HINT}"
        ) from None
    return psycopg


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def _reason(exc: BaseException, secret: str | None) -> str:
    """The server's or libpq's words, first line, with the password scrubbed."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return text


class _Translator:
    """One choke point from psycopg's errors to ours."""

    def __init__(self, where: PgLocation, secret: str | None) -> None:
        self.where = where
        self.secret = secret

    def __call__(self, exc: BaseException, doing: str) -> LedgerError:
        psycopg = _psycopg()
        shown = self.where.shown
        state = _sqlstate(exc)
        reason = _reason(exc, self.secret)
        if state in ("28P01", "28000") or "password authentication failed" in reason:
            return AuthenticationFailed(
                f"{shown}: the server refused the credentials ({reason}); check the user "
                "and password (PGPASSWORD, ~/.pgpass or the URL)"
            )
        if _unreachable(exc, psycopg, state):
            return StoreUnavailable(f"{shown}: {doing}: the server cannot be reached ({reason})")
        if state in _RETRYABLE:
            return StorageError(
                f"{shown}: {doing}: the server kept aborting the transaction ({reason}); "
                "nothing was written: retry"
            )
        if state == "53100":
            return LedgerWriteFailed(f"{shown}: the server's disk is full ({reason})")
        if state == "42501":
            return StorageError(
                f"{shown}: permission denied ({reason}); {doing} needs a role "
                "with those privileges (see the README's roles)"
            )
        return StorageError(f"{shown}: {doing}: {reason}")


_RETRYABLE = ("40001", "40P01")  # serialization failure, deadlock: nothing was written


def _unreachable(exc: BaseException, psycopg: Any, state: str) -> bool:
    """A connection that could not be made or was lost (no SQLSTATE: libpq's own
    error), the server shutting down or starting (57P..), too many connections (53300):
    transient, worth waiting out."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    return state == "" or state.startswith(("08", "57P")) or state == "53300"


def _connect(where: PgLocation, translate: _Translator) -> Any:
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(
            where.conninfo,
            autocommit=True,
            connect_timeout=_CONNECT_TIMEOUT,
            application_name="results-ledger",
        )
    except psycopg.Error as exc:
        raise translate(exc, "connecting") from None
    return conn


def _upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix``."""
    data = bytearray(prefix)
    while data and data[-1] == 0xFF:
        data.pop()
    if not data:
        return None
    data[-1] += 1
    return bytes(data)


class _View:
    """ReadView and WriteView over one connection inside one transaction."""

    def __init__(self, conn: Any, schema: str, *, locked: bool) -> None:
        self.conn = conn
        self.s = f'"{schema}"'
        self.locked = locked
        self._head: tuple[int, bytes] | None = None
        self._pipe: Any = None  # a psycopg Pipeline while writes are in flight

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.drain()
        return self.conn.execute(sql, params, binary=True).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.drain()
        return list(self.conn.execute(sql, params, binary=True).fetchall())

    def _send(self, sql: str, params: Sequence[Any]) -> None:
        """A write whose result nobody reads, sent in pipeline mode: the server stores a
        block while the next one is encoded here, instead of the two taking turns. Its
        errors arrive at the next read, ``drain`` or the commit's."""
        if self._pipe is None:
            self._pipe = self.conn.pipeline()
            self._pipe.__enter__()
        self.conn.execute(sql, params)

    def drain(self) -> None:
        """Wait for the writes in flight (raises the first one's error)."""
        if self._pipe is not None:
            pipe, self._pipe = self._pipe, None
            pipe.__exit__(None, None, None)

    def abandon(self) -> None:
        """Leave pipeline mode after an error, whatever it holds (the transaction is
        rolled back next)."""
        try:
            self.drain()
        except Exception:  # noqa: BLE001 - the error being handled is the one reported
            pass

    # -- reads ------------------------------------------------------------------------

    def head(self) -> tuple[int, bytes]:
        if self._head is None:
            lock = " FOR UPDATE" if self.locked else ""
            row = self._one(f"SELECT seq, hash FROM {self.s}.head WHERE one{lock}")
            if row is None:
                raise StorageError("the ledger's head row is missing")
            self._head = (int(row[0]), bytes(row[1]))
        return self._head

    def meta(self, key: str) -> bytes | None:
        row = self._one(f"SELECT value FROM {self.s}.meta WHERE key = %s", (key,))
        return None if row is None else bytes(row[0])

    def blocks(
        self, after: int, study_key: bytes | None = None, part: str = WHOLE
    ) -> Iterator[tuple[int, Buffer, bool]]:
        """Pages of blocks, growing (a reader that stops early fetched little). Only
        the part asked for crosses the network: ``substring`` of an uncompressed
        out-of-line value reads only the pages it needs."""
        wanted = _PARTS[part]
        page, last = 1, None  # a chunk of read_batches often ends after one big block
        while True:
            if study_key is None:
                rows = self._all(
                    f"SELECT b.first_seq, {wanted} FROM {self.s}.blocks b WHERE b.last_seq > %s "
                    "AND b.first_seq > %s ORDER BY b.first_seq LIMIT %s",
                    (after, -1 if last is None else last, page),
                )
            else:
                rows = self._all(
                    f"SELECT b.first_seq, {wanted} FROM {self.s}.block_studies s "
                    f"JOIN {self.s}.blocks b ON b.first_seq = s.first_seq "
                    "WHERE s.study = %s AND b.last_seq > %s AND s.first_seq > %s "
                    "ORDER BY s.first_seq LIMIT %s",
                    (study_key, after, -1 if last is None else last, page),
                )
            for first, data, compact in rows:
                yield int(first), data, bool(compact)
            if len(rows) < page:
                return
            last = int(rows[-1][0])
            page = min(page * 2, 256)

    def block_at_or_before(self, seq: int) -> tuple[int, Buffer] | None:
        row = self._one(
            f"SELECT first_seq, data FROM {self.s}.blocks WHERE first_seq <= %s "
            "ORDER BY first_seq DESC LIMIT 1",
            (seq,),
        )
        return None if row is None else (int(row[0]), row[1])

    def ref(self, key: bytes) -> bytes | None:
        row = self._one(f"SELECT value FROM {self.s}.refs WHERE key = %s", (key,))
        return None if row is None else bytes(row[0])

    def refs_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, Buffer]]:
        upper = _upper_bound(prefix)
        if upper is None:
            rows = self._all(
                f"SELECT key, value FROM {self.s}.refs WHERE key >= %s ORDER BY key", (prefix,)
            )
        else:
            rows = self._all(
                f"SELECT key, value FROM {self.s}.refs WHERE key >= %s AND key < %s ORDER BY key",
                (prefix, upper),
            )
        for key, value in rows:
            yield bytes(key), value

    def aux_get(self, table: str, key: bytes) -> bytes | None:
        _check_table(table)
        row = self._one(f"SELECT value FROM {self.s}.aux WHERE tbl = %s AND key = %s", (table, key))
        return None if row is None else bytes(row[0])

    def aux_items(self, table: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        _check_table(table)
        upper = _upper_bound(prefix) if prefix else None
        if upper is None:
            rows = self._all(
                f"SELECT key, value FROM {self.s}.aux WHERE tbl = %s AND key >= %s ORDER BY key",
                (table, prefix),
            )
        else:
            rows = self._all(
                f"SELECT key, value FROM {self.s}.aux WHERE tbl = %s AND key >= %s "
                "AND key < %s ORDER BY key",
                (table, prefix, upper),
            )
        return [(bytes(k), bytes(v)) for k, v in rows]

    def counts(self) -> dict[str, int]:
        blocks = self._one(f"SELECT count(*) FROM {self.s}.blocks")[0]
        ids = self._one(f"SELECT count(*) FROM {self.s}.ids")[0]
        return {"blocks": int(blocks), "ids": int(ids)}

    # -- writes -----------------------------------------------------------------------

    def _lookup(self, table: str, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        if not keys:
            return {}
        rows = self._all(
            f"SELECT key, value FROM {self.s}.{table} WHERE key = ANY(%b::bytea[])", (list(keys),)
        )
        return {bytes(k): bytes(v) for k, v in rows}

    def ids_get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return self._lookup("ids", keys)

    def ids_insert(self, items: Sequence[tuple[bytes, bytes]]) -> bool:
        """COPY (binary): the head row's lock keeps every other writer out, so a key
        already present means the batch holds a duplicate, which the unique index
        refuses; the caller then redoes the batch on the careful path in a new
        transaction. Half the server time of an INSERT ... ON CONFLICT over unnest."""
        if not items:
            return True
        psycopg = _psycopg()
        self.drain()  # COPY cannot run in pipeline mode
        try:
            with self.conn.cursor() as cur:
                with cur.copy(f"COPY {self.s}.ids (key, value) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(_copy_binary_pairs(items))
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def refs_get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return self._lookup("refs", keys)

    def refs_put(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        if not items:
            return
        self._send(
            f"INSERT INTO {self.s}.refs (key, value) SELECT * FROM unnest(%b::bytea[], %b::bytea[]) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            ([k for k, _ in items], [v for _, v in items]),
        )

    def block_put(
        self,
        first_seq: int,
        last_seq: int,
        data: bytes,
        studies: Sequence[bytes],
        parts: BlockParts | None = None,
    ) -> None:
        columns_at, head_len = parts if parts is not None else (len(data), 0)
        self._send(
            f"INSERT INTO {self.s}.blocks (first_seq, last_seq, data, columns_at, head_len) "
            "VALUES (%s, %s, %b, %s, %s)",
            (first_seq, last_seq, data, columns_at, head_len),
        )
        if studies:
            self._send(
                f"INSERT INTO {self.s}.block_studies (study, first_seq) "
                "SELECT unnest(%b::bytea[]), %s",
                (list(studies), first_seq),
            )

    def set_head(self, seq: int, hash_: bytes) -> None:
        self._send(f"UPDATE {self.s}.head SET seq = %s, hash = %s WHERE one", (seq, hash_))
        self._head = (seq, bytes(hash_))

    def meta_put(self, key: str, value: bytes) -> None:
        self.conn.execute(
            f"INSERT INTO {self.s}.meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (key, value),
        )

    def aux_put(self, table: str, key: bytes, value: bytes) -> None:
        _check_table(table)
        self.conn.execute(
            f"INSERT INTO {self.s}.aux (tbl, key, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value",
            (table, key, value),
        )

    def aux_delete(self, table: str, key: bytes) -> None:
        _check_table(table)
        self.conn.execute(f"DELETE FROM {self.s}.aux WHERE tbl = %s AND key = %s", (table, key))


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no extension
_COPY_TRAILER = b"\xff\xff"  # a tuple of -1 fields ends the data


def _copy_binary_pairs(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """COPY's binary format for rows of two bytea fields, built in one join: psycopg's
    ``write_row`` costs ~2 us a row in Python, this ~0.3 us."""
    pack = struct.Struct(">hi").pack
    size = struct.Struct(">i").pack
    return b"".join(
        [_COPY_HEADER]
        + [b"".join((pack(2, len(k)), k, size(len(v)), v)) for k, v in items]
        + [_COPY_TRAILER]
    )


_PARTS = {
    WHOLE: "b.data, false",
    EVENTS: "substring(b.data FROM 1 FOR b.columns_at), false",
    COLUMNS: "CASE WHEN b.head_len > 0 THEN substring(b.data FROM 1 FOR b.head_len) || "
    "substring(b.data FROM b.columns_at + 1) ELSE b.data END, b.head_len > 0",
}


_ATTEMPTS = 5


class _Retry(Exception):
    """Internal: the server rolled the transaction back to break a deadlock (or a
    serialization failure); the write is run again."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


def _check_table(table: str) -> None:
    if table not in AUX_TABLES:
        raise LedgerError(unknown_table(table))


class PostgresStore:
    """A ledger in one schema of a PostgreSQL database."""

    kind = "postgresql"

    def __init__(self, url: str, *, create: bool, readonly: bool) -> None:
        try:
            self.where = parse_pg(url)
        except ValueError as exc:
            raise StorageError(str(exc)) from None
        self.location = self.where.shown
        self.schema = self.where.schema
        self.readonly = readonly
        self.pid = os.getpid()
        self._lock = threading.RLock()
        self._reading = 0  # nested read() calls of this thread share one transaction
        self._translate = _Translator(self.where, _password_of(url))
        self._conn: Any = _connect(self.where, self._translate)
        try:
            self._ensure_layout(create)
        except BaseException:
            self.close()
            raise

    # -- connection -----------------------------------------------------------------

    def _connection(self) -> Any:
        """The open connection, reconnecting once after a lost one (a server restart)."""
        self.check_pid()
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - a broken connection may fail to close
                    pass
            self._conn = conn = _connect(self.where, self._translate)
        return conn

    def _ensure_layout(self, create: bool) -> None:
        """Find the ledger's tables, or create them (``create``) under an advisory lock so
        that processes creating one ledger at once do not race."""
        psycopg = _psycopg()
        conn = self._connection()
        try:
            present = self._layout_present(conn)
            if not present:
                if not create:
                    raise LedgerNotFound(
                        f"no ledger in schema {self.schema!r} at {self.location}; create one "
                        f"with `ledger init {self.location}` (or `ledger append`)"
                    )
                with conn.transaction():
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))",
                        (f"results-ledger:{self.schema}",),
                    )
                    # Another process may have made it while we waited for the lock: its
                    # DDL again (ALTER TABLE locks the table whole) could deadlock with
                    # its first append.
                    if not self._layout_present(conn):
                        for statement in layout_sql(self.schema):
                            conn.execute(statement)
            row = conn.execute(
                f'SELECT value FROM "{self.schema}".meta WHERE key = %s', ("pg_layout",)
            ).fetchone()
        except psycopg.Error as exc:
            raise self._translate(exc, "opening the ledger") from None
        layout = int(bytes(row[0])) if row else 0
        if layout > LAYOUT_VERSION:
            raise StorageError(
                f"{self.location}: schema {self.schema!r} was written by a newer version of "
                f"results-ledger (table layout {layout}, this one knows up to "
                f"{LAYOUT_VERSION}); upgrade to use it"
            )

    def _layout_present(self, conn: Any) -> bool:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename IN "
            "('meta', 'head', 'blocks', 'block_studies', 'ids', 'refs', 'aux')",
            (self.schema,),
        ).fetchone()
        count = int(row[0])
        if 0 < count < 7:
            raise StorageError(
                f"{self.location}: schema {self.schema!r} holds only some of a ledger's "
                "tables; it is not a ledger (or was damaged): choose another schema "
                "(?schema=NAME)"
            )
        return count == 7

    # -- transactions ---------------------------------------------------------------

    @contextmanager
    def read(self, snapshot: bool = False) -> Iterator[_View]:
        """A view; with ``snapshot`` one REPEATABLE READ transaction, else each query
        in its own (autocommit: no BEGIN/COMMIT round trips per chunk of a long read)."""
        psycopg = _psycopg()
        with self._lock:
            if self._reading:  # nested in a snapshot of this thread: share it
                yield _View(self._conn, self.schema, locked=False)
                return
            conn = self._connection()
            if not snapshot:
                try:
                    yield _View(conn, self.schema, locked=False)
                except psycopg.Error as exc:
                    raise self._translate(exc, "reading") from None
                return
            self._reading += 1
            try:
                yield from self._read_transaction(conn, psycopg)
            finally:
                self._reading -= 1

    def _read_transaction(self, conn: Any, psycopg: Any) -> Iterator[_View]:
        """One REPEATABLE READ, READ ONLY transaction: a consistent snapshot."""
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except psycopg.Error as exc:
            raise self._translate(exc, "reading") from None
        try:
            yield _View(conn, self.schema, locked=False)
        except psycopg.Error as exc:
            self._rollback(conn)
            raise self._translate(exc, "reading") from None
        except BaseException:
            self._rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            raise self._translate(exc, "reading") from None

    def write(self, body: Callable[[Any], T]) -> T:
        if self.readonly:
            raise StorageError(f"{self.location} is open read-only; read-only commands never write")
        psycopg = _psycopg()
        with self._lock:
            for attempt in range(_ATTEMPTS):
                try:
                    return self._write_once(body, psycopg)
                except _Retry as retry:
                    if attempt == _ATTEMPTS - 1:
                        raise self._translate(retry.exc, "appending") from None
                    time.sleep(0.01 * 2**attempt)  # the other transaction finishes first
            raise AssertionError("unreachable")  # pragma: no cover

    def _write_once(self, body: Callable[[Any], T], psycopg: Any) -> T:
        """One attempt: BEGIN, ``body``, COMMIT. A deadlock or serialization failure
        (nothing written) raises ``_Retry``; the caller runs ``body`` again."""
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            view = _View(conn, self.schema, locked=True)
            try:
                result = body(view)
                view.drain()
            except BaseException:
                view.abandon()
                raise
        except psycopg.Error as exc:
            self._rollback(conn)
            if _sqlstate(exc) in _RETRYABLE:
                raise _Retry(exc) from None
            raise self._translate(exc, "appending (nothing of this batch was written)") from None
        except BaseException:
            self._rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            state = _sqlstate(exc)
            if state in _RETRYABLE:
                raise _Retry(exc) from None
            if _unreachable(exc, psycopg, state):
                raise self._translate(
                    exc,
                    "the connection was lost during COMMIT, so whether the batch was written "
                    "is unknown; re-sending it is safe (ids derive from content)",
                ) from None
            raise self._translate(exc, "COMMIT refused (nothing was written)") from None
        return result

    @staticmethod
    def _rollback(conn: Any) -> None:
        try:
            if not conn.closed and not conn.broken:
                conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection may be gone; the server rolls back
            pass

    def clock(self) -> float:
        """The server's clock: leases of runners on several hosts are judged by one clock."""
        psycopg = _psycopg()
        with self._lock:
            try:
                row = (
                    self._connection()
                    .execute("SELECT extract(epoch FROM clock_timestamp())")
                    .fetchone()
                )
            except psycopg.Error as exc:
                raise self._translate(exc, "reading the server's clock") from None
        return float(row[0])

    def check_pid(self) -> None:
        if os.getpid() != self.pid:
            raise ForkSafetyError(
                f"this Ledger for {self.location} was opened in process {self.pid} and used in "
                f"forked process {os.getpid()}; a database connection cannot cross fork(): "
                "open the ledger in the child (use the 'spawn' or 'forkserver' start method)"
            )

    def info(self) -> dict[str, Any]:
        with self.read(snapshot=True) as view:
            counts = view.counts()
            size = view._one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
                "AND c.relkind = 'r'",
                (self.schema,),
            )[0]
        return {"backend": self.kind, "schema": self.schema, "bytes": int(size), **counts}

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and os.getpid() == self.pid:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail
                pass


def _password_of(url: str) -> str | None:
    """The password in ``url`` (to scrub it from libpq's messages), if any."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return unquote(parts.password)
    for key, value in parse_qsl(parts.query):
        if key == "password":
            return value
    return None
