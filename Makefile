# Two entry points for a fresh machine:  `make demo` (main job) and `make test` (tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := constraints.txt
# the Python floor of pyproject.toml (requires-python), checked before anything is installed
PYCHECK := import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
	"dce needs Python >= 3.11 (Snakemake 9); $(PY) is " + sys.version.split()[0] + \
	": run make PY=python3.11 (or newer)")

.PHONY: demo test lint bench lock

# the tested versions (constraints.txt); `pip check`: the installed set is consistent
$(STAMP): pyproject.toml $(LOCK)
	$(PY) -c '$(PYCHECK)'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e ".[dev]"
	$(BIN)/pip check
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

# constraints.txt again from the newest versions pyproject.toml allows (its header kept);
# then run `make test` before committing it
lock:
	$(PY) -c '$(PYCHECK)'
	rm -rf $(VENV)-lock
	$(PY) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet --upgrade pip
	$(VENV)-lock/bin/pip install --quiet -e ".[dev,slurm]"
	$(VENV)-lock/bin/pip check
	{ sed -n '1,/^$$/p' $(LOCK); \
	  $(VENV)-lock/bin/python -c 'import platform as p; print("# generated with Python", \
	    p.python_version(), f"({p.system()} {p.machine()})")'; \
	  $(VENV)-lock/bin/pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(VENV)-lock
