# Herald: the two commands a user needs are `make up` (the local stack) and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
# The local DynamoDB (dynoxide, from crates.io), built into the venv beside the Python tools.
DYNOXIDE := 3.2.0
STAMP := $(VENV)/.installed-$(shell cksum infra/requirements.txt | cut -d' ' -f1)-dynoxide-$(DYNOXIDE)
SEEDS ?= 100

.PHONY: help venv build up down status test lint unit bench sim load soak clean sam-venv sam-validate sam-build checkov contract

help:
	@echo "make up      start the local stack (moto, dynoxide, functions, event sources, fake platforms)"
	@echo "make down    stop it"
	@echo "make test    format, lint, cfn-lint, unit, emulator and end-to-end tests"
	@echo "make bench   benchmarks (release builds): sizes, cold start, RSS, AWS calls, API latency, load"
	@echo "make load    steady, ramp and spike phases on the main routes, then 1,000 posts due in one minute, on the running stack; fails on a missed target"
	@echo "make soak    20 minutes of mixed traffic on the running stack; fails unless memory plateaus"
	@echo "make sam-build     every function built for arm64 by the SAM CLI, ready for \`sam deploy\`"
	@echo "make sam-validate  the SAM transform and cfn-lint over template.yaml (part of make test)"
	@echo "make checkov       checkov over template.yaml, skips justified in infra/checkov.yaml (part of make test)"
	@echo "make contract      Schemathesis: the running stack against /v1/openapi.json, zero failures (part of make test)"

$(STAMP): infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	cargo install --quiet --locked --root $(VENV) --target-dir target/tools \
	  --no-default-features --features native-sqlite,http-server,cli dynoxide-rs@$(DYNOXIDE)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# The SAM CLI in a venv of its own (it pins its own boto3), with ziglang and cargo-lambda, which
# its `rust-cargolambda` build method uses to cross-compile for arm64 (no Docker).
SAM_VENV  := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cksum infra/requirements-sam.txt | cut -d' ' -f1)
SAM       := SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam

$(SAM_STAMP): infra/requirements-sam.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-sam.txt
	rm -f $(SAM_VENV)/.installed-*
	touch $(SAM_STAMP)

sam-venv: $(SAM_STAMP)

# Both: `--lint` runs cfn-lint only, without it the SAM transform checks the serverless resources.
sam-validate: sam-venv
	$(SAM) validate --region us-east-1
	$(SAM) validate --lint --region us-east-1

# checkov in a venv of its own too (it pins its own libraries).
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum infra/requirements-checkov.txt | cut -d' ' -f1)

$(CHECKOV_STAMP): infra/requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt
	rm -f $(CHECKOV_VENV)/.installed-*
	touch $(CHECKOV_STAMP)

contract:
	bash infra/contract.sh

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --config-file infra/checkov.yaml

sam-build: sam-venv
	@start=$$(date +%s); $(SAM) build && echo "sam build: $$(( $$(date +%s) - start )) s"

build:
	cargo build --workspace --bins

up: venv build
	$(PY) infra/stack.py up

down:
	@if [ -x $(PY) ]; then $(PY) infra/stack.py down; else echo "nothing to stop"; fi

status: venv
	$(PY) infra/stack.py status

lint: venv
	cargo fmt --all --check
	$(VENV)/bin/cfn-lint template.yaml
	cargo clippy --workspace --all-targets --locked -- -D warnings

test: venv
	bash infra/test.sh

bench: venv
	bash infra/bench.sh

load: venv
	$(PY) infra/load_phases.py --check

soak: venv
	$(PY) infra/soak.py --minutes 20

sim:
	cargo run --release -p herald-sim -- --seeds $(SEEDS)

clean: down
	rm -rf .herald target
