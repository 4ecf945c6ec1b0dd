"""A seeded study of 1,000 cases x 10 runs with 2,000-step curves: the report's size, and
the report in Chromium.

The curves the report draws are those of its best-ranked cases, so the CI study gives
every step (2,000) to the 10 cases designed best and every 400th step to the others:
the report's curves are then the very curves of the full study, at a small share of the
events (the test checks that every case it draws is one with full curves). ``make
soak`` runs the full study (20 million values) as well.
"""

from __future__ import annotations

import os
import re

import pytest
from browser_checks import assert_clean_load, dag_cases, rank_json, ranking_rows, screenshots

from benchmarks.report_study import build
from ledger import Ledger
from projections.report import write

LIMIT = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-1000")
    info = build(folder / "s.ledger", cases=1000, runs=10, steps=2000, sparse=400, full=10)
    out = folder / "s.html"
    with Ledger(folder / "s.ledger", create=False, readonly=True) as led:
        report = write(led, "seeded", out)
    return folder / "s.ledger", out, info, report


def _drawn_cases(html: str) -> set[str]:
    return set(re.findall(r'<figure class="panel" data-case="([^"]*)"', html))


def test_1000_cases_10_runs_2000_steps_stays_under_5_mb(seeded):
    _, out, info, report = seeded
    html = out.read_text()
    drawn = _drawn_cases(html)
    assert len(drawn) == 8 and drawn <= set(info["full"])  # the curves of the full study
    assert report.bytes == out.stat().st_size < LIMIT, f"{report.bytes:,} bytes"
    # every run's curve is downsampled: no path holds more than 4 x 50 points
    longest = max(d.count("L") + 1 for d in re.findall(r'class="line" d="([^"]*)"', html))
    assert 150 < longest <= 200


def test_1000_case_report_in_chromium(open_page, seeded, tmp_path):
    ledger, out, info, _ = seeded
    opened = open_page(out)
    assert_clean_load(opened, out)
    page = opened.page
    assert sorted(dag_cases(page)) == sorted(info["cases"])
    for stage in (0, 1, 2):
        assert ranking_rows(page, stage) == rank_json(ledger, "seeded", stage)
    screenshots(page, tmp_path / "screenshots")
    print(f"screenshots: {tmp_path / 'screenshots'}")


@pytest.mark.soak
@pytest.mark.skipif(os.environ.get("SOAK") != "1", reason="soak size: run by `make soak`")
def test_full_study_every_step_of_every_run(tmp_path):
    build(tmp_path / "full.ledger", cases=1000, runs=10, steps=2000)
    with Ledger(tmp_path / "full.ledger", create=False, readonly=True) as led:
        report = write(led, "seeded", tmp_path / "full.html")
    assert report.bytes < LIMIT
