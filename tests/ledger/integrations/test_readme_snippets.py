"""Every integration's README block runs as written: extracted from README.md and run
in a fresh folder; each leaves a completed run (and no open one) in results.ledger."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from integration_helpers import runs

from ledger import Ledger

README = Path(__file__).resolve().parents[3] / "README.md"
SECTION = "## Recording from the frameworks you use"


def snippets() -> dict[str, str]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)
    named = {}
    for code in blocks:
        framework = re.search(r"from ledger\.integrations\.(\w+) import", code).group(1)
        named[framework] = code
    return named


def test_the_section_has_one_block_per_integration():
    assert sorted(snippets()) == ["keras", "lightning", "optuna", "transformers"]


REQUIRES = {
    "optuna": ["optuna"],
    "lightning": ["lightning", "torch"],
    "transformers": ["transformers", "accelerate", "torch"],
    "keras": ["keras", "torch"],
}


@pytest.mark.parametrize("framework", sorted(REQUIRES))
def test_the_readme_block_runs(framework, tmp_path, monkeypatch):
    if framework == "keras":
        monkeypatch.setenv("KERAS_BACKEND", "torch")  # what the block sets, restored after
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for module in REQUIRES[framework]:
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    code = snippets()[framework]
    exec(compile(code, f"README.md ({framework} block)", "exec"), {"__name__": "__main__"})
    with Ledger(str(tmp_path / "results.ledger"), readonly=True) as led:
        [study] = led.studies()
    statuses = {r["status"] for r in runs(str(tmp_path / "results.ledger"), study)}
    assert "completed" in statuses and None not in statuses, statuses
    assert os.environ.get("KERAS_BACKEND", "torch") == "torch"
