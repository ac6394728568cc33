"""The local DynamoDB (dynoxide, as `make up` and the tests run it): the transaction behaviours
Herald relies on, over HTTP (condition checks, cancellation reasons with `ALL_OLD` items, one
operation per item, the 100-item limit, GSI entries), and a concurrency test: a cancelled
transaction never undoes another request's committed write."""

from __future__ import annotations

import random
import sys
import threading
import unittest
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

INFRA = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INFRA))

import servers  # noqa: E402

DYNOXIDE = INFRA.parent / ".venv" / "bin" / "dynoxide"

TABLE = "local"


def client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )


def create_table(db: Any, name: str = TABLE) -> None:
    db.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "due_pk", "AttributeType": "S"},
            {"AttributeName": "due_sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "due",
                "KeySchema": [
                    {"AttributeName": "due_pk", "KeyType": "HASH"},
                    {"AttributeName": "due_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )


def s(value: str) -> dict[str, str]:
    return {"S": value}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": s(pk), "sk": s(sk)}


class LocalDynamoDb(servers.ServerTestCase):
    """One dynoxide server for the class, as the local stack runs it."""

    @classmethod
    def command(cls, port: int) -> list[str]:
        return [str(DYNOXIDE), "--host", "127.0.0.1", "--port", str(port)]

    @classmethod
    def probe(cls) -> object:
        return client(cls.endpoint).list_tables()

    def setUp(self) -> None:
        self.db = client(self.endpoint)
        self.table = f"t{random.getrandbits(40)}"
        create_table(self.db, self.table)

    def put(self, pk: str, sk: str, **attrs: dict[str, Any]) -> None:
        self.db.put_item(TableName=self.table, Item={**key(pk, sk), **attrs})

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.db.get_item(TableName=self.table, Key=key(pk, sk), ConsistentRead=True).get("Item")

    def due(self, shard: str) -> list[str]:
        answer = self.db.query(
            TableName=self.table,
            IndexName="due",
            KeyConditionExpression="due_pk = :p",
            ExpressionAttributeValues={":p": s(shard)},
        )
        return [i["sk"]["S"] for i in answer["Items"]]

    def transact(self, *items: dict[str, Any]) -> ClientError | None:
        try:
            self.db.transact_write_items(TransactItems=list(items))
            return None
        except ClientError as e:
            return e


class TransactionTest(LocalDynamoDb):
    def test_a_committed_transaction_applies_every_operation(self) -> None:
        self.put("p", "old", n={"N": "1"})
        self.put("p", "gone")
        error = self.transact(
            {"Put": {"TableName": self.table, "Item": {**key("p", "new"), "due_pk": s("D"), "due_sk": s("1")}}},
            {"Update": {"TableName": self.table, "Key": key("p", "old"), "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": self.table, "Key": key("p", "gone")}},
            {"ConditionCheck": {"TableName": self.table, "Key": key("p", "absent"),
                                "ConditionExpression": "attribute_not_exists(pk)"}},
        )
        self.assertIsNone(error)
        self.assertIsNotNone(self.get("p", "new"))
        self.assertEqual(self.get("p", "old")["n"], {"N": "2"})  # type: ignore[index]
        self.assertIsNone(self.get("p", "gone"))
        self.assertEqual(self.due("D"), ["new"])

    def test_a_cancelled_transaction_changes_nothing_and_says_why(self) -> None:
        self.put("p", "old", n={"N": "1"}, due_pk=s("D"), due_sk=s("1"), expires_at={"N": "1700000000"})
        self.put("p", "gone", due_pk=s("D"), due_sk=s("2"))
        self.put("p", "guard", state=s("closed"))
        self.put("q", "bystander", v=s("untouched"))
        error = self.transact(
            {"Put": {"TableName": self.table, "Item": {**key("p", "new"), "due_pk": s("D"), "due_sk": s("0")}}},
            {"Update": {"TableName": self.table, "Key": key("p", "old"),
                        "UpdateExpression": "SET due_pk = :e, n = :n REMOVE expires_at",
                        "ExpressionAttributeValues": {":e": s("E"), ":n": {"N": "9"}}}},
            {"Update": {"TableName": self.table, "Key": key("p", "created"), "UpdateExpression": "SET due_pk = :d, due_sk = :k",
                        "ExpressionAttributeValues": {":d": s("D"), ":k": s("3")}}},
            {"Delete": {"TableName": self.table, "Key": key("p", "gone")}},
            {"ConditionCheck": {"TableName": self.table, "Key": key("p", "guard"),
                                "ConditionExpression": "#s = :open", "ExpressionAttributeNames": {"#s": "state"},
                                "ExpressionAttributeValues": {":open": s("open")},
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        )
        assert error is not None
        self.assertEqual(error.response["Error"]["Code"], "TransactionCanceledException")
        reasons = error.response["CancellationReasons"]
        self.assertEqual([r["Code"] for r in reasons], ["None", "None", "None", "None", "ConditionalCheckFailed"])
        self.assertEqual(reasons[4]["Item"]["state"], s("closed"))
        self.assertIsNone(self.get("p", "new"))
        self.assertIsNone(self.get("p", "created"))
        self.assertEqual(self.get("p", "old"), {**key("p", "old"), "n": {"N": "1"}, "due_pk": s("D"), "due_sk": s("1"),
                                                "expires_at": {"N": "1700000000"}})
        self.assertIsNotNone(self.get("p", "gone"))
        self.assertEqual(self.get("q", "bystander"), {**key("q", "bystander"), "v": s("untouched")})
        self.assertEqual(self.due("D"), ["old", "gone"])
        self.assertEqual(self.due("E"), [])
        partition = self.db.query(TableName=self.table, KeyConditionExpression="pk = :p",
                                  ExpressionAttributeValues={":p": s("p")})["Items"]
        self.assertEqual([i["sk"]["S"] for i in partition], ["gone", "guard", "old"])

    def test_a_failed_condition_without_all_old_returns_no_item(self) -> None:
        self.put("p", "guard")
        error = self.transact({"ConditionCheck": {"TableName": self.table, "Key": key("p", "guard"),
                                                  "ConditionExpression": "attribute_not_exists(pk)"}})
        assert error is not None
        self.assertNotIn("Item", error.response["CancellationReasons"][0])

    def test_one_operation_per_item_and_at_most_100_items(self) -> None:
        put = {"Put": {"TableName": self.table, "Item": key("p", "twice")}}
        error = self.transact(put, {"Delete": {"TableName": self.table, "Key": key("p", "twice")}})
        assert error is not None
        self.assertEqual(error.response["Error"]["Code"], "ValidationException")
        self.assertIsNone(self.get("p", "twice"), "the first operation was rolled back")
        many = [{"Put": {"TableName": self.table, "Item": key("p", str(i))}} for i in range(101)]
        error = self.transact(*many)
        assert error is not None
        self.assertEqual(error.response["Error"]["Code"], "ValidationException")
        self.assertIsNone(self.get("p", "0"))
        self.assertIsNone(self.transact(*many[:100]))
        self.assertIsNotNone(self.get("p", "99"))

    def test_a_malformed_key_refuses_the_transaction_and_keeps_the_partition(self) -> None:
        self.put("p", "a")
        self.put("p", "b")
        error = self.transact(
            {"Put": {"TableName": self.table, "Item": key("p", "new")}},
            {"Update": {"TableName": self.table, "Key": {"pk": s("p")}, "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "1"}}}},
        )
        assert error is not None
        self.assertIsNone(self.get("p", "new"))
        self.assertIsNotNone(self.get("p", "a"))
        self.assertIsNotNone(self.get("p", "b"))

    def test_a_cancelled_transaction_never_undoes_another_requests_write(self) -> None:
        """Two clients on one table: one commits writes, the other runs transactions that are
        always cancelled after writing. Every committed write must survive."""
        self.put("p", "guard")
        rounds = 150
        failures: list[BaseException] = []

        def writer() -> None:
            db = client(self.endpoint)
            try:
                for i in range(rounds):
                    db.put_item(TableName=self.table, Item={**key("w", f"{i:04}"), "due_pk": s("W"), "due_sk": s(f"{i:04}")})
            except BaseException as e:  # noqa: BLE001
                failures.append(e)

        def canceller() -> None:
            db = client(self.endpoint)
            try:
                for i in range(rounds):
                    try:
                        db.transact_write_items(TransactItems=[
                            {"Put": {"TableName": self.table, "Item": {**key("c", f"{i:04}"), "due_pk": s("W"), "due_sk": s("c")}}},
                            {"Update": {"TableName": self.table, "Key": key("w", f"{i:04}"), "UpdateExpression": "SET lost = :t",
                                        "ExpressionAttributeValues": {":t": {"BOOL": True}}}},
                            {"ConditionCheck": {"TableName": self.table, "Key": key("p", "guard"),
                                                "ConditionExpression": "attribute_not_exists(pk)"}},
                        ])
                        failures.append(AssertionError("the transaction committed"))
                    except ClientError as e:
                        if e.response["Error"]["Code"] != "TransactionCanceledException":
                            raise
            except BaseException as e:  # noqa: BLE001
                failures.append(e)

        threads = [threading.Thread(target=writer), threading.Thread(target=canceller)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(failures, [])
        written = self.db.query(TableName=self.table, KeyConditionExpression="pk = :p",
                                ExpressionAttributeValues={":p": s("w")}, ConsistentRead=True)["Items"]
        self.assertEqual(len(written), rounds)
        self.assertTrue(all("lost" not in item for item in written))
        self.assertEqual(self.db.query(TableName=self.table, KeyConditionExpression="pk = :p",
                                       ExpressionAttributeValues={":p": s("c")})["Count"], 0)
        self.assertEqual(len(self.due("W")), rounds)


if __name__ == "__main__":
    unittest.main()
