"""Code says where its rules come from, in documents the repository has.

Comments and docstrings once cited "DESIGN §2" or "RELIABILITY pitfall 4": documents a
reader of the repository does not have. The project's own are in ``docs/``; this test
fails on a citation of the old ones, on a ``docs/*.md`` that does not exist, and on a
cited section (``docs/architecture.md, Events``; ``docs/reliability.md, pitfall 4``)
that the document does not have.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("ledger", "projections", "cli", "tests", "benchmarks", "examples")
OLD = re.compile(r"DESIGN(?: §|\.md)|RELIABILITY(?:\.md| item| pitfall)|STYLE(?:\.md| convention)")
CITE = re.compile(r"docs/([a-z-]+\.md)(?:,? (pitfall \d+|R\d+|[A-Z][a-z]+(?: [a-z]+)*))?")


def _sources() -> list[Path]:
    out = [ROOT / "README.md", ROOT / "Makefile"]
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in (".py", ".md", ".sh", ".j2") and "__pycache__" not in path.parts:
                out.append(path)
    return [p for p in out if p.is_file() and p != Path(__file__)]


def _sections(doc: Path) -> tuple[set[str], int]:
    text = doc.read_text(encoding="utf-8")
    headings = {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", text, re.M)}
    pitfalls = len(re.findall(r"^\d+\. \*\*", text, re.M))
    return headings, pitfalls


def test_no_citation_of_documents_outside_the_repository():
    bad = []
    for path in _sources():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OLD.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert bad == [], "cite docs/architecture.md, docs/storage-format.md or docs/reliability.md"


def test_every_cited_document_and_section_exists():
    bad = []
    for path in _sources():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in CITE.finditer(line):
                doc = ROOT / "docs" / m.group(1)
                where = f"{path.relative_to(ROOT)}:{n}"
                if not doc.is_file():
                    bad.append(f"{where}: no {doc.relative_to(ROOT)}")
                    continue
                section = m.group(2)
                if section is None:
                    continue
                headings, pitfalls = _sections(doc)
                if section.startswith("pitfall "):
                    ok = 1 <= int(section.split()[1]) <= pitfalls
                elif re.fullmatch(r"R\d+", section):
                    ok = f"| {section} " in doc.read_text() or f"| {section}," in doc.read_text()
                else:
                    ok = any(
                        section == h or section.startswith(h + " ") or h.startswith(section)
                        for h in headings
                    )
                if not ok:
                    bad.append(f"{where}: {m.group(0)!r} names no section of {doc.name}")
    assert bad == []
