"""Tests for the fake Mastodon (infra/fake_platforms/mastodon.py): one in-process server on a
free port, real HTTP, the same helpers as test_fake_platforms.py.

Run with `python3 -m unittest discover -s infra/tests -v` from the repository root.
"""

from __future__ import annotations

import http.client
import io
import json
import sys
import threading
import time
import unittest
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_fake_platforms as shared  # noqa: E402

import fake_platforms  # noqa: E402  (on the path through test_fake_platforms)
from fake_platforms import mastodon, state  # noqa: E402

API = "/mastodon/api"
STATUSES = f"{API}/v1/statuses"
LOST = (http.client.RemoteDisconnected, ConnectionResetError)
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def reset_epoch(answer: shared.Answer) -> float:
    """`X-RateLimit-Reset` (ISO 8601, as Mastodon sends it) as epoch seconds."""
    stamp = datetime.strptime(answer.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.replace(tzinfo=timezone.utc).timestamp()


class MastodonCase(shared.FakeServerCase):
    """Alice (account 1001, token `alice`) and Bob (1002, `bob`) are registered."""

    def setUp(self) -> None:
        super().setUp()
        for token, account in (("alice", "1001"), ("bob", "1002")):
            self.admin("POST", "tokens", {"platform": "mastodon", "token": token, "account": account})

    def status(self, text: str = "hello", token: str = "alice", key: str | None = None, **fields: Any) -> shared.Answer:
        headers = {"Idempotency-Key": key} if key else {}
        return self.call("POST", STATUSES, {"status": text, **fields}, token=token, headers=headers)

    def created(self, text: str = "hello", token: str = "alice", **fields: Any) -> dict[str, Any]:
        answer = self.status(text, token, **fields)
        self.assertEqual(answer.status, 200, answer)
        return answer.json

    def listing(self, account: str = "1001", token: str = "alice", **query: Any) -> shared.Answer:
        return self.call("GET", f"{API}/v1/accounts/{account}/statuses", token=token, query=query)

    def upload(self, data: bytes = shared.PHOTO, content_type: str = "image/png", token: str = "alice",
               **fields: str) -> shared.Answer:
        body, headers = shared.multipart(fields, {"file": ("f.bin", content_type, data)})
        return self.call("POST", f"{API}/v2/media", body, token=token, headers=headers)


class Statuses(MastodonCase):
    def test_a_status_is_created_and_answered_as_a_status_entity(self) -> None:
        answer = self.status("Hi <b>'you'</b>\nline two\n\nnext", visibility="unlisted", language="en")
        self.assertEqual(answer.status, 200, answer)
        s = answer.json
        self.assertRegex(s["id"], r"^\d{18}$")
        self.assertRegex(s["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(s["content"], "<p>Hi &lt;b&gt;&#39;you&#39;&lt;/b&gt;<br />line two</p><p>next</p>")
        self.assertEqual((s["visibility"], s["language"], s["in_reply_to_id"]), ("unlisted", "en", None))
        self.assertEqual({k: s["account"][k] for k in ("id", "username", "acct")},
                         {"id": "1001", "username": "user_1001", "acct": "user_1001"})
        self.assertTrue(s["url"].endswith(f"/mastodon/@user_1001/{s['id']}"), s["url"])
        self.assertTrue(s["uri"].endswith(f"/mastodon/users/user_1001/statuses/{s['id']}"), s["uri"])
        self.assertEqual((s["replies_count"], s["reblogs_count"], s["favourites_count"]), (0, 0, 0))
        self.assertEqual(s["media_attachments"], [])
        self.assertGreater(int(self.created("two")["id"]), int(s["id"]))
        [post, _] = self.posts(platform="mastodon")
        self.assertEqual((post["account"], post["text"], post["attributes"]["visibility"]),
                         ("1001", "Hi <b>'you'</b>\nline two\n\nnext", "unlisted"))

    def test_a_form_body_is_read_too(self) -> None:
        answer = self.call("POST", STATUSES, token="alice",
                           form={"status": "by form", "visibility": "private", "spoiler_text": "cw"})
        self.assertEqual(answer.status, 200, answer)
        self.assertEqual((answer.json["content"], answer.json["visibility"], answer.json["spoiler_text"]),
                         ("<p>by form</p>", "private", "cw"))

    def test_the_500_character_limit_and_blank_statuses_are_422(self) -> None:
        self.assertEqual(self.status("a" * 500).status, 200)
        over = self.status("a" * 501)
        self.assertEqual((over.status, over.json),
                         (422, {"error": "Validation failed: Text character limit of 500 exceeded"}))
        self.assertEqual(self.status("a" * 480, spoiler_text="b" * 21).status, 422, "the spoiler counts")
        self.assertEqual(self.status("a" * 470 + " https://example.com/" + "p" * 600).status, 200,
                         "a URL counts as 23 characters")
        blank = self.status("  ")
        self.assertEqual((blank.status, blank.json), (422, {"error": "Validation failed: Text can't be blank"}))
        self.assertEqual(self.status("x", visibility="everyone").status, 422)
        self.assertEqual(len(self.posts(platform="mastodon")), 2)


class Idempotency(MastodonCase):
    def test_the_same_key_twice_answers_the_first_status_and_creates_nothing(self) -> None:
        first = self.status("once", key="k-1")
        again = self.status("a different body", key="k-1")
        self.assertEqual((first.status, again.status), (200, 200))
        self.assertEqual(again.json, first.json)
        self.assertEqual([p["text"] for p in self.posts(platform="mastodon")], ["once"])
        self.assertEqual(again.headers["X-RateLimit-Remaining"], "299", "a replay counts toward no status window")
        self.assertNotEqual(self.status("twice", key="k-2").json["id"], first.json["id"])
        self.assertEqual(len(self.posts(platform="mastodon")), 2)

    def test_keys_are_per_account(self) -> None:
        a, b = self.status("alice's", key="shared"), self.status("bob's", token="bob", key="shared")
        self.assertNotEqual(a.json["id"], b.json["id"])
        self.assertEqual([(p["account"], p["text"]) for p in self.posts(platform="mastodon")],
                         [("1001", "alice's"), ("1002", "bob's")])

    def test_a_retry_after_a_lost_answer_gets_the_status_that_was_created(self) -> None:
        self.fault(platform="mastodon", ambiguous=True, count=1)
        with self.assertRaises(LOST):
            self.status("lost answer", key="retry-me")
        [post] = self.posts(platform="mastodon")
        retry = self.status("lost answer", key="retry-me")
        self.assertEqual((retry.status, retry.json["id"]), (200, post["id"]))
        self.assertEqual(len(self.posts(platform="mastodon")), 1)

    def test_a_lost_replay_is_still_one_status(self) -> None:
        first = self.status("once", key="k")
        self.fault(platform="mastodon", ambiguous=True, count=1)
        with self.assertRaises(LOST):
            self.status("once", key="k")
        self.assertEqual(self.status("once", key="k").json["id"], first.json["id"])
        self.assertEqual(len(self.posts(platform="mastodon")), 1)

    def test_a_status_fault_creates_nothing_and_records_no_key(self) -> None:
        self.fault(platform="mastodon", status=503, count=1)
        self.assertEqual(self.status("x", key="k").status, 503)
        self.assertEqual(self.posts(platform="mastodon"), [])
        self.assertEqual(self.status("x", key="k").status, 200)
        self.assertEqual(len(self.posts(platform="mastodon")), 1)

    def test_a_retry_racing_a_slow_first_attempt_makes_one_status(self) -> None:
        self.fault(platform="mastodon", latency_ms=400, count=1)
        with self.assertRaises(TimeoutError):
            self.call("POST", STATUSES, {"status": "slow"}, token="alice",
                      headers={"Idempotency-Key": "race"}, timeout=0.1)
        retry = self.status("slow", key="race")
        self.assertEqual(retry.status, 200)
        time.sleep(0.5)  # the first attempt wakes and finds the key
        self.assertEqual([p["id"] for p in self.posts(platform="mastodon")], [retry.json["id"]])

    def test_a_key_is_forgotten_after_the_hour_and_a_deleted_status_is_404(self) -> None:
        first = self.status("one", key="k").json
        with mock.patch.object(state, "IDEMPOTENCY_SECONDS", 0.1):
            time.sleep(0.15)
            self.assertNotEqual(self.status("two", key="k").json["id"], first["id"])
        self.assertEqual(self.call("DELETE", f"{STATUSES}/{first['id']}", token="alice").status, 200)
        self.assertEqual(self.status("three", key="k2").status, 200)
        kept = self.posts(platform="mastodon")[-1]["id"]
        self.assertEqual(self.call("DELETE", f"{STATUSES}/{kept}", token="alice").status, 200)
        gone = self.status("four", key="k2")
        self.assertEqual((gone.status, gone.json), (404, {"error": "Record not found"}))


class Replies(MastodonCase):
    def test_replies_count_on_their_parent_and_exclude_replies_keeps_threads_only(self) -> None:
        head = self.created("head")["id"]
        part = self.created("part 2", in_reply_to_id=head)
        self.assertEqual((part["in_reply_to_id"], part["in_reply_to_account_id"]), (head, "1001"))
        self.created("part 3", in_reply_to_id=part["id"])
        bobs = self.created("nice thread", token="bob", in_reply_to_id=head)["id"]
        alice_to_bob = self.created("thanks", in_reply_to_id=bobs)["id"]
        get = self.call("GET", f"{STATUSES}/{head}", token="bob")
        self.assertEqual(get.json["replies_count"], 2)
        self.assertEqual(self.call("GET", f"{STATUSES}/{part['id']}", token="alice").json["replies_count"], 1)
        self.admin("POST", "metrics", {"platform": "mastodon", "post_id": head, "likes": 5, "shares": 2,
                                       "comments": 1})
        counted = self.call("GET", f"{STATUSES}/{head}", token="bob").json
        self.assertEqual((counted["favourites_count"], counted["reblogs_count"], counted["replies_count"]),
                         (5, 2, 3), "seeded engagement adds to the replies there are")
        everything = [s["id"] for s in self.listing().json]
        self.assertIn(alice_to_bob, everything)
        threads = [s["content"] for s in self.listing(exclude_replies="true").json]
        self.assertEqual(threads, ["<p>part 3</p>", "<p>part 2</p>", "<p>head</p>"])
        self.assertEqual(self.listing("1002", exclude_replies="true").json, [])

    def test_a_reply_to_nothing_is_404_and_answer_faults_hit_replies_only(self) -> None:
        missing = self.status("lost", in_reply_to_id="113000000000009999")
        self.assertEqual((missing.status, missing.json["error"]),
                         (404, "The post you are trying to reply to does not appear to exist."))
        head = self.created("head")["id"]
        self.fault(platform="mastodon", status=500, endpoints="answer")
        self.assertEqual(self.status("post").status, 200)
        self.assertEqual(self.status("reply", in_reply_to_id=head).status, 500)
        self.assertEqual(len(self.posts(platform="mastodon")), 2)


class Listing(MastodonCase):
    def test_pages_newest_first_following_the_link_header(self) -> None:
        ids = [self.created(f"s{i}")["id"] for i in range(6)]
        first = self.listing(limit=2)
        self.assertEqual([s["id"] for s in first.json], ids[::-1][:2])
        seen, answer = [], first
        while True:
            seen += [s["id"] for s in answer.json]
            links = {rel.split('"')[1]: url.strip(" <>") for url, rel in
                     (part.split(";") for part in answer.headers.get("Link", "").split(",") if part)}
            if "next" not in links:
                break
            url = urlsplit(links["next"])
            self.assertEqual(url.path, f"{API}/v1/accounts/1001/statuses")
            answer = self.listing(**{k: v[0] for k, v in parse_qs(url.query).items()})
        self.assertEqual(seen, ids[::-1])
        self.assertEqual(answer.json, [])  # as Mastodon: a full last page links to an empty one
        self.assertIn(f"min_id={ids[5]}", first.headers["Link"])
        self.assertEqual([s["id"] for s in self.listing(since_id=ids[3]).json], [ids[5], ids[4]])
        self.assertEqual([s["id"] for s in self.listing(min_id=ids[0], limit=2).json], [ids[2], ids[1]])
        self.assertEqual([s["id"] for s in self.listing(max_id=ids[1]).json], [ids[0]])
        self.assertEqual(self.listing(max_id="abc").status, 400)

    def test_at_most_40_and_seeded_timelines_with_malformed_items(self) -> None:
        self.admin("POST", "timeline", {"platform": "mastodon", "account": "1001", "count": 45,
                                        "malformed": {"44": "missing_text"}})
        page = self.listing(limit=100).json
        self.assertEqual(len(page), 40)
        self.assertNotIn("content", page[0])
        self.assertEqual(page[1]["content"], "<p>item 43</p>")
        self.assertEqual(len(self.listing().json), 20)

    def test_private_and_direct_statuses_are_the_authors_only(self) -> None:
        self.created("public")
        private = self.created("private", visibility="private")["id"]
        direct = self.created("direct", visibility="direct")["id"]
        self.assertEqual(len(self.listing().json), 3)
        self.assertEqual([s["content"] for s in self.listing(token="bob").json], ["<p>public</p>"])
        for status_id in (private, direct):
            self.assertEqual(self.call("GET", f"{STATUSES}/{status_id}", token="bob").status, 404)
            self.assertEqual(self.call("GET", f"{STATUSES}/{status_id}", token="alice").status, 200)


class GetAndDelete(MastodonCase):
    def test_get_and_delete_own_statuses_only(self) -> None:
        s = self.created("mine")
        path = f"{STATUSES}/{s['id']}"
        self.assertEqual(self.call("GET", path, token="bob").json["id"], s["id"])
        absent = self.call("GET", f"{STATUSES}/1", token="alice")
        self.assertEqual((absent.status, absent.json), (404, {"error": "Record not found"}))
        theirs = self.call("DELETE", path, token="bob")
        self.assertEqual((theirs.status, theirs.json), (404, {"error": "Record not found"}))
        self.assertEqual(len(self.posts(platform="mastodon")), 1)
        deleted = self.call("DELETE", path, token="alice")
        self.assertEqual((deleted.status, deleted.json["id"], deleted.json["text"]), (200, s["id"], "mine"))
        self.assertEqual(self.call("GET", path, token="alice").status, 404)
        self.assertEqual(self.call("DELETE", path, token="alice").status, 404)
        self.assertEqual(self.posts(platform="mastodon"), [])

    def test_a_lost_answer_to_a_delete_still_deletes(self) -> None:
        s = self.created("doomed")
        self.fault(platform="mastodon", ambiguous=True, endpoints="all", count=1)
        with self.assertRaises(LOST):
            self.call("DELETE", f"{STATUSES}/{s['id']}", token="alice")
        self.assertEqual(self.posts(platform="mastodon"), [])


class Media(MastodonCase):
    def test_an_image_is_ready_at_once_and_attaches_by_form(self) -> None:
        up = self.upload(description="a test card")
        self.assertEqual(up.status, 200, up)
        media = up.json
        self.assertRegex(media["id"], r"^\d{18}$")
        self.assertEqual((media["type"], media["description"]), ("image", "a test card"))
        self.assertTrue(media["url"].startswith("http://"), media)
        other = self.upload().json["id"]
        answer = self.call("POST", STATUSES, token="alice",
                           body=f"status=pics&media_ids[]={media['id']}&media_ids[]={other}".encode(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(answer.status, 200, answer)
        self.assertEqual([m["id"] for m in answer.json["media_attachments"]], [media["id"], other])
        self.assertEqual(self.posts(platform="mastodon")[0]["media"], [media["id"], other])
        [listed, _] = self.admin("GET", "media", query={"platform": "mastodon"})["media"]
        self.assertEqual((listed["bytes"], listed["kind"]), (len(shared.PHOTO), "image"))
        self.assertEqual(self.status("", media_ids=[other]).status, 200, "media needs no text")

    def test_a_video_is_processed_before_it_can_be_attached(self) -> None:
        with mock.patch.object(mastodon, "PROCESSING_SECONDS", 0.3):
            up = self.upload(VIDEO, "video/mp4")
            self.assertEqual((up.status, up.json["type"], up.json["url"]), (202, "video", None))
            path = f"{API}/v1/media/{up.json['id']}"
            self.assertEqual(self.call("GET", path, token="alice").status, 206)
            early = self.status("clip", media_ids=[up.json["id"]])
            self.assertEqual((early.status, early.json["error"]), (422, "Cannot attach files that have not "
                                                                        "finished processing. Try again in a moment!"))
            time.sleep(0.35)
            ready = self.call("GET", path, token="alice")
            self.assertEqual(ready.status, 200)
            self.assertIsNotNone(ready.json["url"])
            self.assertEqual(self.call("GET", path, token="bob").status, 404)
            self.assertEqual(self.status("clip", media_ids=[up.json["id"]]).status, 200)

    def test_others_media_bad_uploads_and_upload_faults(self) -> None:
        bobs = self.upload(token="bob").json["id"]
        self.assertEqual(self.status("steal", media_ids=[bobs]).status, 422)
        self.assertEqual(self.status("many", media_ids=[bobs] * 5).status, 422)
        self.assertEqual(self.upload(b"%PDF-1.4", "application/pdf").status, 422)
        body, headers = shared.multipart({"description": "no file"}, {})
        self.assertEqual(self.call("POST", f"{API}/v2/media", body, token="alice", headers=headers).status, 422)
        self.fault(platform="mastodon", status=503, endpoints="upload", count=1)
        self.assertEqual(self.status("posts are unaffected").status, 200)
        self.assertEqual(self.upload().status, 503)
        self.assertEqual(len(self.admin("GET", "media", query={"platform": "mastodon"})["media"]), 1)


class AuthAndLimits(MastodonCase):
    def limit(self, window: str, limit: int, seconds: float = 60) -> None:
        self.admin("POST", "limits", {"platform": window, "limit": limit, "window_seconds": seconds})

    def test_missing_and_revoked_tokens_are_401_everywhere(self) -> None:
        for method, path in (("POST", STATUSES), ("GET", f"{STATUSES}/1"), ("DELETE", f"{STATUSES}/1"),
                             ("GET", f"{API}/v1/accounts/verify_credentials"),
                             ("GET", f"{API}/v1/accounts/1001/statuses"), ("POST", f"{API}/v2/media")):
            for token in (None, "revoked-1"):
                answer = self.call(method, path, {"status": "x"}, token=token)
                self.assertEqual((answer.status, answer.json), (401, {"error": "The access token is invalid"}),
                                 (method, path, token))
                self.assertIn("X-RateLimit-Remaining", answer.headers)
        self.assertEqual(self.posts(), [])

    def test_verify_credentials_says_who_the_token_is(self) -> None:
        me = self.call("GET", f"{API}/v1/accounts/verify_credentials", token="bob")
        self.assertEqual(me.status, 200)
        self.assertEqual({k: me.json[k] for k in ("id", "username", "acct")},
                         {"id": "1002", "username": "user_1002", "acct": "user_1002"})
        self.assertIn("display_name", me.json)

    def test_every_answer_carries_the_rate_limit_headers_of_its_window(self) -> None:
        status = self.status("x")
        self.assertEqual((status.headers["X-RateLimit-Limit"], status.headers["X-RateLimit-Remaining"]),
                         ("300", "299"))
        self.assertAlmostEqual(reset_epoch(status), time.time() + 3 * 3600, delta=5)
        me = self.call("GET", f"{API}/v1/accounts/verify_credentials", token="alice")
        self.assertEqual((me.headers["X-RateLimit-Limit"], me.headers["X-RateLimit-Remaining"]), ("300", "298"))
        self.assertAlmostEqual(reset_epoch(me), time.time() + 300, delta=5)
        for answer in (self.status("a" * 501), self.upload(), self.call("GET", f"{STATUSES}/1", token="alice")):
            self.assertIn("X-RateLimit-Reset", answer.headers, answer)
        limits = self.admin("GET", "limits")["limits"]
        self.assertEqual((limits["mastodon"]["limit"], limits["mastodon-api"]["window_seconds"]), (300, 300))

    def test_the_status_window_is_429_but_a_replay_still_answers(self) -> None:
        self.limit("mastodon", 2)
        self.status("one", key="k1")
        self.status("two")
        over = self.status("three")
        self.assertEqual((over.status, over.json), (429, {"error": "Too many requests"}))
        self.assertEqual((over.headers["X-RateLimit-Limit"], over.headers["X-RateLimit-Remaining"]), ("2", "0"))
        self.assertAlmostEqual(reset_epoch(over), time.time() + 60, delta=3)
        self.assertEqual(self.status("one", key="k1").status, 200)
        self.assertEqual(self.status("bob's", token="bob").status, 200, "windows are per account")
        self.assertEqual(len(self.posts(platform="mastodon")), 3)

    def test_the_request_window_counts_every_request(self) -> None:
        self.limit("mastodon-api", 2)
        self.assertEqual(self.listing().status, 200)
        self.assertEqual(self.status("counted").status, 200)
        over = self.status("refused")
        self.assertEqual((over.status, over.headers["X-RateLimit-Limit"]), (429, "2"))
        self.assertEqual(self.listing().headers["X-RateLimit-Remaining"], "0")
        self.assertEqual(len(self.posts(platform="mastodon")), 1)
        self.assertEqual(self.listing(token="bob").status, 200)


class Faults(MastodonCase):
    def test_status_faults_use_mastodons_error_body_and_rate_headers(self) -> None:
        self.fault(platform="mastodon", status=429, retry_after=30, count=1)
        limited = self.status()
        self.assertEqual((limited.status, limited.json), (429, {"error": "Too many requests"}))
        self.assertEqual(limited.headers["X-RateLimit-Remaining"], "0")
        self.assertAlmostEqual(reset_epoch(limited), time.time() + 30, delta=3)
        self.fault(platform="mastodon", account="1002", status=500, message="Something broke")
        self.assertEqual(self.status(token="bob").json, {"error": "Something broke"})
        self.assertEqual(self.status().status, 200, "other accounts are unaffected")
        self.assertEqual(self.listing(token="bob").status, 200, "listings only with endpoints all")
        self.assertEqual(len(self.posts(platform="mastodon")), 1)


class Logging(unittest.TestCase):
    def test_tokens_and_contents_are_never_logged(self) -> None:
        stream = io.StringIO()
        server = fake_platforms.make_server("127.0.0.1", 0, log_stream=stream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
            conn.request("POST", STATUSES, json.dumps({"status": "private words"}),
                         {"Authorization": "Bearer secret-token", "Content-Type": "application/json",
                          "Idempotency-Key": "secret-key"})
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            deadline = time.monotonic() + 5
            while '"request"' not in stream.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            server.shutdown()
            server.server_close()
        [line] = [json.loads(l) for l in stream.getvalue().splitlines() if '"request"' in l]
        self.assertEqual((line["path"], line["platform"], line["status"]), (STATUSES, "mastodon", 200))
        for secret in ("secret-token", "private", "secret-key"):
            self.assertNotIn(secret, stream.getvalue())


if __name__ == "__main__":
    unittest.main()
