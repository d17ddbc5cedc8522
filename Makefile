# Two entry points: `make run` (set up, fetch the default model, run OPRO on TSP) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TASK ?= tsp
ARGS ?=

.PHONY: run test lint setup model clean

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

test: model
	HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q $(ARGS)

lint: setup
	$(BIN)/ruff check opro tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
