from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def ledger_path(tmp_path: Path) -> str:
    return str(tmp_path / "t.ledger")


@pytest.fixture
def ledger(ledger_path: str):
    from ledger import Ledger

    with Ledger(ledger_path) as led:
        yield led


def _shm() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


@pytest.fixture(scope="session")
def fast_base(tmp_path_factory) -> Iterator[str]:
    """A folder on tmpfs when there is one, for tests of logic that create many ledgers
    (property tests): every commit fsyncs, which costs milliseconds on a disk and can
    dominate such a test (the checkpoint property: 8.5 s on disk, 1.5 s on tmpfs, with
    the same CPU time). Tests of the disk itself keep ``tmp_path``."""
    shm = _shm()
    if shm is None:
        yield str(tmp_path_factory.mktemp("fast"))
        return
    folder = tempfile.mkdtemp(prefix="ledger-tests-", dir=shm)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Iterator[Path]:
    """An empty MLflow SQLite tracking store, made once per session.

    Creating a store runs MLflow's whole chain of alembic migrations, each its own
    fsync'd transaction: 5-7 s on a disk, about 1.5 s on tmpfs (where it is made when
    there is one: the template's durability is not under test). Opening a copy of a
    migrated store takes about 0.1 s, and MLflow cannot tell it from a new one: the file
    is what a fresh ``MlflowClient(uri)`` leaves behind.
    """
    for name in ("mlflow", "sqlalchemy", "alembic"):
        pytest.importorskip(name)
    import logging

    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    shm = _shm()
    if shm is not None:
        folder = Path(tempfile.mkdtemp(prefix="ledger-mlflow-", dir=shm))
    else:
        folder = tmp_path_factory.mktemp("mlflow-template")
    path = folder / "mlruns.db"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = MlflowClient(f"sqlite:///{path}")
            assert [e.name for e in client.search_experiments()] == ["Default"]
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def new_mlflow_store(mlflow_template):
    """``new_mlflow_store(path)`` copies the migrated template to ``path``; returns its URI."""

    def make(path: Path) -> str:
        shutil.copyfile(mlflow_template, path)
        return f"sqlite:///{path}"

    return make


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist worksteal``), start the slow
    modules (many processes, kills, long waits) first on every worker, so they overlap
    with each other and with the rest instead of ending the run alone.

    worksteal first cuts the list into one contiguous share per worker (the first gets
    len // n, the next len(rest) // (n - 1), ...), and an idle worker later steals from
    the tail of a busy one. So the slow modules are dealt round-robin to the fronts of
    those shares (R1's writers then run beside the mostly sleeping example runner, not
    after it), the modules that use the MLflow template go to one share (one import of
    MLflow, one template), and the other modules fill the shares in their usual order.
    Modules move whole (only the one cut at a share's end, or by a steal, sets its module
    fixtures up twice). Only the wall time depends on this order; serial runs keep the
    usual one.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if not os.environ.get("PYTEST_XDIST_WORKER") or workers < 2:
        return
    modules: dict[Path, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.path, []).append(item)
    slow = [m for m, its in modules.items() if any(i.get_closest_marker("slow") for i in its)]
    mlflow = [
        m
        for m, its in modules.items()
        if m not in slow and any("mlflow_template" in i.fixturenames for i in its)
    ]
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for k, module in enumerate(slow):
        shares[k % workers].extend(modules[module])
    for module in mlflow:
        shares[-1].extend(modules[module])
    rest = [i for m, its in modules.items() if m not in slow and m not in mlflow for i in its]
    left = len(items)
    for k, share in enumerate(shares):
        size = left // (workers - k)  # what worksteal hands this worker
        left -= size
        take = max(0, size - len(share))
        share.extend(rest[:take])
        del rest[:take]
    shares[-1].extend(rest)
    items[:] = [item for share in shares for item in share]


def pytest_report_header(config):
    return f"shared data: {SHARED_DATA} ({'present' if SHARED_DATA.exists() else 'absent'}); SOAK={os.environ.get('SOAK', '0')}"
