"""R22 (a writer's connection killed) and R23 (a superuser rewriting rows), against a real
PostgreSQL server.

R22: ``pg_terminate_backend`` of a writer in the middle of an append (after its ids and
blocks are inserted, before its head moves) and during its COMMIT: a clear one-line
error, nothing of the batch in the log, and re-sending appends exactly what was missing.
R23: with triggers off, a superuser flips a byte of a stored block, rewrites the log with
every hash recomputed, and truncates it: ``verify`` names the seq each time it can, and
``verify --against`` an anchor taken before catches the rewrite and the truncation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from ledger import Ledger
from ledger.errors import StoreUnavailable
from ledger.rules import h16
from ledger.store.location import parse_pg
from tests.ledger.study_events import basic_study

ROOT = Path(__file__).resolve().parents[2]


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(parse_pg(url).conninfo, autocommit=True)


def _schema(url: str) -> str:
    return f'"{parse_pg(url).schema}"'


def _finish_batch() -> list[dict]:
    return [
        {"type": "metrics_recorded", "study": "s", "run": "r2", "step": i, "values": {"loss": i}}
        for i in range(50)
    ] + [{"type": "run_finished", "study": "s", "run": "r2", "status": "completed"}]


def _ready(url: str) -> None:
    with Ledger(url) as led:
        led.append(basic_study())
        led.append([{"type": "run_started", "study": "s", "case": "c1", "run": "r2"}])


def _wait_for(conn: psycopg.Connection, sql: str, params: tuple, timeout: float = 20) -> int:
    """Poll until ``sql`` returns a backend pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(sql, params).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.02)
    raise AssertionError("the writer never reached the point under test")


def _lock_run(conn: psycopg.Connection, url: str, run: str) -> None:
    """Hold the run's reference row, so a writer closing that run waits after inserting
    its ids and blocks, before moving the head."""
    conn.execute("BEGIN")
    key = b"R" + h16("s", run)
    row = conn.execute(
        f"SELECT key FROM {_schema(url)}.refs WHERE key = %s FOR UPDATE", (key,)
    ).fetchone()
    assert row is not None


def _state(url: str) -> tuple:
    with Ledger(url, create=False, readonly=True) as led:
        info = led.storage_info()
        return led.head, info["ids"], info["blocks"]


def test_r22_connection_killed_mid_append(pg_url):
    _ready(pg_url)
    before = _state(pg_url)
    holder, killer = _admin(pg_url), _admin(pg_url)
    _lock_run(holder, pg_url, "r2")
    errors: list[BaseException] = []
    led = Ledger(pg_url)
    pid = led._store._conn.info.backend_pid

    def append() -> None:
        try:
            led.append(_finish_batch())
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    writer = threading.Thread(target=append)
    writer.start()
    _wait_for(
        killer,
        "SELECT pid FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
        (pid,),
    )
    killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
    writer.join(20)
    holder.execute("ROLLBACK")
    assert len(errors) == 1 and isinstance(errors[0], StoreUnavailable), errors
    message = str(errors[0])
    assert "nothing of this batch was written" in message and "\n" not in message
    assert _state(pg_url) == before  # no id, no block, no head move
    result = led.append(_finish_batch())  # reconnects by itself
    assert (result.appended, result.duplicates) == (51, 0)
    assert led.verify().ok
    led.close()


def test_r22_connection_killed_during_commit(pg_url):
    _ready(pg_url)
    before = _state(pg_url)
    s = _schema(pg_url)
    admin = _admin(pg_url)
    admin.execute(
        f"CREATE FUNCTION {s}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$"
    )
    admin.execute(
        f"CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON {s}.head DEFERRABLE "
        f"INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {s}.slow_commit()"
    )
    led = Ledger(pg_url)
    pid = led._store._conn.info.backend_pid
    errors: list[BaseException] = []

    def append() -> None:
        try:
            led.append(_finish_batch())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    writer = threading.Thread(target=append)
    writer.start()
    _wait_for(
        admin,
        "SELECT pid FROM pg_stat_activity WHERE pid = %s AND state = 'active' AND query = 'COMMIT'",
        (pid,),
    )
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    writer.join(40)
    admin.execute(f"DROP TRIGGER slow_commit ON {s}.head")
    assert len(errors) == 1 and isinstance(errors[0], StoreUnavailable), errors
    assert "during COMMIT" in str(errors[0]) and "re-sending it is safe" in str(errors[0])
    assert _state(pg_url) == before  # the server rolled it back
    result = led.append(_finish_batch())
    assert (result.appended, result.duplicates) == (51, 0)
    assert led.append(_finish_batch()).duplicates == 51  # and re-sending again adds nothing
    led.close()


def test_r22_the_command_line_says_one_line(pg_url, tmp_path):
    _ready(pg_url)
    before = _state(pg_url)
    events = tmp_path / "finish.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in _finish_batch()) + "\n")
    holder, killer = _admin(pg_url), _admin(pg_url)
    _lock_run(holder, pg_url, "r2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--ledger", pg_url, "append", str(events)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pid = _wait_for(
        killer,
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'results-ledger' "
        "AND wait_event_type = 'Lock' AND datname = current_database()",
        (),
    )
    killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
    out, err = proc.communicate(timeout=30)
    holder.execute("ROLLBACK")
    assert proc.returncode == 1
    text = err.decode()
    assert text.startswith("error: ") and text.count("\n") == 1 and "Traceback" not in text
    assert "the server cannot be reached" in text
    assert _state(pg_url) == before


# -- R23 ------------------------------------------------------------------------------------


def _verify(url: str, *args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "--ledger", url, "verify", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _tamper(url: str, *statements: tuple[str, tuple]) -> None:
    with _admin(url) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off: a superuser
        for sql, params in statements:
            conn.execute(sql.format(s=_schema(url)), params)


def _anchor(url: str, tmp_path: Path) -> str:
    path = str(tmp_path / "anchor.json")
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "--ledger", url, "anchor", "--out", path],
        cwd=ROOT,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    return path


def test_r23_a_flipped_byte_is_named(pg_url):
    with Ledger(pg_url) as led:
        led.append(basic_study())
        led.append([{"type": "case_created", "study": "s", "case": "x"}])
    with _admin(pg_url) as conn:
        first, size = conn.execute(
            f"SELECT first_seq, length(data) FROM {_schema(pg_url)}.blocks ORDER BY first_seq LIMIT 1"
        ).fetchone()
    for offset in (size // 2, size - 3):
        _tamper(
            pg_url,
            (
                "UPDATE {s}.blocks SET data = set_byte(data, %s, get_byte(data, %s) # 1) WHERE first_seq = %s",
                (offset, offset, first),
            ),
        )
        code, said = _verify(pg_url)
        assert code == 1 and "corrupt at seq" in said, said
        _tamper(  # flip it back
            pg_url,
            (
                "UPDATE {s}.blocks SET data = set_byte(data, %s, get_byte(data, %s) # 1) WHERE first_seq = %s",
                (offset, offset, first),
            ),
        )
        assert _verify(pg_url)[0] == 0


def test_r23_a_rewrite_with_recomputed_hashes_and_a_truncation(pg_url, pg_server, tmp_path):
    from tests import pg

    events = basic_study()
    with Ledger(pg_url) as led:
        led.append(events)
        led.append([{"type": "case_created", "study": "s", "case": "late"}])
    anchor = _anchor(pg_url, tmp_path)
    # A forger builds the log they want elsewhere, every hash recomputed ...
    forged = pg_server.schema_url(pg.new_schema())
    with Ledger(forged) as led:
        changed = [dict(e) for e in events]
        changed[5] = {**changed[5], "values": {"loss": 0.01}}
        led.append(changed)
        led.append([{"type": "case_created", "study": "s", "case": "late"}])
    # ... and copies it over the real one as superuser.
    src = _schema(forged)
    _tamper(
        pg_url,
        ("DELETE FROM {s}.blocks", ()),
        ("DELETE FROM {s}.ids", ()),
        ("DELETE FROM {s}.block_studies", ()),
        (f"INSERT INTO {{s}}.blocks SELECT * FROM {src}.blocks", ()),
        (f"INSERT INTO {{s}}.ids SELECT * FROM {src}.ids", ()),
        (f"INSERT INTO {{s}}.block_studies SELECT * FROM {src}.block_studies", ()),
        (f"UPDATE {{s}}.head SET hash = (SELECT hash FROM {src}.head)", ()),
    )
    code, said = _verify(pg_url)
    assert code == 0  # consistent with itself: only a head kept elsewhere can tell
    code, said = _verify(pg_url, "--against", anchor)
    assert code == 1 and "head mismatch" in said, said

    # A truncation: the last block gone and the head moved back.
    truncated = pg_server.schema_url(pg.new_schema())
    with Ledger(truncated) as led:
        led.append(events)
        led.append([{"type": "case_created", "study": "s", "case": "late"}])
    (tmp_path / "second").mkdir()
    anchor2 = _anchor(truncated, tmp_path / "second")
    with Ledger(truncated) as led:
        seven = led.hash_at(7)
    _tamper(
        truncated,
        ("DELETE FROM {s}.blocks WHERE first_seq = 8", ()),
        ("UPDATE {s}.head SET seq = 7, hash = %s", (bytes.fromhex(seven),)),
    )
    assert _verify(truncated)[0] == 1  # its id index still holds the dropped event
    _tamper(truncated, ("DELETE FROM {s}.ids WHERE value = %s", ((8).to_bytes(8, "big"),)))
    assert _verify(truncated)[0] == 0
    code, said = _verify(truncated, "--against", anchor2)
    assert code == 1 and "rollback detected" in said, said
    # Deleting the block but leaving the head is caught by verify alone.
    _tamper(forged, ("DELETE FROM {s}.blocks WHERE first_seq = 8", ()))
    code, said = _verify(forged)
    assert code == 1 and "the log holds 7 events but the head says 8" in said, said
