# Two commands do everything on a fresh machine: `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench check token clean package

$(STAMP): requirements.txt requirements-dev.txt package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	# The Python worker's function indexer, for tests/devhost/test_worker_indexer.py. It declares
	# Python >= 3.13 and pulls gRPC-side packages the indexer does not use; pure Python, it runs here.
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python azure-functions-runtime==1.3.0
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

dev: $(STAMP)  ## set up, start Azurite + the local Functions host on :7071, print tokens
	$(BIN)/python -m devhost

test: $(STAMP) lint  ## set up, lint, type-check, run every test (unit, Azurite, end-to-end)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# Deploy checks; fails gate, warnings inform (two are known false positives: blueprints
	# registered as `tickets.bp`, and devhost's ASGI server, which .funcignore keeps out of a deploy).
	$(BIN)/azure-functions-doctor doctor --profile deploy

bench: $(STAMP)  ## benchmarks against a fresh Azurite; writes bench/results.json
	$(BIN)/python -m bench

package: $(STAMP)  ## the run-from-package zip for Azure (Linux, Python 3.11): dist/resolvemeq-functions.zip
	$(BIN)/python -m tools.package

check: $(STAMP)  ## validate settings and reach storage
	$(BIN)/python -m manage check

token: $(STAMP)  ## mint a dev token: make token NAME=alice ROLE=admin
	@$(BIN)/python -m manage token --user $(or $(NAME),alice) $(if $(ROLE),--role $(ROLE))

clean:
	rm -rf $(VENV) node_modules .azurite
