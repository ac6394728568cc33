#!/usr/bin/env bash
# `make bench`: release builds, then one `BENCH <name> <value> <unit>` line per figure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "building release binaries (host architecture; set BENCH_ARM64=1 to also size arm64 builds)" >&2
cargo build --release --workspace --bins --locked >&2

zipped() { # binary -> bytes of a Lambda zip holding it as `bootstrap`
  .venv/bin/python - "$1" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()))
PY
}

for f in api analytics deliverer dispatcher ingester poller publisher reconciler rotator sms-sender webhook-processor webhooks hello-lambda; do
  bin="target/release/$f"
  echo "BENCH binary_size.$f $(stat -c %s "$bin" | awk '{printf "%.2f", $1/1048576}') MiB"
  echo "BENCH zip_size.$f $(zipped "$bin" | awk '{printf "%.2f", $1/1048576}') MiB"
done

if [ "${BENCH_ARM64:-0}" = 1 ]; then
  .venv/bin/cargo-lambda lambda build --release --arm64 --bins >&2
  for f in api analytics deliverer dispatcher ingester poller publisher reconciler rotator sms-sender webhook-processor webhooks; do
    echo "BENCH zip_size_arm64.$f $(zipped "target/lambda/$f/bootstrap" | awk '{printf "%.2f", $1/1048576}') MiB"
  done
fi

target/release/herald-bench

echo "the local AWS's cost per call as the data grows: DynamoDB (dynoxide), SQS (moto, patched and as released)" >&2
.venv/bin/python infra/bench_local_aws.py --sizes 10000,100000 --messages 1000,10000
.venv/bin/python infra/bench_local_aws.py --unpatched --no-dynamodb --messages 1000

# Load on the local stack (debug binaries, as `make up` runs them): 300 posts to three accounts
# each from six clients, against a main table of 10,000 and then 100,000 items.
started_stack=0
if ! .venv/bin/python infra/stack.py status --quiet; then
  echo "starting the local stack for the load figures" >&2
  cargo build --workspace --bins --locked >&2
  .venv/bin/python infra/stack.py up >&2
  started_stack=1
fi
stop_stack() { if [ "$started_stack" = 1 ]; then .venv/bin/python infra/stack.py down >&2 || true; fi; }
trap stop_stack EXIT
.venv/bin/python infra/load.py --fill 10000 --posts 300 --clients 6
.venv/bin/python infra/load.py --fill 100000 --posts 300 --clients 6
