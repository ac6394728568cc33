"""How moto's DynamoDB and SQS paths grow with the data they hold, with and without
infra/moto_patches.py. In-process (moto's backends through boto3, no HTTP), so the figures are
moto's own cost; one `BENCH <name> <value> <unit>` line per figure, like `make bench`.

    .venv/bin/python infra/bench_moto.py [--sizes 10000,100000] [--unpatched]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent))

import moto_patches  # noqa: E402

TABLE = "bench"
ACCOUNT, REGION = "123456789012", "us-east-1"


def median_ms(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def seed_table(db: Any, items: int) -> None:
    """Herald's shape: tenant partitions of posts, a sparse `due` GSI on one in ten."""
    from moto.dynamodb.models import dynamodb_backends

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
    table = dynamodb_backends[ACCOUNT][REGION].get_table(TABLE)
    for i in range(items):
        item = {"pk": {"S": f"TENANT#{i % 100}"}, "sk": {"S": f"POST#{i:08}"}, "status": {"S": "scheduled"},
                "body": {"S": "x" * 200}}
        if i % 10 == 0:
            item.update(due_pk={"S": f"DUE#{i % 8}"}, due_sk={"S": f"{i:08}"})
        table.put_item(item)


def dynamodb_figures(db: Any, size: int, label: str) -> None:
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

    slow = label == "unpatched" and size >= 100_000
    repeats = 3 if slow else 20
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
        print(f"BENCH moto.{label}.{size}.{name} {median_ms(run, repeats):.2f} ms", flush=True)


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

    print(f"BENCH moto.{label}.sqs{messages}.receive10_delete10 {median_ms(receive_delete, 20):.2f} ms", flush=True)
    send = lambda: sqs.send_message(QueueUrl=url, MessageBody="{}")  # noqa: E731
    print(f"BENCH moto.{label}.sqs{messages}.send {median_ms(send, 20):.2f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--messages", default="1000,10000")
    parser.add_argument("--unpatched", action="store_true", help="measure moto as released, for comparison")
    args = parser.parse_args()
    label = "unpatched" if args.unpatched else "patched"
    if not args.unpatched:
        moto_patches.apply()
    for size in (int(s) for s in args.sizes.split(",")):
        with mock_aws():
            db = boto3.client("dynamodb", region_name=REGION)
            seed_table(db, size)
            dynamodb_figures(db, size, label)
    for messages in (int(m) for m in args.messages.split(",")):
        with mock_aws():
            sqs_figures(messages, label)


if __name__ == "__main__":
    main()
