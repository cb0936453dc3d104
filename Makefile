# Two commands do all the set-up on a fresh Debian machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps quickstart test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# PostgreSQL (Debian package) is what the metadata tests run against; nothing is started here,
# the test fixtures start a private server on loopback in a temporary folder.
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing PostgreSQL (Debian package) for the test suite"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql; \
	fi

quickstart: install
	$(BIN)/python examples/quickstart/run.py

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

test: system-deps install lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/registry_bench.py

clean:
	rm -rf $(VENV) quickstart-workspace .pytest_cache .ruff_cache
