#!/usr/bin/env bash
# `make test`'s API-user step, against the running local stack:
# 1. the reference page's renderer (shared/api/src/reference/vendor/) is the pinned npm
#    package (clients/package.json), byte for byte;
# 2. a TypeScript client (openapi-typescript's types over openapi-fetch) and a Python client
#    (openapi-python-client) are generated from the API's own OpenAPI document, offline;
# 3. each drives the stack: connects an account, creates posts, pages through the list and
#    reads a problem answer (clients/typescript/test, clients/python).
# Installs clients/node_modules (npm ci, install scripts off: clients/.npmrc) and .venv-clients
# once.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .herald/local.env

(cd clients && npm ci --no-audit --no-fund --loglevel=error)

for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE; do
  if ! cmp -s "clients/node_modules/swagger-ui-dist/$file" "shared/api/src/reference/vendor/$file"; then
    echo "shared/api/src/reference/vendor/$file differs from swagger-ui-dist's: copy it again" >&2
    exit 1
  fi
done
echo "the reference page's renderer is swagger-ui-dist $(node -p 'require("./clients/node_modules/swagger-ui-dist/package.json").version'), byte for byte"

mkdir -p target/clients
curl -sSf "$HERALD_API_URL/v1/openapi.json" -o target/clients/openapi.json

echo "TypeScript: generate, type-check and compile, run"
rm -rf clients/typescript/gen clients/typescript/dist
clients/node_modules/.bin/openapi-typescript target/clients/openapi.json \
  -o clients/typescript/gen/schema.d.ts
clients/node_modules/.bin/tsc -p clients/typescript
node --test clients/typescript/dist/test/client.test.js

echo "Python: generate, run"
if [ ! -x .venv-clients/bin/openapi-python-client ]; then
  rm -rf .venv-clients
  python3.11 -m venv .venv-clients
  .venv-clients/bin/pip install --quiet "openapi-python-client==0.29.1"
fi
rm -rf clients/python/gen
mkdir -p clients/python/gen
.venv-clients/bin/openapi-python-client generate --path target/clients/openapi.json \
  --output-path clients/python/gen/herald_client --meta none --overwrite 2>&1 \
  | grep -v "ruff is not in PATH\|Skipping Integration" || true
test -f clients/python/gen/herald_client/client.py
.venv-clients/bin/python -m unittest discover -s clients/python -p 'test_*.py' -v
