"""What only the PostgreSQL backend has: locations and schemas, the append-only
triggers, the least-privilege roles the README gives, clear one-line errors for a
server that is away or refuses, and a password that never reaches any output."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from ledger import Ledger
from ledger.errors import (
    AuthenticationFailed,
    LedgerNotFound,
    StorageError,
    StoreUnavailable,
)
from ledger.store.location import mask, parse_pg
from tests.ledger.study_events import basic_study

ROOT = Path(__file__).resolve().parents[3]


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(parse_pg(url).conninfo, autocommit=True)


def _as_user(url: str, user: str, password: str) -> str:
    """``url`` (a schema URL) for ``user`` with ``password`` over TCP, where the server
    asks for passwords (a Unix socket may trust the OS user instead)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"postgresql://{user}:{password}@{host}{port}{parts.path}{query}"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, cwd=ROOT, env=env
    )


# -- locations ----------------------------------------------------------------------------


def test_mask_hides_passwords_everywhere():
    assert mask("postgresql://u:pw@h:5432/db?schema=s") == "postgresql://u:***@h:5432/db?schema=s"
    assert mask("postgres://u:p%40w@h/db") == "postgres://u:***@h/db"
    assert mask("postgresql:///db?password=pw&schema=s") == "postgresql:///db?password=***&schema=s"
    assert mask("postgresql://u@h/db") == "postgresql://u@h/db"
    assert mask("results.ledger") == "results.ledger"
    assert "pw" not in mask("postgresql://u:pw@[bad/db")


def test_parse_pg_strips_our_schema_parameter():
    where = parse_pg("postgresql://u:pw@h/db?sslmode=disable&schema=chip_2")
    assert where.schema == "chip_2" and where.conninfo == "postgresql://u:pw@h/db?sslmode=disable"
    assert parse_pg("postgresql:///db").schema == "ledger"
    with pytest.raises(ValueError, match="not a plain identifier"):
        parse_pg('postgresql:///db?schema=a";drop')


def test_schemas_are_separate_ledgers(pg_server):
    a, b = (
        pg_server.schema_url("t_a_" + uuid.uuid4().hex[:8]),
        pg_server.schema_url("t_b_" + uuid.uuid4().hex[:8]),
    )
    with Ledger(a) as la, Ledger(b) as lb:
        la.append(basic_study())
        assert lb.head.seq == 0 and la.head.seq == 7 and la.ledger_id != lb.ledger_id


def test_read_only_commands_refuse_a_schema_without_a_ledger(pg_url):
    with pytest.raises(LedgerNotFound, match=r"no ledger in schema 't_\w+' at postgresql://"):
        Ledger(pg_url, create=False, readonly=True)
    proc = _cli("--ledger", pg_url, "status")
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("error: no ledger in schema")
    assert b"Traceback" not in proc.stderr
    with _admin(pg_url) as conn:  # nothing was created by looking
        schema = parse_pg(pg_url).schema
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()[0]
            == 0
        )


def test_a_newer_layout_is_refused(pg_url):
    with Ledger(pg_url) as led:
        led.append(basic_study()[:1])
    schema = parse_pg(pg_url).schema
    with _admin(pg_url) as conn:
        conn.execute(f"UPDATE \"{schema}\".meta SET value = '99' WHERE key = 'pg_layout'")
    with pytest.raises(StorageError, match="written by a newer version of results-ledger"):
        Ledger(pg_url)
    with _admin(pg_url) as conn:
        conn.execute(f"UPDATE \"{schema}\".meta SET value = '1' WHERE key = 'pg_layout'")
        conn.execute(f"UPDATE \"{schema}\".meta SET value = '9' WHERE key = 'format_version'")
    with pytest.raises(StorageError, match=r"format 9, this one reads up to"):
        Ledger(pg_url)


def test_a_schema_that_is_not_a_ledger_is_refused(pg_url):
    schema = parse_pg(pg_url).schema
    with _admin(pg_url) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".meta (key text)')
    with pytest.raises(StorageError, match="holds only some of a ledger's tables"):
        Ledger(pg_url)


def test_an_unreachable_server_is_one_line(tmp_path):
    url = "postgresql://someone:hunter2secret@127.0.0.1:1/nowhere"
    with pytest.raises(
        StoreUnavailable, match=r"postgresql://someone:\*\*\*@127\.0\.0\.1:1/nowhere"
    ):
        Ledger(url)
    proc = _cli("--ledger", url, "status")
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert "hunter2secret" not in err + proc.stdout.decode()


def test_missing_psycopg_says_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from ledger import Ledger\n"
        "try:\n    Ledger('postgresql:///x')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, text=True)
    assert "StorageError" in out.stdout and "pip install 'results-ledger[postgres]'" in out.stdout


def _open_and_report(url: str, out) -> None:
    with Ledger(url) as led:
        led.append([{"type": "study_created", "study": f"s{os.getpid()}"}])
        out.put(led.ledger_id)


def test_processes_creating_one_ledger_at_once_agree(pg_url):
    """Six processes open (and so create) the same new schema at the same moment: no
    deadlock, no error, one ledger with one id."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_open_and_report, args=(pg_url, out)) for _ in range(6)]
    for p in procs:
        p.start()
    ids = {out.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    with Ledger(pg_url) as led:
        assert ids == {led.ledger_id} and led.head.seq == 6 and led.verify().ok


# -- append-only, in the database too -----------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {s}.blocks SET data = data",
        "DELETE FROM {s}.blocks",
        "UPDATE {s}.ids SET value = value",
        "DELETE FROM {s}.ids",
        "DELETE FROM {s}.block_studies",
        "TRUNCATE {s}.blocks",
        "DELETE FROM {s}.head",
    ],
)
def test_the_log_tables_refuse_rewrites(pg_url, statement):
    with Ledger(pg_url) as led:
        led.append(basic_study())
    schema = f'"{parse_pg(pg_url).schema}"'
    with _admin(pg_url) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute(statement.format(s=schema))
    with Ledger(pg_url) as led:
        assert led.verify().ok and led.head.seq == 7


# -- least-privilege roles (the README's grants, verbatim) ------------------------------


def roles_sql(schema: str, writer: str, reader: str) -> list[str]:
    """The grants the README gives, for ``schema``."""
    s = f'"{schema}"'
    return [
        f"GRANT USAGE ON SCHEMA {s} TO {writer}, {reader}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {writer}, {reader}",
        f"GRANT INSERT ON {s}.blocks, {s}.block_studies, {s}.ids TO {writer}",
        f"GRANT INSERT, UPDATE ON {s}.head, {s}.meta, {s}.refs TO {writer}",
        f"GRANT INSERT, UPDATE, DELETE ON {s}.aux TO {writer}",
    ]


def test_readme_roles_hold_against_the_real_server(pg_url):
    readme = (ROOT / "README.md").read_text()
    schema = parse_pg(pg_url).schema
    tag = uuid.uuid4().hex[:8]
    writer, reader, password = f"w_{tag}", f"r_{tag}", f"pw-{tag}-secret"
    with Ledger(pg_url) as led:
        led.append(basic_study()[:4])
    with _admin(pg_url) as conn:
        for role in (writer, reader):
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        for statement in roles_sql(schema, writer, reader):
            assert (
                statement.replace(f'"{schema}"', "ledger")
                .replace(writer, "ledger_writer")
                .replace(reader, "ledger_reader")
                in readme
            ), f"the README no longer gives: {statement}"
            conn.execute(statement)
    as_writer = _as_user(pg_url, writer, password)
    as_reader = _as_user(pg_url, reader, password)
    try:
        with Ledger(as_writer) as led:
            assert led.append(basic_study()[4:]).appended == 3
            led.aux_put("leases", b"k", b"v")
            led.aux_delete("leases", b"k")
            conn = led._store._conn
            for bad in (f'UPDATE "{schema}".blocks SET data = data', f'DELETE FROM "{schema}".ids'):
                with pytest.raises(psycopg.Error):
                    conn.execute(bad)
        with Ledger(as_reader, create=False, readonly=True) as led:
            assert led.verify().ok and led.head.seq == 7
        with Ledger(as_reader) as led, pytest.raises(StorageError, match="permission denied"):
            led.append([{"type": "study_created", "study": "intruder"}])
        proc = _cli("--ledger", as_reader, "append", "-", env=None)
        assert proc.returncode == 1
        out = proc.stdout.decode() + proc.stderr.decode()
        assert password not in out
    finally:
        with _admin(pg_url) as conn:
            conn.execute(f"DROP OWNED BY {writer}, {reader}")
            conn.execute(f"DROP ROLE {writer}")
            conn.execute(f"DROP ROLE {reader}")


def test_wrong_password_is_authentication_failed(pg_url):
    tag = uuid.uuid4().hex[:8]
    role = f"a_{tag}"
    with _admin(pg_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-{tag}'")
    try:
        url = _as_user(pg_url, role, f"wrong-{tag}")
        with pytest.raises(AuthenticationFailed, match=r"refused the credentials") as info:
            Ledger(url)
        assert f"wrong-{tag}" not in str(info.value)
    finally:
        with _admin(pg_url) as conn:
            conn.execute(f"DROP ROLE {role}")


def test_a_password_in_the_url_appears_in_no_output_and_no_event(pg_url, tmp_path):
    tag = uuid.uuid4().hex[:8]
    role, password = f"p_{tag}", f"s3cr3t-{tag}"
    with _admin(pg_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    url = _as_user(pg_url, role, password)
    events = tmp_path / "events.jsonl"
    import json

    events.write_text("\n".join(json.dumps(e) for e in basic_study()) + "\n")
    outputs = []
    try:
        for args in (
            ["init"],
            ["append", str(events)],
            ["log", "--json"],
            ["log"],
            ["status"],
            ["status", "--json"],
            ["verify", "--json"],
            ["rank", "--study", "s"],
            ["export", "--study", "s", "--format", "all", "--out", str(tmp_path / "out")],
            ["anchor"],
            ["backup", str(tmp_path / "bk")],
        ):
            proc = _cli("--ledger", url, *args)
            outputs.append(proc.stdout + proc.stderr)
        with Ledger(url) as led:
            from ledger import Recorder

            with Recorder(url, study="rec", config={"note": "recorded over a URL"}) as rec:
                with rec.case("c").run() as run:
                    run.log({"x": 1.0})
            assert led.head.seq > 7
        proc = _cli("--ledger", url, "log", "--json")
        outputs.append(proc.stdout)
    finally:
        with _admin(pg_url) as conn:
            conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
            conn.execute(f"DROP ROLE {role}")
    assert all(password.encode() not in out for out in outputs)
    exported = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert exported and password.encode() not in exported
    assert b"***" in outputs[0]  # init names the ledger, masked


def test_leases_are_judged_by_the_servers_clock(pg_url, monkeypatch):
    """A runner on a host whose clock is an hour behind stamps its run's lease by the
    server's clock, so another host sees the run as running (by its own clock the lease
    would have expired an hour ago, and the run been taken for interrupted)."""
    import json
    import time
    import types

    import ledger.recorder as recorder_module
    from ledger import Recorder

    slow = types.SimpleNamespace(
        **{k: getattr(time, k) for k in dir(time) if not k.startswith("_")}
    )
    slow.time = lambda: time.time() - 3600
    monkeypatch.setattr(recorder_module, "time", slow)
    rec = Recorder(pg_url, study="leases", handle_signals=False, lease_seconds=120)
    try:
        rec.host = "a-host-with-a-slow-clock"
        run = rec.case("c").run()
        rec.flush()
        proc = _cli("--ledger", pg_url, "resume", "--study", "leases", "--json")
        plan = json.loads(proc.stdout)
        assert plan["running"] == [run.id] and plan["interrupted"] == [], plan
    finally:
        rec.close()
