# Herald: the two commands a user needs are `make up` (the local stack) and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
# The local DynamoDB (dynoxide, from crates.io), built into the venv beside the Python tools.
DYNOXIDE := 3.2.0
STAMP := $(VENV)/.installed-$(shell cksum infra/requirements.txt | cut -d' ' -f1)-dynoxide-$(DYNOXIDE)
SEEDS ?= 100

.PHONY: help venv build up down status test lint unit bench sim load soak clean sam-build

help:
	@echo "make up      start the local stack (moto, dynoxide, functions, event sources, fake platforms)"
	@echo "make down    stop it"
	@echo "make test    format, lint, cfn-lint, unit, emulator and end-to-end tests"
	@echo "make bench   benchmarks (release builds): sizes, cold start, RSS, AWS calls, API latency, load"
	@echo "make load    300 posts to 3 accounts each from 6 clients on the running stack; fails on a missed target"
	@echo "make soak    20 minutes of mixed traffic on the running stack; fails unless memory plateaus"

$(STAMP): infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	cargo install --quiet --locked --root $(VENV) --target-dir target/tools \
	  --no-default-features --features native-sqlite,http-server,cli dynoxide-rs@$(DYNOXIDE)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

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
	$(PY) infra/load.py --posts 300 --clients 6 --check

soak: venv
	$(PY) infra/soak.py --minutes 20

sim:
	cargo run --release -p herald-sim -- --seeds $(SEEDS)

clean: down
	rm -rf .herald target
