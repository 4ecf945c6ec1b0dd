"""Without a browser the browser tests skip, saying how to enable them; with
LEDGER_REQUIRE_BROWSER=1 (CI) they fail instead."""

from __future__ import annotations

import pytest


def test_missing_browser_skips_with_a_reason(monkeypatch, browser_gate):
    monkeypatch.delenv("LEDGER_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception) as info:
        browser_gate("/nonexistent/chromium")
    assert "no Chromium at /nonexistent/chromium" in str(info.value)
    assert "export LEDGER_REQUIRE_BROWSER=1 to fail instead" in str(info.value)


def test_missing_browser_fails_when_required(monkeypatch, browser_gate):
    monkeypatch.setenv("LEDGER_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="LEDGER_REQUIRE_BROWSER=1 but no Chromium"):
        browser_gate("/nonexistent/chromium")
