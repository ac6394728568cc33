#!/usr/bin/env bash
# `make contract`: the API against its own OpenAPI document, with Schemathesis: every check,
# the examples, coverage, fuzzing and stateful phases, on the running local stack, as a
# throwaway tenant (the run issues and rotates keys, pauses publishing and edits settings).
# Fails on any failure. EXAMPLES (default 50) per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-schemathesis
STAMP="$VENV/.installed-$(cksum infra/requirements-schemathesis.txt | cut -d' ' -f1)"
if [ ! -f "$STAMP" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements-schemathesis.txt
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
set -a
# shellcheck disable=SC1091
source .herald/local.env
set +a
tenant=$(target/debug/herald tenant create --name "contract-$(date +%s)")
export HERALD_CONTRACT_KEY
HERALD_CONTRACT_KEY=$(printf '%s' "$tenant" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
export HERALD_CONTRACT_TENANT_ID HERALD_CONTRACT_KEY_ID HERALD_CONTRACT_OPERATOR_TOKEN
HERALD_CONTRACT_TENANT_ID=$(printf '%s' "$tenant" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["tenant_id"])')
HERALD_CONTRACT_KEY_ID=$(printf '%s' "$tenant" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["key_id"])')
# The operator token, from the local Secrets Manager (the operator's routes need it).
HERALD_CONTRACT_OPERATOR_TOKEN=$(.venv/bin/python -c '
import boto3, os
client = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION", "us-east-1"))
print(client.get_secret_value(SecretId="herald-AdminTokenSecret")["SecretString"])')
mkdir -p target/contract
# Two runs: a tenant's admin key on every route but the operator's, then the operator token
# on those. Both run to the end; either failing fails this.
contract() { # report name, key, then filters
  local name=$1 key=$2
  shift 2
  HERALD_CONTRACT_KEY=$key SCHEMATHESIS_HOOKS=infra.schemathesis_hooks PYTHONPATH=. \
    "$VENV/bin/schemathesis" --config-file infra/schemathesis.toml \
    run "$HERALD_API_URL/v1/openapi.json" --url "$HERALD_API_URL" \
    --checks all --phases examples,coverage,fuzzing,stateful \
    --max-examples "${EXAMPLES:-50}" --no-color "$@" \
    --report junit --report-dir "target/contract/$name"
}
status=0
OPERATOR_ROUTES='^/v1/(tenants|metrics|app-blocks)'
contract tenant "$HERALD_CONTRACT_KEY" --exclude-path-regex "$OPERATOR_ROUTES" || status=1
contract operator "$HERALD_CONTRACT_OPERATOR_TOKEN" --include-path-regex "$OPERATOR_ROUTES" || status=1
exit $status
