"""infra/moto_cbor.py: CloudWatch's CBOR protocol answered from moto's backend (the Rust tests
drive the happy path through the AWS SDK; these pin the edges): timestamps as tag 1 around a
float, errors as CBOR with `__type`, other requests passed through untouched."""

from __future__ import annotations

import io
import sys
import unittest
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moto_cbor import cloudwatch_cbor  # noqa: E402

PASSED = [b"passed through"]


def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return PASSED


def call(operation: str, raw: bytes, protocol: str = "rpc-v2-cbor") -> tuple[str, dict[str, str], bytes]:
    environ = {
        "PATH_INFO": f"/service/GraniteServiceVersion20100801/operation/{operation}",
        "HTTP_SMITHY_PROTOCOL": protocol,
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=test/20261204/eu-west-1/monitoring/aws4_request",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(cloudwatch_cbor(inner)(environ, start_response))
    return seen["status"], seen["headers"], body


class CloudWatchCbor(unittest.TestCase):
    def test_a_datum_put_is_read_back_with_float_timestamps(self) -> None:
        now = datetime.now(UTC).replace(second=30, microsecond=0)
        dims = [{"Name": "QueueName", "Value": "cbor-test-q"}]
        metric = {"Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage", "Dimensions": dims}
        datum = {"MetricName": metric["MetricName"], "Dimensions": dims, "Timestamp": now, "Value": 61.0}
        put = {"Namespace": "AWS/SQS", "MetricData": [datum]}
        status, headers, _ = call("PutMetricData", cbor2.dumps(put, datetime_as_timestamp=True))
        self.assertEqual((status, headers["smithy-protocol"]), ("200 OK", "rpc-v2-cbor"))
        query = {
            "MetricDataQueries": [{"Id": "age", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum"}}],
            "StartTime": now - timedelta(minutes=5),
            "EndTime": now + timedelta(minutes=1),
        }
        status, headers, body = call("GetMetricData", cbor2.dumps(query, datetime_as_timestamp=True))
        self.assertEqual(status, "200 OK")
        self.assertEqual(headers["Content-Type"], "application/cbor")
        [result] = cbor2.loads(body)["MetricDataResults"]
        self.assertEqual(result["Values"], [61.0])
        self.assertEqual(result["Timestamps"], [now], "the period that holds the datum starts at StartTime + 5 min")
        self.assertIn(b"\xc1\xfb", body, "tag 1 around a double: the SDK refuses an integer epoch")

    def test_an_operation_not_emulated_and_a_body_that_is_not_cbor_are_cbor_errors(self) -> None:
        status, _, body = call("DescribeAlarms", cbor2.dumps({}))
        self.assertEqual(status, "400 Bad Request")
        self.assertEqual(cbor2.loads(body)["__type"], "com.amazonaws.cloudwatch#InvalidAction")
        status, _, body = call("GetMetricData", b"\xff\x00not cbor")
        self.assertEqual(status, "400 Bad Request")
        self.assertEqual(cbor2.loads(body)["__type"], "com.amazonaws.cloudwatch#SerializationException")
        status, _, body = call("GetMetricData", cbor2.dumps({"MetricDataQueries": []}))
        self.assertEqual(status, "400 Bad Request", "no StartTime")
        self.assertIn("StartTime", cbor2.loads(body)["message"])

    def test_other_requests_pass_through(self) -> None:
        self.assertEqual(call("GetMetricData", b"Action=GetMetricData", protocol="")[2], b"passed through")


if __name__ == "__main__":
    unittest.main()
