# The two commands of the README: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every core this process may use: its CPU affinity (taskset, a cpuset) and a container's CPU
# limit (a cgroup quota, which `nproc` does not see), as joblib counts them; `nproc` before
# the install. Each demo job is one thread (config/demo.yaml's train_threads), so CORES jobs
# at once fill them, no more.
CORES ?= $(shell $(BIN)/python -c 'import joblib; print(joblib.cpu_count())' 2>/dev/null || nproc)
# A failing snakemake fails the target, though its output goes through the progress filter.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Snakemake's output as one progress line at a time (medft.progress); errors pass through.
PROGRESS := 2>&1 | $(BIN)/python -m medft.progress

.PHONY: demo test test-slow lint bench clean docs

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the project's requirements change.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[workflow,slurm,test,dicom,nifti,openclip,transformers]"
	touch $@

# Everything that checks in-process, in a few minutes; the real `snakemake` runs, signals and
# real-data tests are `slow` and run in CI as their own step.
# One pytest-xdist worker per core: most tests are single-threaded Python, so one process
# leaves the other cores idle.
test: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not slow" -n $(CORES)

# loadgroup: the tests that share one finished workflow run on one worker (tests/conftest.py).
test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow -n $(CORES) --dist loadgroup

# The demo ends with its one-page HTML report (every table and figure, captioned).
demo: $(VENV)/.installed
	$(BIN)/snakemake --configfile config/demo.yaml --cores $(CORES) --scheduler greedy $(PROGRESS)
	$(BIN)/snakemake --configfile config/demo.yaml --report results/demo/report.html --quiet all

# docs/report.md's list of artefacts, from the writers' docstrings (a test checks it is current).
docs: $(VENV)/.installed
	$(BIN)/python -m medft.report.artefacts docs/report.md

# What CI adds to the tests: static checks, a dry run of the paper's grid, a smaller demo.
lint: $(VENV)/.installed
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check src tests bench workflow/scripts

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[bench]"
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/strategy_overhead.py
	$(BIN)/python bench/loader_throughput.py
	$(BIN)/python bench/training_loop.py

clean:
	rm -rf results/demo .snakemake
