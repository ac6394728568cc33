#!/usr/bin/env bash
# `make test`: every check, in the order that fails fastest. Starts the local stack if it is
# not running (and stops it again afterwards), so it works the same on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

# Each step's duration is printed when the next one starts, and the total at the end.
step_name=""
step_start=$SECONDS
step_done() {
  if [ -n "$step_name" ]; then printf '<== %s: %d s\n' "$step_name" $((SECONDS - step_start)); fi
}
step() { step_done; step_name="$*"; step_start=$SECONDS; printf '\n==> %s\n' "$*"; }

started_stack=0
cleanup() {
  status=$?
  step_done
  printf '<== make test: %s after %d s\n' "$([ "$status" = 0 ] && echo passed || echo FAILED)" "$SECONDS"
  if [ "$started_stack" = 1 ]; then
    $PY infra/stack.py down || true
  fi
}
trap cleanup EXIT

step "headless Chromium and its WebDriver for the browser tests"
# Debian's chromium and chromium-driver; installed once (as root), skipped when present.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
  else
    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
  fi
fi

step "format"
cargo fmt --all --check

step "cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml

step "sam validate, then with --lint (the SAM transform, then cfn-lint; installs .venv-sam once)"
make --no-print-directory sam-validate

step "checkov over template.yaml (skips justified in infra/checkov.yaml; installs .venv-checkov once)"
make --no-print-directory checkov

step "local stack unit tests (bootstrap, event sources, Lambda runner, fake platforms)"
$PY -m unittest discover -s infra/tests

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# A workspace build unifies features: the simulation turns the domain's `memory` on for every
# crate, which hides production code that only compiles with it. A function's own build
# (`cargo lambda build`, `sam build`) has no such help.
step "the domain as a function's own build sees it (no in-memory ports)"
cargo clippy -p herald-domain --lib --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

if ! $PY infra/stack.py status --quiet; then
  step "start the local stack"
  $PY infra/stack.py up
  started_stack=1
fi

step "unit, emulator and end-to-end tests"
# The emulator tests start their own moto server (infra/moto_server.py) on a free port; the
# end-to-end tests use the local stack through .herald/local.env.
# The harness records every credential it handles here, for the log scan at the end.
rm -f .herald/test-secrets.jsonl
cargo test --workspace --locked -- --test-threads 8

step "the API against its OpenAPI document: Schemathesis, every check and phase, 50 examples per operation (installs .venv-schemathesis once)"
bash infra/contract.sh

step "API users: the reference page's renderer is the pinned npm package; TypeScript and Python clients generated from the document drive the stack (installs clients/node_modules and .venv-clients once)"
bash infra/clients.sh

step "end-to-end chaos run, alone (it fills the shared publish queue with 200 posts)"
# `--workspace` keeps the features the previous step built with, so nothing is rebuilt.
# Matched by name wherever the test lives, and counted: a run of no test must not pass.
cargo test --workspace --test it --locked -- --ignored \
  chaos_two_hundred_posts_publish_exactly_once_through_faults_and_a_killed_publisher \
  | tee target/chaos-run.log
grep -q "test result: ok. 1 passed" target/chaos-run.log || {
  echo "the chaos run did not run exactly one test" >&2
  exit 1
}

step "a 200 MB video across invocations, alone (it kills the publisher mid-upload)"
cargo test --workspace --test it --locked -- --ignored \
  a_200_mb_video_publishes_once_across_invocations_with_the_publisher_killed_mid_upload \
  | tee target/video-run.log
grep -q "test result: ok. 1 passed" target/video-run.log || {
  echo "the 200 MB video run did not run exactly one test" >&2
  exit 1
}

step "no credential the tests used is in Herald's logs (written at debug, the most verbose level)"
$PY infra/log_scan.py

step "the local stack's moto and DynamoDB each hold under 1 GiB after the whole suite"
$PY infra/stack.py memory moto --max-mib 1024
$PY infra/stack.py memory dynamodb --max-mib 1024
