# Two entry points: `make run` (runtime dependencies only, fetch the default model, run OPRO on TSP) and
# `make test` (adds the test extra; the everyday tier, `make test-all` runs every test, as CI does); `make docs`
# builds the documentation site, `make tune` retrains the tuned default optimizer.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TASK ?= tsp
ARGS ?=

.PHONY: run test test-all coverage coverage-all lint setup model tune docs docs-serve clean

$(BIN)/opro: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(BIN)/opro

# The extras, installed once into the same venv (a stamp file each).
$(VENV)/.extra-%: $(BIN)/opro
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

setup: $(BIN)/opro

model: setup
	$(BIN)/opro fetch-model

run: model
	$(BIN)/opro run --task $(TASK) $(ARGS)

# The tuned default optimizer's recipe (models/smollm2-opro/README.md): LoRA SFT then GRPO on CPU, seeded.
tune: model $(VENV)/.extra-rl
	HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/opro rl tune --out models/smollm2-opro $(ARGS)

# Two workers (the ten slowest tests printed at the end), a test file on one worker (its module fixtures, such as a server, are made once); the models that
# several files share are built once per run (tests/conftest.py).
PYTEST := HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=10
# Branch coverage of opro/ (subprocesses included), e.g. `make coverage-all`; the report lands in coverage.json.
COVERAGE := --cov=opro --cov-branch --cov-report=term:skip-covered --cov-report=json:coverage.json

# The everyday tier: everything but the tests marked `slow` (README, "Tests").
test: model $(VENV)/.extra-test
	$(PYTEST) -m "not slow" $(ARGS)

# Every test; an installed extra that a test needs must import (a skip would hide a broken install).
test-all: model $(VENV)/.extra-test
	OPRO_TEST_TIER=all $(PYTEST) $(ARGS)

coverage: model $(VENV)/.extra-test
	$(PYTEST) -m "not slow" $(COVERAGE) $(ARGS)

coverage-all: model $(VENV)/.extra-test
	OPRO_TEST_TIER=all $(PYTEST) $(COVERAGE) $(ARGS)

lint: $(VENV)/.extra-test
	$(BIN)/ruff check opro tests benchmarks

# The documentation site (mkdocs.yml): a strict build into site/, or served on 127.0.0.1:8000.
docs: $(VENV)/.extra-docs
	$(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.extra-docs
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

clean:
	rm -rf $(VENV) build site *.egg-info
