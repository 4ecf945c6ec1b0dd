"""The demo study's report in a real headless Chromium (Debian's, through Playwright)."""

from __future__ import annotations

from browser_checks import assert_clean_load, dag_cases, rank_json, ranking_rows, screenshots

from ledger import Ledger
from projections.study import load_study


def test_demo_report_in_chromium(open_page, demo_ledger, demo_report, tmp_path):
    opened = open_page(demo_report)
    page = opened.page
    assert_clean_load(opened, demo_report)

    with Ledger(demo_ledger, create=False, readonly=True) as led:
        view = load_study(led, "spirals-mlp")
        cases = sorted(view.dag.nodes)
        stages = view.dag.stages()
    assert sorted(dag_cases(page)) == cases
    for stage in stages:
        assert ranking_rows(page, stage) == rank_json(demo_ledger, "spirals-mlp", stage)

    # the charts are there without any script having drawn them, and read as text
    assert page.locator("#curves svg.curves").count() >= 1
    assert page.locator("#stats svg.forest").count() >= 1
    page.locator("#search").scroll_into_view_if_needed()
    assert "val_loss" in page.locator("#search").inner_text()

    # the script only adds interaction: sorting and toggling work
    first = page.locator('table.ranking[data-stage="0"] tbody tr').first.get_attribute("data-case")
    heading = page.locator('table.ranking[data-stage="0"] th').first
    heading.click()  # by rank, ascending: as drawn
    heading.click()  # descending
    assert (
        page.locator('table.ranking[data-stage="0"] tbody tr').last.get_attribute("data-case")
        == first
    )
    button = page.locator("#curves button.run-toggle").first
    run = button.get_attribute("data-run")
    button.click()
    hidden = page.locator("#curves figure").first.locator("g.run.off")
    assert hidden.count() == 1 and hidden.get_attribute("data-run") == run

    shots = screenshots(page, tmp_path / "screenshots")
    assert all(p.stat().st_size > 1000 for p in shots)
    assert [e for k, e in opened.console if k == "error"] == []
    print(f"screenshots: {tmp_path / 'screenshots'}")
