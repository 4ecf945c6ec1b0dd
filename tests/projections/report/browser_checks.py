"""What every browser test asks of a loaded report."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

SECTIONS = (
    "header",
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


def assert_clean_load(opened, path: Path) -> None:
    """No console message of type error, no uncaught exception, no dialog, and no
    request but the file itself."""
    errors = [text for kind, text in opened.console if kind == "error"]
    assert errors == [] and opened.errors == []
    assert opened.dialogs == []
    assert opened.requests == [path.resolve().as_uri()]


def dag_cases(page) -> list[str]:
    return page.evaluate(
        "Array.from(document.querySelectorAll('svg.dag [data-case]'), e => e.getAttribute('data-case'))"
    )


def ranking_rows(page, stage: int) -> list[tuple[int, str, str, int]]:
    rows = page.evaluate(
        "s => Array.from(document.querySelectorAll(s), "
        "e => [e.dataset.rank, e.dataset.case, e.dataset.score, e.dataset.runs])",
        f'table.ranking[data-stage="{stage}"] tbody tr',
    )
    return [(int(r), c, s, int(n)) for r, c, s, n in rows]


def rank_json(ledger: Path, study: str, stage: int) -> list[tuple[int, str, str, int]]:
    """``ledger rank --study S --stage N --json``'s rows, scores spelt as the report's
    ``data-score`` (shortest round trip; lists comma-joined)."""
    from cli.main import cli

    res = CliRunner().invoke(
        cli, ["--ledger", str(ledger), "rank", "--study", study, "--stage", str(stage), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = []
    for row in json.loads(res.output)["ranking"]:
        score = row["score"]
        text = (
            ",".join(repr(float(s)) for s in score)
            if isinstance(score, list)
            else repr(float(score))
        )
        out.append((row["rank"], row["case"], text, row["runs"]))
    return out


def screenshots(page, folder: Path) -> list[Path]:
    """One PNG per section, for a person to look at."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in SECTIONS:
        target = folder / f"{name}.png"
        page.locator(f"#{name}").screenshot(path=str(target))
        out.append(target)
    return out
