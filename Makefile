# The two commands: `make run` plays the game locally, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STORE ?= azure

.PHONY: setup run test lint bench clean

setup: $(VENV)/.stamp-deps node_modules/.stamp-npm local.settings.json /usr/bin/chromium

$(VENV)/.stamp-deps: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e .
	touch $@

node_modules/.stamp-npm: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

local.settings.json:
	cp local.settings.json.example local.settings.json

# Browser tests drive Debian's Chromium (Playwright's own browser download is not reachable).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

run: setup
	$(PY) -m devhost up --port 7071 --store $(STORE)

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) -m bench.engine --store memory

clean:
	rm -rf $(VENV) node_modules .azurite .pytest_cache .ruff_cache
