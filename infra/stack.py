"""Herald's local stack: `up`, `down` and `status` (what `make up` / `make down` run).

`up` starts, in the background and each in its own process group:
  1. moto (the AWS emulator) on loopback, through infra/moto_server.py;
  2. the fake platforms server (the package infra/fake_platforms/, run as a folder);
  3. infra/bootstrap.py: every table, queue, secret and bucket of template.yaml, with the
     platform API URLs pointed at the fake;
  4. infra/runner.py, the local Lambda: the function binaries `cargo build --workspace --bins`
     left in target/debug/, each run on demand (up to 4 processes per function) behind the
     Lambda Invoke API, with AWS's deadlines, timeouts and crash behaviour
     (`cargo lambda invoke` reaches it on the same port);
  5. infra/emulator.py: HTTP API routes, SQS event sources and schedules, as AWS would;
then warms every function with its `events/<function>/warmup.json`, seeds a demo tenant with an
admin key, and writes `.herald/local.env`. It builds nothing: `make up` builds first. It returns once the API answers. A second `up` while
everything runs does nothing; `down` stops exactly the processes `up` started (by their
recorded process groups). Logs go to `.herald/logs/<process>.log`, and each function's output
to `.herald/logs/<binary>.log`.

Ports default to moto 4566, API 3000, fake platforms 4580, Lambda runtime 9000; a busy one is
replaced by a free one (override with HERALD_<NAME>_PORT).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".herald"
LOGS = STATE_DIR / "logs"
STATE = STATE_DIR / "state.json"
MANIFEST = STATE_DIR / "manifest.json"
FUNCTIONS_ENV = STATE_DIR / "functions.env"
LOCAL_ENV = STATE_DIR / "local.env"
VENV_BIN = ROOT / ".venv" / "bin"
BIN_DIR = ROOT / "target" / "debug"
PY = str(VENV_BIN / "python")
HOST = "127.0.0.1"
PREFIX = "herald"
DEFAULT_PORTS = {"moto": 4566, "dynamodb": 4569, "api": 3000, "fake": 4580, "runtime": 9000}
DYNOXIDE = VENV_BIN / "dynoxide"
AWS_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
}
# Local tuning: the production waits (backoff, breaker reset, pause re-check) scaled down to
# seconds, so a failing platform reaches the DLQ, and a circuit half-opens, while tests watch.
LOCAL_FUNCTION_ENV = {
    # The most verbose level a deployment allows: the log scan at the end of make test
    # proves no credential reaches the logs even here.
    "HERALD_LOG_LEVEL": "debug",
    # The API's budgets raised for the suites' bursts (a chaos run posts 200 in seconds);
    # the router's tests check the limits themselves, and every answer still carries them.
    "HERALD_RATE_LIMIT_READ_PER_MINUTE": "1000000",
    "HERALD_RATE_LIMIT_WRITE_PER_MINUTE": "1000000",
    "HERALD_RATE_LIMIT_EXPENSIVE_READ_PER_MINUTE": "1000000",
    "HERALD_RATE_LIMIT_OPERATOR_PER_MINUTE": "1000000",
    "HERALD_WEBHOOK_RATE_LIMIT_PER_MINUTE": "1000000",
    "HERALD_RETRY_BASE_MS": "100",
    "HERALD_RETRY_CAP_MS": "500",
    "HERALD_REDELIVERY_BASE_SECONDS": "1",
    "HERALD_REDELIVERY_CAP_SECONDS": "2",
    "HERALD_BREAKER_RESET_SECONDS": "3",
    "HERALD_PAUSE_RECHECK_SECONDS": "2",
    "HERALD_LOOKUP_DELAY_MS": "200",
    "HERALD_PLATFORM_TIMEOUT_SECONDS": "3",
    "HERALD_CLAIM_LEASE_SECONDS": "30",
    # An SMS send whose answer was unclear is looked up and resumed after 10 s, not a minute.
    "HERALD_SMS_LEASE_SECONDS": "10",
    # Campaigns of more than 1,000 contacts are enqueued by jobs on the SMS queue (5,000 in
    # production), so the 2,000-recipient run goes through them.
    "HERALD_SMS_SYNC_AUDIENCE": "1000",
    # A sending campaign whose finished count stands still 15 s is repaired by the reconciler.
    "HERALD_SMS_STUCK_SECONDS": "15",
    # The whole suite (and its chaos run) publishes more to Facebook in a minute than Meta's
    # 200 calls per app per hour: locally the app budget is not the subject under test.
    "HERALD_RATE_LIMIT_FACEBOOK_APP": "100000/3600",
    # Outbound webhooks: four attempts a second apart instead of ten over a day, to the fake
    # platforms' sinks on 127.0.0.1 (over http), and no endpoint cache in the publisher.
    "HERALD_OUTBOUND_SCHEDULE": "0,1,1,1",
    "HERALD_OUTBOUND_ALLOW_PRIVATE": "true",
    "HERALD_OUTBOUND_ENDPOINT_CACHE_SECONDS": "0",
    # Engagement snapshots seconds after publishing instead of 1 h, 24 h and 7 days, so the
    # analytics function takes all three on its schedule within a test.
    "HERALD_SNAPSHOT_OFFSETS_SECONDS": "6,12,18",
    # The reconciler refreshes tokens 10 s before they expire instead of 30 minutes, so the
    # tests' short-lived tokens are the publisher's to refresh unless a test waits.
    "HERALD_TOKEN_REFRESH_AHEAD_SECONDS": "10",
}


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


# --------------------------------------------------------------------------- processes


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_port(name: str) -> int:
    wanted = int(os.environ.get(f"HERALD_{name.upper()}_PORT", DEFAULT_PORTS[name]))
    if port_free(wanted):
        return wanted
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    say(f"port {wanted} for {name} is busy; using {port}")
    return port


def spawn(name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = (LOGS / f"{name}.log").open("ab")
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so `down` stops its children too
    )
    return process.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def stop_group(pid: int, timeout: float = 10.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.1)


def wait_until(what: str, check: Any, timeout: float, pid: int | None = None, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Our own process first: something else answering on its port is not it.
        if pid is not None and not alive(pid):
            raise SystemExit(f"{what}: the process exited; see .herald/logs/{log}.log")
        if check():
            return
        time.sleep(0.25)
    raise SystemExit(f"{what}: not ready after {timeout:.0f} s; see .herald/logs/{log or 'the logs'}")


def dynamodb_ok(url: str, timeout: float = 2.0) -> bool:
    """DynamoDB answers `ListTables` (its API is one POST route; a GET proves nothing). dynoxide
    wants a request shaped as if signed, as DynamoDB does, and checks no signature."""
    request = urllib.request.Request(
        url, data=b"{}", method="POST",
        headers={
            "content-type": "application/x-amz-json-1.0",
            "x-amz-target": "DynamoDB_20120810.ListTables",
            "x-amz-date": "20260101T000000Z",
            "authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:  # noqa: S310 - loopback only
            return 200 <= r.status < 300
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
            return 200 <= r.status < 300
    except OSError:
        return False


# --------------------------------------------------------------------------- state


def read_state() -> dict[str, Any] | None:
    try:
        return json.loads(STATE.read_text())
    except (OSError, ValueError):
        return None


def problems(state: dict[str, Any] | None) -> list[str]:
    """What keeps the stack from serving: a process gone, or one that no longer answers. Each
    process is asked itself, so a dead moto is never hidden behind an API that still says 200."""
    if not state:
        return ["no stack was started (.herald/state.json is missing)"]
    found = [f"{name} (pid {pid}) has exited; see .herald/logs/" for name, pid in state["pids"].items() if not alive(pid)]
    ports = state.get("ports", {})
    probes = {
        "moto": (http_ok, f"http://{HOST}:{ports.get('moto')}/moto-api/"),
        "dynamodb": (dynamodb_ok, f"http://{HOST}:{ports.get('dynamodb')}"),
        "fake": (http_ok, f"http://{HOST}:{ports.get('fake')}/_admin/health"),
        "functions": (http_ok, f"http://{HOST}:{ports.get('runtime')}/_admin/health"),
        "emulator": (http_ok, f"{state.get('api_url')}/v1/health"),
    }
    for name, (answers, url) in probes.items():
        if name in state["pids"] and alive(state["pids"][name]) and not answers(url):
            found.append(f"{name} (pid {state['pids'][name]}) does not answer {url}")
    return found


def running(state: dict[str, Any] | None) -> bool:
    return not problems(state)


def resident_mib(pid: int) -> tuple[float, float]:
    """Resident memory of a process, and of its whole process group (the runner's functions,
    the processes of one `spawn`), in MiB; 0 for a process that is gone."""

    def rss(p: str) -> float:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    group = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pid:
                    group += rss(entry)
            except OSError:
                continue
    return rss(str(pid)), group


def write_env_file(path: Path, values: dict[str, str], export: bool) -> None:
    prefix = "export " if export else ""
    lines = [f"{prefix}{k}={shlex.quote(v) if export else v}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


# --------------------------------------------------------------------------- commands


def up() -> int:
    state = read_state()
    if running(state):
        say(f"already running: API {state['api_url']} (source .herald/local.env)")
        return 0
    if state:
        say("a previous stack is partly running; stopping it first")
        down()
    STATE_DIR.mkdir(exist_ok=True)
    # Each port is picked just before its process starts: the build can take minutes, and a
    # port free at the start may not be by then.
    ports: dict[str, int] = {}
    pids: dict[str, int] = {}
    state: dict[str, Any] = {"pids": pids, "ports": ports, "api_url": ""}
    ports["moto"] = pick_port("moto")
    endpoint = f"http://{HOST}:{ports['moto']}"
    ports["dynamodb"] = pick_port("dynamodb")
    dynamodb = f"http://{HOST}:{ports['dynamodb']}"

    def record() -> None:
        STATE.write_text(json.dumps(state, indent=2) + "\n")

    try:
        say(f"DynamoDB (dynoxide) on {dynamodb}")
        pids["dynamodb"] = spawn("dynamodb", [str(DYNOXIDE), "--host", HOST, "--port", str(ports["dynamodb"])])
        record()
        say(f"moto on {endpoint}")
        pids["moto"] = spawn("moto", [PY, "infra/moto_server.py", "-H", HOST, "-p", str(ports["moto"])])
        record()
        ports["fake"] = pick_port("fake")
        fake_url = f"http://{HOST}:{ports['fake']}"
        # Chosen before the resources: connect links send browsers back to it.
        ports["api"] = pick_port("api")
        api_url = state["api_url"] = f"http://{HOST}:{ports['api']}"
        say(f"fake platforms on {fake_url}")
        pids["fake"] = spawn("fake-platforms", [PY, "infra/fake_platforms", "--host", HOST, "--port", str(ports["fake"])])
        record()
        wait_until("moto", lambda: http_ok(f"{endpoint}/moto-api/"), 60, pids["moto"], "moto")
        wait_until("DynamoDB", lambda: dynamodb_ok(dynamodb), 30, pids["dynamodb"], "dynamodb")
        wait_until("fake platforms", lambda: http_ok(f"{fake_url}/_admin/health"), 30, pids["fake"], "fake-platforms")

        alert_url = f"{fake_url}/sinks/alerts?token={secrets.token_hex(16)}"
        say("creating the resources of template.yaml")
        bootstrap = subprocess.run(
            [
                PY, "infra/bootstrap.py", "--endpoint-url", endpoint, "--dynamodb-endpoint-url", dynamodb,
                "--prefix", PREFIX,
                "--manifest", str(MANIFEST), "--print-env",
                "--parameter", f"XApiUrl={fake_url}/x",
                "--parameter", f"FacebookApiUrl={fake_url}/facebook/v21.0",
                "--parameter", f"LinkedInApiUrl={fake_url}/linkedin",
                "--parameter", f"MastodonApiUrl={fake_url}/mastodon",
                "--parameter", f"BlueskyApiUrl={fake_url}/bluesky",
                "--parameter", f"InstagramApiUrl={fake_url}/instagram/v21.0",
                "--parameter", f"SmsApiUrl={fake_url}",
                "--parameter", f"XAuthorizeUrl={fake_url}/x/i/oauth2/authorize",
                "--parameter", f"FacebookAuthorizeUrl={fake_url}/facebook/v21.0/dialog/oauth",
                "--parameter", f"LinkedInAuthorizeUrl={fake_url}/linkedin/oauth/v2/authorization",
                "--parameter", f"PublicUrl={api_url}",
                "--parameter", "LogLevel=info",
                # Billing events credit tenants on the local stack (tests/it/e2e/wallet.rs).
                "--parameter", 'CreditPrices={"usd": {"1000": 100, "5000": 550}}',
                # Alerts go to the fake platforms' sink, where tests read them; the token in the
                # URL stands for a real webhook's, and the log scan looks for it.
                "--parameter", f"AlertWebhookUrl={alert_url}",
            ],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )
        if bootstrap.returncode != 0:
            raise SystemExit(f"bootstrap failed:\n{bootstrap.stderr}")
        manifest = json.loads(MANIFEST.read_text())
        missing = [spec["binary"] for spec in manifest["functions"].values() if not (BIN_DIR / spec["binary"]).is_file()]
        if missing:
            raise SystemExit(f"no {', '.join(missing)} in target/debug/: `make up` builds them (cargo build --workspace --bins)")
        # Laid over each function's own environment from the template: the local endpoints,
        # credentials and scaled-down timings.
        endpoints = {"AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb}
        function_env = {**AWS_ENV, **endpoints, **LOCAL_FUNCTION_ENV}
        write_env_file(FUNCTIONS_ENV, function_env, export=False)

        ports["runtime"] = pick_port("runtime")
        runtime_url = f"http://{HOST}:{ports['runtime']}"
        say(f"the Lambda runner on {runtime_url}")
        pids["functions"] = spawn(
            "functions",
            [
                PY, "-u", "infra/runner.py", "--manifest", str(MANIFEST), "--env-file", str(FUNCTIONS_ENV),
                "--bin-dir", str(BIN_DIR), "--log-dir", str(LOGS), "--host", HOST, "--port", str(ports["runtime"]),
                "--concurrency", "4",
            ],
        )
        record()
        wait_until("the Lambda runner", lambda: http_ok(f"{runtime_url}/_admin/health"), 30, pids["functions"], "functions")
        for spec in manifest["functions"].values():
            warm(runtime_url, spec["binary"], pids["functions"])
        rotate_new_secrets(runtime_url, manifest, pids["functions"], endpoint)
        configure_oauth_clients(manifest, endpoint, fake_url)

        say(f"event sources and the HTTP API on {api_url}")
        pids["emulator"] = spawn(
            "emulator",
            [
                PY, "-u", "infra/emulator.py", "--manifest", str(MANIFEST), "--runtime", runtime_url,
                "--endpoint-url", endpoint, "--http-port", str(ports["api"]),
            ],
        )
        record()
        wait_until("the HTTP API", lambda: http_ok(f"{api_url}/v1/health"), 60, pids["emulator"], "emulator")
        configure_sms_webhook(manifest, endpoint, fake_url, api_url)

        aws_env = {**AWS_ENV, **endpoints, "HERALD_TABLE": manifest["global_environment"]["HERALD_TABLE"]}
        demo = seed_demo_tenant(aws_env)
        local_env = {
            "HERALD_API_URL": api_url,
            "HERALD_API_KEY": demo["api_key"],
            "HERALD_TENANT_ID": demo["tenant_id"],
            "FAKE_PLATFORMS_URL": fake_url,
            # The alert webhook's URL (the functions read it from its secret), for the log scan.
            "HERALD_ALERT_WEBHOOK_URL": alert_url,
            "HERALD_RUNTIME_URL": runtime_url,
            # What `herald dead-letters` needs to reach the inbound webhook queue's DLQ.
            "HERALD_WEBHOOK_DLQ_URL": manifest["queues"]["HERALD_QUEUE_URL_WEBHOOK_DEAD_LETTER_QUEUE"],
            "HERALD_WEBHOOK_QUEUE_URL": manifest["queues"]["HERALD_QUEUE_URL_WEBHOOK_QUEUE"],
            # What `herald dead-letters` needs to reach the outbound webhook queue's DLQ.
            "HERALD_OUTBOUND_DLQ_URL": manifest["queues"]["HERALD_QUEUE_URL_OUTBOUND_DEAD_LETTER_QUEUE"],
            "HERALD_OUTBOUND_QUEUE_URL": manifest["queues"]["HERALD_QUEUE_URL_OUTBOUND_QUEUE"],
            # The `demo` inbound webhook provider's signing secret, for sending it events.
            "HERALD_DEMO_WEBHOOK_SECRET": secret_value(endpoint, manifest["owned_secrets"]["DemoWebhookSecret"]["arn"]),
            # The embed signing key's id (not its value), for tests that rotate it.
            "HERALD_EMBED_SIGNING_SECRET_ID": manifest["owned_secrets"]["EmbedSigningKeySecret"]["arn"],
            **aws_env,
            **manifest["global_environment"],
            **manifest["queues"],
        }
        write_env_file(LOCAL_ENV, local_env, export=True)
    except BaseException:
        say("start-up failed; stopping what was started")
        down()
        raise
    say(f"ready: API {api_url}; `source .herald/local.env`; logs in .herald/logs/")
    return 0


def warm(runtime_url: str, function: str, pid: int) -> None:
    """First invocation: starts the function's first process, so the first real event does not
    pay for its init, and a function that cannot start fails `up` rather than a test. A
    function without `events/<function>/warmup.json` (the rotator) starts on its first event."""
    path = ROOT / "events" / function / "warmup.json"
    if path.is_file():
        say(f"warming {function}")
        invoke(runtime_url, function, path.read_bytes(), pid)


def invoke(runtime_url: str, function: str, event: bytes, pid: int) -> bytes:
    """Invokes a function through the runner, waiting for it to start; fails `up` on an error."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not alive(pid):
            raise SystemExit("the Lambda runner exited; see .herald/logs/functions.log")
        request = urllib.request.Request(
            f"{runtime_url}/2015-03-31/functions/{function}/invocations",
            data=event, method="POST", headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=90) as r:  # noqa: S310 - loopback only
                body = r.read()
                if r.headers.get("x-amz-function-error") or b'"errorType"' in body[:200]:
                    raise SystemExit(f"{function} failed: {body[:500]!r}; see .herald/logs/{function}.log")
                return body
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{function} did not answer")


def secrets_client(endpoint: str) -> Any:
    import boto3  # the venv's (moto brings it); only `up` needs it

    return boto3.client(
        "secretsmanager", endpoint_url=endpoint, region_name=AWS_ENV["AWS_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def rotate_new_secrets(runtime_url: str, manifest: dict[str, Any], pid: int, endpoint: str) -> None:
    """What the template's rotation schedules do on AWS (RotateImmediatelyOnUpdate): each
    secret Herald owns that has no value yet is rotated once, by the real rotation function.
    moto cannot call a rotation Lambda, so this stands in for RotateSecret."""
    sm = secrets_client(endpoint)
    rotator = next(spec["binary"] for spec in manifest["functions"].values() if spec["binary"] == "rotator")
    for logical_id, secret in manifest["owned_secrets"].items():
        versions = sm.list_secret_version_ids(SecretId=secret["arn"])["Versions"]
        if any("AWSCURRENT" in v.get("VersionStages", []) for v in versions):
            continue
        say(f"rotating {logical_id} for its first value")
        token = str(uuid.uuid4())
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            event = {"SecretId": secret["arn"], "ClientRequestToken": token, "Step": step}
            invoke(runtime_url, rotator, json.dumps(event).encode(), pid)


def configure_oauth_clients(manifest: dict[str, Any], endpoint: str, fake_url: str) -> None:
    """What an operator does once the apps exist: a fresh client per platform, put into
    OAuthClientsSecret and registered with the fake platforms, which then refuse any refresh
    that does not authenticate with it (so every token refresh in the tests proves it does)."""
    arn = next(
        (spec["environment"].get("HERALD_OAUTH_CLIENTS_SECRET") for spec in manifest["functions"].values()
         if spec["environment"].get("HERALD_OAUTH_CLIENTS_SECRET")),
        None,
    )
    if arn is None:
        return
    clients = {p: {"client_id": f"herald-{p}-{uuid.uuid4().hex[:8]}", "client_secret": uuid.uuid4().hex}
               for p in ("x", "linkedin", "facebook")}
    secrets_client(endpoint).put_secret_value(SecretId=arn, SecretString=json.dumps(clients))
    for platform, c in clients.items():
        request = urllib.request.Request(
            f"{fake_url}/_admin/oauth/clients", method="POST", headers={"content-type": "application/json"},
            data=json.dumps({"platform": platform, **c}).encode(),
        )
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 - loopback only
            r.read()
    say("OAuth clients for X, LinkedIn and Facebook put in OAuthClientsSecret and registered with the fake platforms")


def configure_sms_webhook(manifest: dict[str, Any], endpoint: str, fake_url: str, api_url: str) -> None:
    """Points the fake SMS provider's delivery receipts and inbound messages at Herald's
    `/webhooks/sms`, signed with the secret Herald verifies them with: the `sms` entry of
    HERALD_WEBHOOK_PROVIDERS (`sms=sms:<SmsWebhookSecret's ARN>`). A reset of the fake keeps
    both (infra/fake_platforms/sms_state.py)."""
    arn = None
    for spec in manifest["functions"].values():
        for entry in spec["environment"].get("HERALD_WEBHOOK_PROVIDERS", "").split(","):
            name, _, rest = entry.partition("=")
            scheme, _, value = rest.partition(":")
            if name.strip() == "sms" and scheme == "sms" and value:
                arn = value.strip()
    if arn is None:
        say("no `sms` webhook provider in the template: the fake SMS provider posts no receipts")
        return
    settings = {"webhook_url": f"{api_url}/webhooks/sms", "webhook_secret": secret_value(endpoint, arn)}
    request = urllib.request.Request(
        f"{fake_url}/_admin/sms/settings", method="POST", headers={"content-type": "application/json"},
        data=json.dumps(settings).encode(),
    )
    with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 - loopback only
        r.read()
    say("the fake SMS provider posts its receipts and inbound messages to /webhooks/sms")


def secret_value(endpoint: str, arn: str) -> str:
    return str(secrets_client(endpoint).get_secret_value(SecretId=arn)["SecretString"])


def seed_demo_tenant(aws_env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        [str(ROOT / "target" / "debug" / "herald"), "tenant", "create", "--name", "demo"],
        cwd=ROOT, env={**os.environ, **aws_env}, capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"seeding the demo tenant failed: {out.stderr}")
    return json.loads(out.stdout)


def down() -> int:
    state = read_state()
    if not state:
        say("nothing to stop")
        return 0
    # Stop the feeders first, then the functions, then what they talk to.
    for name in ("emulator", "functions", "fake", "moto", "dynamodb"):
        pid = state["pids"].get(name)
        if pid and alive(pid):
            stop_group(pid)
            say(f"stopped {name}")
    STATE.unlink(missing_ok=True)
    LOCAL_ENV.unlink(missing_ok=True)
    return 0


def status(quiet: bool) -> int:
    """Exit 0 when every process of the stack lives and answers; otherwise say which does not."""
    state = read_state()
    found = problems(state)
    if not quiet:
        say(f"running: API {state['api_url']}" if not found else "not running")
        for name, pid in (state or {}).get("pids", {}).items():
            if alive(pid):
                own, group = resident_mib(pid)
                say(f"  {name}: pid {pid}, resident {own:.0f} MiB (with its children {group:.0f} MiB)")
            else:
                say(f"  {name}: pid {pid}, DEAD")
        for problem in found:
            say(f"  problem: {problem}")
    return 0 if not found else 1


def memory(process: str, max_mib: float | None) -> int:
    state = read_state()
    pid = (state or {}).get("pids", {}).get(process)
    if not pid or not alive(pid):
        say(f"{process} is not running")
        return 1
    _, group = resident_mib(pid)
    print(f"{group:.0f}")
    if max_mib is not None and group > max_mib:
        say(f"{process} holds {group:.0f} MiB resident, over the {max_mib:.0f} MiB allowed")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the local stack in the background")
    sub.add_parser("down", help="stop it")
    st = sub.add_parser("status", help="exit 0 when it runs and answers")
    st.add_argument("--quiet", action="store_true")
    mem = sub.add_parser("memory", help="print one process's resident MiB (with its children); exit 1 over --max-mib")
    mem.add_argument("process", choices=["moto", "dynamodb", "fake", "functions", "emulator"])
    mem.add_argument("--max-mib", type=float)
    args = parser.parse_args(argv)
    if args.command == "up":
        return up()
    if args.command == "down":
        return down()
    if args.command == "memory":
        return memory(args.process, args.max_mib)
    return status(args.quiet)


if __name__ == "__main__":
    sys.exit(main())
