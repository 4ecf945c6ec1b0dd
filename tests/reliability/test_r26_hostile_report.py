"""R26 hostile report: markup in case ids, run ids, metric names, ECO names, params,
errors and the study's description renders as text in ``ledger report``; in a real
headless Chromium the page fires no dialog, runs no injected script and requests
nothing."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from markupsafe import escape

from ledger import Ledger
from projections.report import write

S = 'st"udy<script>alert("study")</script>'
HOSTILE = [
    '<script>alert("case")</script>',
    "</svg><img src=x onerror=alert('img')>",
    '"><svg onload=alert(1)>',
    "' onmouseover='alert(2)",
    "a&b</title><script>alert(3)</script>",
    "</textarea></style></script><iframe src=javascript:alert(4)>",
]
METRIC = '<b onclick=alert("m")>loss</b>'
STEP_METRIC = "</svg><script>alert('curve')</script>"


def _events() -> list[dict]:
    ev: list[dict] = [
        {
            "type": "study_created",
            "study": S,
            "description": "<img src=x onerror=alert('desc')>",
            "config": {"<script>": "</pre><script>alert('cfg')</script>"},
            "tags": ["<svg/onload=alert('tag')>"],
            "objectives": [
                {"metric": METRIC, "direction": "min"},
                {"metric": "area'\"<", "direction": "min"},
            ],
            "ts": 1,
        },
        {
            "type": "case_created",
            "study": S,
            "case": HOSTILE[0],
            "params": {"<p>": "<script>x</script>"},
            "ts": 1,
        },
    ]
    for i, case in enumerate(HOSTILE[1:], start=1):
        ev.append(
            {
                "type": "eco_applied",
                "study": S,
                "case": case,
                "parent": HOSTILE[0],
                "eco": f"<script>alert('eco{i}')</script>",
                "eco_class": "</svg>\"'",
                "params": {"onerror=": i},
                "ts": 1,
            }
        )
    for i, case in enumerate(HOSTILE):
        for r in range(2):
            run = f"{case}<run{r}>\"'"
            ev.append(
                {
                    "type": "run_started",
                    "study": S,
                    "case": case,
                    "run": run,
                    "host": "<h onerror=alert(5)>",
                    "provenance": {"commit": "</pre><script>alert('prov')</script>"},
                    "ts": 2,
                }
            )
            for step in range(5):
                ev.append(
                    {
                        "type": "metrics_recorded",
                        "study": S,
                        "run": run,
                        "step": step,
                        "values": {STEP_METRIC: 1.0 / (step + 1 + i), METRIC: 2.0 / (step + 1)},
                        "ts": 2,
                    }
                )
            if i == 2 and r == 1:
                ev.append(
                    {
                        "type": "run_finished",
                        "study": S,
                        "run": run,
                        "status": "failed",
                        "error": "<script>alert('error')</script>",
                        "ts": 3,
                    }
                )
                continue
            ev.append(
                {
                    "type": "metrics_recorded",
                    "study": S,
                    "run": run,
                    "values": {METRIC: 0.1 * (i + 1) + r, "area'\"<": 10.0 - i},
                    "ts": 3,
                }
            )
            ev.append(
                {
                    "type": "artifact_recorded",
                    "study": S,
                    "run": run,
                    "name": "<x>",
                    "uri": "javascript:alert('uri')",
                    "ts": 3,
                }
            )
            ev.append(
                {"type": "run_finished", "study": S, "run": run, "status": "completed", "ts": 3}
            )
    ev.append(
        {
            "type": "selection_recorded",
            "study": S,
            "stage": 0,
            "survivors": [HOSTILE[0]],
            "policy": {"<rule>": "</script>"},
            "ts": 4,
        }
    )
    return ev


def _report(tmp_path: Path) -> Path:
    with Ledger(tmp_path / "h.ledger") as led:
        led.append(_events())
        write(led, S, tmp_path / "h.html")
    return tmp_path / "h.html"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_hostile_names_are_escaped_text(tmp_path):
    text = _report(tmp_path).read_text()
    tags = _Tags()
    tags.feed(text)
    # the report's own elements only: one script, no handler attribute, nothing loaded
    assert tags.tags.count("script") == 1 and text.count("</script>") == 1
    assert not {"img", "iframe", "b", "h", "x", "textarea", "rule"} & set(tags.tags)
    assert [a for a, _ in tags.attrs if a.startswith("on")] == []
    assert [
        v for a, v in tags.attrs if a in ("src", "href") and not (v or "").startswith("#")
    ] == []
    # the names are there, escaped, as text and in attributes
    for case in HOSTILE:
        assert str(escape(case)) in text, case
    assert text.count("<svg") == text.count("</svg>")


def test_hostile_report_in_chromium_runs_nothing_and_requests_nothing(tmp_path, open_page):
    path = _report(tmp_path)
    opened = open_page(path)
    page = opened.page
    page.mouse.move(200, 300)
    for sel in ("svg.dag g.node", "table.ranking tbody tr", "button.run-toggle"):
        for el in page.locator(sel).all()[:4]:
            el.hover()
    page.locator("button.run-toggle").first.click()
    page.wait_for_timeout(100)
    assert opened.dialogs == []
    assert opened.requests == [path.resolve().as_uri()]
    assert opened.errors == []
    # every hostile case id is a data-case in the DAG, read back verbatim, shown as text
    cases = page.evaluate(
        "Array.from(document.querySelectorAll('svg.dag [data-case]'), e => e.getAttribute('data-case'))"
    )
    assert sorted(cases) == sorted(HOSTILE)
    assert page.locator("script").count() == 1
    assert "<img src=x onerror=alert('desc')>" in page.locator("#header").inner_text()
    assert "</pre><script>alert('cfg')</script>" in page.locator("#provenance").text_content()
