"""Fixtures of the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def ledger_dir(tmp_path) -> str:
    return str(tmp_path / "t.ledger")
