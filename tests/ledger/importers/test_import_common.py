"""Shared importer helpers, and the message when a peer tool's client is missing."""

from __future__ import annotations

import sys

import pytest

from ledger.errors import LedgerError
from ledger.importers.common import (
    ImportError_,
    ImportSourceError,
    MissingDependency,
    Ticker,
    check_name,
    parse_number,
    stable_id,
    to_utc,
    utc_from_millis,
)


def test_missing_optuna_says_what_to_install(monkeypatch, tmp_path):
    from ledger.importers import optuna_import

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'results-ledger\[optuna\]'$"):
        optuna_import.read_optuna(tmp_path / "journal.log")


def test_missing_mlflow_says_what_to_install(monkeypatch):
    from ledger.importers import mlflow_import

    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(MissingDependency, match=r"pip install 'results-ledger\[mlflow\]'$"):
        mlflow_import.read_mlflow("sqlite:///nowhere.db")


def test_importing_the_package_loads_no_peer_tool():
    import subprocess

    code = (
        "import sys, ledger.importers, projections.rules_eval\n"
        "bad = [m for m in ('mlflow', 'optuna', 'pyarrow', 'click', 'scipy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_error_tree_and_message_shape():
    assert ImportError_ is ImportSourceError and issubclass(ImportSourceError, LedgerError)
    err = ImportSourceError("'abc' is not a number", where="f.csv:3", field="x", label="column")
    assert str(err) == "f.csv:3: column 'x': 'abc' is not a number"
    assert str(ImportSourceError("no rows", where="f.csv")) == "f.csv: no rows"


def test_stable_id_is_bounded_and_distinct():
    assert stable_id("csv", "s", "run", "r1") == "csv:s:run:r1"
    a = stable_id("csv", "s", "x" * 300, "started")
    b = stable_id("csv", "s", "x" * 300, "finished")
    assert len(a) == len(b) == 256 and a != b
    assert stable_id("csv", "s", "x" * 300, "started") == a


def test_check_name():
    assert check_name("ok", "run", where="f:1") == "ok"
    with pytest.raises(ImportSourceError, match=r"^f:1: column 'run': the run id is empty$"):
        check_name("", "run", where="f:1", field="run", label="column")
    with pytest.raises(ImportSourceError, match="257 characters long"):
        check_name("x" * 257, "case", where=None)
    with pytest.raises(ImportSourceError, match="control character"):
        check_name("a\tb", "case", where=None)


def test_parse_number():
    assert parse_number("12") == 12 and type(parse_number("12")) is int
    assert parse_number("-0.5") == -0.5 and parse_number("1e3") == 1000.0
    assert parse_number(".5") == 0.5 and parse_number("5.") == 5.0
    assert parse_number("Infinity") == float("inf")
    assert parse_number("NaN") != parse_number("NaN")
    for bad in ("", " 1", "1_0", "true", "0x1", "1,5", "١"):
        assert parse_number(bad) is None


def test_times():
    assert to_utc("2021-04-24T10:25:33-07:00") == ("2021-04-24T17:25:33Z", False)
    assert to_utc("2021-04-24 10:25:33") == ("2021-04-24T10:25:33Z", True)
    assert to_utc("2021-07-01 12:00", naive_tz="Europe/Paris") == ("2021-07-01T10:00:00Z", True)
    assert to_utc("2021-04-24T10:25:33.5Z")[0] == "2021-04-24T10:25:33.500000Z"
    assert utc_from_millis(1_700_000_000_123) == "2023-11-14T22:13:20.123000Z"
    with pytest.raises(ImportSourceError, match="unknown time zone 'Mars/Base'"):
        to_utc("2021-04-24 10:25", naive_tz="Mars/Base")
    with pytest.raises(ValueError):
        to_utc("not a time")


def test_ticker_throttles():
    calls = []
    t = Ticker(lambda d, n: calls.append((d, n)), 10_000, every=1000)
    for i in range(1, 10_001):
        t.tick(i)
    t.done(10_000)
    assert calls[0] == (1000, 10_000) and calls[-1] == (10_000, 10_000)
    assert len(calls) == 11
    Ticker(None, None).tick(5)  # no callback: nothing happens
