"""`make soak`: mixed traffic at a steady rate on the running local stack, and every stack
process's resident memory, which must plateau.

    .venv/bin/python infra/soak.py [--minutes 20] [--rate 4] [--sample-seconds 15]

Traffic, in turn at `--rate` requests a second: create a post (three accounts, due seconds
later, so it is dispatched and published), list the newest posts, read one post, list the
accounts, and the health check. Every `--sample-seconds` it reads each process group's resident
memory (moto, dynoxide, the fake platforms, the Lambda runner with its functions, the event
emulator).

Plateau: for each process, the highest reading in the last third of the run may exceed the
highest in the middle third by at most max(64 MiB, 10%). The curve goes to `.herald/soak.csv`
and, one line a minute, to standard output. Exits 1 on a process that kept growing, a process
that died, or a 5xx answer.
"""

from __future__ import annotations

import argparse
import csv
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402
import stack  # noqa: E402

PROCESSES = ("moto", "dynamodb", "fake", "functions", "emulator")


def sample(readings: list[dict[str, float]], every: float, stop: threading.Event) -> None:
    pids = stack.read_state()["pids"]  # type: ignore[index]
    started = time.monotonic()
    while not stop.is_set():
        row = {"seconds": round(time.monotonic() - started)}
        for name in PROCESSES:
            row[name] = round(stack.resident_mib(pids[name])[1], 1) if stack.alive(pids[name]) else 0.0
        readings.append(row)
        stop.wait(every)


def traffic(api: load.Api, targets: list[list[str]], rate: float, until: float) -> Counter[str]:
    statuses: Counter[str] = Counter()
    posts: list[str] = []
    step = 0
    next_at = time.monotonic()
    while time.monotonic() < until:
        kind = ("create", "list", "read", "accounts", "health")[step % 5]
        if kind == "create":
            at = (datetime.now(timezone.utc) + timedelta(seconds=5)).isoformat(timespec="seconds")
            accounts = targets[len(posts) % len(targets)]
            status, body, _ = api.call("POST", "/v1/posts", {
                "text": f"soak {step} {uuid.uuid4().hex[:6]}", "scheduled_at": at,
                "targets": [{"account_id": a} for a in accounts]}, idem=uuid.uuid4().hex)
            if status == 201:
                posts.append(body["id"])
        elif kind == "list":
            status, _, _ = api.call("GET", "/v1/posts?limit=5")
        elif kind == "read" and posts:
            status, _, _ = api.call("GET", f"/v1/posts/{posts[-1]}")
        elif kind == "accounts":
            status, _, _ = api.call("GET", "/v1/accounts")
        else:
            status, _, _ = api.call("GET", "/v1/health")
        statuses[f"{kind} {status}"] += 1
        step += 1
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    return statuses


def plateaued(readings: list[dict[str, float]], name: str) -> tuple[bool, float, float]:
    third = max(1, len(readings) // 3)
    middle = max(r[name] for r in readings[third:2 * third] or readings)
    last = max(r[name] for r in readings[2 * third:] or readings)
    return last - middle <= max(64.0, middle * 0.10), middle, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=4.0, help="requests per second, all kinds together")
    parser.add_argument("--sample-seconds", type=float, default=15.0)
    args = parser.parse_args()

    env = load.local_env()
    api = load.tenant(env)
    expected_posts = int(args.minutes * 60 * args.rate / 5) + 1
    targets = load.connect(api, env, expected_posts)
    readings: list[dict[str, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(readings, args.sample_seconds, stop), daemon=True)
    sampler.start()
    statuses = traffic(api, targets, args.rate, time.monotonic() + args.minutes * 60)
    stop.set()
    sampler.join()

    out = stack.STATE_DIR / "soak.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["seconds", *PROCESSES])
        writer.writeheader()
        writer.writerows(readings)
    print("minute  " + "  ".join(f"{p:>10}" for p in PROCESSES) + "   (resident MiB, with children)")
    per_minute = max(1, int(60 / args.sample_seconds))
    for r in readings[::per_minute]:
        print(f"{r['seconds'] / 60:6.1f}  " + "  ".join(f"{r[p]:10.1f}" for p in PROCESSES))
    print(f"statuses: {dict(sorted(statuses.items()))}")

    failed = []
    for name in PROCESSES:
        ok, middle, last = plateaued(readings, name)
        print(f"BENCH soak.{name}.rss_middle_third_max {middle:.1f} MiB")
        print(f"BENCH soak.{name}.rss_last_third_max {last:.1f} MiB")
        if not ok:
            failed.append(f"{name} grew from {middle:.0f} to {last:.0f} MiB")
        if readings and readings[-1][name] == 0.0:
            failed.append(f"{name} died")
    errors = sum(n for k, n in statuses.items() if int(k.split()[1]) >= 500)
    if errors:
        failed.append(f"{errors} server errors")
    for problem in failed:
        print(f"[soak] FAILED: {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
