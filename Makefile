# Two entry points for a fresh machine:  `make demo` (main job) and `make test` (tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# the whole pipeline on the synthetic demo cohort (demo/ -> results/), then the HTML report
demo: $(STAMP)
	$(BIN)/snakemake
	$(BIN)/snakemake --report results/report.html

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint
	$(BIN)/pytest -q -m "not workflow"   # unit layer: library, no Snakemake (about 1 min)
	$(BIN)/pytest -q -m workflow         # workflow layer: real Snakemake runs on .test/

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_fit.py
