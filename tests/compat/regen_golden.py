"""Regenerate ``assets/golden_expected.json`` — by hand, deliberately, never from a test.

Run it only after a change that is *meant* to move the observable bytes (and after
bumping the ledger or export format version that says so):

    .venv/bin/python tests/compat/regen_golden.py            # write the expectations
    .venv/bin/python tests/compat/regen_golden.py --check    # show what differs, write nothing

It refuses to write while ``ledger/``, ``projections/`` or ``cli/`` have uncommitted
changes (expectations must come from a commit that can be named), unless
``--allow-dirty``; ``--commit SHA`` names the source when it runs from an exported tree
(``git archive``) rather than a checkout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (str(Path(__file__).resolve().parent), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from compat_golden import EXPECTED, observe  # noqa: E402

ABOUT = (
    "Expected observable bytes of tests/compat/assets/golden.jsonl appended to a fresh "
    "ledger. Written by tests/compat/regen_golden.py only; the test never rewrites it."
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _diff(old: object, new: object, where: str = "$") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            if k not in old:
                out.append(f"{where}.{k}: added")
            elif k not in new:
                out.append(f"{where}.{k}: removed")
            else:
                out += _diff(old[k], new[k], f"{where}.{k}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _diff(a, b, f"{where}[{i}]")]
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print differences, write nothing")
    parser.add_argument("--allow-dirty", action="store_true", help="write from uncommitted code")
    parser.add_argument("--commit", help="the commit the code under test comes from")
    args = parser.parse_args(argv)

    from ledger.log import FORMAT_VERSION as LEDGER_FORMAT
    from projections.export.manifest import FORMAT_VERSION as EXPORT_FORMAT

    commit = args.commit or _git("rev-parse", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--", "ledger", "projections", "cli")
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        observed = observe(Path(tmp))
    expected = {
        "_about": ABOUT,
        "generated_from": {
            "commit": commit,
            "ledger_format_version": LEDGER_FORMAT,
            "export_format_version": EXPORT_FORMAT,
        },
        **observed,
    }
    old = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    changes = [d for d in _diff(old, expected) if not d.startswith("$.generated_from")]
    for line in changes:
        print(line)
    print(f"{len(changes)} difference(s) from {EXPECTED.name}")
    if args.check:
        return 1 if changes else 0
    if dirty and not args.allow_dirty:
        print(
            "refusing to write: uncommitted changes under ledger/, projections/ or cli/:\n"
            f"{dirty}\ncommit them first (or pass --allow-dirty)",
            file=sys.stderr,
        )
        return 2
    EXPECTED.write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {EXPECTED} from commit {commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
