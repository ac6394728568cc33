"""Unit tests for the local stack's own logic: template resolution and the event-source rules.

The whole stack (moto, the binaries, the emulator) is exercised by the Rust end-to-end tests;
these pin the details that would otherwise fail there in confusing ways.
"""

from __future__ import annotations

import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bootstrap  # noqa: E402
import emulator  # noqa: E402


class TemplateTest(unittest.TestCase):
    def setUp(self) -> None:
        self.template = bootstrap.load_template(bootstrap.ROOT / "template.yaml")

    def test_short_form_tags_become_long_form(self) -> None:
        queue = self.template["Resources"]["PublishQueue"]["Properties"]
        self.assertEqual(
            queue["RedrivePolicy"]["deadLetterTargetArn"],
            {"Fn::GetAtt": ["PublishDeadLetterQueue", "Arn"]},
        )
        self.assertEqual(queue["RedrivePolicy"]["maxReceiveCount"], {"Ref": "PublishMaxReceiveCount"})

    def test_references_resolve_once_their_resources_exist(self) -> None:
        stack = bootstrap.Stack(self.template, "p", {"PublishMaxReceiveCount": "7"})
        with self.assertRaises(bootstrap.Unresolved):
            stack.resolve({"Fn::GetAtt": ["PublishDeadLetterQueue", "Arn"]})
        stack.refs["HeraldTable"] = "p-HeraldTable"
        stack.attrs[("HeraldTable", "Arn")] = "arn:table"
        self.assertEqual(stack.resolve({"Ref": "PublishMaxReceiveCount"}), "7")
        self.assertEqual(stack.resolve({"Fn::Sub": "${HeraldTable.Arn}/index/due"}), "arn:table/index/due")
        self.assertEqual(stack.resolve({"Fn::Sub": "${AWS::Region}:${HeraldTable}"}), "us-east-1:p-HeraldTable")

    def test_list_parameters_resolve_to_lists(self) -> None:
        stack = bootstrap.Stack(self.template, "p", {"MediaUploadOrigins": "https://a.example, https://b.example"})
        self.assertEqual(
            stack.resolve({"Ref": "MediaUploadOrigins"}), ["https://a.example", "https://b.example"]
        )

    def test_the_alarm_topic_key_resolves_locally(self) -> None:
        stack = bootstrap.Stack(self.template, "p", {})
        props = stack.resolve(self.template["Resources"]["AlarmTopicKey"]["Properties"])
        self.assertEqual(
            props["KeyPolicy"]["Statement"][0]["Principal"]["AWS"], f"arn:aws:iam::{bootstrap.ACCOUNT}:root"
        )
        bootstrap.create_key(stack, {}, "AlarmTopicKey", props)
        self.assertTrue(stack.resolve({"Ref": "AlarmTopicKey"}).startswith("arn:aws:kms:"))

    def test_a_join_over_a_list_parameter_joins_its_items(self) -> None:
        stack = bootstrap.Stack(self.template, "p", {"OperatorAllowedCidrs": "10.0.0.0/8, 192.0.2.0/24"})
        self.assertEqual(
            stack.resolve({"Fn::Join": [",", {"Ref": "OperatorAllowedCidrs"}]}), "10.0.0.0/8,192.0.2.0/24"
        )
        self.assertEqual(bootstrap.Stack(self.template, "p", {}).resolve({"Fn::Join": [",", {"Ref": "OperatorAllowedCidrs"}]}), "")

    def test_the_media_bucket_translates_to_s3_api_shapes(self) -> None:
        stack = bootstrap.Stack(self.template, "p", {})
        props = stack.resolve(self.template["Resources"]["MediaBucket"]["Properties"])
        self.assertEqual(
            bootstrap.bucket_encryption(props["BucketEncryption"]),
            {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        )
        cors = bootstrap.bucket_cors(props["CorsConfiguration"])
        self.assertEqual(
            cors,
            {"CORSRules": [{"AllowedMethods": ["PUT"], "AllowedOrigins": ["*"],
                            "AllowedHeaders": ["content-type"], "MaxAgeSeconds": 3000}]},
        )
        lifecycle = bootstrap.bucket_lifecycle(props["LifecycleConfiguration"])
        expire = next(r for r in lifecycle["Rules"] if r["ID"] == "ExpireUploads")
        self.assertEqual(expire["Filter"], {"Prefix": "media/"})
        self.assertEqual(expire["Expiration"], {"Days": 400})
        with self.assertRaises(SystemExit):
            bootstrap.bucket_lifecycle({"Rules": [{"Status": "Enabled", "Transitions": []}]})

    def test_snake_case_names(self) -> None:
        self.assertEqual(bootstrap.snake("PublishDeadLetterQueue"), "PUBLISH_DEAD_LETTER_QUEUE")


class RouteTest(unittest.TestCase):
    def test_greedy_and_plain_variables(self) -> None:
        proxy = emulator.Route.parse("api", 30, "ANY", "/v1/{proxy+}")
        self.assertEqual(proxy.pattern.match("/v1/posts/abc").groupdict(), {"proxy": "posts/abc"})
        self.assertIsNone(proxy.pattern.match("/v2/posts"))
        hook = emulator.Route.parse("hooks", 30, "POST", "/webhooks/{provider}")
        self.assertEqual(hook.pattern.match("/webhooks/meta").groupdict(), {"provider": "meta"})
        self.assertIsNone(hook.pattern.match("/webhooks/meta/extra"))
        self.assertLess(hook.specificity(), proxy.specificity())


class BatchItemFailuresTest(unittest.TestCase):
    ids = {"a", "b", "c"}

    def test_no_failures_deletes_everything(self) -> None:
        self.assertEqual(emulator.failed_ids(None, self.ids), set())
        self.assertEqual(emulator.failed_ids({"batchItemFailures": []}, self.ids), set())

    def test_listed_records_stay(self) -> None:
        payload = {"batchItemFailures": [{"itemIdentifier": "b"}]}
        self.assertEqual(emulator.failed_ids(payload, self.ids), {"b"})

    def test_an_unknown_or_empty_identifier_fails_the_whole_batch(self) -> None:
        for bad in ({"itemIdentifier": "zzz"}, {"itemIdentifier": ""}, {}, "b"):
            self.assertIsNone(emulator.failed_ids({"batchItemFailures": [bad]}, self.ids), bad)
        self.assertIsNone(emulator.failed_ids({"batchItemFailures": "b"}, self.ids))


class SqsRecordTest(unittest.TestCase):
    def test_lambda_record_shape(self) -> None:
        record = emulator.sqs_record(
            {
                "MessageId": "m1",
                "ReceiptHandle": "r1",
                "Body": "{}",
                "MD5OfBody": "x",
                "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
                "MessageAttributes": {"correlation_id": {"DataType": "String", "StringValue": "c"}},
            },
            "arn:q",
        )
        self.assertEqual(record["messageId"], "m1")
        self.assertEqual(record["attributes"]["ApproximateReceiveCount"], "2")
        self.assertEqual(record["messageAttributes"]["correlation_id"]["stringValue"], "c")
        self.assertEqual(record["eventSourceARN"], "arn:q")


if __name__ == "__main__":
    unittest.main()


class ScheduleTest(unittest.TestCase):
    """Schedules fire at their own phase and a fixed rate; an overrunning run delays the next."""

    def fire(self, every: float, phase: float, run_seconds: float, for_seconds: float) -> list[float]:
        import threading

        started = time.monotonic()
        fired: list[float] = []

        class Invoker:
            def invoke(self, function: str, event: dict, timeout: float) -> object:
                fired.append(time.monotonic() - started)
                time.sleep(run_seconds)
                return type("Result", (), {"ok": True, "error": None})()

        stop = threading.Event()
        thread = threading.Thread(
            target=emulator.scheduler, args=(Invoker(), "fn", 1.0, {"id": "s"}, every, phase, stop), daemon=True
        )
        thread.start()
        time.sleep(for_seconds)
        stop.set()
        thread.join(2)
        return fired

    def test_a_schedule_fires_at_its_phase_then_every_period(self) -> None:
        fired = self.fire(every=0.2, phase=0.1, run_seconds=0.0, for_seconds=0.75)
        self.assertEqual(len(fired), 4, fired)
        for n, at in enumerate(fired):
            self.assertAlmostEqual(at, 0.1 + 0.2 * n, delta=0.05)

    def test_an_overrunning_run_delays_the_next_without_doubling_it(self) -> None:
        fired = self.fire(every=0.1, phase=0.0, run_seconds=0.25, for_seconds=0.7)
        gaps = [b - a for a, b in zip(fired, fired[1:])]
        self.assertTrue(gaps and all(g >= 0.24 for g in gaps), gaps)


class StackWatchTest(unittest.TestCase):
    """`make status`: each process's memory, and a stack with a dead or silent process is never
    reported ready."""

    def setUp(self) -> None:
        import socket
        import subprocess

        import stack

        self.stack = stack
        # A live process in its own group, holding some memory, and one that has exited.
        self.live = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(64 << 20); time.sleep(60)"],
                                     start_new_session=True)
        self.dead = subprocess.Popen([sys.executable, "-c", "pass"])
        self.dead.wait()
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            self.closed_port = s.getsockname()[1]

    def tearDown(self) -> None:
        self.live.kill()
        self.live.wait()

    def test_a_dead_or_silent_process_is_a_problem_and_memory_is_reported(self) -> None:
        state = {"pids": {"moto": self.live.pid, "fake": self.dead.pid},
                 "ports": {"moto": self.closed_port, "fake": self.closed_port}, "api_url": ""}
        found = self.stack.problems(state)
        self.assertEqual(len(found), 2, found)
        self.assertIn(f"fake (pid {self.dead.pid}) has exited", found[0])
        self.assertIn(f"moto (pid {self.live.pid}) does not answer", found[1])
        self.assertFalse(self.stack.running(state))
        self.assertEqual(self.stack.problems(None), ["no stack was started (.herald/state.json is missing)"])
        deadline = time.monotonic() + 10
        while self.stack.resident_mib(self.live.pid)[0] < 64 and time.monotonic() < deadline:
            time.sleep(0.1)
        own, group = self.stack.resident_mib(self.live.pid)
        self.assertGreaterEqual(own, 64)
        self.assertGreaterEqual(group, own)
        self.assertEqual(self.stack.resident_mib(self.dead.pid), (0.0, 0.0))
