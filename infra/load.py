"""Load on the running local stack: seeded data, concurrent API clients, publishing end to end.

    .venv/bin/python infra/load.py [--fill 10000] [--posts 300] [--clients 6] [--rate 2] [--check]

1. Fill: tops the main table up to `--fill` items with post-shaped items of filler tenants
   (BatchWriteItem straight to the local DynamoDB; a tenth carry a far-future `due` index entry), so
   every figure is taken against a table of a known size.
2. A fresh tenant (the operator CLI) connects enough Facebook Pages, LinkedIn organisations
   and X users to stay inside each platform's per-account window.
3. `--clients` threads each create their share of `--posts` posts, every post to three accounts
   and due a few seconds later, and after each create list the tenant's five newest posts
   (`GET /v1/posts?limit=5`). Every request is timed; every status is counted. By default the
   clients go as fast as the stack answers (the stack's saturation); `--rate R` offers R posts
   a second on a fixed schedule instead, to find the rate up to which the targets hold.
4. It waits until every post is published (or `--publish-timeout` passes) and reports the end
   to end rate: posts published per minute from the first one due to the last one published.
5. The resident memory of moto and of the local DynamoDB (dynoxide) after the run.

One `BENCH load.<label>.<figure> <value> <unit>` line per figure, like `make bench`. With
`--check` it exits 1 when the seeds' targets are missed: any 503 or 5xx, p95 >= 200 ms or
p99 >= 500 ms on either route, a post not published in time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack  # noqa: E402

ROOT = stack.ROOT
# Under each platform's per-account window (X 100 per 15 minutes, LinkedIn 500 a day), so no
# post waits for a window: the run measures Herald, not the platforms' budgets.
X_POSTS_PER_ACCOUNT = 90
LINKEDIN_POSTS_PER_ACCOUNT = 450
FACEBOOK_POSTS_PER_ACCOUNT = 180  # the fake platforms' Pages take 200 an hour


def local_env() -> dict[str, str]:
    if not stack.running(stack.read_state()):
        raise SystemExit("the local stack is not running: `make up` first")
    env = {}
    for line in stack.LOCAL_ENV.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            env[name] = value.strip("'")
    return env


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --------------------------------------------------------------------------- data


def fill(env: dict[str, str], items: int) -> int:
    """Tops the main table up to `items`; answers how many it holds."""
    endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB", env["AWS_ENDPOINT_URL"])
    db = boto3.client("dynamodb", endpoint_url=endpoint, region_name=env["AWS_REGION"],
                      aws_access_key_id="test", aws_secret_access_key="test")
    table = env["HERALD_TABLE"]
    have = db.describe_table(TableName=table)["Table"]["ItemCount"]
    run = uuid.uuid4().hex[:8]
    far = (datetime.now(timezone.utc) + timedelta(days=3650)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for start in range(have, items, 25):
        batch = []
        for i in range(start, min(start + 25, items)):
            item = {
                "pk": {"S": f"TENANT#fill-{i % 500}"},
                "sk": {"S": f"POST#fill-{run}-{i:07}"},
                "type": {"S": "post"},
                "status": {"S": "published"},
                "text": {"S": "filler " * 20},
                "version": {"N": "1"},
            }
            if i % 10 == 0:
                item["due_pk"] = {"S": f"DUE#{i % 16}"}
                item["due_sk"] = {"S": f"{far}#fill-{run}-{i:07}"}
            batch.append({"PutRequest": {"Item": item}})
        pending = {table: batch}
        while pending:
            pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return db.describe_table(TableName=table)["Table"]["ItemCount"]


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    def call(self, method: str, path: str, body: Any = None, idem: str | None = None) -> tuple[int, Any, float]:
        """(status, decoded body, milliseconds)."""
        headers = {"authorization": f"Bearer {self.key}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if idem:
            headers["idempotency-key"] = idem
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as r:  # noqa: S310 - loopback only
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        elapsed = (time.perf_counter() - start) * 1000
        try:
            return status, json.loads(raw or b"null"), elapsed
        except ValueError:
            return status, raw.decode(errors="replace"), elapsed


def tenant(env: dict[str, str]) -> Api:
    out = subprocess.run([str(ROOT / "target/debug/herald"), "tenant", "create", "--name", f"load-{uuid.uuid4().hex[:8]}"],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True)
    made = json.loads(out.stdout)
    return Api(env["HERALD_API_URL"], made["api_key"])


def register_token(env: dict[str, str], platform: str, token: str, external: str) -> None:
    """Tells the fake platform whose `token` is: Herald asks it before connecting an account."""
    request = urllib.request.Request(f"{env['FAKE_PLATFORMS_URL']}/_admin/tokens", method="POST",
                                     data=json.dumps({"platform": platform, "token": token, "account": external}).encode(),
                                     headers={"content-type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()  # noqa: S310 - loopback only


def connect(api: Api, env: dict[str, str], posts: int) -> list[list[str]]:
    """The accounts each post goes to: a Facebook Page, a LinkedIn organisation and an X user,
    each account given no more posts than its platform's per-account window allows."""
    def account(platform: str) -> str:
        external = f"load{uuid.uuid4().hex[:10]}"
        token = f"{platform}-token-{uuid.uuid4().hex[:12]}"
        register_token(env, platform, token, external)
        status, body, _ = api.call("POST", "/v1/accounts", {"platform": platform, "external_id": external, "access_token": token})
        if status != 201:
            raise SystemExit(f"connecting a {platform} account failed: {status} {body}")
        return body["id"]

    def pool(platform: str, per_account: int) -> list[str]:
        return [account(platform) for _ in range(max(1, -(-posts // per_account)))]

    pages = pool("facebook", FACEBOOK_POSTS_PER_ACCOUNT)
    organisations, users = pool("linkedin", LINKEDIN_POSTS_PER_ACCOUNT), pool("x", X_POSTS_PER_ACCOUNT)
    return [
        [pages[i // FACEBOOK_POSTS_PER_ACCOUNT], organisations[i // LINKEDIN_POSTS_PER_ACCOUNT], users[i // X_POSTS_PER_ACCOUNT]]
        for i in range(posts)
    ]


# --------------------------------------------------------------------------- the run


def drive(
    api: Api, targets: list[list[str]], clients: int, due_in: float, rate: float | None
) -> tuple[dict[str, list[float]], Counter[str], list[str]]:
    """Each client creates a post, then lists the newest five, until every post is created.
    Unpaced (`rate` None) each client starts its next post as soon as the last list answers;
    paced, post `i` starts no earlier than `i / rate` seconds into the run, with at most
    `clients` requests in flight: when every client is still busy a post starts late, and its
    latency counts from when it is sent (so past saturation the figures understate the wait)."""
    timings: dict[str, list[float]] = {"post": [], "get": []}
    statuses: Counter[str] = Counter()
    created: list[str] = []
    lock = threading.Lock()
    work = iter(range(len(targets)))
    started = time.monotonic()

    def client() -> None:
        while True:
            with lock:
                i = next(work, None)
            if i is None:
                return
            if rate:
                time.sleep(max(0.0, started + i / rate - time.monotonic()))
            at = (datetime.now(timezone.utc) + timedelta(seconds=due_in)).isoformat(timespec="seconds")
            body = {"text": f"load {i} {uuid.uuid4().hex[:6]}", "scheduled_at": at,
                    "targets": [{"account_id": a} for a in targets[i]]}
            status, answer, ms = api.call("POST", "/v1/posts", body, idem=uuid.uuid4().hex)
            got, _, get_ms = api.call("GET", "/v1/posts?limit=5")
            with lock:
                timings["post"].append(ms)
                timings["get"].append(get_ms)
                statuses[f"post {status}"] += 1
                statuses[f"get {got}"] += 1
                if status == 201:
                    created.append(answer["id"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings, statuses, created


def await_published(api: Api, ids: list[str], timeout: float) -> tuple[int, float]:
    """(how many of `ids` are published, seconds until the last one was) by paging the list."""
    wanted = set(ids)
    started = time.monotonic()
    published: set[str] = set()
    while time.monotonic() - started < timeout:
        cursor = None
        published.clear()
        while True:
            path = "/v1/posts?limit=100" + (f"&cursor={cursor}" if cursor else "")
            status, page, _ = api.call("GET", path)
            if status != 200:
                break
            published |= {p["id"] for p in page["items"] if p["id"] in wanted and p["status"] == "published"}
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if published >= wanted:
            break
        time.sleep(1)
    return len(published & wanted), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fill", type=int, default=0, help="top the main table up to this many items first")
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--due-in", type=float, default=5.0, help="seconds from creation to each post's scheduled time")
    parser.add_argument("--publish-timeout", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=None,
                        help="posts per second offered across all clients (default: as fast as they answer)")
    parser.add_argument("--label", default=None, help="the figures' name (default: the table size)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    env = local_env()
    started = time.monotonic()
    items = fill(env, args.fill) if args.fill else None
    if items is not None:
        print(f"[load] the main table holds {items} items ({time.monotonic() - started:.0f} s to fill)", file=sys.stderr)
    label = args.label or (f"items{args.fill}" if args.fill else "run")
    api = tenant(env)
    targets = connect(api, env, args.posts)

    run_started = time.monotonic()
    timings, statuses, created = drive(api, targets, args.clients, args.due_in, args.rate)
    drive_seconds = time.monotonic() - run_started
    first_due = run_started + args.due_in
    count, waited = await_published(api, created, args.publish_timeout)
    publish_seconds = max(1e-3, run_started + drive_seconds + waited - first_due)
    pids = stack.read_state()["pids"]  # type: ignore[index]
    rss = {name: stack.resident_mib(pids[name])[1] for name in ("moto", "dynamodb")}

    errors = sum(n for k, n in statuses.items() if int(k.split()[1]) >= 500)
    unavailable = sum(n for k, n in statuses.items() if k.endswith(" 503"))
    figures = []
    for route in ("post", "get"):
        for p in (50, 95, 99):
            figures.append((f"{route}_p{p}", percentile(timings[route], p), "ms"))
    figures += [
        ("requests", sum(statuses.values()), "count"),
        ("status_503", unavailable, "count"),
        ("status_5xx", errors, "count"),
        ("requests_per_second", sum(statuses.values()) / drive_seconds, "1/s"),
        ("published", count, "posts"),
        ("published_per_minute", count / publish_seconds * 60, "posts/min"),
        ("moto_rss", rss["moto"], "MiB"),
        ("dynamodb_rss", rss["dynamodb"], "MiB"),
    ]
    if items is not None:
        figures.append(("table_items", items, "count"))
    for name, value, unit in figures:
        print(f"BENCH load.{label}.{name} {value:.1f} {unit}" if isinstance(value, float) else f"BENCH load.{label}.{name} {value} {unit}")
    print(f"[load] statuses: {dict(sorted(statuses.items()))}; mean POST {statistics.fmean(timings['post']):.1f} ms", file=sys.stderr)

    missed = []
    if unavailable or errors:
        missed.append(f"{errors} server errors ({unavailable} of them 503)")
    for route in ("post", "get"):
        if percentile(timings[route], 95) >= 200 or percentile(timings[route], 99) >= 500:
            missed.append(f"{route} p95/p99 over 200/500 ms")
    if count < len(created) or len(created) < args.posts:
        missed.append(f"{len(created)} of {args.posts} posts created, {count} published")
    if missed:
        print(f"[load] targets missed: {'; '.join(missed)}", file=sys.stderr)
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
