"""``ledger report``: one self-contained HTML file to look at a study at one seq.

::

    from projections.report import write
    with Ledger("results.ledger", create=False, readonly=True) as led:
        info = write(led, "chip", "chip.html", as_of=120)

The file holds every style, script and chart inline (charts are SVG computed here, in
Python, so they read without JavaScript); nothing is loaded from any URL, which a
Content-Security-Policy in the file also enforces (its one script and stylesheet are
allowed by their SHA-256, so nothing injected could run). It is deterministic: the
same ledger prefix and options give the same bytes — no clock, no random ids, numbers
written with fixed formatting, everything in a fixed order — and it names the as-of
seq and the chain hash there, as an export's manifest does.

HTML comes from Jinja2 templates with autoescaping on: case ids, metric names, params
and errors are text wherever they land, never markup.

One module per view: ``dag_view`` (the layered DAG), ``rankings_view``,
``pareto_view``, ``curves_view`` (with ``downsample``), ``stats_view`` (grouped
statistics, ECO effects, failure rates: interval bars from ``forest``),
``search_view`` (history and ``importance``), ``tables_view`` (header, runs,
provenance); ``svg`` and ``chart`` hold the shared geometry; ``context`` loads the
study once.

Raises what loading a study raises (``UnknownStudy``, ``AsOfError``,
``ProjectionError``), ``PolicyError`` for a bad ``require`` or ``agg``, and
``ReportError`` when the output cannot be written.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from ledger import Ledger
from projections.errors import ReportError as ReportError

from .context import Context, Options

__all__ = ["FORMAT_VERSION", "Options", "ReportError", "ReportInfo", "render", "write"]

FORMAT_VERSION = 1
TEMPLATES = Path(__file__).resolve().parent / "templates"

TOC = (
    ("dag", "Case DAG"),
    ("rankings", "Rankings"),
    ("pareto", "Pareto front"),
    ("curves", "Curves"),
    ("stats", "Statistics"),
    ("eco", "ECO effects"),
    ("failures", "Failures"),
    ("search", "Search"),
    ("runs", "Runs"),
    ("provenance", "Provenance"),
)
SECTIONS = ("header",) + tuple(s for s, _ in TOC)


class ReportInfo(NamedTuple):
    path: str
    study: str
    as_of: int
    head_hash: str
    bytes: int
    sha256: str


def _environment() -> Any:
    import jinja2

    from projections.text import format_value

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = lambda v: format_value(float(v) if hasattr(v, "dtype") else v)
    return env


def _asset(name: str) -> tuple[Any, str]:
    """A stylesheet or script to inline, and its CSP source (``sha256-...``)."""
    from markupsafe import Markup

    text = (TEMPLATES / name).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return Markup(text), f"sha256-{digest}"


def render(
    ledger: Ledger, study: str | None, as_of: int | None = None, *, options: Options | None = None
) -> tuple[bytes, Context]:
    """The report's bytes (UTF-8 HTML) and the context it was made from."""
    from . import curves_view, dag_view, pareto_view, rankings_view, search_view, stats_view
    from . import tables_view as tables

    ctx = Context(ledger, study, as_of, options or Options())
    style, style_hash = _asset("report.css")
    script, script_hash = _asset("report.js")
    page = {
        "format_version": FORMAT_VERSION,
        "toc": TOC,
        "h": tables.build_header(ctx),
        "dag": dag_view.build(ctx),
        "rankings": rankings_view.build(ctx),
        "pareto": pareto_view.build(ctx),
        "curves": curves_view.build(ctx),
        "stats": stats_view.build_stats(ctx),
        "eco": stats_view.build_eco(ctx),
        "failures": stats_view.build_failures(ctx),
        "search": search_view.build(ctx),
        "runs": tables.build_runs(ctx),
        "p": tables.build_provenance(ctx),
        "style": style,
        "style_hash": style_hash,
        "script": script,
        "script_hash": script_hash,
    }
    html = _environment().get_template("report.html.j2").render(page)
    return html.encode("utf-8"), ctx


def write(
    ledger: Ledger,
    study: str | None,
    out: str | os.PathLike[str],
    as_of: int | None = None,
    *,
    options: Options | None = None,
    **option_fields: Any,
) -> ReportInfo:
    """Write the report of ``study`` at ``as_of`` (default: the head) to ``out``.

    ``options`` (or its fields as keywords: ``agg``, ``require``, ``curve_cases``,
    ``curve_metrics``, ``buckets``, ``confidence``) shape it. The file appears whole or
    not at all (written beside ``out``, then renamed). Raises ``ReportError`` when the
    folder of ``out`` does not exist or is not writable, plus what ``render`` raises.
    """
    if options is None:
        fields = dict(option_fields)
        if "require" in fields:
            fields["require"] = tuple(fields["require"])
        options = Options(**fields)
    elif option_fields:
        raise ReportError("pass either options or its fields, not both")
    target = Path(out)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ReportError(f"cannot write {target}: the folder {folder} does not exist")
    if target.is_dir():
        raise ReportError(f"cannot write {target}: it is a folder; name an .html file")
    data, ctx = render(ledger, study, as_of, options=options)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ReportError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"cannot write {target}: {exc.strerror}") from None
    return ReportInfo(
        str(target),
        ctx.study,
        ctx.as_of,
        ctx.head_hash,
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
