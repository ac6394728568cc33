"""Herald's local Lambda runner: the function binaries behind the Lambda Invoke API, with the
process lifecycle AWS gives them.

It owns, for every function in the manifest bootstrap.py wrote:
  - the Invoke API on one address: `POST /2015-03-31/functions/{name}/invocations` answers 200
    with the function's response, or 200 with `X-Amz-Function-Error: Unhandled` and an
    `{"errorType", "errorMessage"}` body when the invocation failed (what infra/emulator.py,
    stack.py's warm-up and `cargo lambda invoke` send and expect);
  - execution environments: each one a process of `<bin-dir>/<binary>` (what
    `cargo build --workspace --bins` left in target/debug/) with its own Lambda Runtime API on
    its own loopback port (`AWS_LAMBDA_RUNTIME_API`). An environment handles one invocation at
    a time and is reused while it lives; a new one starts when all are busy, up to
    `--concurrency` per function, beyond which invocations queue;
  - AWS's failure rules: a process that exits during an invocation fails it with
    `Runtime.ExitError`; an invocation past the function's timeout is answered
    `Sandbox.Timedout` ("Task timed out after N seconds") and its process is killed; an init
    failure (`/init/error`, or an exit before the first `next`) fails the invocation that
    started the process. A failed environment is discarded: the next invocation gets a fresh
    process, never a restarted one behind the caller's back.

The deadline each invocation carries (`Lambda-Runtime-Deadline-Ms`) is the real wall clock plus
the function's timeout, so code that budgets its remaining time sees what it would on AWS.
An environment's process gets only: PATH and LANG from the runner, the function's environment
from the manifest, the `--env-file` values over it (local endpoints, credentials and tuning),
and the variables Lambda itself sets (`AWS_LAMBDA_FUNCTION_NAME`, `..._MEMORY_SIZE`, ...).

For tests: `GET /_admin/instances`, `POST /_admin/functions/{name}/kill[?all=1]` (SIGKILL the
busy environments, or all of them), `GET /_admin/health`. Processes' output is appended to
`<log-dir>/<binary>.log`; the runner's own events go to stdout as JSON lines. SIGTERM or SIGINT
stops the runner and its processes (as does its parent's exit with `--exit-with-parent`).

It must never restart a process on its own, reorder an invocation's outcome, or log payloads.

    python infra/runner.py --manifest .herald/manifest.json --env-file .herald/functions.env \
        --bin-dir target/debug --host 127.0.0.1 --port 9000 [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

REGION = "us-east-1"
ACCOUNT = "123456789012"
MAX_PAYLOAD = 6 * 1024 * 1024  # synchronous invocation request and response limit
RUNTIME_PREFIX = "/2018-06-01/runtime"
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")
KILL_PATH = re.compile(r"^/_admin/functions/([^/]+)/kill/?$")
# Only these come from the runner's own environment: the rest of a developer's shell (profiles,
# stray HERALD_* variables) must not change what a function does.
INHERITED = ("PATH", "LANG", "LC_ALL", "RUST_BACKTRACE", "RUST_LIB_BACKTRACE")


_LOG = threading.Lock()


def log(event: str, **fields: Any) -> None:
    """One JSON line per lifecycle event. Never payloads or environment values."""
    line = {"time": datetime.now(timezone.utc).isoformat(), "component": "runner", "event": event}
    line.update(fields)
    # One write per line under a lock: print() from several threads interleaves its pieces.
    with _LOG:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (an optional `export `, blank lines and `#` comments allowed)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


# --------------------------------------------------------------------------- invocations


@dataclass(frozen=True)
class Outcome:
    """What the Invoke API answers: the response body, and the error type when it failed."""

    body: bytes
    error: str | None = None

    @classmethod
    def failure(cls, error_type: str, message: str) -> Outcome:
        return cls(json.dumps({"errorType": error_type, "errorMessage": message}).encode(), error_type)

    @classmethod
    def reported(cls, body: bytes, header_type: str | None, fallback: str) -> Outcome:
        """An error the function (or its runtime) posted: passed on as posted, when it is the
        usual `{"errorType", "errorMessage"}` object."""
        try:
            posted = json.loads(body) if body else None
        except ValueError:
            posted = None
        if isinstance(posted, dict) and isinstance(posted.get("errorType"), str):
            return cls(body, posted["errorType"])
        message = body.decode(errors="replace") if body else ""
        return cls.failure(header_type or fallback, message)


class Invocation:
    """One synchronous invocation: settled exactly once, by whichever outcome comes first."""

    def __init__(self, payload: bytes, client_context: str | None = None, cognito_identity: str | None = None):
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        epoch = f"{int(time.time()):08x}"
        self.trace_id = f"Root=1-{epoch}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
        self.deadline_ms = 0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._outcome: Outcome | None = None

    def settle(self, outcome: Outcome) -> bool:
        with self._lock:
            if self._outcome is not None:
                return False
            self._outcome = outcome
        self._done.set()
        return True

    @property
    def settled(self) -> bool:
        return self._done.is_set()

    def wait(self) -> Outcome:
        self._done.wait()
        assert self._outcome is not None
        return self._outcome


def exit_reason(code: int) -> str:
    """How Lambda words a runtime's exit."""
    if code < 0:
        try:
            name = signal.Signals(-code).name.removeprefix("SIG").lower()
        except ValueError:
            name = str(-code)
        name = {"kill": "killed", "term": "terminated", "segv": "segmentation fault", "abrt": "aborted"}.get(name, name)
        return f"Runtime exited with error: signal: {name}"
    if code == 0:
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: exit status {code}"


# --------------------------------------------------------------------------- functions


@dataclass
class FunctionSpec:
    name: str  # the binary's name: what the Invoke API and AWS_LAMBDA_FUNCTION_NAME call it
    logical_id: str
    executable: Path
    timeout: float
    memory: int
    environment: dict[str, str]

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}"


@dataclass(eq=False)
class Instance:
    """One execution environment: a process and its own Runtime API. Guarded by its pool's lock."""

    pool: FunctionPool
    assigned: Invocation | None  # handed to this environment, not yet taken through `next`
    current: Invocation | None = None  # taken through `next`, not yet answered
    ready: bool = False  # has called `next` at least once: its init is over
    retiring: bool = False  # being killed: never handed another invocation
    gone: bool = False  # its process has exited
    invocations: int = 0
    killed_for: str | None = None  # why the runner killed it, for the log
    process: subprocess.Popen[bytes] | None = None
    server: Server | None = None
    timer: threading.Timer | None = None
    log_stream: str = field(default_factory=lambda: f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}")

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    @property
    def busy(self) -> bool:
        """Running an invocation, or starting for one. One handed an invocation it has not taken
        yet is not: killed then, its invocation goes to another environment, as on AWS."""
        return self.current is not None or (self.assigned is not None and not self.ready)

    @property
    def available(self) -> bool:
        """May be handed an invocation: alive, initialized and holding none. One that answered
        and has not called `next` yet counts: it will pick the invocation up when it does."""
        return self.ready and not self.retiring and not self.gone and self.current is None and self.assigned is None


class FunctionPool:
    """A function's execution environments and the invocations waiting for one."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], concurrency: int, log_dir: Path):
        self.spec = spec
        self.env = env
        self.concurrency = concurrency
        self.log_path = log_dir / f"{spec.name}.log"
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # an assignment, or an environment gone
        self.instances: list[Instance] = []
        self.pending: deque[Invocation] = deque()
        self.closing = False

    # -- the Invoke API side ----------------------------------------------------------------

    def invoke(self, invocation: Invocation) -> Outcome:
        with self.lock:
            if self.closing:
                return Outcome.failure("ServiceException", "the runner is shutting down")
            self.pending.append(invocation)
            self._dispatch()
        return invocation.wait()

    def _dispatch(self) -> None:
        """Hand waiting invocations to available environments, starting new ones up to the
        concurrency limit. Called with the lock held."""
        while self.pending and not self.closing:
            instance = next((i for i in self.instances if i.available), None)
            if instance is not None:
                instance.assigned = self.pending.popleft()
                self.changed.notify_all()
                continue
            if len(self.instances) >= self.concurrency:
                return  # throttled: the invocation waits for an environment to free up
            self._start(self.pending.popleft())

    def _start(self, first: Invocation) -> None:
        instance = Instance(self, assigned=first)
        instance.server = Server(("127.0.0.1", 0), runtime_api(instance))
        port = instance.server.server_address[1]
        spec = self.spec
        env = {
            **self.env,
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": instance.log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": str(spec.executable.parent),
        }
        try:
            with self.log_path.open("ab") as out:
                instance.process = subprocess.Popen(
                    [str(spec.executable)],
                    cwd=spec.executable.parent,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        except OSError as e:
            instance.server.server_close()
            first.settle(Outcome.failure("Runtime.InvalidEntrypoint", f"cannot start {spec.executable}: {e.strerror}"))
            log("start_failed", function=spec.name, error=type(e).__name__)
            return
        self.instances.append(instance)
        threading.Thread(target=instance.server.serve_forever, name=f"{spec.name}-{instance.pid}-api", daemon=True).start()
        threading.Thread(target=self._watch, args=(instance,), name=f"{spec.name}-{instance.pid}-watch", daemon=True).start()
        # AWS runs init and the first invocation under the function's timeout when init is not
        # done ahead of time, as here: an init that hangs fails its invocation the same way.
        self._arm(instance, lambda: self._timed_out(instance, None))
        log("started", function=spec.name, pid=instance.pid, runtime_api=port)
        self._note(f"started pid {instance.pid}")

    # -- the Runtime API side ---------------------------------------------------------------

    def next_invocation(self, instance: Instance) -> Invocation | None:
        """Blocks until this environment has an invocation; None once it is gone."""
        with self.lock:
            if instance.current is not None:
                # A runtime asking for more without answering has lost the invocation.
                lost, instance.current = instance.current, None
                self._disarm(instance)
                lost.settle(Outcome.failure("Runtime.InvalidResponse", "the runtime asked for the next invocation without answering this one"))
            if not instance.ready:
                instance.ready = True
                self._disarm(instance)
            self._dispatch()
            while instance.assigned is None and not instance.gone and not instance.retiring:
                self.changed.wait()
            if instance.gone or instance.retiring or instance.assigned is None:
                return None
            invocation, instance.assigned = instance.assigned, None
            instance.current = invocation
            instance.invocations += 1
            invocation.deadline_ms = int(time.time() * 1000 + self.spec.timeout * 1000)
            self._arm(instance, lambda: self._timed_out(instance, invocation))
            return invocation

    def respond(self, instance: Instance, request_id: str, outcome: Outcome) -> bool:
        """The function's answer (a response or an error) to its current invocation."""
        with self.lock:
            invocation = instance.current
            if invocation is None or invocation.request_id != request_id:
                return False
            instance.current = None
            self._disarm(instance)
            invocation.settle(outcome)
            return True

    def init_failed(self, instance: Instance, outcome: Outcome) -> None:
        with self.lock:
            first, instance.assigned = instance.assigned, None
            if first is not None:
                first.settle(outcome)
            self._retire(instance, "init error")

    # -- failures ---------------------------------------------------------------------------

    def _arm(self, instance: Instance, fire: Any) -> None:
        self._disarm(instance)
        instance.timer = threading.Timer(self.spec.timeout, fire)
        instance.timer.daemon = True
        instance.timer.start()

    @staticmethod
    def _disarm(instance: Instance) -> None:
        if instance.timer is not None:
            instance.timer.cancel()
            instance.timer = None

    def _timed_out(self, instance: Instance, invocation: Invocation | None) -> None:
        seconds = f"{self.spec.timeout:g}"
        with self.lock:
            if invocation is None:  # still initializing
                if instance.ready or instance.gone:
                    return
                invocation, instance.assigned = instance.assigned, None
            elif instance.current is not invocation:
                return  # answered just in time
            else:
                instance.current = None
            if invocation is not None:
                invocation.settle(Outcome.failure("Sandbox.Timedout", f"Task timed out after {seconds} seconds"))
                log("timed_out", function=self.spec.name, pid=instance.pid, request_id=invocation.request_id)
            self._retire(instance, "timeout")

    def _retire(self, instance: Instance, reason: str) -> None:
        """Kill an environment for good. Called with the lock held; `_watch` cleans up."""
        if instance.retiring or instance.gone:
            return
        instance.retiring = True
        instance.killed_for = reason
        self.changed.notify_all()
        try:
            assert instance.process is not None
            instance.process.kill()
        except ProcessLookupError:
            pass

    def kill(self, all_instances: bool) -> list[int]:
        """SIGKILL the busy environments (or all): what a crash would do."""
        with self.lock:
            targets = [i for i in self.instances if not i.gone and (all_instances or i.busy)]
            for instance in targets:
                self._retire(instance, "killed on request")
            return [i.pid for i in targets]

    def _watch(self, instance: Instance) -> None:
        assert instance.process is not None and instance.server is not None
        code = instance.process.wait()
        with self.lock:
            instance.gone = True
            self._disarm(instance)
            if instance in self.instances:
                self.instances.remove(instance)
            lost = instance.current
            instance.current = None
            undelivered, instance.assigned = instance.assigned, None
            if undelivered is not None:
                if instance.ready:
                    # Handed over but never taken: another environment can still run it.
                    self.pending.appendleft(undelivered)
                else:
                    lost = lost or undelivered  # the invocation this process was started for
            if lost is not None:
                lost.settle(Outcome.failure("Runtime.ExitError", f"RequestId: {lost.request_id} Error: {exit_reason(code)}"))
            self.changed.notify_all()
            self._dispatch()
        log(
            "exited", function=self.spec.name, pid=instance.pid, code=code, reason=instance.killed_for,
            failed_request_id=lost.request_id if lost is not None else None,
        )
        self._note(f"pid {instance.pid} exited: {exit_reason(code)}" + (f" ({instance.killed_for})" if instance.killed_for else ""))
        instance.server.shutdown()
        instance.server.server_close()

    def _note(self, line: str) -> None:
        """A line of our own in the function's log, between its processes' output."""
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self.log_path.open("ab") as out:
            out.write(f"{stamp} [runner] {self.spec.name}: {line}\n".encode())

    # -- admin and shutdown -----------------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"pid": i.pid, "busy": i.busy, "invocations": i.invocations}
                for i in self.instances
                if not i.gone
            ]

    def close(self, grace: float = 5.0) -> None:
        with self.lock:
            self.closing = True
            while self.pending:
                self.pending.popleft().settle(Outcome.failure("ServiceException", "the runner is shutting down"))
            instances = list(self.instances)
            for instance in instances:
                self._retire(instance, "shutdown")
        deadline = time.monotonic() + grace
        for instance in instances:
            assert instance.process is not None
            try:
                instance.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass


# --------------------------------------------------------------------------- HTTP


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A caller that gave up (a client timeout, a killed process) is not the runner's error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the runtime clients keep their connection alive

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # lifecycle events are logged instead; request lines would only be noise

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status: int, body: bytes | Any = b"", headers: dict[str, str] | None = None) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def runtime_api(instance: Instance) -> type[BaseHTTPRequestHandler]:
    """The Lambda Runtime API one environment's process talks to."""
    pool = instance.pool
    invocation_path = re.compile(rf"^{RUNTIME_PREFIX}/invocation/([^/]+)/(response|error)$")

    class RuntimeApi(JsonHandler):
        server_version = "herald-local-runtime"

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            if urlsplit(self.path).path != f"{RUNTIME_PREFIX}/invocation/next":
                return self.send(404, {"errorType": "NotFound", "errorMessage": self.path})
            invocation = pool.next_invocation(instance)
            if invocation is None:
                self.close_connection = True
                return self.send(410, {"errorType": "EnvironmentGone", "errorMessage": "this environment is shutting down"})
            headers = {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": pool.spec.arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            }
            if invocation.client_context:
                headers["Lambda-Runtime-Client-Context"] = invocation.client_context
            if invocation.cognito_identity:
                headers["Lambda-Runtime-Cognito-Identity"] = invocation.cognito_identity
            self.send(200, invocation.payload, headers)

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            path = urlsplit(self.path).path
            body = self.read_body()
            error_type = self.headers.get("lambda-runtime-function-error-type")
            if path == f"{RUNTIME_PREFIX}/init/error":
                pool.init_failed(instance, Outcome.reported(body, error_type, "Runtime.InitError"))
                return self.send(202, {"status": "OK"})
            m = invocation_path.match(path)
            if not m:
                return self.send(404, {"errorType": "NotFound", "errorMessage": path})
            request_id, kind = m.groups()
            if kind == "response" and len(body) > MAX_PAYLOAD:
                outcome = Outcome.failure(
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).",
                )
                pool.respond(instance, request_id, outcome)
                return self.send(413, {"errorType": "RequestEntityTooLarge", "errorMessage": outcome.body.decode()})
            outcome = Outcome(body) if kind == "response" else Outcome.reported(body, error_type, "Unhandled")
            if not pool.respond(instance, request_id, outcome):
                return self.send(400, {"errorType": "InvalidRequestID", "errorMessage": f"not the current invocation: {request_id}"})
            self.send(202, {"status": "OK"})

    return RuntimeApi


class Runner:
    """Every function's pool, by binary name (and by logical id, as an alias)."""

    def __init__(self, specs: list[FunctionSpec], env_file: dict[str, str], concurrency: int, log_dir: Path):
        log_dir.mkdir(parents=True, exist_ok=True)
        base = {k: os.environ[k] for k in INHERITED if k in os.environ}
        self.pools: dict[str, FunctionPool] = {}
        self.aliases: dict[str, FunctionPool] = {}
        for spec in specs:
            env = {**base, "TZ": ":UTC", **spec.environment, **env_file}
            env.setdefault("AWS_REGION", REGION)
            env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
            pool = FunctionPool(spec, env, concurrency, log_dir)
            self.pools[spec.name] = pool
            self.aliases[spec.name] = self.aliases[spec.logical_id] = pool

    def find(self, name: str) -> FunctionPool | None:
        # A name, or an ARN with an optional qualifier.
        name = unquote(name)
        if name.startswith("arn:"):
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else name
        return self.aliases.get(name)

    def close(self) -> None:
        threads = [threading.Thread(target=pool.close) for pool in self.pools.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def invoke_api(runner: Runner) -> type[BaseHTTPRequestHandler]:
    class InvokeApi(JsonHandler):
        server_version = "herald-local-lambda"

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            path = urlsplit(self.path).path
            if path == "/_admin/health":
                return self.send(200, {"ok": True})
            if path == "/_admin/instances":
                return self.send(200, {name: pool.describe() for name, pool in runner.pools.items()})
            self.send(404, {"message": "Not Found"})

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            parts = urlsplit(self.path)
            body = self.read_body()
            m = KILL_PATH.match(parts.path)
            if m:
                pool = runner.find(m.group(1))
                if pool is None:
                    return self.send(404, {"message": f"Function not found: {m.group(1)}"})
                query = parse_qs(parts.query)
                killed = pool.kill(all_instances=query.get("all", ["0"])[0] not in ("0", "", "false"))
                log("kill", function=pool.spec.name, pids=killed)
                return self.send(200, {"killed": killed})
            m = INVOKE_PATH.match(parts.path)
            if not m:
                return self.send(404, {"message": "Not Found"})
            pool = runner.find(m.group(1))
            if pool is None:
                return self.send(
                    404,
                    {"Type": "User", "Message": f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{unquote(m.group(1))}"},
                    {"x-amzn-ErrorType": "ResourceNotFoundException"},
                )
            if len(body) > MAX_PAYLOAD:
                return self.send(
                    413,
                    {"Type": "User", "Message": f"Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"},
                    {"x-amzn-ErrorType": "RequestTooLargeException"},
                )
            invocation = Invocation(
                body or b"{}",
                client_context=self.headers.get("lambda-runtime-client-context") or self.headers.get("x-amz-client-context"),
                cognito_identity=self.headers.get("lambda-runtime-cognito-identity"),
            )
            kind = self.headers.get("x-amz-invocation-type", "RequestResponse")
            if kind == "DryRun":
                return self.send(204)
            if kind == "Event":
                threading.Thread(target=pool.invoke, args=(invocation,), daemon=True).start()
                return self.send(202, b"", {"x-amzn-RequestId": invocation.request_id})
            outcome = pool.invoke(invocation)
            headers = {"x-amzn-RequestId": invocation.request_id, "X-Amz-Executed-Version": "$LATEST"}
            if outcome.error is not None:
                headers["X-Amz-Function-Error"] = "Unhandled"
                log("invocation_failed", function=pool.spec.name, request_id=invocation.request_id, error=outcome.error)
            self.send(200, outcome.body, headers)

    return InvokeApi


# --------------------------------------------------------------------------- main


def load_specs(manifest_path: Path, bin_dir: Path) -> list[FunctionSpec]:
    manifest = json.loads(manifest_path.read_text())
    return [
        FunctionSpec(
            name=spec["binary"],
            logical_id=logical_id,
            executable=(bin_dir / spec["binary"]).resolve(),
            timeout=float(spec.get("timeout", 3)),
            memory=int(spec.get("memory", 128)),
            environment={k: str(v) for k, v in spec.get("environment", {}).items()},
        )
        for logical_id, spec in manifest["functions"].items()
    ]


def exit_with_parent(stop: Any) -> None:
    """Stop once the process that started this one is gone (a test run that was killed)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        stop()

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True, help="what infra/bootstrap.py wrote")
    parser.add_argument("--env-file", type=Path, help="KEY=VALUE lines laid over every function's environment")
    parser.add_argument("--bin-dir", type=Path, default=Path("target/debug"), help="where the function binaries are")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="the Invoke API's port (0: any free one)")
    parser.add_argument("--concurrency", type=int, default=4, help="environments per function at most")
    parser.add_argument("--log-dir", type=Path, help="where <binary>.log files go (default: logs/ beside the manifest)")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process ends")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")

    specs = load_specs(args.manifest, args.bin_dir)
    env_file = read_env_file(args.env_file) if args.env_file else {}
    runner = Runner(specs, env_file, args.concurrency, args.log_dir or args.manifest.parent / "logs")
    server = Server((args.host, args.port), invoke_api(runner))
    stopping = threading.Event()

    def stop(*_: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_parent:
        exit_with_parent(stop)
    host, port = server.server_address[:2]
    log("ready", url=f"http://{host}:{port}", functions=sorted(runner.pools), concurrency=args.concurrency)
    try:
        server.serve_forever()
    finally:
        runner.close()
        server.server_close()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
