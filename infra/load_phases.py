"""`make load`: the seeds' load shapes against the running local stack, then a burst of posts
due in the same minute.

    .venv/bin/python infra/load_phases.py [--rps 10] [--phase-seconds 30] [--spike-seconds 10]
        [--workers 16] [--burst 1000] [--check]

1. Phases, open loop: requests are sent on a schedule whatever the answers (a pool of
   `--workers` threads sends them), and each latency counts from when its request was *due* to
   be sent, so a stack that falls behind shows it instead of slowing the generator down
   (no coordinated omission). The routes, in turn: `POST /v1/posts` (due in 30 days, so the
   phases measure the API, not publishing), `GET /v1/posts?limit=20`, `GET /v1/posts/{id}` and
   `GET /v1/accounts`.
   - steady: `--rps` requests a second for `--phase-seconds`;
   - ramp: from `--rps` to three times it over `--phase-seconds`;
   - spike: five times `--rps` for `--spike-seconds`.
   Per phase and route: requests, p50/p95/p99, error rate (5xx and transport errors).
2. Burst: `--burst` posts, each to one LinkedIn organisation (Herald's window allows 450 a day
   per organisation), all scheduled for the start of the same minute. The time from that
   minute to the last one published, and duplicates: every post's text must reach the fake
   platform exactly once.

One `BENCH load.<phase>.<route>.<figure> <value> <unit>` line per figure, like `make bench`.
The local stack measures moto and dynoxide as much as Herald: `make bench` prints the same
routes in-process over the in-memory store (`api_load.*`) to tell the two apart. With
`--check` it exits 1 when a seed's target is missed: p95 >= 200 ms or p99 >= 500 ms in the
steady phase, any 5xx, a post published twice or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402

ROUTES = ("create", "list", "read", "accounts")


class Recorder:
    """Latencies and outcomes by route, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)

    def add(self, route: str, status: int, ms: float) -> None:
        with self.lock:
            self.ms[route].append(ms)
            self.statuses[route][status] += 1


def schedule(phase: str, rps: float, seconds: float) -> list[float]:
    """Send times (seconds from the phase's start) for `phase`: constant for steady and
    spike, rising linearly from `rps` to `3 * rps` for the ramp."""
    times: list[float] = []
    t = 0.0
    while t < seconds:
        times.append(t)
        rate = rps * (1 + 2 * t / seconds) if phase == "ramp" else rps
        t += 1.0 / rate
    return times


def one_request(api: load.Api, route: str, accounts: list[str], created: list[str], i: int) -> tuple[int, object]:
    if route == "create":
        at = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat(timespec="seconds")
        body = {"text": f"phase {i} {uuid.uuid4().hex[:8]}", "scheduled_at": at,
                "targets": [{"account_id": accounts[i % len(accounts)]}]}
        status, answer, _ = api.call("POST", "/v1/posts", body, idem=uuid.uuid4().hex)
        if status == 201:
            created.append(answer["id"])
        return status, answer
    if route == "list":
        return api.call("GET", "/v1/posts?limit=20")[:2]
    if route == "read" and created:
        return api.call("GET", f"/v1/posts/{created[i % len(created)]}")[:2]
    return api.call("GET", "/v1/accounts")[:2]


def run_phase(api: load.Api, phase: str, rps: float, seconds: float, workers: int,
              accounts: list[str], created: list[str]) -> Recorder:
    recorder = Recorder()
    started = time.monotonic()

    def send(i: int, due: float) -> None:
        route = ROUTES[i % len(ROUTES)]
        try:
            status, _ = one_request(api, route, accounts, created, i)
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            status = 0
        recorder.add(route, status, (time.monotonic() - due) * 1000)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, offset in enumerate(schedule(phase, rps, seconds)):
            due = started + offset
            time.sleep(max(0.0, due - time.monotonic()))
            pool.submit(send, i, due)
    return recorder


def report(phase: str, recorder: Recorder, seconds: float) -> list[str]:
    """Prints the phase's figures; answers the targets it missed."""
    missed = []
    for route in ROUTES:
        ms = recorder.ms.get(route, [])
        if not ms:
            continue
        statuses = recorder.statuses[route]
        errors = sum(n for s, n in statuses.items() if s == 0 or s >= 500)
        p95, p99 = load.percentile(ms, 95), load.percentile(ms, 99)
        for name, value, unit in [
            ("requests", len(ms), "count"),
            ("p50", load.percentile(ms, 50), "ms"),
            ("p95", p95, "ms"),
            ("p99", p99, "ms"),
            ("error_rate", 100.0 * errors / len(ms), "%"),
        ]:
            shown = f"{value:.1f}" if isinstance(value, float) else str(value)
            print(f"BENCH load.{phase}.{route}.{name} {shown} {unit}")
        if errors:
            missed.append(f"{phase} {route}: {errors} errors {dict(statuses)}")
        if phase == "steady" and (p95 >= 200 or p99 >= 500):
            missed.append(f"steady {route}: p95 {p95:.0f} ms, p99 {p99:.0f} ms")
    total = sum(len(v) for v in recorder.ms.values())
    print(f"BENCH load.{phase}.offered_rps {total / seconds:.1f} 1/s")
    return missed


def linkedin_organisations(api: load.Api, env: dict[str, str], count: int) -> list[tuple[str, str]]:
    """(account id, external id) of `count` freshly connected LinkedIn organisations."""
    found = []
    for _ in range(count):
        external = f"burst{uuid.uuid4().hex[:10]}"
        token = f"li-{uuid.uuid4().hex[:12]}"
        load.register_token(env, "linkedin", token, external)
        status, body, _ = api.call("POST", "/v1/accounts", {
            "platform": "linkedin", "external_id": external, "access_token": token})
        if status != 201:
            raise SystemExit(f"connecting a LinkedIn organisation failed: {status} {body}")
        found.append((body["id"], external))
    return found


def burst(api: load.Api, env: dict[str, str], posts: int, workers: int, timeout: float) -> list[str]:
    """`posts` posts due at the same minute; prints how long until the last is published and
    how many reached the platform more than once or not at all."""
    organisations = linkedin_organisations(api, env, -(-posts // load.LINKEDIN_POSTS_PER_ACCOUNT))
    now = datetime.now(timezone.utc)
    # The start of a minute at least 45 s away: creating them all takes well under that.
    due = (now + timedelta(seconds=105)).replace(second=0, microsecond=0)
    run = uuid.uuid4().hex[:8]
    texts = [f"burst {run} {i}" for i in range(posts)]
    ids: list[str] = []
    lock = threading.Lock()
    statuses: Counter[int] = Counter()

    def create(i: int) -> None:
        account = organisations[i // load.LINKEDIN_POSTS_PER_ACCOUNT][0]
        status, answer, _ = api.call("POST", "/v1/posts", {
            "text": texts[i], "scheduled_at": due.isoformat(timespec="seconds"),
            "targets": [{"account_id": account}]}, idem=uuid.uuid4().hex)
        with lock:
            statuses[status] += 1
            if status == 201:
                ids.append(answer["id"])

    created_at = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(create, range(posts)))
    print(f"[load] burst: {len(ids)} of {posts} created in {time.monotonic() - created_at:.1f} s, due {due:%H:%M:%S}",
          file=sys.stderr)
    wait = (due - datetime.now(timezone.utc)).total_seconds()
    if wait < 0:
        raise SystemExit("creating the burst took longer than its lead time: lower --burst")
    time.sleep(wait)
    published, _ = load.await_published(api, ids, timeout)
    last = (datetime.now(timezone.utc) - due).total_seconds()

    seen: Counter[str] = Counter()
    for _, external in organisations:
        url = f"{env['FAKE_PLATFORMS_URL']}/_admin/posts?platform=linkedin&account={external}"
        with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - loopback only
            for post in json.loads(r.read())["posts"]:
                seen[post.get("text", "")] += 1
    ours = set(texts)
    duplicates = sum(n - 1 for t, n in seen.items() if t in ours and n > 1)
    missing = sum(1 for t in texts if seen[t] == 0)
    for name, value, unit in [
        ("posts", posts, "count"),
        ("published", published, "posts"),
        ("seconds_to_last_published", round(last, 1), "s"),
        ("duplicates", duplicates, "posts"),
        ("missing_on_platform", missing, "posts"),
    ]:
        print(f"BENCH load.burst.{name} {value} {unit}")
    missed = []
    if duplicates or missing or published < posts or statuses.get(201, 0) < posts:
        missed.append(f"burst: {published} published, {duplicates} duplicates, {missing} missing, created {dict(statuses)}")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rps", type=float, default=10.0, help="the steady phase's requests a second")
    parser.add_argument("--phase-seconds", type=float, default=30.0)
    parser.add_argument("--spike-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=16, help="requests in flight at most")
    parser.add_argument("--burst", type=int, default=1000, help="posts due in the same minute (0: none)")
    parser.add_argument("--publish-timeout", type=float, default=600.0)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    env = load.local_env()
    api = load.tenant(env)
    accounts = [a for a, _ in linkedin_organisations(api, env, 3)]
    created: list[str] = []
    missed: list[str] = []
    for phase, rps, seconds in [
        ("steady", args.rps, args.phase_seconds),
        ("ramp", args.rps, args.phase_seconds),
        ("spike", 5 * args.rps, args.spike_seconds),
    ]:
        recorder = run_phase(api, phase, rps, seconds, args.workers, accounts, created)
        missed += report(phase, recorder, seconds)
    if args.burst:
        missed += burst(load.tenant(env), env, args.burst, args.workers, args.publish_timeout)
    if missed:
        print(f"[load] targets missed: {'; '.join(missed)}", file=sys.stderr)
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
