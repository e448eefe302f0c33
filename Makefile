# kdkge — common tasks. `make` (or `make help`) lists them.
#
# Variables (override on the command line, e.g. `make run ARGS="model=kd_distmult"`):
#   PYTHON       interpreter used to create .venv            (default: python3)
#   ARGS         extra arguments / Hydra overrides for train.py
#   PYTEST_ARGS  extra arguments for pytest (e.g. "-k tracking -x")
#   TEST_JOBS    test processes for `make test` (pytest-xdist; default: 2, CI's cores; 0 = one process)
#   SWEEP        sweep file name under sweeps/ for `make sweep` (table2 ... table6, paper)
#   DRY          `make sweep ... DRY=1` lists the runs and their count, trains nothing
#   JOBS         `make sweep ... JOBS=2` runs 2 jobs at a time (hydra/launcher=joblib)
#   SPACE        Optuna search space for `make search` (searches/<SPACE>.yaml)
#   TRIALS       number of trials `make search` adds to the study (default: 20)
#   PORT         port for `make ui`                          (default: 5000)
#   MLFLOW_TRACKING_URI  the store `make ui` serves (default: sqlite:///mlflow.db; an http(s) server has its own UI)

.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
CHROMIUM    := /usr/bin/chromium
ARGS        ?=
PYTEST_ARGS ?=
TEST_JOBS   ?= 2
SWEEP       ?=
DRY         ?=
JOBS        ?=
SPACE       ?= umls_kd_distmult
TRIALS      ?= 20
PORT        ?= 5000

.PHONY: seeds calibration help install browser run test sweep search tables record import-record ui bench bench-gpu bench-scale clean clean-all

help: ## Show this help
	@echo "Usage: make <target> [VAR=value ...]"
	@echo
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: PYTHON ARGS PYTEST_ARGS SWEEP DRY JOBS SPACE TRIALS PORT MLFLOW_TRACKING_URI (see the top of the Makefile)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes (or the stamp is missing).
# torch is installed first and pinned: an unpinned torch pulls a multi-GB CUDA build.
# pip compiles the packages' bytecode here, once. Not --no-compile: where PYTHONDONTWRITEBYTECODE=1
# is set (as on the development machine) Python then never caches it and every test process
# compiles torch anew (`import torch, mlflow` 14.5 s CPU instead of 6.0 s; CI 27.6 min, measured).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,cluster]'
	@touch $@

install: $(STAMP) ## Create .venv (if missing) and install kdkge with the dev and cluster extras

# Debian's chromium for the browser test. Never fails: without it the browser
# test skips with a reason. Never runs `playwright install`.
browser:
	@if [ -x $(CHROMIUM) ]; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian chromium for the browser test (apt-get)..."; \
		log=$$(mktemp); \
		if ( DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		     || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		   ) >"$$log" 2>&1; then \
			echo "chromium installed."; \
		else \
			echo "warning: could not install chromium (see below); the browser test will be skipped."; \
			tail -n 5 "$$log"; \
		fi; \
		rm -f "$$log"; \
	else \
		echo "note: $(CHROMIUM) is missing and cannot be installed here (needs root and apt-get); the browser test will be skipped."; \
	fi

run: install ## Train once: train.py with Hydra overrides from ARGS
	$(PY) train.py $(ARGS)

test: install browser ## Run all tests (incl. the browser test); extra pytest args in PYTEST_ARGS
	$(PY) -m pytest -q -n $(TEST_JOBS) $(PYTEST_ARGS)

# A sweep file sweeps/<SWEEP>.yaml launches the runs behind one paper table (README.md, "Many runs in one command: sweeps").
# Finished runs are skipped, so re-running an interrupted sweep finishes what is missing.
sweep: install ## Run a table's sweep: make sweep SWEEP=table4 [DRY=1] [JOBS=2] [ARGS="epochs=10"]
	@if [ -z "$(SWEEP)" ] || [ ! -f sweeps/$(SWEEP).yaml ]; then \
		echo "error: set SWEEP=<name> of a sweep file: $$(cd sweeps && ls *.yaml | sed 's/\.yaml$$//' | tr '\n' ' ')"; exit 2; fi
	$(PY) train.py -m +sweep=$(SWEEP) $(if $(DRY),hydra.sweeper.dry_run=true) \
		$(if $(JOBS),hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS)) $(ARGS)

search: install ## Optuna search (valid MRR): make search SPACE=umls_kd_distmult TRIALS=20 (resumes the study)
	$(PY) -m kdkge.search --space searches/$(SPACE).yaml --trials $(TRIALS) $(ARGS)

# make tables reads the MLflow store, or the committed run record results/runs/ when the store has no
# kdkge runs (or with ARGS=--from-record). Besides Tables 2-6 and REPRODUCTION.md it writes the
# equal-budget comparison (results/equal_budget.*, after SWEEP=equal_budget) and the Pareto fronts
# (results/pareto.md, results/pareto_<dataset>_<protocol>.png, fuller after SWEEP=pareto).
# It never deletes or shrinks a git-tracked results file (exit 3, one line per file) unless ARGS=--force.
tables: install ## Build Tables 2-6, equal budget and Pareto fronts of both protocols (ARGS="--from-record", "--force")
	$(PY) -m kdkge.reports $(ARGS)

record: install ## Export the store's FINISHED runs into the committed run record results/runs/ (merges; never shrinks)
	$(PY) -m kdkge.runrecord export $(ARGS)

import-record: install ## Load the run record results/runs/ into the MLflow store (idempotent), e.g. for make ui
	$(PY) -m kdkge.runrecord import $(ARGS)

calibration: install ## results/calibration.md: ECE, Brier, top-1 ECE of none/LS/LR next to MRR (backfills older runs)
	$(PY) -m kdkge.reports calibration $(ARGS)

seeds: install ## Mean ± std over seeds and paired KD − DistMult tests (after make sweep SWEEP=table2_seeds)
	$(PY) -m kdkge.reports seeds $(ARGS)

ui: install ## Browse runs: mlflow ui on MLFLOW_TRACKING_URI (default sqlite:///mlflow.db) at http://127.0.0.1:PORT
	@case "$(or $(MLFLOW_TRACKING_URI),sqlite:///mlflow.db)" in \
	  http://*|https://*) echo "MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI) is a tracking server: it serves the UI itself, open that address";; \
	  *) echo "$(VENV)/bin/mlflow ui --backend-store-uri $(or $(MLFLOW_TRACKING_URI),sqlite:///mlflow.db) --port $(PORT)"; \
	     exec $(VENV)/bin/mlflow ui --backend-store-uri "$(or $(MLFLOW_TRACKING_URI),sqlite:///mlflow.db)" --port $(PORT);; \
	esac

# PyKEEN and dicee (the paper's framework) are compared against in a separate venv, never kdkge
# dependencies.  torch is pinned to the CPU wheel of .venv (benchmarks/constraints.txt); a framework
# that fails to install is skipped by the benchmark with a note, not an error.
BENCH_VENV  := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed
$(BENCH_STAMP): benchmarks/constraints.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -c benchmarks/constraints.txt torch==2.13.0
	$(BENCH_VENV)/bin/pip install -q -c benchmarks/constraints.txt pykeen==1.11.1 \
		|| echo "warning: pykeen==1.11.1 did not install; the PyKEEN comparison will be skipped"
	$(BENCH_VENV)/bin/pip install -q -c benchmarks/constraints.txt dicee==0.3.3 'pyarrow<23' \
		|| echo "warning: dicee==0.3.3 did not install; the dicee comparison will be skipped"
	@touch $@

bench: install $(BENCH_STAMP) ## Speed figures: vs PyKEEN/dicee, epoch/floor of every strategy, closed form, stacking, sweep estimate + real subset (results/benchmarks.md, ~30 min)
	$(PY) -m kdkge.bench $(ARGS)

bench-gpu: install ## GPU bench: Tables 2+3 stacked, whole-paper estimate (results/benchmarks_gpu.md; needs a CUDA GPU)
	$(PY) -m kdkge.bench_gpu --device cuda $(ARGS)

bench-scale: install ## KD-DistMult vs DistMult on a synthetic 10⁶-entity graph: memory, epoch time (results/scale.md, ~1 h)
	$(PY) -m kdkge.bench_scale $(ARGS)

clean: ## Remove Hydra outputs and caches (keeps mlflow.db and .venv)
	rm -rf outputs multirun .pytest_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

clean-all: clean ## `clean` plus the MLflow store (mlflow.db, mlruns/, mlartifacts/)
	rm -rf mlflow.db mlruns mlartifacts
