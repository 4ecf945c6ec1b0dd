"""A PostgreSQL cluster of a test's own, which the test may stop and restart.

The shared server of the test session (tests/pg.py) is never restarted: other test
workers, and other worktrees, use it at the same time. A test of what happens when the
server goes away starts this private cluster instead (Debian's ``initdb``/``pg_ctl``,
in a temporary folder, listening on a Unix socket there only). PostgreSQL refuses to
run as root, so as root the cluster runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


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
