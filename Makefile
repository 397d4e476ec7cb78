# Neo N3 Service Layer. `make dev` runs the whole system; `make test` runs every check.
# Both install what they need first (uv, bootstrapped with pip if missing, then `uv sync`).

# uv is run by a Python outside the project's environment: after `source .venv/bin/activate`
# the first python3 on the PATH is the environment's, which has neither uv nor pip.
OUTSIDE_PATH := $(if $(VIRTUAL_ENV),$(subst $(VIRTUAL_ENV)/bin:,,$(PATH)),$(PATH))
PYTHON ?= $(shell PATH='$(OUTSIDE_PATH)' command -v python3 || echo python3)
UV := $(PYTHON) -m uv
export UV_LINK_MODE ?= copy

.PHONY: install dev test test-fast lint typecheck pytest format contracts bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --locked

dev: install
	$(UV) run --no-sync neosl-dev up

test: install lint typecheck pytest

lint:
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .

typecheck:
	$(UV) run --no-sync mypy

pytest:
	$(UV) run --no-sync pytest

# Unit and API tests: no chain, no worker processes, no deployment builds, no operator
# commands in subprocesses, nothing that waits out a time limit (under two minutes);
# `make test` stays the full suite CI runs.
FAST_TESTS := -m "not neo and not celery and not e2e and not slow" --ignore=tests/deploy --ignore=tests/devstack \
	--ignore=tests/cli --ignore=tests/functions/test_secrets_cli.py

test-fast: install lint
	$(UV) run --no-sync pytest $(FAST_TESTS)

format:
	$(UV) run --no-sync ruff check --fix .
	$(UV) run --no-sync ruff format .

# Recompile contracts/*.py into devstack/src/neosl_devstack/contracts (commit the result).
contracts:
	$(UV) run --no-sync python contracts/build.py

bench: install
	@for script in bench/*.py; do [ -e "$$script" ] && $(UV) run --no-sync python "$$script"; done; true

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
