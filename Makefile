# The two commands a new user needs:  make demo   and   make test
# Everything else (virtualenv, Python packages, Kafka jars) is installed on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup broker-jars prometheus-tools browser-tools lint bench faults clean

demo: setup broker-jars
	$(BIN)/wirewatch demo

test: setup broker-jars prometheus-tools browser-tools
	$(BIN)/pytest

setup: $(STAMP)

# setup.py and the .pyx files: the compiled modules are rebuilt when they change
$(STAMP): pyproject.toml setup.py agents/watch/kernel.pyx agents/clean/scan.pyx agents/tag/ner/kernel.pyx
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's prometheus package (prometheus + promtool) for tests/ops, installed once when
# missing (root, or sudo). A temporary policy-rc.d keeps the package from starting its own
# server (there is no systemd here anyway); the output goes to a log shown only on failure.
PROM_LOG := $(or $(TMPDIR),/tmp)/wirewatch-apt-prometheus.log
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)

prometheus-tools:
	@if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; then exit 0; fi; \
	echo "installing Debian's prometheus package (prometheus, promtool)..."; \
	made_policy=; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
	  printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null && \
	  $(SUDO) chmod 755 /usr/sbin/policy-rc.d && made_policy=1; \
	fi; \
	{ $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus; } >$(PROM_LOG) 2>&1; status=$$?; \
	if [ -n "$$made_policy" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; \
	if [ $$status -ne 0 ]; then cat $(PROM_LOG); exit $$status; fi; \
	/usr/bin/promtool --version | head -n 1

# Debian's chromium and chromium-driver for the board's browser tests
# (tests/integration/test_board_browser.py, driven through Selenium with /usr/bin/chromedriver,
# so Selenium never downloads a browser or driver), installed once when missing (root, or
# sudo); the output goes to a log shown only on failure. Neither package starts a service,
# so no policy-rc.d is needed here.
BROWSER_LOG := $(or $(TMPDIR),/tmp)/wirewatch-apt-chromium.log

browser-tools:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	echo "installing Debian's chromium and chromium-driver (for the board's browser tests)..."; \
	{ $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium chromium-driver; } >$(BROWSER_LOG) 2>&1; status=$$?; \
	if [ $$status -ne 0 ]; then cat $(BROWSER_LOG); exit $$status; fi; \
	/usr/bin/chromium --version | head -n 1

# Fetches Apache Kafka's jars from Maven Central into ~/.cache/wirewatch once.
broker-jars: setup
	$(BIN)/python -c "from streams.broker import ensure_kafka_jars; from streams.settings import load_settings; print('kafka jars:', ensure_kafka_jars(load_settings()))"

# Issue 6: pipeline throughput against Faust's own ceiling (bench/passthrough.py), latency
# and memory, on the embedded broker; prints a table and saves JSON under bench/results/.
# Takes about half an hour; e.g. BENCH_ARGS="--repeats 1 --memory-articles 20000" for less.
BENCH_ARGS ?=

bench: setup broker-jars
	PYTHONPATH=. $(BIN)/python bench/pipeline_bench.py $(BENCH_ARGS)

# Issue 17: the fault suite (broker and worker kills, hostile input, pathological watches,
# HTTP load) on real workers; prints one table. FAULT_ARGS="--short" for the CI-sized run.
FAULT_ARGS ?=

faults: setup broker-jars
	PYTHONPATH=. $(BIN)/python bench/faults.py $(FAULT_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy streams agents

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
