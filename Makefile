# Two entry points: `make run` (set up, fetch the default model, run OPRO on TSP) and `make test`;
# `make tune` retrains the tuned default optimizer.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TASK ?= tsp
ARGS ?=

.PHONY: run test lint setup model tune clean

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

test: model
	HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q $(ARGS)

lint: setup
	$(BIN)/ruff check opro tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
