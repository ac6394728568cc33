"""How the local AWS's paths grow with the data they hold: DynamoDB (dynoxide, over HTTP as the
stack runs it) at each table size, and SQS (moto, in-process, with and without
infra/moto_patches.py) at each queue length. One `BENCH <name> <value> <unit>` line per
figure, like `make bench`.

    .venv/bin/python infra/bench_local_aws.py [--sizes 10000,100000] [--messages 1000,10000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

INFRA = Path(__file__).resolve().parent
sys.path.insert(0, str(INFRA))

import moto_patches  # noqa: E402
import servers  # noqa: E402

TABLE = "bench"
REGION = "us-east-1"
DYNOXIDE = INFRA.parent / ".venv" / "bin" / "dynoxide"


def median_ms(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def dynamodb() -> tuple[subprocess.Popen[bytes], Any]:
    """A fresh dynoxide server on a free port, and a client of it."""
    port = servers.free_port()
    db = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")
    server = servers.start([str(DYNOXIDE), "--host", "127.0.0.1", "--port", str(port)], db.list_tables, timeout=10)
    return server, db


def seed_table(db: Any, items: int) -> None:
    """Herald's shape: tenant partitions of posts, a sparse `due` GSI on one in ten."""
    db.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "due_pk", "due_sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "due",
            "KeySchema": [{"AttributeName": "due_pk", "KeyType": "HASH"}, {"AttributeName": "due_sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
    )
    for start in range(0, items, 25):
        batch = []
        for i in range(start, min(start + 25, items)):
            item = {"pk": {"S": f"TENANT#{i % 100}"}, "sk": {"S": f"POST#{i:08}"}, "status": {"S": "scheduled"},
                    "body": {"S": "x" * 200}}
            if i % 10 == 0:
                item.update(due_pk={"S": f"DUE#{i % 8}"}, due_sk={"S": f"{i:08}"})
            batch.append({"PutRequest": {"Item": item}})
        db.batch_write_item(RequestItems={TABLE: batch})


def dynamodb_figures(db: Any, size: int) -> None:
    counter = iter(range(10**9))

    def transact_cancelled() -> None:
        n = next(counter)
        try:
            db.transact_write_items(TransactItems=[
                {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "TENANT#1"}, "sk": {"S": "POST#00000001"}},
                            "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": str(n)}}}},
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "AUDIT#1"}, "sk": {"S": f"{n}"}}}},
                {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "CRISIS"}, "sk": {"S": "CRISIS"}},
                                    "ConditionExpression": "attribute_exists(pk)"}},
            ])
        except ClientError:
            pass

    def transact_committed() -> None:
        n = next(counter)
        db.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "TENANT#2"}, "sk": {"S": "POST#00000002"}},
                        "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": str(n)}}}},
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "AUDIT#2"}, "sk": {"S": f"{n}"}}}},
        ])

    repeats = 20
    figures = {
        "transact_committed": transact_committed,
        "transact_cancelled": transact_cancelled,
        "query_table_limit5": lambda: db.query(
            TableName=TABLE, KeyConditionExpression="pk = :p AND begins_with(sk, :s)", Limit=5, ScanIndexForward=False,
            ExpressionAttributeValues={":p": {"S": "TENANT#7"}, ":s": {"S": "POST#"}}),
        "query_gsi": lambda: db.query(
            TableName=TABLE, IndexName="due", KeyConditionExpression="due_pk = :p AND due_sk < :t", Limit=100,
            ExpressionAttributeValues={":p": {"S": "DUE#3"}, ":t": {"S": "00005000"}}),
        "scan_limit25": lambda: db.scan(TableName=TABLE, Limit=25),
        "batch_get3": lambda: db.batch_get_item(RequestItems={TABLE: {"Keys": [
            {"pk": {"S": f"TENANT#{i}"}, "sk": {"S": f"POST#{i:08}"}} for i in (1, 2, 3)], "ConsistentRead": True}}),
        "get_item": lambda: db.get_item(TableName=TABLE, Key={"pk": {"S": "TENANT#5"}, "sk": {"S": "POST#00000005"}}),
    }
    for name, run in figures.items():
        print(f"BENCH local_aws.dynamodb.{size}.{name} {median_ms(run, repeats):.2f} ms", flush=True)


def sqs_figures(messages: int, label: str) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=f"bench-{messages}")["QueueUrl"]
    for start in range(0, messages, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "{}"} for i in range(10)])

    def receive_delete() -> None:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        if got:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])

    print(f"BENCH local_aws.sqs.{label}.{messages}.receive10_delete10 {median_ms(receive_delete, 20):.2f} ms", flush=True)
    send = lambda: sqs.send_message(QueueUrl=url, MessageBody="{}")  # noqa: E731
    print(f"BENCH local_aws.sqs.{label}.{messages}.send {median_ms(send, 20):.2f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--messages", default="1000,10000")
    parser.add_argument("--unpatched", action="store_true", help="SQS on moto as released, for comparison")
    parser.add_argument("--no-dynamodb", action="store_true", help="SQS figures only")
    args = parser.parse_args()
    label = "unpatched" if args.unpatched else "patched"
    if not args.unpatched:
        moto_patches.apply()
    for size in () if args.no_dynamodb else (int(s) for s in args.sizes.split(",")):
        server, db = dynamodb()
        try:
            seed_table(db, size)
            dynamodb_figures(db, size)
        finally:
            server.kill()
            server.wait()
    for messages in (int(m) for m in args.messages.split(",")):
        with mock_aws():
            sqs_figures(messages, label)


if __name__ == "__main__":
    main()
