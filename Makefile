# Common commands. `make serve` and `make test` set everything up on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test test-fast lint format eval bench bench-quick bench-baseline clean

# The server imports its wire types from the client package (clients/python, not on any
# registry), so the client is installed first.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e clients/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)  ## serve the API on 127.0.0.1:8000 (SQLite, offline model, bundled knowledge)
	$(BIN)/alim serve --host 127.0.0.1 --port 8000

test: $(STAMP)  ## the whole suite, as CI runs it
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## without the slow tests (real embedder, real servers)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

eval: $(STAMP)  ## route accuracy, retrieval hit@3, escalation rate
	$(BIN)/alim eval

bench: $(STAMP)  ## benchmarks (~6-10 min on 2 cores) -> docs/benchmarks/results.{md,json} + charts
	$(BIN)/python -m bench --out docs/benchmarks

bench-quick: $(STAMP)  ## the CI-sized run (~1.5 min); exit 3 when CPU per turn is > 30 % above bench/baseline.json
	$(BIN)/python -m bench --quick --out test-artifacts/bench

bench-baseline: $(STAMP)  ## measure CPU per turn (quick http section, ~1.5 min) and write bench/baseline.json
	$(BIN)/python -m bench --quick --only http --update-baseline --out test-artifacts/bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
