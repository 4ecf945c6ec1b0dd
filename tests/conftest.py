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


@pytest.fixture(autouse=True)
def _table_cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """Every test's ``ledger sql`` disk cache is a folder of its own: no test writes to
    the user's ``~/.cache``, and no test is served tables another test left (ledgers
    made by ``fast_base`` fixtures can share an id only by chance, but a test must not
    rely on chance). Subprocesses inherit it through the environment."""
    folder = tmp_path_factory.mktemp("table-cache")
    monkeypatch.setenv("LEDGER_CACHE_DIR", str(folder))
    return folder


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


# ---------------------------------------------------------------- a real headless Chromium

CHROMIUM = os.environ.get("LEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_gate(chromium_path: str = CHROMIUM) -> None:
    """Skip (saying how to enable it) or, under LEDGER_REQUIRE_BROWSER=1, fail when
    Playwright or the Chromium binary is missing; return when both are there."""
    why = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "Playwright is not installed (`make .venv/.installed-peers` installs it)"
    if why is None and not os.access(chromium_path, os.X_OK):
        why = f"no Chromium at {chromium_path} (`apt-get install -y chromium`, or set LEDGER_CHROMIUM)"
    if why is not None:
        if os.environ.get("LEDGER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LEDGER_REQUIRE_BROWSER=1 but {why}", pytrace=False)
        pytest.skip(f"browser test: {why}; export LEDGER_REQUIRE_BROWSER=1 to fail instead")


@pytest.fixture(name="browser_gate")
def browser_gate_fixture():
    """``browser_gate`` itself, for the test of the gate."""
    return browser_gate


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright, one per test session (per xdist worker).

    Missing browser or Playwright: the test is skipped, saying how to enable it, unless
    LEDGER_REQUIRE_BROWSER=1 (CI) makes it a failure (``browser_gate``). Playwright
    never downloads a browser here (no ``playwright install``): it launches the system's.
    """
    browser_gate()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class OpenedPage:
    """A page that loaded a file, with what it logged, requested and popped up."""

    def __init__(self, page, console, errors, requests, dialogs):
        self.page = page
        self.console = console  # (type, text) of every console message
        self.errors = errors  # uncaught exceptions
        self.requests = requests  # every URL requested, the page's own file first
        self.dialogs = dialogs  # alert/confirm/prompt texts (dismissed)


@pytest.fixture
def open_page(chromium):
    """``open_page(path)`` loads a local HTML file in a fresh context and returns an
    ``OpenedPage``; contexts are closed after the test."""
    contexts = []

    def load(path, width=1280, height=900):
        context = chromium.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        console, errors, requests, dialogs = [], [], [], []
        page.on("console", lambda m: console.append((m.type, m.text)))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))

        def on_dialog(d):
            dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        return OpenedPage(page, console, errors, requests, dialogs)

    yield load
    for context in contexts:
        context.close()


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist worksteal``), run the modules
    that hold a ``slow`` test (many processes, kills, long waits) first, then those that
    use the MLflow template, then the rest, each in its usual order.

    worksteal first cuts the list into one contiguous share per worker and an idle
    worker later steals from the tail of a busy one: so the slow modules start at once
    on one worker, one after the other, while the other worker runs the rest, instead of
    ending the run alone; and the MLflow modules share a worker (one import of MLflow,
    one template). The slow modules stay on one worker on purpose: the example runner's
    kill test assumes a runner starts within 0.2-0.9 s, which R1's four writers beside it
    made false (0 of 20 kills landed inside a run). Modules move whole (only one cut by a
    steal sets its module fixtures up twice). Serial runs keep the usual order.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    mlflow = {item.path for item in items if "mlflow_template" in item.fixturenames}
    items.sort(key=lambda item: 0 if item.path in slow else 1 if item.path in mlflow else 2)


def pytest_report_header(config):
    return f"shared data: {SHARED_DATA} ({'present' if SHARED_DATA.exists() else 'absent'}); SOAK={os.environ.get('SOAK', '0')}"


# -- PostgreSQL (tests/pg.py) ------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """This session's PostgreSQL database (``tests/pg.py``); skips with the reason when
    there is no server, and fails instead under ``LEDGER_REQUIRE_PG=1`` (CI)."""
    from tests import pg

    with pg.server() as found:
        if isinstance(found, str):
            if pg.REQUIRED:
                pytest.fail(f"LEDGER_REQUIRE_PG=1 but {found}")
            pytest.skip(found)
        yield found


@pytest.fixture
def pg_url(pg_server) -> str:
    """A URL naming a fresh, empty ledger schema of its own."""
    from tests import pg

    return pg_server.schema_url(pg.new_schema())


@pytest.fixture
def pg_cluster():
    """A PostgreSQL cluster of the test's own, which it may stop and restart
    (``tests/pg.py``); skips without the server binaries, fails under
    ``LEDGER_REQUIRE_PG=1``."""
    from tests import pg

    with pg.private_cluster() as found:
        if isinstance(found, str):
            if pg.REQUIRED:
                pytest.fail(f"LEDGER_REQUIRE_PG=1 but {found}")
            pytest.skip(found)
        yield found
