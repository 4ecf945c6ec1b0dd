"""The report file without a browser: deterministic bytes, nothing external, time
travel, and a sentence for every empty view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from report_html import resource_problems, section

from ledger import Ledger
from projections.report import ReportError, write
from projections.report.downsample import m4
from projections.text import format_value

ROOT = Path(__file__).resolve().parents[3]
SECTIONS = (
    "dag",
    "rankings",
    "pareto",
    "curves",
    "stats",
    "eco",
    "failures",
    "search",
    "runs",
    "provenance",
)


def _ledger_cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def test_same_bytes_across_processes_hash_seeds_and_time_zones(demo_ledger, demo_report, tmp_path):
    outs = []
    for seed, tz in (("1", "UTC"), ("4242", "Asia/Kathmandu")):
        out = tmp_path / f"r-{seed}.html"
        env = {**os.environ, "PYTHONHASHSEED": seed, "TZ": tz}
        _ledger_cli(
            "--ledger",
            str(demo_ledger),
            "report",
            "--study",
            "spirals-mlp",
            "--out",
            str(out),
            env=env,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == demo_report.read_bytes()


def test_no_resource_is_loaded_from_anywhere(demo_report):
    html = demo_report.read_text()
    assert resource_problems(html) == []
    assert "http:" not in html and "https:" not in html
    # the page forbids every fetch itself: only its own script and style may run
    assert "default-src 'none'" in html and "script-src 'sha256-" in html


def test_every_view_is_present_and_names_its_log_position(demo_ledger, demo_report):
    html = demo_report.read_text()
    with Ledger(demo_ledger, create=False, readonly=True) as led:
        head = led.head
    assert f'data-as-of="{head.seq}"' in html and f'data-head-hash="{head.hash}"' in html
    for name in SECTIONS:
        assert f'id="{name}"' in html, name
    assert 'class="empty"' not in section(html, "dag")
    # one objective: the Pareto view says so in words
    assert "one objective (val_loss)" in section(html, "pareto")


def test_as_of_reproduces_a_past_report_byte_for_byte(tmp_path):
    path = tmp_path / "l.ledger"
    events = [
        {
            "type": "study_created",
            "study": "s",
            "objectives": [{"metric": "loss", "direction": "min"}],
            "ts": 1,
        },
        {"type": "case_created", "study": "s", "case": "a", "ts": 1},
        {"type": "eco_applied", "study": "s", "case": "b", "parent": "a", "eco": "e1", "ts": 1},
        {"type": "run_started", "study": "s", "case": "a", "run": "a1", "ts": 2},
        {
            "type": "metrics_recorded",
            "study": "s",
            "run": "a1",
            "step": 0,
            "values": {"loss": 2.0},
            "ts": 2,
        },
        {"type": "metrics_recorded", "study": "s", "run": "a1", "values": {"loss": 1.5}, "ts": 2},
        {"type": "run_finished", "study": "s", "run": "a1", "status": "completed", "ts": 3},
    ]
    with Ledger(path) as led:
        led.append(events)
        then = write(led, "s", tmp_path / "then.html")
        led.append(
            [
                {"type": "run_started", "study": "s", "case": "b", "run": "b1", "ts": 4},
                {
                    "type": "metrics_recorded",
                    "study": "s",
                    "run": "b1",
                    "values": {"loss": 1.0},
                    "ts": 4,
                },
                {"type": "run_finished", "study": "s", "run": "b1", "status": "completed", "ts": 5},
            ]
        )
        now = write(led, "s", tmp_path / "now.html")
        past = write(led, "s", tmp_path / "past.html", as_of=then.as_of)
    assert (then.as_of, now.as_of) == (7, 10)
    assert (tmp_path / "past.html").read_bytes() == (tmp_path / "then.html").read_bytes()
    assert past.sha256 == then.sha256 != now.sha256


def test_empty_views_say_what_they_would_show(tmp_path):
    path = tmp_path / "e.ledger"
    with Ledger(path) as led:
        led.append([{"type": "study_created", "study": "bare", "ts": 1}])
        write(led, "bare", tmp_path / "bare.html")
    html = (tmp_path / "bare.html").read_text()
    expected = {
        "dag": "no case at seq 1",
        "rankings": "declares no objectives",
        "pareto": "no objectives",
        "curves": "no curves to draw",
        "stats": "nothing to describe",
        "eco": "no child-minus-parent effects",
        "failures": "no run yet",
        "search": "declares no objectives",
        "runs": "no run yet",
    }
    for name, words in expected.items():
        part = section(html, name)
        assert 'class="empty"' in part and words in part, name


def test_unwritable_targets_are_clear_errors(demo_ledger, tmp_path):
    with Ledger(demo_ledger, create=False, readonly=True) as led:
        with pytest.raises(ReportError, match="does not exist"):
            write(led, None, tmp_path / "nope" / "r.html")
        with pytest.raises(ReportError, match="is a folder"):
            write(led, None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_m4_keeps_every_bucket_extreme_and_the_ends():
    rng = np.random.default_rng(3)
    steps = np.arange(2000)
    values = rng.normal(0, 1, 2000)
    values[777], values[1501] = 40.0, -35.0
    values[10] = np.nan
    d = m4(steps, values, 50)
    assert len(d.steps) <= 200 and d.total == 2000 and d.nonfinite == 1
    assert {0, 1999, 777, 1501} <= set(d.steps.tolist())
    assert d.values.max() == 40.0 and d.values.min() == -35.0
    assert np.all(np.diff(d.steps) > 0)
    again = m4(steps, values, 50)
    assert np.array_equal(d.steps, again.steps)
    short = m4(steps[:100], values[:100], 50)  # fewer points than 4 x buckets: all kept
    assert len(short.steps) == 99


def test_interval_bars_are_the_analytics_numbers(demo_ledger):
    """The statistics and failure views hand the analytics' own numbers to the charts:
    the same as ``ledger stats`` and ``ledger failures`` with their defaults."""
    from projections.analytics import api
    from projections.analytics.query import Query
    from projections.report.context import Context, Options
    from projections.report.stats_view import build_failures, build_stats

    with Ledger(demo_ledger, create=False, readonly=True) as led:
        ctx = Context(led, "spirals-mlp", None, Options())
        charts = build_stats(ctx)["charts"]
        fails = build_failures(ctx)["charts"]
        q = Query(led).study("spirals-mlp")
        for chart, by in zip(charts, ("stage", "eco")):
            groups = api.stats(q, metric="val_loss", by=by).data["groups"]
            titles = [r["title"] for r in chart["chart"]["rows"]]
            assert len(titles) == len(groups)
            for title, g in zip(titles, groups):
                assert f"n={g['count']}, mean {format_value(g['mean'])}" in title
                assert f"[{format_value(g['ci_low'])}, {format_value(g['ci_high'])}]" in title
        for chart, by in zip(fails, ("stage", "eco")):
            groups = api.failures(q, by=by).data["groups"]
            notes = [r["note"] for r in chart["chart"]["rows"]]
            assert notes == [f"{g['failed']} of {g['n']}" for g in groups]
