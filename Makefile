# Every target creates .venv and installs the project on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PEERS := $(VENV)/.installed-peers
INTEG := $(VENV)/.installed-integrations

.PHONY: demo docs-screenshot test lint format bench bench-smoke soak compare clean

# editable_mode=compat: a plain .pth path entry instead of setuptools' import hook, which
# cost every process start ~20 ms (measured by benchmarks/bench_startup.py).
EDITABLE := --config-settings editable_mode=compat

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' $(EDITABLE)
	$(BIN)/python -m compileall -q ledger projections cli >/dev/null
	touch $(STAMP)

# MLflow and Optuna: the importers' round trips and the peer benchmarks use the real tools.
# Playwright (report-tests) drives the system's Chromium in the report's browser tests.
$(PEERS): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,peers,report-tests]' $(EDITABLE)
	touch $(PEERS)

# The frameworks the integrations plug into (Optuna, Lightning, Transformers, Keras) and
# DuckDB for `ledger sql`. PyTorch is pinned to the CPU build these machines hold on disk:
# a looser pin (or none) makes pip download a CUDA build of several GB.
$(INTEG): $(PEERS)
	$(BIN)/python -m pip install -q 'torch==2.13.0' -e '.[dev,peers,integrations]' $(EDITABLE)
	touch $(INTEG)

demo: $(STAMP)
	rm -rf demo.ledger demo-export
	$(BIN)/ledger --ledger demo.ledger demo --out demo-export --report demo-report.html

# The README's picture of the demo study's report (needs Chromium: apt-get install chromium).
docs-screenshot: $(PEERS)
	rm -rf demo.ledger
	$(BIN)/ledger --ledger demo.ledger demo --report demo-report.html >/dev/null
	$(BIN)/python docs/screenshot.py demo-report.html docs/report-demo.png

# Two pytest-xdist workers (TEST_WORKERS=0 runs serially); tests/conftest.py starts the
# slow modules first so they overlap with the rest.
test: $(INTEG) lint
	$(BIN)/python -m pytest -n $${TEST_WORKERS:-2} --dist worksteal
	$(MAKE) bench-smoke

# ruff (with C901, max complexity 15) and mypy on ledger/ and projections/; files not yet
# held to C901 are listed once in pyproject.toml (the list only shrinks); mypy holds every
# module.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(INTEG)
	$(BIN)/python -m pytest benchmarks -p no:cacheprovider --benchmark-only --benchmark-group-by=group --benchmark-columns=min,median,mean,ops,rounds -o addopts=""

bench-smoke: $(STAMP)
	BENCH_SMOKE=1 $(BIN)/python -m pytest benchmarks -q -p no:cacheprovider --benchmark-disable -o addopts=""

compare: $(PEERS)
	$(BIN)/python benchmarks/compare.py --json bench-results/compare.json

soak: $(PEERS)
	SOAK=1 $(BIN)/python -m pytest tests -m "soak or slow" -o addopts="-q --durations=15"

clean:
	rm -rf $(VENV) demo.ledger demo-export demo-report.html .pytest_cache .mypy_cache .benchmarks build *.egg-info bench-results
