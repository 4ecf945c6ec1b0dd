"""The one ``LedgerError`` tree: every error class lives in its package's ``errors.py``,
is listed there, and the ``ledger`` package exports every error of ``ledger.errors``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import ledger
import ledger.errors
import projections
import projections.errors
from ledger.errors import LedgerError

HOMES = {"ledger": ledger.errors, "projections": projections.errors}
# Not moved yet, with who moves it: the storage seam's files belong to the lead.
NOT_YET = {"ledger.backup.BackupError"}


def _modules(package) -> list[str]:
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        names.append(info.name)
    return names


def _error_classes() -> dict[str, type]:
    """``module.Class`` -> class, for every LedgerError subclass a module defines."""
    found: dict[str, type] = {}
    for package in (ledger, projections):
        for name in _modules(package):
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:  # an optional extra's library
                assert exc.name and not exc.name.startswith(("ledger", "projections")), exc
                continue
            for cls in vars(module).values():
                if inspect.isclass(cls) and issubclass(cls, LedgerError) and cls.__module__ == name:
                    found[f"{name}.{cls.__qualname__}"] = cls
    return found


def test_every_error_class_is_defined_in_its_packages_errors_module():
    found = _error_classes()
    assert "projections.errors.ExportError" in found and "ledger.errors.LedgerError" in found
    elsewhere = sorted(
        path
        for path, cls in found.items()
        if cls.__module__ != HOMES[cls.__module__.split(".")[0]].__name__
    )
    assert elsewhere == sorted(NOT_YET)


def test_every_error_is_listed_and_drawn_in_its_errors_module():
    for home in HOMES.values():
        defined = {
            name
            for name, cls in vars(home).items()
            if inspect.isclass(cls)
            and issubclass(cls, LedgerError)
            and cls.__module__ == home.__name__
        }
        assert defined == set(home.__all__)
        for name in defined:
            assert name in (home.__doc__ or ""), f"{name} is not drawn in {home.__name__}'s tree"


def test_the_ledger_package_exports_every_ledger_error():
    assert set(ledger.errors.__all__) <= set(ledger.__all__)
