# Every target installs what it needs into .venv/ on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
ARGS ?=
# OpenMP threads that spin while waiting make torch crawl when the cores are shared.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup course test unit unit-all nbval lab bench notebooks zoo clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## course: run every notebook in order (fast mode) into runs/<timestamp>/ with summary.md
course: $(STAMP)
	$(PY) -m lmk.course $(ARGS)

## test: every unit test (heavy ones included), then every notebook under nbval (the CI command)
test: unit-all nbval

## unit: the fast inner loop; skips tests marked heavy (over 5 s each)
unit: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest tests -q -m "not heavy"

## unit-all: every unit test, heavy ones included
unit-all: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest tests -q

nbval: $(STAMP)
	$(PY) -m pytest -q --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval.cfg --nbval-cell-timeout=900 \
		-p no:cacheprovider notebooks/

## lab: open the course in JupyterLab
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

## bench: speed and memory figures (python -m lmk.bench)
bench: $(STAMP)
	$(PY) -m lmk.bench $(ARGS)

## zoo: train every recipe at zoo scale into data/zoo (about 3.3 hours on 2 cores; ARGS="NAME ..." for some)
zoo: $(STAMP)
	nice $(PY) -m lmk.zoo build --jobs 2 $(ARGS)

## notebooks: re-execute the committed notebooks in place (fast mode)
notebooks: $(STAMP)
	cd notebooks && for nb in $(notdir $(NOTEBOOKS)); do \
		../$(PY) -m papermill -k python3 --cwd . "$$nb" "$$nb" || exit 1; done

clean:
	rm -rf runs .pytest_cache
