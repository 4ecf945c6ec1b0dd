"""The writers whose bytes the golden test compares are the ones it was generated with.

``test_golden.py`` compares Parquet, xlsx and manifest bytes only when the installed
writers (msgspec, pyarrow, xlsxwriter, and Python's minor version and zlib) equal the
versions recorded in ``assets/golden_expected.json``; otherwise it falls back to
comparing their content. That fallback once hid a drift (msgspec 0.22 on one machine,
0.23 on another) behind a skip. So the writers are pinned in the ``dev`` extra that
``make test`` installs, the pins must be the golden file's versions, and a test
environment with other versions fails here, loudly, instead of skipping there.

To compare content only on purpose (another Python, another zlib, a writer upgrade
being tried out), set ``LEDGER_GOLDEN_CONTENT_ONLY=1``: the checks below then skip,
saying what differs.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from projections.export.manifest import package_versions

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).parent / "assets" / "golden_expected.json"
PINNED = ("msgspec", "pyarrow", "xlsxwriter")
HOWTO = (
    "install the pinned writers (`make .venv/.installed`, which installs '.[dev]'); to "
    "move to new writers, change the pins in pyproject.toml's dev extra and regenerate "
    "with `python tests/compat/regen_golden.py`; to compare content only on purpose, "
    "set LEDGER_GOLDEN_CONTENT_ONLY=1"
)


def _golden_versions() -> dict[str, str]:
    return json.loads(EXPECTED.read_text())["version_dependent"]["versions"]


def _dev_pins() -> dict[str, str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the tests run on 3.11
        import tomli as tomllib
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "dev"
    ]
    pins = {}
    for req in dev:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", req.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_the_dev_pins_are_the_versions_the_golden_file_was_made_with():
    pins, golden = _dev_pins(), _golden_versions()
    assert {w: pins.get(w) for w in PINNED} == {w: golden[w] for w in PINNED}, (
        "pyproject.toml's dev pins and tests/compat/assets/golden_expected.json disagree; "
        "change both together (regen_golden.py writes the latter)"
    )


def test_the_installed_writers_are_the_golden_ones():
    installed, golden = package_versions(), _golden_versions()
    differ = {k: (installed.get(k), v) for k, v in golden.items() if installed.get(k) != v}
    if not differ:
        return
    what = ", ".join(f"{k} {have} (golden: {want})" for k, (have, want) in sorted(differ.items()))
    if os.environ.get("LEDGER_GOLDEN_CONTENT_ONLY") == "1":
        pytest.skip(f"LEDGER_GOLDEN_CONTENT_ONLY=1: the golden export bytes are compared by content only; {what}")  # fmt: skip
    pytest.fail(
        f"the installed writers are not the golden ones ({what}), so the golden test "
        f"could only compare Parquet/xlsx/manifest by content; {HOWTO}"
    )
