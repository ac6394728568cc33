"""The moto patches (infra/moto_patches.py): moto's transaction behaviours that Herald relies on,
run against the patched server over HTTP; a concurrency test; and a property test that the
narrowed queries answer exactly what moto's full reads answer, through every write path."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

INFRA = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INFRA))

import moto_patches  # noqa: E402

TABLE = "patched"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class PatchedServer(unittest.TestCase):
    """One patched moto server for the class, as the local stack runs it."""

    server: subprocess.Popen[bytes]
    endpoint: str

    @classmethod
    def setUpClass(cls) -> None:
        port = free_port()
        cls.server = subprocess.Popen(
            [sys.executable, str(INFRA / "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cls.endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                client(cls.endpoint).list_tables()
                break
            except Exception:  # noqa: BLE001 (not up yet)
                if time.monotonic() > deadline or cls.server.poll() is not None:
                    cls.server.kill()
                    raise
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.terminate()
        cls.server.wait(10)

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


class TransactionTest(PatchedServer):
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


class QueueTest(PatchedServer):
    """The SQS paths the patches replace: receiving, deleting (alone and in batches) and the
    approximate counts, with moto's answers."""

    def test_receive_delete_and_counts(self) -> None:
        sqs = boto3.client("sqs", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        url = sqs.create_queue(QueueName=self.table)["QueueUrl"]
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


class NarrowedQueryTest(unittest.TestCase):
    """Random writes through every write path, then random queries answered both by the
    narrowed path and by moto's own full read: the answers must be identical."""

    def test_narrowed_queries_answer_what_moto_answers(self) -> None:
        from moto import mock_aws
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.table import Table

        moto_patches.apply()
        rng = random.Random(7)
        with mock_aws():
            db = boto3.client("dynamodb", region_name="us-east-1")
            create_table(db)
            table = dynamodb_backends["123456789012"]["us-east-1"].get_table(TABLE)
            for round_ in range(12):
                self.write_randomly(db, rng, 40)
                for _ in range(25):
                    request = self.random_query(rng)
                    narrowed = db.query(TableName=TABLE, **request)
                    with self.full_reads(Table):
                        full = db.query(TableName=TABLE, **request)
                    self.assertEqual(narrowed["Items"], full["Items"], f"round {round_}: {request}")
                    self.assertEqual(narrowed.get("LastEvaluatedKey"), full.get("LastEvaluatedKey"))
                    if "LastEvaluatedKey" in narrowed:  # the next page, from the cursor
                        request["ExclusiveStartKey"] = narrowed["LastEvaluatedKey"]
                        narrowed = db.query(TableName=TABLE, **request)
                        with self.full_reads(Table):
                            full = db.query(TableName=TABLE, **request)
                        self.assertEqual(narrowed["Items"], full["Items"], f"round {round_}: {request}")
                self.scan_all(db, Table, 50, full=False)  # then one write, which the next scan must see
                db.put_item(TableName=TABLE, Item=self.random_item(rng))
                self.assertEqual(self.scan_all(db, Table, rng.randrange(1, 9), full=False),
                                 self.scan_all(db, Table, rng.randrange(1, 9), full=True), f"round {round_}: scan")
            self.assertIn("_herald_gsi", table.__dict__, "the GSI path was exercised")

    def scan_all(self, db: Any, table_class: Any, limit: int, full: bool) -> list[Any]:
        """Every item by Scan pages of `limit`, with the patched paths or with moto's own."""
        items: list[Any] = []
        request: dict[str, Any] = {"TableName": TABLE, "Limit": limit}
        if full:
            table_class.all_items = moto_patches._ORIGINAL["all_items"]
        try:
            while True:
                page = db.scan(**request)
                items += page["Items"]
                if "LastEvaluatedKey" not in page:
                    return items
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        finally:
            table_class.all_items = moto_patches._all_items

    @staticmethod
    def full_reads(table_class: Any) -> Any:
        class Full:
            def __enter__(self) -> None:
                table_class.query = moto_patches._ORIGINAL["query"]

            def __exit__(self, *_: object) -> None:
                table_class.query = moto_patches._query

        return Full()

    @staticmethod
    def random_item(rng: random.Random) -> dict[str, Any]:
        item = {**key(f"p{rng.randrange(4)}", f"s{rng.randrange(30):02}"), "n": {"N": str(rng.randrange(9))}}
        if rng.random() < 0.6:
            item["due_pk"] = s(f"D{rng.randrange(3)}")
        if rng.random() < 0.8:
            item["due_sk"] = s(f"{rng.randrange(50):02}")
        return item

    def write_randomly(self, db: Any, rng: random.Random, count: int) -> None:
        for _ in range(count):
            roll = rng.random()
            item = self.random_item(rng)
            k = {"pk": item["pk"], "sk": item["sk"]}
            if roll < 0.35:
                db.put_item(TableName=TABLE, Item=item)
            elif roll < 0.55:
                db.update_item(TableName=TABLE, Key=k, UpdateExpression="SET due_pk = :d",
                               ExpressionAttributeValues={":d": s(f"D{rng.randrange(3)}")})
            elif roll < 0.65:
                db.update_item(TableName=TABLE, Key=k, UpdateExpression="REMOVE due_pk")
            elif roll < 0.75:
                db.delete_item(TableName=TABLE, Key=k)
            elif roll < 0.85:
                db.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": self.random_item(rng)}},
                                                          {"DeleteRequest": {"Key": k}}]})
            else:
                others = {(i["pk"]["S"], i["sk"]["S"]): i for i in (self.random_item(rng) for _ in range(3))}
                ops: list[dict[str, Any]] = [{"Put": {"TableName": TABLE, "Item": i}} for i in others.values()]
                if rng.random() < 0.5:
                    ops.append({"ConditionCheck": {"TableName": TABLE, "Key": key("none", "none"),
                                                   "ConditionExpression": "attribute_exists(pk)"}})
                try:
                    db.transact_write_items(TransactItems=ops)
                except ClientError:
                    pass

    @staticmethod
    def random_query(rng: random.Random) -> dict[str, Any]:
        request: dict[str, Any] = {"ScanIndexForward": rng.random() < 0.5}
        if rng.random() < 0.5:
            request["Limit"] = rng.randrange(1, 8)
        if rng.random() < 0.5:
            request.update(IndexName="due", KeyConditionExpression="due_pk = :h",
                           ExpressionAttributeValues={":h": s(f"D{rng.randrange(4)}")})
            if rng.random() < 0.6:
                condition = rng.choice(["due_sk < :r", "due_sk >= :r", "due_sk = :r", "begins_with(due_sk, :r)",
                                        "due_sk BETWEEN :r AND :r2"])
                request["KeyConditionExpression"] += f" AND {condition}"
                low = rng.randrange(50)
                request["ExpressionAttributeValues"][":r"] = s(f"{low:02}"[: rng.choice([1, 2])] if "begins" in condition else f"{low:02}")
                if ":r2" in condition:
                    request["ExpressionAttributeValues"][":r2"] = s(f"{low + rng.randrange(10):02}")
        else:
            request.update(KeyConditionExpression="pk = :h", ExpressionAttributeValues={":h": s(f"p{rng.randrange(5)}")})
            if rng.random() < 0.6:
                condition = rng.choice(["begins_with(sk, :r)", "sk = :r", "sk < :r", "sk <= :r", "sk > :r",
                                        "sk >= :r", "sk BETWEEN :r AND :r2"])
                request["KeyConditionExpression"] += f" AND {condition}"
                low = rng.randrange(30)
                request["ExpressionAttributeValues"][":r"] = s(f"s{low:02}"[: rng.choice([2, 3])] if "begins" in condition else f"s{low:02}")
                if ":r2" in condition:
                    request["ExpressionAttributeValues"][":r2"] = s(f"s{low + rng.randrange(8):02}")
        if rng.random() < 0.3:
            request["FilterExpression"] = "n > :n"
            request["ExpressionAttributeValues"][":n"] = {"N": "4"}
        return request


class AnswerSerializationTest(unittest.TestCase):
    """Attribute values written as stored (patch 9) are exactly what moto's serializer writes,
    and the values it must not take as they are (binary) still go through moto's serializer."""

    def random_value(self, rng: random.Random, depth: int = 0) -> dict[str, Any]:
        kinds = ["S", "N", "BOOL", "NULL", "SS", "NS", "B", "BS"] + (["M", "L"] if depth < 3 else [])
        kind = rng.choice(kinds)
        text = lambda: "".join(rng.choice("aZ9 é\"\\\n{}") for _ in range(rng.randrange(0, 6)))  # noqa: E731
        number = lambda: str(rng.randrange(-(10**6), 10**6))  # noqa: E731
        blob = lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 6)))  # noqa: E731
        return {
            "S": lambda: {"S": text()},
            "N": lambda: {"N": number()},
            "BOOL": lambda: {"BOOL": rng.random() < 0.5},
            "NULL": lambda: {"NULL": True},
            "SS": lambda: {"SS": sorted({text() + str(i) for i in range(rng.randrange(1, 4))})},
            "NS": lambda: {"NS": sorted({number() for _ in range(rng.randrange(1, 4))})},
            "B": lambda: {"B": blob()},
            "BS": lambda: {"BS": list({blob() + bytes([i]) for i in range(rng.randrange(1, 3))})},
            "M": lambda: {"M": {text() + str(i): self.random_value(rng, depth + 1) for i in range(rng.randrange(0, 4))}},
            "L": lambda: {"L": [self.random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]},
        }[kind]()

    def test_items_come_back_as_moto_would_write_them(self) -> None:
        from moto import mock_aws

        moto_patches.apply()
        rng = random.Random(11)
        with mock_aws():
            db = boto3.client("dynamodb", region_name="us-east-1")
            create_table(db)
            items = []
            for i in range(150):
                item = {**key("p", f"{i:04}"), **{f"a{j}": self.random_value(rng) for j in range(rng.randrange(1, 6))}}
                db.put_item(TableName=TABLE, Item=item)
                items.append(item)
            answers = [db.get_item(TableName=TABLE, Key=key("p", f"{i:04}"))["Item"] for i in range(150)]
            queried = db.query(
                TableName=TABLE,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": s("p")},
            )["Items"]
            original = moto_patches.core_serialize.BaseJSONSerializer._serialize_type_structure
            moto_patches.core_serialize.BaseJSONSerializer._serialize_type_structure = moto_patches._ORIGINAL[
                "json_serialize_structure"
            ]
            try:
                by_moto = [db.get_item(TableName=TABLE, Key=key("p", f"{i:04}"))["Item"] for i in range(150)]
            finally:
                moto_patches.core_serialize.BaseJSONSerializer._serialize_type_structure = original
        self.assertEqual(answers, by_moto)
        self.assertEqual(queried, by_moto)
        self.assertEqual([normalized(a) for a in answers], [normalized(i) for i in items])

    def test_what_is_written_as_it_is(self) -> None:
        self.assertTrue(moto_patches._wire_ready({"M": {"a": {"L": [{"S": "x"}, {"NULL": True}]}}}))
        self.assertFalse(moto_patches._wire_ready({"M": {"a": {"B": b"\x00"}}}))
        self.assertFalse(moto_patches._wire_ready({"N": 5}))
        self.assertFalse(moto_patches._wire_ready({"S": "x", "N": "1"}))


def normalized(item: dict[str, Any]) -> dict[str, Any]:
    """Sets compared as sets (DynamoDB does not keep their order)."""

    def value(v: dict[str, Any]) -> Any:
        ((kind, inner),) = v.items()
        if kind in ("SS", "NS", "BS"):
            return (kind, frozenset(inner))
        if kind == "M":
            return (kind, {k: value(x) for k, x in inner.items()})
        if kind == "L":
            return (kind, [value(x) for x in inner])
        return (kind, inner)

    return {k: value(v) for k, v in item.items()}


class WritePathTest(PatchedServer):
    def test_the_item_size_limit_holds_where_moto_put_it(self) -> None:
        # Two attributes: key names count, as in moto's per-attribute check.
        base = len("pk") + len("p") + len("sk") + len("s") + len("a") + len("b")
        fits = moto_patches.ITEM_SIZE_LIMIT - base
        self.put("p", "s", a={"S": "x" * (fits // 2)}, b={"S": "y" * (fits - fits // 2)})
        self.assertEqual(len(self.get("p", "s")["b"]["S"]), fits - fits // 2)
        with self.assertRaises(ClientError) as refused:
            self.put("p", "s", a={"S": "x" * (fits // 2)}, b={"S": "y" * (fits - fits // 2 + 1)})
        self.assertIn("Item size has exceeded", str(refused.exception))
        self.assertEqual(len(self.get("p", "s")["b"]["S"]), fits - fits // 2)

    def test_one_update_expression_applies_to_each_item_with_its_own_values(self) -> None:
        expression = "SET n = if_not_exists(n, :zero) + :step, tags = list_append(if_not_exists(tags, :empty), :tag) REMOVE gone"
        for round_ in range(3):
            for i in range(4):
                values = {":zero": {"N": "0"}, ":step": {"N": str(i + 1)}, ":empty": {"L": []}, ":tag": {"L": [s(f"r{round_}")]}}
                if i % 2:
                    self.db.update_item(TableName=self.table, Key=key("u", str(i)), UpdateExpression=expression, ExpressionAttributeValues=values)
                else:
                    self.transact({"Update": {"TableName": self.table, "Key": key("u", str(i)), "UpdateExpression": expression, "ExpressionAttributeValues": values}})
        for i in range(4):
            item = self.get("u", str(i))
            self.assertEqual(item["n"], {"N": str(3 * (i + 1))})
            self.assertEqual(item["tags"], {"L": [s("r0"), s("r1"), s("r2")]})
        with self.assertRaises(ClientError):  # a bad expression is refused every time, not remembered
            self.db.update_item(TableName=self.table, Key=key("u", "0"), UpdateExpression="SET = :x", ExpressionAttributeValues={":x": s("1")})
        with self.assertRaises(ClientError):
            self.db.update_item(TableName=self.table, Key=key("u", "0"), UpdateExpression="SET = :x", ExpressionAttributeValues={":x": s("1")})


class RequestCountsTest(PatchedServer):
    def test_the_server_counts_and_times_each_operation(self) -> None:
        import json
        import urllib.request

        def report() -> dict[str, Any]:
            with urllib.request.urlopen(f"{self.endpoint}/_herald/requests") as answer:
                return json.load(answer)

        before = report().get("DynamoDB_20120810.GetItem", {"count": 0, "ms": 0})
        for _ in range(3):
            self.get("p", "nothing")
        after = report()["DynamoDB_20120810.GetItem"]
        self.assertEqual(after["count"] - before["count"], 3)
        self.assertGreater(after["ms"], before["ms"])
        self.assertNotIn("GET /_herald", report())


if __name__ == "__main__":
    unittest.main()
