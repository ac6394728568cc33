#!/usr/bin/env python3
"""`make test`'s last check: no credential the tests used reaches Herald's logs.

The test harness appends every credential it handles to `.herald/test-secrets.jsonl` (one
`{"kind": ..., "value": ...}` per line: API keys, the operator token, platform access and
refresh tokens, webhook signing secrets, embed tokens, the alert webhook's URL, phone numbers,
the signatures of the media links Instagram fetches). This scans every log
the local stack's Herald processes wrote (`.herald/logs/`, the functions and the local API
gateway; not the fake platforms or the AWS emulator, which stand in for the outside world)
and fails on any hit, naming the kind and the file, never the value.

Every new kind of secret joins `REQUIRED_KINDS` below and the harness's list
(`tests/it/support/secrets.rs`): the scan fails when a required kind was never recorded, so it
cannot pass by scanning for nothing.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRETS = ROOT / ".herald" / "test-secrets.jsonl"
LOGS = ROOT / ".herald" / "logs"
# Logs of what stands in for the outside world: they may print what they were sent.
NOT_HERALD = ("moto", "dynamodb", "fake", "chromedriver", "emulator")
REQUIRED_KINDS = {
    "api_key",
    "operator_token",
    "access_token",
    "refresh_token",
    "webhook_secret",
    "embed_token",
    "alert_webhook_url",
    "console_session",
    "connect_link",
    "phone_number",
    "sms_api_key",
    "app_password",
    "media_link",
}
# Shorter values are too likely to occur by chance in unrelated text.
MIN_LENGTH = 12


def main() -> int:
    if not SECRETS.exists():
        print(f"log scan: {SECRETS} is missing: the tests recorded no credential", file=sys.stderr)
        return 1
    # A value may be recorded as more than one kind (a Bluesky app password travels in an
    # `access_token` field): it counts for each, and a hit names the first.
    kinds_of: dict[str, list[str]] = {}
    for line in SECRETS.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            if len(record["value"]) >= MIN_LENGTH:
                seen = kinds_of.setdefault(record["value"], [])
                if record["kind"] not in seen:
                    seen.append(record["kind"])
    secrets = {value: kinds[0] for value, kinds in kinds_of.items()}
    kinds = Counter(kind for all_kinds in kinds_of.values() for kind in all_kinds)
    missing = REQUIRED_KINDS - set(kinds)
    if missing:
        print(f"log scan: the tests recorded no {sorted(missing)}: nothing to scan for", file=sys.stderr)
        return 1
    logs = [
        p for p in sorted(LOGS.glob("*.log"))
        if not any(p.name.startswith(prefix) for prefix in NOT_HERALD)
    ]
    if not logs:
        print(f"log scan: no Herald log in {LOGS}", file=sys.stderr)
        return 1
    hits: Counter[tuple[str, str]] = Counter()
    scanned = 0
    for log in logs:
        text = log.read_text(errors="replace")
        scanned += len(text)
        for value, kind in secrets.items():
            if value in text:
                hits[(kind, log.name)] += text.count(value)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"log scan: {len(secrets)} credentials ({summary}) against {len(logs)} logs, {scanned:,} bytes")
    if hits:
        for (kind, name), n in sorted(hits.items()):
            print(f"log scan: {n} occurrence(s) of a {kind} in {name}", file=sys.stderr)
        return 1
    print("log scan: zero hits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
