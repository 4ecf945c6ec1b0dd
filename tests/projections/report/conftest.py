from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_ledger(tmp_path_factory) -> Path:
    """The demo study (``ledger demo``), recorded once per session."""
    from cli.commands.demo import by_ranking
    from ledger.demo import run_demo

    path = tmp_path_factory.mktemp("report-demo") / "demo.ledger"
    run_demo(path, choose=by_ranking)
    return path


@pytest.fixture(scope="session")
def demo_report(demo_ledger) -> Path:
    from ledger import Ledger
    from projections.report import write

    out = demo_ledger.parent / "demo.html"
    with Ledger(demo_ledger, create=False, readonly=True) as led:
        write(led, "spirals-mlp", out)
    return out
