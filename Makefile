# The two commands a new user needs:  make demo   and   make test
# Everything else (virtualenv, Python packages, Kafka jars) is installed on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup broker-jars lint bench clean

demo: setup broker-jars
	$(BIN)/wirewatch demo

test: setup broker-jars
	$(BIN)/pytest

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Fetches Apache Kafka's jars from Maven Central into ~/.cache/wirewatch once.
broker-jars: setup
	$(BIN)/python -c "from streams.broker import ensure_kafka_jars; from streams.settings import load_settings; print('kafka jars:', ensure_kafka_jars(load_settings()))"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy streams agents

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
