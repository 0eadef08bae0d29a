# The only way to run, test and build Territory Service. Each target makes .venv when needed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PORT ?= 8000
# Parallel pytest workers for `make test`. Two keep both cores busy while tests wait on the
# databases; each worker makes its own databases and holds up to ~40 PostgreSQL connections at
# once (the storm's servers add ~30 more), so more workers need a server with more than the
# default 100 max_connections.
TEST_WORKERS ?= 2

.PHONY: run test lint types openapi check-openapi migrate bench bench-load clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

## run: migrate the local SQLite file, load the demo data if it is empty, serve on 127.0.0.1:$(PORT)
run: $(INSTALLED)
	$(BIN)/territory-service migrate
	$(BIN)/territory-service demo
	@echo "Territory Service on http://127.0.0.1:$(PORT) (docs: http://127.0.0.1:$(PORT)/docs)"
	PORT=$(PORT) $(BIN)/territory-service serve

## test: lint, types, the OpenAPI document, then the whole suite on SQLite and PostgreSQL
## (TEST_WORKERS pytest-xdist workers, 2 by default; TEST_WORKERS=0 runs in one process)
test: lint types check-openapi
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(INSTALLED)
	$(BIN)/mypy

## openapi: regenerate openapi/openapi.json from the app
openapi: $(INSTALLED)
	$(BIN)/territory-service openapi

check-openapi: $(INSTALLED)
	$(BIN)/territory-service openapi --check

## bench: rule matching and activation over 1M customers (PostgreSQL), as ratios to a baseline
bench: $(INSTALLED)
	$(BIN)/python -m bench.resolve_bench
	$(BIN)/python -m bench.activation_bench

## bench-load: POST /v1/resolve against /healthz on one server (needs wrk and PostgreSQL)
bench-load: $(INSTALLED)
	$(BIN)/python -m bench.resolve_load_bench

migrate: $(INSTALLED)
	$(BIN)/territory-service migrate

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
