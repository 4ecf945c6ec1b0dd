"""Rows of the battery (docs/reliability.md) that are proved elsewhere or cannot be yet, listed
so that the battery reads complete and a skipped row says why."""

from __future__ import annotations

import pytest


@pytest.mark.skip(reason="R13 CSV injection belongs to the exports work (tests/projections/export)")
def test_r13_csv_injection():
    """Triggers = + - @ TAB CR LF NUL prefixed with ', numbers untouched, re-read safe."""


@pytest.mark.skip(
    reason="R15 path traversal belongs to the exports work (tests/projections/export)"
)
def test_r15_path_traversal():
    """Export names never resolve outside --out; pre-planted symlinks are not followed."""


@pytest.mark.skip(reason="R19: there is no HTTP server in results-ledger yet")
def test_r19_server():
    """401 in constant time, 413 before decode, fuzzed bodies never 500, replay-safe."""
