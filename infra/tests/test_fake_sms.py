"""The fake SMS provider (infra/fake_platforms/sms*.py): segments, the per-sender
messages-per-second limit, lookup by client reference, signed delivery receipts (duplicated,
reordered, retried), inbound messages, settings, listings and reset. Real HTTP both ways: the
fake on a free port, and a small receiver standing in for Herald's `/webhooks/sms`."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import socket
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_fake_platforms import Answer, FakeServerCase  # noqa: E402

import fake_platforms  # noqa: E402  (on the path through test_fake_platforms)
from fake_platforms.sms import segments  # noqa: E402
from fake_platforms.sms_delivery import sign  # noqa: E402

SECRET = "sms-receipt-secret-0123456789"
SENDER = "+15550001"
TO = "+447700900123"


class Receiver:
    """Records every POST (headers, raw body) and answers the scripted statuses, then 200."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/webhooks/sms" % self.server.server_address[1]

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.requests]

    def wait(self, count: int, timeout: float = 5) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmsCase(FakeServerCase):
    def setUp(self) -> None:
        super().setUp()
        # A reset keeps the webhook (the local stack sets it once): each test starts without one.
        self.settings(webhook_url=None, webhook_secret=None)
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)

    def settings(self, **values: Any) -> dict[str, Any]:
        answer = self.call("POST", "/_admin/sms/settings", values)
        self.assertEqual(answer.status, 200, answer)
        return answer.json

    def hook(self, **values: Any) -> None:
        self.settings(webhook_url=self.receiver.url, webhook_secret=SECRET,
                      receipt_delay_ms=values.pop("receipt_delay_ms", 0), **values)

    def send(self, body: str = "hi", to: str = TO, sender: str = SENDER, **extra: Any) -> Answer:
        return self.call("POST", "/sms/messages", {"from": sender, "to": to, "body": body, **extra}, token="sms")

    def lookup(self, client_ref: str) -> list[dict[str, Any]]:
        answer = self.call("GET", "/sms/messages", query={"client_ref": client_ref}, token="sms")
        self.assertEqual(answer.status, 200, answer)
        return answer.json["messages"]

    def messages(self) -> list[dict[str, Any]]:
        return self.admin("GET", "sms/messages")["messages"]

    def receipts(self) -> list[dict[str, Any]]:
        return self.admin("GET", "sms/receipts")["receipts"]

    def check_signature(self, headers: dict[str, str], body: bytes) -> None:
        """As Herald verifies (shared/webhooks/src/sms.rs), computed independently."""
        timestamp = headers["x-sms-timestamp"]
        self.assertLessEqual(abs(int(timestamp) - time.time()), 5)
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        self.assertEqual(headers["x-sms-signature"], f"sha256={expected}")
        self.assertEqual(headers["content-type"], "application/json")

    def settle(self, check: Any, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not check() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(check())


class Sending(SmsCase):
    def test_a_message_is_queued_with_its_client_ref_and_segments(self) -> None:
        answer = self.send("hello", client_ref="ref-1")
        self.assertEqual(answer.status, 201, answer)
        self.assertRegex(answer.json["id"], r"^sm_\d+$")
        self.assertEqual({k: v for k, v in answer.json.items() if k != "id"},
                         {"status": "queued", "client_ref": "ref-1", "segments": 1})
        self.assertIsNone(self.send("no ref").json["client_ref"])

    def test_segments_are_counted_exactly(self) -> None:
        cases = {
            "a" * 160: 1, "a" * 161: 2, "a" * 306: 2, "a" * 307: 3,
            "€" * 80: 1, "a" * 159 + "€": 2, "{}" * 40: 1, "[" * 81: 2,
            # an extension character's two septets never straddle two segments
            "a" * 152 + "€" + "a" * 152: 3,
            "é" * 160: 1,  # in the basic character set
            "ж" * 70: 1, "ж" * 71: 2, "ж" * 134: 2, "ж" * 135: 3,
            "a" * 69 + "ç": 1, "a" * 70 + "ç": 2,  # ç is not GSM-7: the whole body is UCS-2
            "😀" * 35: 1, "😀" * 36: 2, "a" * 69 + "😀": 2,
            # a surrogate pair never straddles two segments
            "ж" * 66 + "😀" + "ж" * 66: 3,
        }
        for text, expected in cases.items():
            self.assertEqual(segments(text), expected, text)
        for text in ("a" * 161, "€" * 81, "😀" * 36):
            self.assertEqual(self.send(text).json["segments"], 2)

    def test_permanent_errors_carry_a_code_and_store_nothing(self) -> None:
        for to in ("15559999", "+1555", "+1234567890123456", "+1555-0001", "+١٢٣٤٥٦٧٨٩"):
            answer = self.send(to=to)
            self.assertEqual((answer.status, answer.json["code"]), (400, 21211), to)
        self.assertEqual(self.send("").json["code"], 21602)
        self.assertEqual(self.send(client_ref="r" * 65).json["code"], 21699)
        self.assertEqual(self.send(client_ref=7).json["code"], 21699)
        self.assertEqual(self.send(client_ref="r" * 64).status, 201)
        self.assertEqual(len(self.messages()), 1)

    def test_over_the_senders_messages_per_second_limit_is_429_and_stores_nothing(self) -> None:
        self.assertEqual(self.settings(mps=2)["mps"], 2)
        self.assertEqual([self.send().status for _ in range(2)], [201, 201])
        over = self.send("third")
        self.assertEqual(over.status, 429, over)
        self.assertEqual(over.headers["Retry-After"], "1")
        self.assertEqual(len(self.messages()), 2)
        self.assertEqual(self.send(sender="+15550002").status, 201, "another sender's own window")
        time.sleep(1.05)
        self.assertEqual(self.send().status, 201)

    def test_the_default_limit_is_50_a_second(self) -> None:
        started = time.monotonic()
        statuses = [self.send().status for _ in range(51)]
        if time.monotonic() - started > 0.9:
            self.skipTest("too slow a machine to send 51 messages within a second")
        self.assertEqual(statuses.count(201), 50)
        self.assertEqual(statuses[-1], 429)

    def test_lookup_by_client_ref(self) -> None:
        first = self.send("one", client_ref="order-7").json["id"]
        self.send("other", client_ref="order-8")
        second = self.send("two", to="+15551234567", client_ref="order-7").json["id"]
        found = self.lookup("order-7")
        self.assertEqual([m["id"] for m in found], [first, second])
        self.assertEqual(found[1], {"id": second, "status": "queued", "client_ref": "order-7",
                                    "to": "+15551234567", "from": SENDER, "segments": 1})
        self.assertEqual(self.lookup("nothing"), [])
        self.assertEqual(self.call("GET", "/sms/messages", token="sms").status, 400)
        self.assertEqual(self.call("GET", "/sms/messages", query={"client_ref": "order-7"}).status, 401)

    def test_an_ambiguous_fault_stores_the_message_and_loses_the_answer(self) -> None:
        self.fault(platform="sms", ambiguous=True, count=1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.send("lost", client_ref="retry-me")
        [found] = self.lookup("retry-me")
        self.assertEqual((found["status"], found["to"]), ("queued", TO))
        self.assertEqual(self.send("next").status, 201)

    def test_status_faults_still_apply_and_store_nothing(self) -> None:
        self.fault(platform="sms", status=503, retry_after=7, count=1)
        answer = self.send()
        self.assertEqual((answer.status, answer.headers["Retry-After"]), (503, "7"))
        self.assertEqual(self.messages(), [])


class Receipts(SmsCase):
    def test_receipts_are_signed_and_say_sent_then_delivered(self) -> None:
        self.hook()
        message = self.send("hello", client_ref="c-1").json["id"]
        events = self.receiver.wait(2)
        self.assertEqual([e["status"] for e in events], ["sent", "delivered"])
        for event in events:
            self.assertEqual({k: event[k] for k in ("type", "message_id", "client_ref")},
                             {"type": "receipt", "message_id": message, "client_ref": "c-1"})
            self.assertRegex(event["id"], r"^dlr_\d+$")
        self.assertNotEqual(events[0]["id"], events[1]["id"])
        for headers, body in self.receiver.requests:
            self.check_signature(headers, body)
        self.settle(lambda: self.lookup("c-1")[0]["status"] == "delivered")
        self.settle(lambda: all(r["delivered"] for r in self.receipts()))
        self.assertEqual([(r["id"], r["message_id"], r["status"], r["attempts"], r["last_http_status"])
                          for r in self.receipts()],
                         [(e["id"], message, e["status"], 1, 200) for e in events])

    def test_the_reference_vector_of_the_rust_verifier(self) -> None:
        body = b'{"id":"dlr_0001","message_id":"sms_42","status":"delivered"}'
        self.assertEqual(sign(SECRET, "1700000000", body),
                         "sha256=3cfe80f85c17b48b7c0b1ff41db0581880e959898b5863fbcac76112005707ba")

    def test_receipts_wait_for_the_delay(self) -> None:
        self.hook(receipt_delay_ms=400)
        self.send()
        time.sleep(0.2)
        self.assertEqual(self.receiver.events(), [])
        self.assertEqual(len(self.receiver.wait(2)), 2)

    def test_no_webhook_no_receipts(self) -> None:
        self.settings(receipt_delay_ms=0)
        self.send(client_ref="quiet")
        time.sleep(0.2)
        self.assertEqual((self.receiver.events(), self.receipts()), ([], []))
        self.assertEqual(self.lookup("quiet")[0]["status"], "queued")

    def test_undeliverable_numbers_end_undelivered_with_30003(self) -> None:
        self.hook(undeliverable=[TO])
        self.send(client_ref="u")
        self.send(to="+15551234567", client_ref="d")
        events = self.receiver.wait(4)
        finals = {e["client_ref"]: e for e in events if e["status"] != "sent"}
        self.assertEqual((finals["u"]["status"], finals["u"]["error_code"]), ("undelivered", 30003))
        self.assertEqual(finals["d"]["status"], "delivered")
        self.assertNotIn("error_code", finals["d"])
        self.settle(lambda: self.lookup("u")[0]["status"] == "undelivered")

    def test_duplicates_repeat_the_same_id_and_body(self) -> None:
        self.hook(duplicate_rate=1)
        self.send()
        self.receiver.wait(4)
        time.sleep(0.1)
        bodies = [body for _, body in self.receiver.requests]
        self.assertEqual(len(bodies), 4)
        self.assertEqual((bodies[0], bodies[2]), (bodies[1], bodies[3]))
        self.assertEqual([r["duplicate"] for r in self.receipts()], [False, True, False, True])

    def test_reordering_posts_the_final_receipt_first(self) -> None:
        self.hook(reorder_rate=1)
        self.send(client_ref="r")
        events = self.receiver.wait(2)
        self.assertEqual([e["status"] for e in events], ["delivered", "sent"])
        self.assertGreater(int(events[0]["id"][4:]), int(events[1]["id"][4:]), "ids keep creation order")
        time.sleep(0.1)
        self.assertEqual(self.lookup("r")[0]["status"], "delivered", "a late sent changes nothing")

    def pattern(self, seed: int) -> list[list[tuple[str, bool]]]:
        """Each message's receipts in the order posted (one thread posts a message's receipts;
        the threads of different messages may interleave)."""
        self.call("POST", "/_admin/reset")
        self.hook(duplicate_rate=0.5, reorder_rate=0.5, seed=seed)
        ids = [self.send(client_ref=f"m{n}").json["id"] for n in range(8)]

        def done() -> bool:
            receipts = self.receipts()
            posted = {(r["message_id"], r["status"]) for r in receipts if r["delivered"]}
            return len(posted) == 16 and all(r["delivered"] for r in receipts)

        self.settle(done)
        time.sleep(0.2)  # the last duplicates
        receipts = self.receipts()
        return [[(r["status"], r["duplicate"]) for r in receipts if r["message_id"] == m] for m in ids]

    def test_a_seed_repeats_the_duplicates_and_reordering(self) -> None:
        first = self.pattern(42)
        self.assertEqual(self.pattern(42), first)
        self.assertNotEqual(self.pattern(7), first)
        flat = [r for message in first for r in message]
        self.assertIn(("sent", True), flat)
        self.assertIn(("delivered", True), flat)
        self.assertTrue(any(m[0][0] == "delivered" for m in first), "some reordered")
        self.assertTrue(any(m[0][0] == "sent" for m in first), "some not")

    def test_failed_posts_are_retried_up_to_three_times(self) -> None:
        self.receiver.statuses = [500, 503]
        self.hook()
        self.send()
        self.settle(lambda: len(self.receipts()) == 2 and all(r["delivered"] for r in self.receipts()))
        self.assertEqual([(r["attempts"], r["last_http_status"]) for r in self.receipts()], [(3, 200), (1, 200)])
        ids = [e["id"] for e in self.receiver.events()]
        self.assertEqual(ids[:3], [ids[0]] * 3)

        self.call("POST", "/_admin/reset")
        self.settings(webhook_url=f"http://127.0.0.1:{free_port()}/webhooks/sms", receipt_delay_ms=0)
        self.send()
        self.settle(lambda: len(self.receipts()) == 2 and self.receipts()[1]["attempts"] == 4, timeout=6)
        [first, second] = self.receipts()
        self.assertEqual((first["attempts"], first["last_http_status"], first["delivered"]), (4, None, False))
        self.assertTrue(first["error"])


class Inbound(SmsCase):
    def test_inbound_is_posted_signed_and_answers_herald_status(self) -> None:
        self.hook()
        self.receiver.statuses = [202]
        answer = self.call("POST", "/_admin/sms/inbound", {"from": TO, "to": SENDER, "text": "STOP"})
        self.assertEqual(answer.status, 200, answer)
        self.assertRegex(answer.json["id"], r"^in_\d+$")
        self.assertEqual(answer.json["webhook_status"], 202)
        [(headers, body)] = self.receiver.requests
        self.check_signature(headers, body)
        self.assertEqual(json.loads(body), {"id": answer.json["id"], "type": "inbound", "from": TO,
                                            "to": SENDER, "text": "STOP"})
        self.receiver.statuses = [401]
        self.assertEqual(self.call("POST", "/_admin/sms/inbound",
                                   {"from": TO, "to": SENDER, "text": "x"}).json["webhook_status"], 401)

    def test_inbound_without_a_reachable_webhook_is_502(self) -> None:
        body = {"from": TO, "to": SENDER, "text": "STOP"}
        answer = self.call("POST", "/_admin/sms/inbound", body)
        self.assertEqual(answer.status, 502)
        self.assertIn("webhook", answer.json["error"])
        self.settings(webhook_url=f"http://127.0.0.1:{free_port()}/webhooks/sms", webhook_secret=SECRET)
        answer = self.call("POST", "/_admin/sms/inbound", body)
        self.assertEqual(answer.status, 502)
        self.assertIn("unreachable", answer.json["error"])
        for bad in ({"from": "07700900123", "to": SENDER, "text": "x"}, {"from": TO, "text": "x"},
                    {"from": TO, "to": SENDER}):
            self.assertEqual(self.call("POST", "/_admin/sms/inbound", bad).status, 400, bad)


class AdminApi(SmsCase):
    def test_settings_are_validated_field_by_field_and_nothing_half_applied(self) -> None:
        bad = [
            ({"mps": 0}, "mps"), ({"mps": 1.5}, "mps"), ({"mps": True}, "mps"),
            ({"receipt_delay_ms": -1}, "receipt_delay_ms"), ({"duplicate_rate": 1.1}, "duplicate_rate"),
            ({"reorder_rate": "0.5"}, "reorder_rate"), ({"undeliverable": ["0123"]}, "undeliverable"),
            ({"undeliverable": TO}, "undeliverable"), ({"seed": "x"}, "seed"),
            ({"webhook_url": "ftp://x"}, "webhook_url"), ({"webhook_secret": ""}, "webhook_secret"),
            ({"mps": 5, "colour": "red"}, "colour"),
        ]
        for body, name in bad:
            answer = self.call("POST", "/_admin/sms/settings", body)
            self.assertEqual((answer.status, answer.json["field"]), (400, name), body)
            self.assertIn(name, answer.json["error"])
        self.assertEqual(self.call("POST", "/_admin/sms/settings", b"[1]").status, 400)
        self.assertEqual(self.admin("GET", "sms/settings")["mps"], 50)

    def test_settings_are_shown_without_the_secret(self) -> None:
        self.assertEqual(self.admin("GET", "sms/settings"), {
            "webhook_url": None, "webhook_secret_set": False, "mps": 50, "receipt_delay_ms": 200.0,
            "duplicate_rate": 0.0, "reorder_rate": 0.0, "undeliverable": [], "seed": None,
        })
        shown = self.settings(webhook_url=self.receiver.url, webhook_secret=SECRET, mps=10,
                              receipt_delay_ms=5, duplicate_rate=0.25, reorder_rate=0.5,
                              undeliverable=[TO], seed=3)
        self.assertEqual(shown, self.admin("GET", "sms/settings"))
        self.assertEqual((shown["webhook_secret_set"], shown["mps"], shown["seed"]), (True, 10, 3))
        self.assertNotIn(SECRET, json.dumps(shown))

    def test_listings_show_every_message_and_receipt(self) -> None:
        self.hook()
        first = self.send("first body", client_ref="a").json["id"]
        second = self.send("€ second", to="+15551234567").json["id"]
        listed = self.messages()
        self.assertEqual([(m["id"], m["from"], m["to"], m["body"], m["client_ref"], m["segments"])
                          for m in listed],
                         [(first, SENDER, TO, "first body", "a", 1),
                          (second, SENDER, "+15551234567", "€ second", None, 1)])
        self.assertTrue(all(m["time"].endswith("Z") for m in listed))
        self.settle(lambda: len(self.receipts()) == 4 and all(r["delivered"] for r in self.receipts()))
        self.assertEqual(sorted(r["message_id"] for r in self.receipts()), [first, first, second, second])
        self.assertEqual({m["status"] for m in self.messages()}, {"delivered"})

    def test_reset_clears_messages_and_receipts_and_restores_defaults_but_keeps_the_webhook(self) -> None:
        self.hook(mps=3, duplicate_rate=1, undeliverable=[TO], seed=1)
        self.send()
        self.settle(lambda: len(self.receipts()) == 4 and all(r["delivered"] for r in self.receipts()))
        self.settings(receipt_delay_ms=300)
        self.send()  # its receipts are abandoned by the reset
        self.assertEqual(self.call("POST", "/_admin/reset").status, 200)
        self.assertEqual((self.messages(), self.receipts()), ([], []))
        settings = self.admin("GET", "sms/settings")
        self.assertEqual((settings["webhook_url"], settings["webhook_secret_set"]), (self.receiver.url, True))
        self.assertEqual((settings["mps"], settings["receipt_delay_ms"], settings["duplicate_rate"],
                          settings["undeliverable"], settings["seed"]), (50, 200.0, 0.0, [], None))
        before = len(self.receiver.requests)
        time.sleep(0.5)
        self.assertEqual(len(self.receiver.requests), before, "nothing posted after the reset")
        self.assertEqual(self.receipts(), [])


class Logging(unittest.TestCase):
    def test_the_request_log_never_shows_numbers_bodies_or_the_secret(self) -> None:
        log = io.StringIO()
        server = fake_platforms.make_server("127.0.0.1", 0, log_stream=log)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        receiver = Receiver()
        try:
            case = SmsCase()
            case.server = server  # type: ignore[misc]
            case.receiver = receiver
            case.settings(webhook_url=receiver.url, webhook_secret=SECRET, receipt_delay_ms=0)
            case.send("secret body text", client_ref="ref-log")
            case.lookup("ref-log")
            case.call("POST", "/_admin/sms/inbound", {"from": TO, "to": SENDER, "text": "STOP please"})
            receiver.wait(3)
        finally:
            server.shutdown()
            server.server_close()
            receiver.close()
        lines = [json.loads(line) for line in log.getvalue().splitlines()]
        self.assertTrue(lines)
        self.assertTrue(all(line["msg"] == "request" for line in lines), lines)
        text = log.getvalue()
        for value in (TO, SENDER, "secret body text", "STOP please", SECRET, "ref-log"):
            self.assertNotIn(value, text)


if __name__ == "__main__":
    unittest.main()
