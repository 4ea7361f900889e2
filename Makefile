# tajo-events: Brevo webhooks into a durable log, folded into per-customer engagement and loyalty state.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install browser run test lint typecheck unit chaos kafka bench schemas clean

help: ## list the targets and what each does
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

browser: ## install Debian's chromium for the page's browser tests (apt, as root or through sudo) when missing
	command -v chromium >/dev/null || { s=$$([ "$$(id -u)" = 0 ] || echo sudo); $$s apt-get update -qq && $$s apt-get install -y -qq chromium; }

run: $(STAMP) ## run the whole pipeline on one machine (tajo-events serve)
	$(BIN)/tajo-events serve

test: $(STAMP) browser lint typecheck ## lint, type-check and run every test suite (a real Kafka broker, a real chromium)
	$(BIN)/pytest

lint: $(STAMP) ## ruff lint and format check; import contracts (the domain imports no runtime: pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP) ## mypy in strict mode over code and tests
	$(BIN)/mypy

unit: $(STAMP) ## only the unit tests (no I/O)
	$(BIN)/pytest tests/unit

chaos: $(STAMP) ## only the chaos suite: kill -9 of ingester, fold, worker, broker and serve under load (part of `make test`)
	$(BIN)/pytest -m chaos tests/chaos

kafka: $(STAMP) ## run a local single-node Kafka broker on 127.0.0.1:9092 (Maven Central jars)
	$(BIN)/tajo-events kafka --port 9092

bench: $(STAMP) ## ingest and reads vs a bare handler (wrk); replay rates; the Kafka fold vs a raw read, memory per customer; webhook-to-view latency
	command -v wrk >/dev/null || { s=$$([ "$$(id -u)" = 0 ] || echo sudo); $$s apt-get update -qq && $$s apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.reads
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.fold_kafka

schemas: $(STAMP) ## re-export the JSON Schema files from the models
	$(BIN)/python -m schemas.export

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
