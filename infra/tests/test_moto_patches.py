"""The moto server as the local stack runs it (infra/moto_server.py with infra/moto_patches.py):
the SQS paths the patches replace, answering as moto does; the version pin; the per-operation
counts; and DynamoDB refused with a message that names where it is served."""

from __future__ import annotations

import json
import random
import sys
import unittest
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

INFRA = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INFRA))

import moto_patches  # noqa: E402
import servers  # noqa: E402


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )


class PatchedServer(servers.ServerTestCase):
    """One patched moto server for the class, as the local stack runs it."""

    @classmethod
    def command(cls, port: int) -> list[str]:
        return [sys.executable, str(INFRA / "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)]

    @classmethod
    def probe(cls) -> object:
        return client("sqs", cls.endpoint).list_queues()

    def setUp(self) -> None:
        self.name = f"t{random.getrandbits(40)}"

    def report(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_herald/requests") as answer:
            return json.load(answer)


class QueueTest(PatchedServer):
    """The SQS paths the patches replace: receiving, deleting (alone and in batches) and the
    approximate counts, with moto's answers."""

    def test_receive_delete_and_counts(self) -> None:
        sqs = client("sqs", self.endpoint)
        url = sqs.create_queue(QueueName=self.name)["QueueUrl"]
        for start in range(0, 30, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)])
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)

        def counts() -> tuple[int, int, int]:
            a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            return (int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"]),
                    int(a["ApproximateNumberOfMessagesDelayed"]))

        self.assertEqual(counts(), (30, 0, 1))
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
        self.assertEqual(len(first), 10)
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
        self.assertEqual(counts(), (20, 10, 1))
        # An old receipt handle still deletes its message; a made-up one is refused, alone and in a batch.
        old = next(m for m in first if m["MessageId"] in {a["MessageId"] for a in again})
        sqs.delete_message(QueueUrl=url, ReceiptHandle=old["ReceiptHandle"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=old["ReceiptHandle"])  # deleting again is fine
        with self.assertRaises(ClientError) as refused:
            sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
        self.assertEqual(refused.exception.response["Error"]["Code"], "ReceiptHandleIsInvalid")
        rest = [m for m in again if m["MessageId"] != old["MessageId"]]
        entries = [{"Id": f"e{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(rest)]
        entries.append({"Id": "bad", "ReceiptHandle": "not-a-handle"})
        answer = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        self.assertEqual(sorted(e["Id"] for e in answer["Successful"]), sorted(f"e{i}" for i in range(len(rest))))
        self.assertEqual([(e["Id"], e["Code"], e["SenderFault"]) for e in answer["Failed"]],
                         [("bad", "ReceiptHandleIsInvalid", True)])
        self.assertEqual(counts(), (20, 0, 1))
        bodies = set()
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages"):
            bodies |= {m["Body"] for m in got}
        self.assertEqual(len(bodies), 20)
        self.assertNotIn("later", bodies)


class VersionPinTest(unittest.TestCase):
    def test_another_moto_version_is_refused(self) -> None:
        real = moto_patches.moto.__version__
        moto_patches.moto.__version__ = "9.9.9"
        try:
            with self.assertRaises(moto_patches.MotoVersionMismatch):
                moto_patches.apply()
        finally:
            moto_patches.moto.__version__ = real


class RequestCountsTest(PatchedServer):
    def test_the_server_counts_and_times_each_operation(self) -> None:
        sqs = client("sqs", self.endpoint)
        before = self.report().get("AmazonSQS.ListQueues", {"count": 0, "ms": 0})
        for _ in range(3):
            sqs.list_queues()
        after = self.report()["AmazonSQS.ListQueues"]
        self.assertEqual(after["count"] - before["count"], 3)
        self.assertGreater(after["ms"], before["ms"])
        self.assertNotIn("GET /_herald", self.report())


class DynamoDbRefusedTest(PatchedServer):
    def test_a_dynamodb_request_is_refused_with_where_to_send_it(self) -> None:
        with self.assertRaises(ClientError) as refused:
            client("dynamodb", self.endpoint).list_tables()
        error = refused.exception.response["Error"]
        self.assertEqual(error["Code"], "UnknownOperationException")
        self.assertIn("AWS_ENDPOINT_URL_DYNAMODB", error["Message"])
        self.assertNotIn("DynamoDB_20120810.ListTables", self.report())


if __name__ == "__main__":
    unittest.main()
