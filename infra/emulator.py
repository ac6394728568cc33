"""Local event sources: feed Herald's functions as AWS would, from the manifest bootstrap.py wrote.

- HTTP API: an HTTP server that matches each request against the functions' `HttpApi` routes
  (`/v1/{proxy+}`, ...) and invokes the function with an API Gateway payload format 2.0 event,
  then turns the function's answer back into an HTTP response.
- SQS: per `SQS` event source, pollers receive up to `BatchSize` messages, invoke the function
  with an SQS event, and delete what it processed. With `ReportBatchItemFailures` only the
  records the function did not list in `batchItemFailures` are deleted (a malformed list fails
  the whole batch, as AWS does); a function error or timeout deletes nothing. Messages left on
  the queue come back after their visibility timeout, and SQS's redrive policy moves them to
  the DLQ after `maxReceiveCount` receives.
- Schedules: each `Schedule` event fires every `--schedule-seconds` (a few seconds instead of
  the template's rate, so local runs are quick), one run at a time, at a fixed rate and each at
  its own phase (as EventBridge rules fire at whatever phase they were created with): fired all
  at once, every function's scheduled run met the others' calls on the emulator every period.

Functions are invoked through the Lambda Invoke API of the local runner (infra/runner.py).

    python infra/emulator.py --manifest .herald/manifest.json --runtime http://127.0.0.1:9000 \
        --endpoint-url http://127.0.0.1:4566 --http-port 3000
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "123456789012"
MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous invocation limit
API_GATEWAY_TIMEOUT = 30.0  # HTTP APIs give up on an integration after 30 s


def log(event: str, **fields: Any) -> None:
    """One JSON line per event. Never bodies, headers or tokens."""
    line = {"time": datetime.now(timezone.utc).isoformat(), "component": "emulator", "event": event}
    line.update(fields)
    print(json.dumps(line), flush=True)


# --------------------------------------------------------------------------- invoking


@dataclass
class Invocation:
    ok: bool
    payload: Any
    error: str | None = None


class Invoker:
    """Invokes a function by its binary name through the Lambda Invoke API."""

    def __init__(self, runtime_url: str):
        parts = urlsplit(runtime_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 9000

    def invoke(self, function: str, event: Any, timeout: float) -> Invocation:
        body = json.dumps(event).encode()
        if len(body) > MAX_PAYLOAD:
            return Invocation(False, None, "RequestEntityTooLarge")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(
                "POST",
                f"/2015-03-31/functions/{function}/invocations",
                body=body,
                headers={"content-type": "application/json"},
            )
            response = conn.getresponse()
            raw = response.read()
            function_error = response.getheader("x-amz-function-error")
        except (OSError, http.client.HTTPException) as e:
            return Invocation(False, None, f"{type(e).__name__}")
        finally:
            conn.close()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        if response.status >= 300 or function_error or _is_error_payload(payload):
            kind = payload.get("errorType") if isinstance(payload, dict) else None
            return Invocation(False, payload, kind or function_error or f"HTTP {response.status}")
        return Invocation(True, payload)


def _is_error_payload(payload: Any) -> bool:
    return isinstance(payload, dict) and set(payload) <= {"errorType", "errorMessage", "stackTrace"} and "errorType" in payload


# --------------------------------------------------------------------------- HTTP API


@dataclass
class Route:
    function: str
    timeout: float
    method: str
    template: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, function: str, timeout: float, method: str, template: str) -> Route:
        regex = ""
        for piece in re.split(r"(\{[^}]+\})", template):
            if piece.startswith("{") and piece.endswith("+}"):
                regex += f"(?P<{piece[1:-2]}>.+)"
            elif piece.startswith("{"):
                regex += f"(?P<{piece[1:-1]}>[^/]+)"
            else:
                regex += re.escape(piece)
        return cls(function, timeout, method, template, re.compile(f"^{regex}$"))

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    def specificity(self) -> tuple[int, int]:
        # API Gateway prefers the most specific route: fewer greedy variables, longer literals.
        return (self.template.count("+}"), -len(re.sub(r"\{[^}]+\}", "", self.template)))


def gateway_handler(routes: list[Route], invoker: Invoker) -> type[BaseHTTPRequestHandler]:
    routes = sorted(routes, key=Route.specificity)

    class Gateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "herald-local-gateway"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # one structured line per request instead, below

        def _handle(self) -> None:
            started = time.monotonic()
            parts = urlsplit(self.path)
            if parts.path == "/_local/health":
                return self._send(200, {"content-type": "application/json"}, b'{"ok":true}')
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_PAYLOAD:
                return self._send(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            body = self.rfile.read(length) if length else b""
            match = self._match(parts.path)
            if match is None:
                return self._send(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            route, params = match
            event = self._event(route, params, parts.path, parts.query, body)
            result = invoker.invoke(route.function, event, timeout=min(route.timeout, API_GATEWAY_TIMEOUT))
            if not result.ok:
                status = 503 if result.error in ("TimeoutError", "timeout") else 500
                text = b'{"message":"Service Unavailable"}' if status == 503 else b'{"message":"Internal Server Error"}'
                log("http.error", route=route.key, function=route.function, error=result.error)
                return self._send(status, {"content-type": "application/json"}, text)
            status, headers, out = self._response(result.payload)
            self._send(status, headers, out)
            log(
                "http",
                method=self.command,
                route=route.key,
                status=status,
                ms=round((time.monotonic() - started) * 1000, 1),
                request_id=event["requestContext"]["requestId"],
            )

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # A method API Gateway routes to no integration (TRACE, CONNECT, QUERY...): it
            # answers 404 with its own body, as for an unknown route, never 501.
            if code == 501:
                self.close_connection = True
                return self._send(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            super().send_error(code, message, explain)

        def _match(self, path: str) -> tuple[Route, dict[str, str]] | None:
            for route in routes:
                if route.method not in ("ANY", self.command):
                    continue
                m = route.pattern.match(path)
                if m:
                    return route, m.groupdict()
            return None

        def _event(self, route: Route, params: dict[str, str], path: str, query: str, body: bytes) -> dict[str, Any]:
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                name = name.lower()
                headers[name] = f"{headers[name]},{value}" if name in headers else value
            cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
            # API Gateway appends the client's address to X-Forwarded-For.
            forwarded = headers.get("x-forwarded-for")
            headers["x-forwarded-for"] = f"{forwarded},{self.client_address[0]}" if forwarded else self.client_address[0]
            qs: dict[str, str] = {}
            for k, v in parse_qsl(query, keep_blank_values=True):
                qs[k] = f"{qs[k]},{v}" if k in qs else v
            now = datetime.now(timezone.utc)
            try:
                text, is_b64 = body.decode("utf-8"), False
            except UnicodeDecodeError:
                text, is_b64 = base64.b64encode(body).decode(), True
            event: dict[str, Any] = {
                "version": "2.0",
                "routeKey": route.key,
                "rawPath": path,
                "rawQueryString": query,
                "headers": headers,
                "requestContext": {
                    "accountId": ACCOUNT,
                    "apiId": "local",
                    "domainName": headers.get("host", "127.0.0.1"),
                    "domainPrefix": "local",
                    "http": {
                        "method": self.command,
                        "path": path,
                        "protocol": "HTTP/1.1",
                        "sourceIp": self.client_address[0],
                        "userAgent": headers.get("user-agent", ""),
                    },
                    "requestId": str(uuid.uuid4()),
                    "routeKey": route.key,
                    "stage": "$default",
                    "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                    "timeEpoch": int(now.timestamp() * 1000),
                },
                "isBase64Encoded": is_b64,
            }
            if cookies:
                event["cookies"] = cookies
            if qs:
                event["queryStringParameters"] = qs
            if params:
                event["pathParameters"] = params
            if body:
                event["body"] = text
            return event

        @staticmethod
        def _response(payload: Any) -> tuple[int, dict[str, str], bytes]:
            if not (isinstance(payload, dict) and "statusCode" in payload):
                # Payload format 2.0 without a status code: API Gateway answers 200 with the JSON.
                return 200, {"content-type": "application/json"}, json.dumps(payload).encode()
            headers = {k.lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
            for name, values in (payload.get("multiValueHeaders") or {}).items():
                headers[name.lower()] = ",".join(values)
            body = payload.get("body") or ""
            out = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
            cookies = payload.get("cookies") or []
            if cookies:
                headers["set-cookie"] = cookies[0]  # enough for local use
            return int(payload["statusCode"]), headers, out

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Gateway


# --------------------------------------------------------------------------- SQS


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    attributes = {
        k: v
        for k, v in message.get("Attributes", {}).items()
        if k
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "MessageGroupId",
            "MessageDeduplicationId",
            "SequenceNumber",
            "AWSTraceHeader",
        )
    }
    message_attributes = {}
    for name, a in message.get("MessageAttributes", {}).items():
        converted: dict[str, Any] = {"dataType": a["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in a:
            converted["stringValue"] = a["StringValue"]
        if "BinaryValue" in a:
            converted["binaryValue"] = base64.b64encode(a["BinaryValue"]).decode()
        message_attributes[name] = converted
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def failed_ids(payload: Any, ids: set[str]) -> set[str] | None:
    """The ids to keep on the queue, or None when the response fails the whole batch."""
    if payload is None or (isinstance(payload, dict) and not payload.get("batchItemFailures")):
        return set()
    if not isinstance(payload, dict) or not isinstance(payload["batchItemFailures"], list):
        return None
    keep = set()
    for failure in payload["batchItemFailures"]:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not item or item not in ids:
            return None
        keep.add(item)
    return keep


def sqs_poller(sqs: Any, invoker: Invoker, function: str, timeout: float, source: dict[str, Any], stop: threading.Event) -> None:
    queue_url, queue_arn = source["queue_url"], source["queue_arn"]
    while not stop.is_set():
        try:
            received = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(source["batch_size"], 10),
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except Exception as e:  # noqa: BLE001 - keep polling through emulator hiccups
            log("sqs.receive_error", function=function, error=type(e).__name__)
            stop.wait(1)
            continue
        if not received:
            continue
        records = [sqs_record(m, queue_arn) for m in received]
        result = invoker.invoke(function, {"Records": records}, timeout=timeout + 5)
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in received}
        if not result.ok:
            log("sqs.batch_failed", function=function, records=len(records), error=result.error)
            continue
        keep = failed_ids(result.payload, set(handles)) if source["report_batch_item_failures"] else set()
        if keep is None:
            log("sqs.invalid_batch_response", function=function, records=len(records))
            continue
        done = [{"Id": str(i), "ReceiptHandle": h} for i, (mid, h) in enumerate(handles.items()) if mid not in keep]
        if done:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)
        log("sqs.batch", function=function, records=len(records), deleted=len(done), kept=len(keep))


# --------------------------------------------------------------------------- schedules


def scheduler(
    invoker: Invoker, function: str, timeout: float, source: dict[str, Any], every: float, phase: float, stop: threading.Event
) -> None:
    """Fires at `phase`, then every `every` seconds after it (a run that overruns its period
    delays the next one, never doubles it)."""
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{function}-{source['id']}"
    due = time.monotonic() + phase
    while not stop.wait(max(0.0, due - time.monotonic())):
        due = max(due + every, time.monotonic())
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [rule_arn],
            "detail": {},
        }
        result = invoker.invoke(function, event, timeout=timeout + 5)
        if not result.ok:
            log("schedule.failed", function=function, error=result.error)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--runtime", default="http://127.0.0.1:9000", help="the Lambda runner's address (infra/runner.py)")
    parser.add_argument("--endpoint-url", required=True, help="the AWS emulator")
    parser.add_argument("--http-host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=3000)
    parser.add_argument("--schedule-seconds", type=float, default=2.0)
    parser.add_argument("--sqs-pollers", type=int, default=2, help="concurrent pollers per SQS source")
    args = parser.parse_args(argv)

    manifest = json.loads(args.manifest.read_text())
    invoker = Invoker(args.runtime)
    sqs = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    ).client("sqs", endpoint_url=args.endpoint_url, config=Config(retries={"max_attempts": 3}))
    stop = threading.Event()
    routes: list[Route] = []
    schedules: list[tuple[str, float, dict[str, Any]]] = []
    threads = []
    for spec in manifest["functions"].values():
        fn, timeout = spec["binary"], float(spec["timeout"])
        for source in spec["events"]:
            if source["type"] == "http":
                routes.append(Route.parse(fn, timeout, source["method"], source["path"]))
            elif source["type"] == "sqs":
                for _ in range(args.sqs_pollers):
                    threads.append(threading.Thread(target=sqs_poller, args=(sqs, invoker, fn, timeout, source, stop), daemon=True))
            elif source["type"] == "schedule":
                schedules.append((fn, timeout, source))
    for i, (fn, timeout, source) in enumerate(schedules):
        phase = args.schedule_seconds * (i + 1) / len(schedules)
        threads.append(threading.Thread(target=scheduler, args=(invoker, fn, timeout, source, args.schedule_seconds, phase, stop), daemon=True))

    server = ThreadingHTTPServer((args.http_host, args.http_port), gateway_handler(routes, invoker))
    server.daemon_threads = True

    def shutdown(*_: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    for t in threads:
        t.start()
    log("ready", http=f"http://{args.http_host}:{server.server_port}", routes=[r.key for r in routes], pollers=len(threads))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
