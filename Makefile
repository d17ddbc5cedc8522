# Two entry points: `make run` (runtime dependencies only, fetch the default model, run OPRO on TSP) and
# `make test` (adds the test extra); `make docs` builds the documentation site, `make tune` retrains the
# tuned default optimizer.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TASK ?= tsp
ARGS ?=

.PHONY: run test lint setup model tune docs docs-serve clean

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

test: model $(VENV)/.extra-test
	HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q $(ARGS)

lint: $(VENV)/.extra-test
	$(BIN)/ruff check opro tests benchmarks

# The documentation site (mkdocs.yml): a strict build into site/, or served on 127.0.0.1:8000.
docs: $(VENV)/.extra-docs
	$(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.extra-docs
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

clean:
	rm -rf $(VENV) build site *.egg-info
