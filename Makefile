# GenVid's front door (kubebuilder style). Every target does its own set-up: a fresh machine
# needs only Python >= 3.11, Go >= 1.26 (for the local control plane) and make.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
GENVID_CACHE ?= $(HOME)/.cache/genvid
export GENVID_CACHE
UV_HOME := $(GENVID_CACHE)/uv-$(UV_VERSION)
UV := $(UV_HOME)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
# Never let uv fetch an interpreter from outside the package registries.
export UV_PYTHON_DOWNLOADS := never

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z_-]+:.*?##/ { printf "  %-10s %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Set-up

$(UV):
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "genvid: Python >= 3.11 is required as python3"; exit 1; }
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python python3
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## Create .venv/ with the locked dependencies.

.PHONY: binaries
binaries: ## Build the pinned control-plane binaries into $(GENVID_CACHE) (once per version).
	bash hack/build-binaries.sh

.PHONY: browser
browser: ## Install the browser the web tests drive (Debian's chromium), unless it is there.
	bash hack/install-browser.sh

.PHONY: lock
lock: | $(UV) ## Re-resolve uv.lock after editing pyproject.toml.
	$(UV) lock

##@ Development

# With KUBECONFIG set, the stack uses that cluster and needs no control-plane binaries.
STACK_BINARIES := $(if $(KUBECONFIG),,binaries)

.PHONY: dev
dev: venv $(STACK_BINARIES) ## Run GenVid locally in the foreground; Ctrl-C stops everything.
	$(PY) -m genvid_devstack run

.PHONY: up
up: venv $(STACK_BINARIES) ## Start the local stack in the background (settings in .genvid/env).
	$(PY) -m genvid_devstack up

.PHONY: down
down: venv ## Stop the background stack.
	$(PY) -m genvid_devstack down

.PHONY: status
status: venv ## Tell whether the background stack runs.
	$(PY) -m genvid_devstack status

.PHONY: clean
clean: down ## Stop the stack and delete its state (.genvid/).
	rm -rf .genvid

##@ Checks

.PHONY: lint
lint: venv ## ruff, mypy and the import contracts.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy bench/
	$(VENV)/bin/lint-imports

.PHONY: fmt
fmt: venv ## Format and autofix.
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: test
test: lint binaries browser ## Lint, then the whole suite against a fresh local stack.
	env -u KUBECONFIG -u DATABASE_URL $(VENV)/bin/pytest $(PYTEST_ARGS)

##@ Benchmarks

# Each writes bench/results/<name>.json; the summary then tabulates them (README.md there and
# the root README's Benchmarks table). BENCH_ARGS=--quick runs every one small.
BENCHMARKS := admission dispatch sse burst operator_scale

.PHONY: bench
bench: venv $(STACK_BINARIES) ## Every benchmark (BENCH_ARGS=--quick: small), then the results table.
	$(PY) -m bench $(BENCH_ARGS)
	for name in $(BENCHMARKS); do $(PY) -m bench.$$name $(BENCH_ARGS); done
	$(PY) -m bench.summary
