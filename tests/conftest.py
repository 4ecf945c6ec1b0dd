from __future__ import annotations

import os
import sys
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


def pytest_report_header(config):
    return f"shared data: {SHARED_DATA} ({'present' if SHARED_DATA.exists() else 'absent'}); SOAK={os.environ.get('SOAK', '0')}"
