"""A real PostgreSQL server for the tests, or a clear reason why there is none.

Where the server comes from, in order:

1. ``LEDGER_TEST_PG``: a libpq URL of a database on a server where the tests may create
   databases (``.ci/run`` starts Debian's cluster and sets it);
2. the local server over its Unix socket as the current user (``postgresql:///postgres``);
3. a throwaway cluster started with Debian's ``initdb``/``pg_ctl`` in a temporary
   folder (not as root: PostgreSQL refuses to run as root).

Each test session (each pytest-xdist worker) creates its own database and drops it at
the end, and each test gets its own schema in it, so worktrees and workers never see
each other's ledgers. With ``LEDGER_REQUIRE_PG=1`` (set by ``.ci/run``) a missing server
fails the tests instead of skipping them: CI can never pass by skipping a backend.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

REQUIRED = os.environ.get("LEDGER_REQUIRE_PG") == "1"
HOW = (
    "start PostgreSQL (Debian: `pg_ctlcluster 15 main start`, then a login role for this "
    "user) or set LEDGER_TEST_PG to a server URL; `bash .ci/run` does both"
)


@dataclass
class PgServer:
    admin_url: str  # a database on the server, for CREATE/DROP DATABASE
    database_url: str  # this session's database
    cluster_dir: str | None = None

    def schema_url(self, schema: str) -> str:
        sep = "&" if "?" in self.database_url else "?"
        return f"{self.database_url}{sep}schema={schema}"


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    out = f"{parts.scheme}://{parts.netloc}/{name}"
    return f"{out}?{parts.query}" if parts.query else out


def _try(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def _throwaway_cluster() -> tuple[str, str] | None:
    """Start a cluster of our own; (url, folder), or None when that cannot be done."""
    if os.geteuid() == 0:
        return None
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        return None
    bindir = os.path.dirname(bins[-1])
    folder = tempfile.mkdtemp(prefix="ledger-pg-")
    data = os.path.join(folder, "data")
    try:
        subprocess.run(
            [f"{bindir}/initdb", "-A", "trust", "-D", data], check=True, capture_output=True
        )
        opts = f"-k {folder} -c listen_addresses='' -c fsync=on"
        subprocess.run(
            [f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-w", "-l", f"{folder}/log", "start"],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return f"postgresql:///postgres?host={folder}", folder


@contextmanager
def server() -> Iterator[PgServer | str]:
    """This session's server and database, or the reason there is none."""
    try:
        import psycopg
    except ImportError:
        yield "psycopg is not installed (pip install 'results-ledger[postgres]')"
        return
    cluster = None
    admin = os.environ.get("LEDGER_TEST_PG") or "postgresql:///postgres"
    why = _try(admin)
    if why is not None and not os.environ.get("LEDGER_TEST_PG"):
        started = _throwaway_cluster()
        if started is not None:
            admin, cluster = started
            why = _try(admin)
    if why is not None:
        yield f"no PostgreSQL server ({why}); {HOW}"
        return
    name = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PgServer(admin, _with_database(admin, name), cluster)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if cluster is not None:
            bindir = os.path.dirname(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1])
            subprocess.run(
                [f"{bindir}/pg_ctl", "-D", f"{cluster}/data", "-m", "immediate", "stop"],
                capture_output=True,
            )
            shutil.rmtree(cluster, ignore_errors=True)


def new_schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


# -- a cluster of a test's own ----------------------------------------------------------
#
# The shared server of the test session is never restarted: other test workers, and
# other worktrees, use it at the same time. A test of what happens when the server goes
# away (R21, sync --follow) starts this private cluster instead (Debian's initdb/pg_ctl,
# in a temporary folder, listening on a Unix socket there only). PostgreSQL refuses to
# run as root, so as root the cluster runs as the ``postgres`` user (``runuser``).


class Cluster:
    def __init__(self, folder: str, bindir: str, prefix: list[str]) -> None:
        self.folder = folder
        self.data = os.path.join(folder, "data")
        self.bindir = bindir
        self.prefix = prefix
        user = "postgres" if prefix else pwd.getpwuid(os.getuid()).pw_name
        self.url = f"postgresql://{user}@/postgres?host={folder}"

    def ctl(self, *args: str) -> None:
        opts = f"-k {self.folder} -c listen_addresses='' -c fsync=off"
        subprocess.run(
            [
                *self.prefix,
                f"{self.bindir}/pg_ctl",
                "-D",
                self.data,
                "-o",
                opts,
                "-w",
                "-l",
                os.path.join(self.folder, "log"),
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self.ctl("start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "stop")

    def schema_url(self, schema: str) -> str:
        return f"{self.url}&schema={schema}"


@contextmanager
def private_cluster() -> Iterator[Cluster | str]:
    """A running cluster of our own, or the reason there is none."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        yield "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)"
        return
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            yield "running as root without runuser: cannot start a PostgreSQL cluster"
            return
        prefix = ["runuser", "-u", "postgres", "--"]
    folder = tempfile.mkdtemp(prefix="ledger-sync-pg-")
    if prefix:
        shutil.chown(folder, "postgres")
    cluster = Cluster(folder, os.path.dirname(bins[-1]), prefix)
    try:
        subprocess.run(
            [*prefix, f"{cluster.bindir}/initdb", "-N", "-A", "trust", "-D", cluster.data],
            check=True,
            capture_output=True,
        )
        cluster.start()
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        yield f"cannot start a private PostgreSQL cluster: {exc}"
        return
    try:
        yield cluster
    finally:
        try:
            cluster.ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(folder, ignore_errors=True)
