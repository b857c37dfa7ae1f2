# The two entry points a new user needs (see README.md):
#   make repro   set up .venv and run the whole pipeline on the built-in dataset
#   make test    set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install -qq -c constraints.txt
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev,embeddings]"
	$(PIP) --no-deps -r requirements-nodeps.txt
	touch $@

repro: setup
	dvc repro
	dvc metrics show

# one pytest worker per core (pytest-xdist); each test file stays on one worker, so that its
# module fixtures (a tiny repository run once, a queued sweep) are built once
test: setup
	$(BIN)/ruff check src stages tests benchmarks
	$(BIN)/pytest -n auto --dist loadfile

test-fast: setup
	$(BIN)/pytest -m "not slow"

clean:
	rm -rf $(VENV) data/dataset data/separated data/separated.csv data/features data/model data/eval data/split.csv
