"""Importing the analytics modules must not import scipy (CLI start-up cost)."""

from __future__ import annotations

import subprocess
import sys


def test_analytics_modules_import_without_scipy():
    code = (
        "import sys\n"
        "import projections.analytics.stats, projections.analytics.outliers\n"
        "import projections.analytics.compare, projections.analytics.failures\n"
        "import projections.analytics.curves\n"
        "bad = sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_public_names_are_exported():
    from projections.analytics import compare, curves, failures, outliers, stats

    for mod in (stats, outliers, compare, failures, curves):
        for name in mod.__all__:
            assert hasattr(mod, name), f"{mod.__name__}.{name}"
