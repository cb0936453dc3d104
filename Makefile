# Two commands do all the set-up on a fresh Debian machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps quickstart test test-k8s test-k8s-node lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# PostgreSQL (Debian package) is what the metadata tests run against; nothing is started here,
# the test fixtures start a private server on loopback in a temporary folder. openssl makes the
# TLS tests' certificates and curl is one of their clients.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (Debian packages) for the test suite"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

quickstart: install
	$(BIN)/python examples/quickstart/run.py

lint: install
	$(BIN)/ruff check src tests bench examples k8s scripts/k8s-testbed
	$(BIN)/ruff format --check src tests bench examples k8s scripts/k8s-testbed
	$(BIN)/lint-imports
	$(BIN)/mypy src

# The local-target suite runs a second time on the code paths of macOS (modelport/host.py).
test: system-deps install lint
	$(BIN)/pytest -q
	MODELPORT_LOCAL_PORTABLE=1 $(BIN)/pytest -q -m local_target

# The Kubernetes tier: builds the 1.20.2 control plane once into $$MODELPORT_K8S_CACHE (default
# ~/.cache/modelport-k8s; ~5 min cold, then cached) and runs the tests marked k8s against it.
# With MODELPORT_K8S_BIN set, a testbed that cannot start fails the tier (tests/compute/kubernetes/conftest.py).
test-k8s: install
	@bin=$$(scripts/k8s-testbed build) && MODELPORT_K8S_BIN="$$bin" $(BIN)/pytest -q -m k8s tests/compute/kubernetes

# The real-node tier: the control plane plus kubelet, kube-proxy, containerd, runc and a registry,
# all inside a network namespace the testbed makes (k8s/testbed/node.py), as root. Builds the
# node's binaries and images once (cached under $$MODELPORT_K8S_CACHE, keyed by what made them),
# then runs the tests marked k8s_node; a node that cannot start fails them.
test-k8s-node: install
	@bin=$$(scripts/k8s-testbed build) && nodebin=$$(scripts/k8s-testbed build --real-node) && \
		MODELPORT_K8S_BIN="$$bin" MODELPORT_K8S_NODE_BIN="$$nodebin" MODELPORT_K8S_NODE=1 \
		$(BIN)/pytest -q -p no:cacheprovider -m k8s_node tests/compute/kubernetes/realnode

bench: install
	$(BIN)/python bench/registry_bench.py

clean:
	rm -rf $(VENV) quickstart-workspace .pytest_cache .ruff_cache .mypy_cache
