"""CloudWatch's Smithy RPC v2 CBOR protocol for moto, which speaks only CloudWatch's older query
protocol: the AWS SDK for Rust has sent CloudWatch requests as CBOR since 2025, so without this
every CloudWatch call of Herald's health check fails against the emulator.

A WSGI wrapper: a request with `smithy-protocol: rpc-v2-cbor` to
`/service/GraniteServiceVersion20100801/operation/<Operation>` is decoded with `cbor2` and
answered from moto's own CloudWatch backend; every other request passes through untouched.
Only the operations Herald uses are served (`PutMetricData`, which the tests use to stand in
for what SQS reports on AWS, and `GetMetricData`); any other answers a CBOR error naming it.
Hand-written: no package translates between the two protocols.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import cbor2
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID

PATH = re.compile(r"^/service/GraniteServiceVersion20100801/operation/(\w+)$")
REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def naive_utc(value: Any) -> Any:
    """moto keeps CloudWatch times as naive UTC; CBOR's are aware. Recursively."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, list):
        return [naive_utc(v) for v in value]
    if isinstance(value, dict):
        return {k: naive_utc(v) for k, v in value.items()}
    return value


def epoch_seconds(t: datetime) -> cbor2.CBORTag:
    """A timestamp as the protocol has it: tag 1 around a float (the SDK refuses an integer,
    which is what cbor2 writes for a whole second)."""
    aware = t.replace(tzinfo=UTC) if t.tzinfo is None else t
    return cbor2.CBORTag(1, float(aware.timestamp()))


def put_metric_data(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    backend.put_metric_data(request["Namespace"], request.get("MetricData", []))
    return {}


def get_metric_data(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    results = backend.get_metric_data(
        queries=request.get("MetricDataQueries", []),
        start_time=request["StartTime"],
        end_time=request["EndTime"],
        scan_by=request.get("ScanBy") or "TimestampDescending",
    )
    return {
        "MetricDataResults": [
            {
                "Id": r["id"],
                "Label": r["label"],
                "Timestamps": [epoch_seconds(t) for t in r["timestamps"]],
                "Values": [float(v) for v in r["values"]],
                "StatusCode": r["status_code"],
            }
            for r in results
        ],
        "Messages": [],
    }


OPERATIONS: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
    "PutMetricData": put_metric_data,
    "GetMetricData": get_metric_data,
}


def answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> Iterable[bytes]:
    payload = cbor2.dumps(body, datetime_as_timestamp=True, timezone=UTC)
    start_response(
        status,
        [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(payload))),
        ],
    )
    return [payload]


def error(start_response: Callable[..., Any], code: str, message: str) -> Iterable[bytes]:
    return answer(start_response, "400 Bad Request", {"__type": f"com.amazonaws.cloudwatch#{code}", "message": message})


def cloudwatch_cbor(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = PATH.match(environ.get("PATH_INFO", ""))
        if environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor" or not found:
            return app(environ, start_response)
        operation = OPERATIONS.get(found.group(1))
        if operation is None:
            return error(start_response, "InvalidAction", f"{found.group(1)} is not emulated (infra/moto_cbor.py)")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            request = naive_utc(cbor2.loads(raw)) if raw else {}
        except (cbor2.CBORDecodeError, ValueError) as e:
            return error(start_response, "SerializationException", f"the body is not CBOR: {e}")
        region = REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
        backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region.group(1) if region else "us-east-1"]
        try:
            return answer(start_response, "200 OK", operation(backend, request))
        except (KeyError, TypeError) as e:
            return error(start_response, "MissingParameter", f"missing or malformed parameter: {e}")
        except Exception as e:  # moto's own validation errors carry their AWS code
            return error(start_response, getattr(e, "code", type(e).__name__), str(getattr(e, "message", e)))

    return wrapped
