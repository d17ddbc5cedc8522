# Two entry points: `make run` (set up, fetch the default model, run OPRO on TSP) and `make test` (the everyday
# tier; `make test-all` runs every test, as CI does); `make tune` retrains the tuned default optimizer.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TASK ?= tsp
ARGS ?=

.PHONY: run test test-all coverage coverage-all lint setup model tune clean

$(BIN)/opro: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/opro

setup: $(BIN)/opro

model: setup
	$(BIN)/opro fetch-model

run: model
	$(BIN)/opro run --task $(TASK) $(ARGS)

# The tuned default optimizer's recipe (models/smollm2-opro/README.md): LoRA SFT then GRPO on CPU, seeded.
tune: model
	HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/opro rl tune --out models/smollm2-opro $(ARGS)

# Two workers, a test file on one worker (its module fixtures, such as a server, are made once); the models that
# several files share are built once per run (tests/conftest.py).
PYTEST := HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile
# Branch coverage of opro/ (subprocesses included), e.g. `make coverage-all`; the report lands in coverage.json.
COVERAGE := --cov=opro --cov-branch --cov-report=term:skip-covered --cov-report=json:coverage.json

# The everyday tier: everything but the tests marked `slow` (README, "Tests").
test: model
	$(PYTEST) -m "not slow" $(ARGS)

# Every test; an installed extra that a test needs must import (a skip would hide a broken install).
test-all: model
	OPRO_TEST_TIER=all $(PYTEST) $(ARGS)

coverage: model
	$(PYTEST) -m "not slow" $(COVERAGE) $(ARGS)

coverage-all: model
	OPRO_TEST_TIER=all $(PYTEST) $(COVERAGE) $(ARGS)

lint: setup
	$(BIN)/ruff check opro tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
