"""Tests for infra/fake_platforms/: one in-process server on a free port, real HTTP.

Run with `python3 -m unittest discover -s infra/tests -v` from the repository root.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import random
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlparse, urlsplit

INFRA = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFRA))

import fake_platforms  # noqa: E402

LINKEDIN_HEADERS = {"LinkedIn-Version": "202501", "X-Restli-Protocol-Version": "2.0.0"}


class Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.raw[:300]!r})"


class FakeServerCase(unittest.TestCase):
    server: fake_platforms.FakePlatformsServer
    thread: threading.Thread

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = fake_platforms.make_server("127.0.0.1", 0, log_stream=None)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self) -> None:
        self.assertEqual(self.call("POST", "/_admin/reset").status, 200)

    # -- client helpers --------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        timeout: float = 5,
    ) -> Answer:
        host, port = self.server.server_address[:2]
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        sent = dict(headers or {})
        data: bytes | None = None
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if form is not None:
            data = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if query:
            path = f"{path}?{urlencode(query)}"
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            conn.close()

    def admin(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        answer = self.call(method, f"/_admin/{path}", body, **kw)
        self.assertLess(answer.status, 300, answer)
        return answer.json

    def fault(self, **rule: Any) -> dict[str, Any]:
        answer = self.call("POST", "/_admin/faults", rule)
        self.assertEqual(answer.status, 201, answer)
        return answer.json

    def posts(self, **filters: str) -> list[dict[str, Any]]:
        return self.admin("GET", "posts", query=filters)["posts"]

    def tweet(self, text: str = "hello", token: str = "x-token") -> Answer:
        return self.call("POST", "/x/2/tweets", {"text": text}, token=token)

    def fb_post(self, page: str = "page1", text: str = "hello", token: str | None = "fb") -> Answer:
        return self.call("POST", f"/facebook/v21.0/{page}/feed", token=token, form={"message": text})

    def li_post(
        self, org: str = "42", text: str = "hello", token: str = "li", headers: dict[str, str] | None = None
    ) -> Answer:
        body = {"author": f"urn:li:organization:{org}", "commentary": text, "visibility": "PUBLIC"}
        return self.call(
            "POST", "/linkedin/rest/posts", body, token=token,
            headers=LINKEDIN_HEADERS if headers is None else headers,
        )

    def sms(self, sender: str = "+15550001", text: str = "hi", token: str = "sms") -> Answer:
        body = {"to": "+15559999", "from": sender, "body": text}
        return self.call("POST", "/sms/messages", body, token=token)


class PlatformShapes(FakeServerCase):
    def test_x_creates_tweets_with_increasing_19_digit_ids_and_rate_headers(self) -> None:
        first, second = self.tweet("one"), self.tweet("two")
        self.assertEqual(first.status, 201, first)
        data = first.json["data"]
        self.assertEqual(data["text"], "one")
        self.assertRegex(data["id"], r"^\d{19}$")
        self.assertGreater(int(second.json["data"]["id"]), int(data["id"]))
        self.assertEqual(first.headers["x-rate-limit-limit"], "300")
        self.assertEqual(first.headers["x-rate-limit-remaining"], "299")
        self.assertEqual(second.headers["x-rate-limit-remaining"], "298")
        self.assertAlmostEqual(int(first.headers["x-rate-limit-reset"]), time.time() + 900, delta=5)

    def test_x_account_is_the_tokens_user(self) -> None:
        self.admin("POST", "tokens", {"platform": "x", "token": "mapped", "account": "user-1"})
        self.tweet("mapped", token="mapped")
        self.tweet("unmapped", token="other")
        expected = "token-" + hashlib.sha256(b"other").hexdigest()[:12]
        self.assertEqual([p["account"] for p in self.posts(platform="x")], ["user-1", expected])
        self.assertEqual(self.posts(account="user-1")[0]["text"], "mapped")

    def test_each_platform_says_who_a_token_belongs_to(self) -> None:
        for platform, account in (("x", "user-9"), ("facebook", "page-9"), ("linkedin", "42")):
            self.admin("POST", "tokens", {"platform": platform, "token": f"{platform}-t", "account": account})
        me = self.call("GET", "/x/2/users/me", token="x-t")
        self.assertEqual((me.status, me.json["data"]["id"]), (200, "user-9"))
        page = self.call("GET", "/facebook/v21.0/me", token="facebook-t", query={"fields": "id,name"})
        self.assertEqual((page.status, page.json["id"]), (200, "page-9"))
        member = self.call("GET", "/linkedin/v2/userinfo", token="linkedin-t", headers=LINKEDIN_HEADERS)
        self.assertEqual(member.status, 200)
        acls = self.call("GET", "/linkedin/rest/organizationAcls", token="linkedin-t", headers=LINKEDIN_HEADERS,
                         query={"q": "roleAssignee", "role": "ADMINISTRATOR", "state": "APPROVED"})
        self.assertEqual(
            [(e["organization"], e["roleAssignee"]) for e in acls.json["elements"]],
            [("urn:li:organization:42", f"urn:li:person:{member.json['sub']}")],
        )
        # An unregistered token is a user of its own; a revoked one is refused.
        other = self.call("GET", "/x/2/users/me", token="unknown")
        self.assertEqual(other.json["data"]["id"], "token-" + hashlib.sha256(b"unknown").hexdigest()[:12])
        self.assertEqual(self.call("GET", "/x/2/users/me", token="revoked-1").status, 401)
        self.assertEqual(self.call("GET", "/facebook/v21.0/me", token="revoked-1").json["error"]["code"], 190)
        self.assertEqual(self.call("GET", "/linkedin/v2/userinfo", token="revoked-1",
                                   headers=LINKEDIN_HEADERS).status, 401)
        bad = self.call("POST", "/_admin/tokens", {"platform": "myspace", "token": "t", "account": "a"})
        self.assertEqual(bad.status, 400)

    def test_x_timeline_is_newest_first_with_pagination_and_since_id(self) -> None:
        self.admin("POST", "tokens", {"platform": "x", "token": "t", "account": "u1"})
        ids = [self.tweet(f"t{i}", token="t").json["data"]["id"] for i in range(7)]
        page = self.call("GET", "/x/2/users/u1/tweets", token="t", query={"max_results": 5}).json
        self.assertEqual([t["id"] for t in page["data"]], ids[::-1][:5])
        self.assertEqual(page["data"][0]["text"], "t6")
        self.assertRegex(page["data"][0]["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        meta = page["meta"]
        self.assertEqual((meta["result_count"], meta["newest_id"], meta["oldest_id"]), (5, ids[6], ids[2]))
        rest = self.call(
            "GET", "/x/2/users/u1/tweets", token="t",
            query={"max_results": 5, "pagination_token": meta["next_token"]},
        ).json
        self.assertEqual([t["id"] for t in rest["data"]], [ids[1], ids[0]])
        self.assertNotIn("next_token", rest["meta"])
        since = self.call("GET", "/x/2/users/u1/tweets", token="t", query={"since_id": ids[4]}).json
        self.assertEqual([t["id"] for t in since["data"]], [ids[6], ids[5]])
        empty = self.call("GET", "/x/2/users/nobody/tweets", token="t").json
        self.assertEqual(empty, {"meta": {"result_count": 0}})
        bad = self.call("GET", "/x/2/users/u1/tweets", token="t", query={"max_results": 200})
        self.assertEqual((bad.status, bad.json["status"]), (400, 400))

    def test_facebook_creates_posts_on_any_version_and_reports_app_usage(self) -> None:
        first = self.fb_post("page1", "hello")
        self.assertEqual(first.status, 200, first)
        self.assertRegex(first.json["id"], r"^page1_\d+$")
        usage = json.loads(first.headers["X-App-Usage"])
        self.assertEqual(set(usage), {"call_count", "total_cputime", "total_time"})
        unversioned = self.call("POST", "/facebook/page1/feed", token="fb", form={"message": "two"})
        via_param = self.call(
            "POST", "/facebook/v19.0/page1/feed", form={"message": "three", "access_token": "fb"}
        )
        via_query = self.call(
            "POST", "/facebook/v21.0/page1/feed", form={"message": "four"}, query={"access_token": "fb"}
        )
        for answer in (unversioned, via_param, via_query):
            self.assertEqual(answer.status, 200, answer)
        ids = [a.json["id"] for a in (first, unversioned, via_param, via_query)]
        self.assertEqual(ids, sorted(ids, key=lambda i: int(i.split("_")[1])))
        self.assertEqual(
            [p["text"] for p in self.posts(platform="facebook", account="page1")],
            ["hello", "two", "three", "four"],
        )

    def test_facebook_listing_pages_newest_first(self) -> None:
        for i in range(5):
            self.fb_post("page1", f"m{i}")
        self.fb_post("page2", "elsewhere")
        first = self.call("GET", "/facebook/v21.0/page1/feed", token="fb", query={"limit": 3}).json
        self.assertEqual([p["message"] for p in first["data"]], ["m4", "m3", "m2"])
        self.assertRegex(first["data"][0]["created_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
        self.assertEqual(set(first["paging"]["cursors"]), {"before", "after"})
        next_url = urlsplit(first["paging"]["next"])
        self.assertNotIn("access_token", next_url.query)
        second = self.call("GET", f"{next_url.path}?{next_url.query}", token="fb").json
        self.assertEqual([p["message"] for p in second["data"]], ["m1", "m0"])
        self.assertNotIn("next", second["paging"])
        posts = self.call("GET", "/facebook/v21.0/page2/posts", token="fb").json
        self.assertEqual([p["message"] for p in posts["data"]], ["elsewhere"])

    def test_linkedin_creates_with_restli_id_header_and_empty_body(self) -> None:
        answer = self.li_post("42", "hello")
        self.assertEqual(answer.status, 201, answer)
        self.assertEqual(answer.raw, b"")
        self.assertRegex(answer.headers["x-restli-id"], r"^urn:li:share:\d+$")
        second = self.call(
            "POST", "/linkedin/rest/posts",
            {"author": "urn:li:person:abc", "commentary": "me"}, token="li", headers=LINKEDIN_HEADERS,
        )
        self.assertGreater(
            int(second.headers["x-restli-id"].rsplit(":", 1)[1]),
            int(answer.headers["x-restli-id"].rsplit(":", 1)[1]),
        )
        self.assertEqual([(p["account"], p["text"]) for p in self.posts(platform="linkedin")],
                         [("42", "hello"), ("abc", "me")])

    def test_linkedin_requires_its_version_headers(self) -> None:
        for headers in ({}, {"LinkedIn-Version": "202501"}):
            answer = self.li_post(headers=headers)
            self.assertEqual(answer.status, 400, answer)
            self.assertEqual(answer.json["code"], "VERSION_MISSING")
            self.assertEqual(answer.json["status"], 400)
        self.assertEqual(self.posts(), [])

    def test_linkedin_listing_by_author(self) -> None:
        for i in range(3):
            self.li_post("42", f"p{i}")
        self.li_post("7", "other")
        answer = self.call(
            "GET", "/linkedin/rest/posts", token="li", headers=LINKEDIN_HEADERS,
            query={"q": "author", "author": "urn:li:organization:42", "count": 2, "start": 0},
        )
        self.assertEqual(answer.status, 200, answer)
        body = answer.json
        self.assertEqual([e["commentary"] for e in body["elements"]], ["p2", "p1"])
        self.assertEqual(body["elements"][0]["author"], "urn:li:organization:42")
        self.assertIsInstance(body["elements"][0]["createdAt"], int)
        self.assertAlmostEqual(body["elements"][0]["createdAt"] / 1000, time.time(), delta=10)
        self.assertEqual(body["paging"], {"start": 0, "count": 2, "total": 3})

    def test_sms_messages_are_queued_and_recorded_by_sender(self) -> None:
        answer = self.sms("+15550001", "code 1234")
        self.assertEqual(answer.status, 201, answer)
        self.assertRegex(answer.json["id"], r"^sm_\d+$")
        self.assertEqual(answer.json["status"], "queued")
        [post] = self.posts(platform="sms")
        self.assertEqual((post["account"], post["text"]), ("+15550001", "code 1234"))
        missing = self.call("POST", "/sms/messages", {"from": "+1"}, token="sms")
        self.assertEqual(missing.status, 400, missing)

    def test_admin_posts_have_rfc3339_ms_times_in_arrival_order(self) -> None:
        self.tweet("a")
        self.fb_post(text="b")
        self.li_post(text="c")
        posts = self.posts()
        self.assertEqual([p["platform"] for p in posts], ["x", "facebook", "linkedin"])
        self.assertEqual(set(posts[0]), {"seq", "platform", "account", "text", "id", "media", "parent", "time"})
        self.assertRegex(posts[0]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(len(self.posts(platform="", account="")), 3, "blank filters are ignored")


class Answers(FakeServerCase):
    """Replies on X and comments on Facebook and LinkedIn: created like posts (faults, tokens,
    rate windows), refused when their parent does not exist, and listed under their parent."""

    def test_x_replies_answer_a_tweet_and_list_it_as_replied_to(self) -> None:
        head = self.tweet("head").json["data"]["id"]
        reply = self.call("POST", "/x/2/tweets", {"text": "part", "reply": {"in_reply_to_tweet_id": head}},
                          token="x-token")
        self.assertEqual(reply.status, 201, reply)
        orphan = self.call("POST", "/x/2/tweets", {"text": "lost", "reply": {"in_reply_to_tweet_id": "1"}},
                           token="x-token")
        self.assertEqual(orphan.status, 400, orphan)
        user = self.posts(platform="x")[0]["account"]
        listed = self.call("GET", f"/x/2/users/{user}/tweets", token="x-token",
                           query={"tweet.fields": "created_at,referenced_tweets"}).json["data"]
        self.assertEqual(listed[0]["referenced_tweets"], [{"type": "replied_to", "id": head}])
        self.assertNotIn("referenced_tweets", listed[1])
        self.assertEqual([p["parent"] for p in self.posts(platform="x")], [None, head])
        # A rule for answers leaves posts alone and loses a reply's answer.
        self.fault(platform="x", ambiguous=True, count=1, endpoints="answer")
        self.assertEqual(self.tweet("another post").status, 201)
        with self.assertRaises(Exception):
            self.call("POST", "/x/2/tweets", {"text": "p2", "reply": {"in_reply_to_tweet_id": head}},
                      token="x-token")
        self.assertEqual(self.posts(platform="x")[-1]["parent"], head)

    def test_facebook_comments_are_on_their_post_not_in_the_feed(self) -> None:
        post = self.fb_post("page1", "head").json["id"]
        comment = self.call("POST", f"/facebook/v21.0/{post}/comments", token="fb", form={"message": "first!"})
        self.assertEqual(comment.status, 200, comment)
        self.assertTrue(comment.json["id"].startswith(f"{post}_"), comment)
        missing = self.call("POST", "/facebook/v21.0/page1_9/comments", token="fb", form={"message": "x"})
        self.assertEqual(missing.status, 400, missing)
        listed = self.call("GET", f"/facebook/v21.0/{post}/comments", token="fb",
                           query={"fields": "id,message,created_time,from", "order": "reverse_chronological"})
        self.assertEqual([(c["message"], c["from"]["id"]) for c in listed.json["data"]], [("first!", "page1")])
        feed = self.call("GET", "/facebook/v21.0/page1/feed", token="fb").json["data"]
        self.assertEqual([p["message"] for p in feed], ["head"])

    def test_linkedin_comments_answer_201_with_their_urn_and_stay_out_of_the_posts(self) -> None:
        share = self.li_post("42", "head").headers["x-restli-id"]
        path = f"/linkedin/rest/socialActions/{quote(share, safe='')}/comments"
        body = {"actor": "urn:li:organization:42", "object": share, "message": {"text": "first!"}}
        created = self.call("POST", path, body, token="li", headers=LINKEDIN_HEADERS)
        self.assertEqual(created.status, 201, created)
        self.assertEqual(created.headers["x-restli-id"], created.json["$URN"])
        self.assertTrue(created.json["$URN"].startswith(f"urn:li:comment:({share},"), created)
        wrong = self.call("POST", path, {**body, "object": "urn:li:share:1"}, token="li", headers=LINKEDIN_HEADERS)
        self.assertEqual(wrong.status, 422, wrong)
        listed = self.call("GET", path, token="li", headers=LINKEDIN_HEADERS).json["elements"]
        self.assertEqual([(c["message"]["text"], c["actor"]) for c in listed],
                         [("first!", "urn:li:organization:42")])
        posts = self.call("GET", "/linkedin/rest/posts", token="li", headers=LINKEDIN_HEADERS,
                          query={"q": "author", "author": "urn:li:organization:42"}).json["elements"]
        self.assertEqual([p["commentary"] for p in posts], ["head"])

    def test_a_lost_answer_to_a_comment_still_creates_it(self) -> None:
        self.fault(platform="facebook", account="page1", ambiguous=True, count=1, endpoints="answer")
        post = self.fb_post("page1", "head").json["id"]
        with self.assertRaises(Exception):
            self.call("POST", f"/facebook/v21.0/{post}/comments", token="fb", form={"message": "once"})
        self.assertEqual([p["text"] for p in self.posts(platform="facebook")], ["head", "once"])


class Auth(FakeServerCase):
    def test_revoked_tokens_are_refused_per_platform(self) -> None:
        x = self.tweet(token="revoked-token")
        self.assertEqual(x.status, 401)
        self.assertEqual(
            x.json, {"title": "Unauthorized", "detail": "Unauthorized", "type": "about:blank", "status": 401}
        )
        self.assertIn("x-rate-limit-limit", x.headers)
        fb = self.fb_post(token="revoked-123")
        self.assertEqual(fb.status, 400)
        self.assertEqual(fb.json["error"]["code"], 190)
        self.assertEqual(fb.json["error"]["type"], "OAuthException")
        self.assertIn("session has been invalidated", fb.json["error"]["message"])
        li = self.li_post(token="revoked-token")
        self.assertEqual(li.status, 401)
        self.assertEqual(
            li.json,
            {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
             "message": "Invalid access token"},
        )
        self.assertEqual(self.sms(token="revoked").status, 401)
        self.assertEqual(self.posts(), [])

    def test_missing_tokens_are_refused(self) -> None:
        self.assertEqual(self.call("POST", "/x/2/tweets", {"text": "t"}).status, 401)
        fb = self.fb_post(token=None)
        self.assertEqual((fb.status, fb.json["error"]["code"]), (400, 190))
        li = self.call("POST", "/linkedin/rest/posts",
                       {"author": "urn:li:organization:1", "commentary": "c"}, headers=LINKEDIN_HEADERS)
        self.assertEqual(li.status, 401)
        self.assertEqual(self.call("POST", "/sms/messages", {"to": "1", "from": "2", "body": "b"}).status, 401)
        self.assertEqual(self.call("GET", "/x/2/users/u/tweets").status, 401)
        self.assertEqual(self.posts(), [])


class Faults(FakeServerCase):
    def test_the_e2e_facebook_rules(self) -> None:
        self.fault(platform="facebook", account="page1", status=400, error_code=100,
                   message="Invalid parameter", rate=1.0)
        self.fault(platform="facebook", account="page2", status=503, rate=1.0)
        refused = self.fb_post("page1")
        self.assertEqual(refused.status, 400)
        self.assertEqual(refused.json["error"]["code"], 100)
        self.assertEqual(refused.json["error"]["message"], "Invalid parameter")
        self.assertIn("fbtrace_id", refused.json["error"])
        self.assertIn("X-App-Usage", refused.headers)
        unavailable = self.fb_post("page2")
        self.assertEqual(unavailable.status, 503)
        self.assertIn("message", unavailable.json["error"])
        self.assertEqual(self.fb_post("page3").status, 200, "other pages are unaffected")
        self.assertEqual([p["account"] for p in self.posts()], ["page3"])

    def test_one_rule_can_be_removed_leaving_the_others(self) -> None:
        first = self.fault(platform="facebook", account="page1", status=503)
        self.fault(platform="facebook", account="page2", status=503)
        self.admin("DELETE", f"faults/{first['id']}")
        self.assertEqual(self.fb_post("page1").status, 200)
        self.assertEqual(self.fb_post("page2").status, 503)
        self.assertEqual(self.call("DELETE", f"/_admin/faults/{first['id']}").status, 404)

    def test_status_faults_use_each_platforms_error_body(self) -> None:
        self.fault(platform="x", status=429, error_code=88, retry_after=30)
        x = self.tweet()
        self.assertEqual(x.status, 429)
        self.assertEqual(x.json["errors"], [{"code": 88, "message": "Rate limit exceeded"}])
        self.assertEqual(x.json["detail"], "Rate limit exceeded")
        self.assertEqual(x.json["status"], 429)
        self.assertEqual(x.headers["Retry-After"], "30")
        self.assertEqual(x.headers["x-rate-limit-remaining"], "0")
        self.assertAlmostEqual(int(x.headers["x-rate-limit-reset"]), time.time() + 30, delta=3)

        self.admin("DELETE", "faults")
        self.fault(platform="x", status=500, message="Something broke")
        plain = self.tweet()
        self.assertEqual(plain.status, 500)
        self.assertEqual(
            plain.json,
            {"title": "Internal Server Error", "detail": "Something broke", "type": "about:blank", "status": 500},
        )

        self.fault(platform="linkedin", status=429, error_code=101, message="slow down", retry_after=7)
        li = self.li_post()
        self.assertEqual(li.status, 429)
        self.assertEqual(
            li.json, {"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS", "message": "slow down"}
        )
        self.assertEqual(li.headers["Retry-After"], "7")

        self.fault(platform="facebook", status=400, error_code=4)
        fb = self.fb_post()
        self.assertEqual((fb.status, fb.json["error"]["code"]), (400, 4))
        self.assertEqual(fb.json["error"]["message"], "(#4) Application request limit reached")
        self.assertGreaterEqual(json.loads(fb.headers["X-App-Usage"])["call_count"], 100)

        self.fault(platform="sms", status=503)
        self.assertEqual(self.sms().status, 503)
        self.assertEqual(self.posts(), [], "status faults create nothing")

    def test_count_spends_a_rule_and_the_listing_shows_how_often_it_fired(self) -> None:
        rule = self.fault(platform="x", status=503, count=2)
        self.assertRegex(rule["id"], r"^flt_\d+$")
        self.assertEqual(rule["fired"], 0)
        self.assertEqual([self.tweet().status for _ in range(3)], [503, 503, 201])
        [listed] = self.admin("GET", "faults")["faults"]
        self.assertEqual((listed["id"], listed["fired"], listed["count"]), (rule["id"], 2, 2))
        self.admin("DELETE", "faults")
        self.assertEqual(self.admin("GET", "faults")["faults"], [])

    def test_rate_with_a_seed_replays(self) -> None:
        self.fault(platform="facebook", status=500, rate=0.5, seed=42)
        observed = [self.fb_post().status == 500 for _ in range(20)]
        rng = random.Random(42)
        self.assertEqual(observed, [rng.random() < 0.5 for _ in range(20)])
        self.assertTrue(any(observed) and not all(observed))
        self.assertEqual(len(self.posts()), observed.count(False))

    def test_rules_match_by_account_in_insertion_order(self) -> None:
        self.fault(platform="linkedin", account="1", status=500)
        self.fault(platform="linkedin", status=502)
        self.assertEqual(self.li_post("1").status, 500)
        self.assertEqual(self.li_post("2").status, 502)
        self.admin("POST", "tokens", {"platform": "x", "token": "tok-a", "account": "user-a"})
        self.fault(platform="x", account="user-a", status=503)
        self.assertEqual(self.tweet(token="tok-a").status, 503)
        self.assertEqual(self.tweet(token="tok-b").status, 201)

    def test_listings_are_only_affected_with_endpoints_all(self) -> None:
        self.fault(platform="facebook", status=500)
        self.assertEqual(self.call("GET", "/facebook/v21.0/p/feed", token="fb").status, 200)
        self.admin("DELETE", "faults")
        self.fault(platform="facebook", status=500, endpoints="all")
        self.assertEqual(self.call("GET", "/facebook/v21.0/p/feed", token="fb").status, 500)
        self.assertEqual(self.call("GET", "/_admin/health").status, 200, "never admin")

    def test_ambiguous_creates_the_post_and_drops_the_connection(self) -> None:
        self.fault(platform="facebook", account="page1", ambiguous=True, count=1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.fb_post("page1", "lost answer")
        [post] = self.posts(platform="facebook", account="page1")
        self.assertEqual(post["text"], "lost answer")
        self.assertEqual(self.fb_post("page1", "next").status, 200, "the rule is spent")

        self.fault(platform="linkedin", ambiguous=True)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.li_post("9", "also lost")
        self.assertEqual(len(self.posts(platform="linkedin", account="9")), 1)

    def test_latency_delays_and_still_creates_after_a_client_timeout(self) -> None:
        self.fault(platform="x", latency_ms=300, count=1)
        started = time.monotonic()
        answer = self.tweet("slow")
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        self.assertEqual(answer.status, 201)

        self.fault(platform="sms", latency_ms=500, count=1)
        with self.assertRaises(TimeoutError):
            self.call("POST", "/sms/messages", {"to": "+15559999", "from": "2", "body": "late"}, token="s", timeout=0.15)
        deadline = time.monotonic() + 3
        while not self.posts(platform="sms") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([p["text"] for p in self.posts(platform="sms")], ["late"])

    def test_latency_with_a_status_creates_nothing(self) -> None:
        self.fault(platform="x", latency_ms=100, status=503)
        self.assertEqual(self.tweet().status, 503)
        self.assertEqual(self.posts(), [])

    def test_bad_rules_are_refused_with_a_json_error(self) -> None:
        for rule in (
            {},
            {"platform": "myspace", "status": 500},
            {"platform": "x", "status": 500, "rate": 1.5},
            {"platform": "x", "status": "500"},
            {"platform": "x", "status": 500, "surprise": True},
            {"platform": "x"},
            {"platform": "x", "status": 500, "ambiguous": True},
            {"platform": "x", "status": 500, "endpoints": "some"},
            {"platform": "x", "status": 500, "endpoints": "uploads"},
        ):
            answer = self.call("POST", "/_admin/faults", rule)
            self.assertEqual(answer.status, 400, rule)
            self.assertIsInstance(answer.json["error"], str)
        malformed = self.call("POST", "/_admin/faults", b"{not json")
        self.assertEqual(malformed.status, 400)
        self.assertIn("error", malformed.json)
        self.assertEqual(self.admin("GET", "faults")["faults"], [])


def multipart(fields: dict[str, str], files: dict[str, tuple[str, str, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body as reqwest sends one: fields, then (name, type, bytes) files."""
    boundary = "herald-test-boundary-8d1f"
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, (filename, content_type, data) in files.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# Binary content with the bytes a careless parser mangles: CR, LF, and a boundary-like line.
PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n\r\n"


class Media(FakeServerCase):
    def x_upload(self, data: bytes = PHOTO, category: str = "tweet_image", token: str = "x-token") -> Answer:
        body, headers = multipart({"media_category": category}, {"media": ("a.png", "image/png", data)})
        return self.call("POST", "/x/2/media/upload", body, token=token, headers=headers)

    def fb_photo(self, page: str = "page1", data: bytes = PHOTO, published: str = "false") -> Answer:
        body, headers = multipart({"published": published}, {"source": ("a.png", "image/png", data)})
        return self.call("POST", f"/facebook/v21.0/{page}/photos", body, token="fb", headers=headers)

    def li_init(self, org: str = "42", resource: str = "images") -> Answer:
        return self.call(
            "POST", f"/linkedin/rest/{resource}", {"initializeUploadRequest": {"owner": f"urn:li:organization:{org}"}},
            token="li", headers=LINKEDIN_HEADERS, query={"action": "initializeUpload"},
        )

    def li_put(self, url: str, data: bytes = PHOTO, content_type: str = "image/png") -> Answer:
        path = urlsplit(url).path
        return self.call("PUT", path, data, token="li", headers={"Content-Type": content_type})

    def media(self, **filters: str) -> list[dict[str, Any]]:
        return self.admin("GET", "media", query=filters)["media"]

    def test_x_uploads_then_tweets_referring_to_the_media(self) -> None:
        self.admin("POST", "tokens", {"platform": "x", "token": "x-token", "account": "u1"})
        up = self.x_upload()
        self.assertEqual(up.status, 200, up)
        media_id = up.json["data"]["id"]
        self.assertRegex(media_id, r"^\d{19}$")
        self.assertEqual(up.json["data"]["media_key"], f"3_{media_id}")
        self.assertEqual(self.x_upload(category="tweet_gif").json["data"]["media_key"][:3], "16_")
        tweet = self.call("POST", "/x/2/tweets", {"text": "pic", "media": {"media_ids": [media_id]}}, token="x-token")
        self.assertEqual(tweet.status, 201, tweet)
        [post] = self.posts(platform="x")
        self.assertEqual(post["media"], [media_id])
        [first, _gif] = self.media(platform="x", account="u1")
        self.assertEqual(
            (first["id"], first["bytes"], first["sha256"], first["content_type"], first["kind"]),
            (media_id, len(PHOTO), hashlib.sha256(PHOTO).hexdigest(), "image/png", "image"),
        )
        self.assertLess(first["seq"], post["seq"], "the upload came before the post")

    def test_a_post_may_only_refer_to_its_own_accounts_uploads(self) -> None:
        self.admin("POST", "tokens", {"platform": "x", "token": "other", "account": "u2"})
        theirs = self.x_upload(token="other").json["data"]["id"]
        for ids in ([theirs], ["1790000000999999999"]):
            answer = self.call("POST", "/x/2/tweets", {"text": "t", "media": {"media_ids": ids}}, token="x-token")
            self.assertEqual(answer.status, 400, answer)
            self.assertIn("was not uploaded by this account", answer.json["detail"])
        self.assertEqual(self.posts(platform="x"), [])
        self.assertEqual(self.x_upload(token="revoked-1").status, 401, "uploads check the token")
        missing, headers = multipart({"media_category": "tweet_image"}, {})
        answer = self.call("POST", "/x/2/media/upload", missing, token="x-token", headers=headers)
        self.assertEqual(answer.status, 400, answer)

    def test_facebook_attaches_unpublished_photos_to_the_feed_post(self) -> None:
        photos = [self.fb_photo().json["id"] for _ in range(2)]
        form = {"message": "two pics"}
        form.update({f"attached_media[{i}]": json.dumps({"media_fbid": p}) for i, p in enumerate(photos)})
        answer = self.call("POST", "/facebook/v21.0/page1/feed", token="fb", form=form)
        self.assertEqual(answer.status, 200, answer)
        [post] = self.posts(platform="facebook")
        self.assertEqual((post["text"], post["media"]), ("two pics", photos))
        self.assertEqual(self.fb_photo(published="true").status, 400, "only unpublished uploads")
        other_page = self.fb_photo(page="page2").json["id"]
        refused = self.call(
            "POST", "/facebook/v21.0/page1/feed", token="fb",
            form={"message": "x", "attached_media[0]": json.dumps({"media_fbid": other_page})},
        )
        self.assertEqual(refused.status, 400, refused)
        self.assertEqual(refused.json["error"]["code"], 100)

    def test_a_facebook_video_is_its_own_post_and_is_listed_in_the_feed(self) -> None:
        body, headers = multipart({"description": "our film"}, {"source": ("f.mp4", "video/mp4", b"\0\0\0\x18ftypisom" + PHOTO)})
        answer = self.call("POST", "/facebook/v21.0/page1/videos", body, token="fb", headers=headers)
        self.assertEqual(answer.status, 200, answer)
        [video] = self.media(platform="facebook")
        self.assertEqual((video["id"], video["kind"]), (answer.json["id"], "video"))
        [post] = self.posts(platform="facebook")
        self.assertEqual((post["text"], post["media"]), ("our film", [video["id"]]))
        feed = self.call("GET", "/facebook/v21.0/page1/feed", token="fb").json
        self.assertEqual([p["message"] for p in feed["data"]], ["our film"])

    def test_linkedin_initializes_then_takes_the_bytes_then_posts_the_urn(self) -> None:
        init = self.li_init()
        self.assertEqual(init.status, 200, init)
        value = init.json["value"]
        self.assertRegex(value["image"], r"^urn:li:image:")
        early = self.call(
            "POST", "/linkedin/rest/posts",
            {"author": "urn:li:organization:42", "commentary": "c", "content": {"media": {"id": value["image"]}}},
            token="li", headers=LINKEDIN_HEADERS,
        )
        self.assertEqual(early.status, 422, "no bytes yet")
        self.assertEqual(self.li_put(value["uploadUrl"], content_type="image/png").status, 201)
        second = self.li_init()
        self.li_put(second.json["value"]["uploadUrl"])
        post = self.call(
            "POST", "/linkedin/rest/posts",
            {"author": "urn:li:organization:42", "commentary": "c",
             "content": {"multiImage": {"images": [{"id": value["image"]}, {"id": second.json["value"]["image"]}]}}},
            token="li", headers=LINKEDIN_HEADERS,
        )
        self.assertEqual(post.status, 201, post)
        [stored] = self.posts(platform="linkedin")
        self.assertEqual(stored["media"], [value["image"], second.json["value"]["image"]])
        uploaded = self.media(platform="linkedin", account="42")
        self.assertEqual([m["sha256"] for m in uploaded], [hashlib.sha256(PHOTO).hexdigest()] * 2)
        doc = self.li_init(resource="documents").json["value"]
        self.assertRegex(doc["document"], r"^urn:li:document:")
        self.assertEqual(self.li_put(doc["uploadUrl"], b"%PDF-1.7 ...", "application/pdf").status, 201)
        self.assertEqual(self.li_put("/linkedin/uploads/nosuchtoken").status, 404)
        no_action = self.call(
            "POST", "/linkedin/rest/images", {"initializeUploadRequest": {"owner": "urn:li:organization:42"}},
            token="li", headers=LINKEDIN_HEADERS,
        )
        self.assertEqual(no_action.status, 422, no_action)

    def test_upload_faults_apply_to_uploads_only_and_ambiguous_ones_keep_the_upload(self) -> None:
        self.fault(platform="x", status=503, endpoints="upload", count=1)
        self.assertEqual(self.x_upload().status, 503)
        self.assertEqual(self.tweet("no media").status, 201, "creates are not affected")
        self.fault(platform="facebook", ambiguous=True, endpoints="upload", count=1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.fb_photo()
        self.assertEqual(len(self.media(platform="facebook")), 1, "stored, answer lost")
        self.assertEqual(self.posts(platform="facebook"), [])
        self.fault(platform="linkedin", status=500, endpoints="upload", count=1)
        self.assertEqual(self.li_init().status, 500)
        url = self.li_init().json["value"]["uploadUrl"]
        self.fault(platform="linkedin", status=503, endpoints="upload", count=1)
        self.assertEqual(self.li_put(url).status, 503, "the bytes' PUT is an upload too")
        self.assertEqual(self.li_put(url).status, 201)

    def test_uploads_may_be_larger_than_other_requests(self) -> None:
        big = PHOTO + bytes(3 << 20)
        up = self.x_upload(big)
        self.assertEqual(up.status, 200, up)
        self.assertEqual(self.media()[0]["bytes"], len(big))
        # Refused on its Content-Length, before a byte of it is read (sending 2 MB for real
        # would race the refusal and may break the pipe instead).
        too_big = self.call(
            "POST", "/x/2/tweets", b"{}", token="x-token", headers={"Content-Length": str(2 << 20)}
        )
        self.assertEqual(too_big.status, 400)
        self.assertIn("at most", too_big.json["error"])

    def test_multipart_parts_come_back_byte_for_byte(self) -> None:
        body, headers = multipart({"a": "1"}, {"f": ("x.bin", "application/octet-stream", PHOTO)})
        parts = fake_platforms.parse_multipart(headers["Content-Type"], body)
        self.assertEqual(parts["f"].data, PHOTO)
        self.assertEqual((parts["f"].filename, parts["f"].content_type), ("x.bin", "application/octet-stream"))
        self.assertEqual(parts["a"].text, "1")
        with self.assertRaises(fake_platforms.BadRequest):
            fake_platforms.parse_multipart("multipart/form-data; boundary=zz", b"--zz\r\nno end")
        with self.assertRaises(fake_platforms.BadRequest):
            fake_platforms.parse_multipart("application/json", body)


class RateLimits(FakeServerCase):
    def limit(self, platform: str, limit: int, window: float = 60) -> None:
        self.admin("POST", "limits", {"platform": platform, "limit": limit, "window_seconds": window})

    def test_x_answers_429_with_code_88_and_rate_headers(self) -> None:
        self.limit("x", 2)
        self.assertEqual([self.tweet().status for _ in range(2)], [201, 201])
        over = self.tweet()
        self.assertEqual(over.status, 429)
        self.assertEqual(over.json["errors"][0]["code"], 88)
        self.assertEqual(over.headers["x-rate-limit-remaining"], "0")
        self.assertEqual(over.headers["x-rate-limit-limit"], "2")
        self.assertAlmostEqual(int(over.headers["x-rate-limit-reset"]), time.time() + 60, delta=3)
        self.assertEqual(self.tweet(token="someone-else").status, 201, "windows are per account")
        self.assertEqual(len(self.posts(platform="x")), 3)

    def test_facebook_answers_code_4_with_full_app_usage(self) -> None:
        self.limit("facebook", 2)
        first = self.fb_post("page1")
        self.assertEqual(json.loads(first.headers["X-App-Usage"])["call_count"], 50)
        self.fb_post("page1")
        over = self.fb_post("page1")
        self.assertEqual(over.status, 400)
        self.assertEqual(over.json["error"]["code"], 4)
        self.assertGreaterEqual(json.loads(over.headers["X-App-Usage"])["call_count"], 100)
        self.assertEqual(self.fb_post("page2").status, 200)

    def test_linkedin_and_sms_answer_429_with_retry_after(self) -> None:
        self.limit("linkedin", 1, 30)
        self.limit("sms", 1, 10)
        self.assertEqual(self.li_post().status, 201)
        li = self.li_post()
        self.assertEqual((li.status, li.json["code"]), (429, "TOO_MANY_REQUESTS"))
        self.assertTrue(1 <= int(li.headers["Retry-After"]) <= 30)
        self.assertEqual(self.sms().status, 201)
        sms = self.sms()
        self.assertEqual(sms.status, 429)
        self.assertTrue(1 <= int(sms.headers["Retry-After"]) <= 10)

    def test_the_window_resets(self) -> None:
        self.limit("sms", 1, 0.2)
        self.assertEqual(self.sms().status, 201)
        self.assertEqual(self.sms().status, 429)
        time.sleep(0.25)
        self.assertEqual(self.sms().status, 201)

    def test_injected_faults_and_auth_failures_do_not_count(self) -> None:
        self.limit("x", 1)
        self.fault(platform="x", status=500, count=2)
        self.assertEqual([self.tweet().status for _ in range(2)], [500, 500])
        self.assertEqual(self.tweet(token="revoked").status, 401)
        self.assertEqual(self.tweet().status, 201)
        self.assertEqual(self.tweet().status, 429)


class SinksAndAdmin(FakeServerCase):
    def test_a_sink_follows_its_script_then_answers_200(self) -> None:
        self.admin("POST", "sinks/alerts", {"statuses": [500, 429], "retry_after": 3})
        statuses = []
        for i in range(3):
            answer = self.call("POST", "/sinks/alerts", {"text": f"alert {i}"},
                               headers={"X-Signature": f"sig{i}"})
            statuses.append(answer.status)
            if answer.status == 429:
                self.assertEqual(answer.headers["Retry-After"], "3")
        self.assertEqual(statuses, [500, 429, 200])
        self.assertEqual(self.call("POST", "/sinks/alerts", {"x": 1}).json, {"ok": True})
        requests = self.admin("GET", "sinks/alerts")["requests"]
        self.assertEqual(len(requests), 4)
        self.assertEqual(requests[0]["name"], "alerts")
        self.assertEqual(json.loads(requests[0]["body"]), {"text": "alert 0"})
        self.assertEqual(requests[0]["headers"]["x-signature"], "sig0")
        self.assertEqual(requests[0]["headers"]["content-type"], "application/json")
        self.assertEqual(self.admin("GET", "sinks/unused"), {"requests": []})

    def test_reset_clears_everything_back_to_defaults(self) -> None:
        self.admin("POST", "tokens", {"platform": "x", "token": "t", "account": "u"})
        self.admin("POST", "limits", {"platform": "x", "limit": 1, "window_seconds": 60})
        self.fault(platform="facebook", status=500)
        self.tweet(token="t")
        self.call("POST", "/sinks/hook", {})
        self.admin("POST", "reset")
        self.assertEqual(self.posts(), [])
        self.assertEqual(self.admin("GET", "faults")["faults"], [])
        self.assertEqual(self.admin("GET", "sinks/hook")["requests"], [])
        self.assertEqual(self.admin("GET", "limits")["limits"]["x"], {"limit": 300, "window_seconds": 900})
        answer = self.tweet(token="t")
        self.assertEqual(answer.headers["x-rate-limit-remaining"], "299")
        self.assertTrue(self.posts()[0]["account"].startswith("token-"))
        self.assertEqual(self.fb_post().status, 200)

    def test_health_unknown_paths_and_malformed_admin_json(self) -> None:
        self.assertEqual(self.admin("GET", "health"), {"ok": True})
        missing = self.call("GET", "/nowhere")
        self.assertEqual(missing.status, 404)
        self.assertIn("error", missing.json)
        wrong_method = self.call("DELETE", "/x/2/tweets")
        self.assertEqual(wrong_method.status, 405)
        for path in ("/_admin/tokens", "/_admin/limits", "/_admin/sinks/s"):
            answer = self.call("POST", path, b"[1, 2")
            self.assertEqual(answer.status, 400, path)
            self.assertIn("error", answer.json)
        tokens = self.call("POST", "/_admin/tokens", {"platform": "sms", "token": "t", "account": "a"})
        self.assertEqual(tokens.status, 400)

    def test_keep_alive_connections_serve_several_requests(self) -> None:
        host, port = self.server.server_address[:2]
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            for i in range(3):
                conn.request("POST", "/x/2/tweets", json.dumps({"text": f"k{i}"}),
                             {"Authorization": "Bearer k", "Content-Type": "application/json"})
                response = conn.getresponse()
                self.assertEqual(response.status, 201)
                response.read()
        finally:
            conn.close()
        self.assertEqual(len(self.posts(platform="x")), 3)

    def test_concurrent_creates_are_all_recorded_with_unique_ids(self) -> None:
        ids: list[str] = []
        lock = threading.Lock()

        def publish(n: int) -> None:
            answer = self.fb_post(f"page{n % 3}", f"m{n}")
            with lock:
                ids.append(answer.json["id"])

        threads = [threading.Thread(target=publish, args=(n,)) for n in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(set(ids)), 30)
        self.assertEqual(len(self.posts(platform="facebook")), 30)


class OAuthRefresh(FakeServerCase):
    def refresh(self, platform: str, token: str) -> Answer:
        path = "/x/2/oauth2/token" if platform == "x" else "/linkedin/oauth/v2/accessToken"
        return self.call("POST", path, form={"grant_type": "refresh_token", "refresh_token": token})

    def test_a_refresh_rotates_the_refresh_token_and_maps_the_new_access_token(self) -> None:
        self.admin("POST", "oauth", {"platform": "x", "account": "u1", "refresh_token": "r0"})
        first = self.refresh("x", "r0")
        self.assertEqual(first.status, 200, first)
        body = first.json
        self.assertEqual(body["expires_in"], fake_platforms.OAUTH_EXPIRES_IN)
        self.assertNotEqual(body["refresh_token"], "r0")
        # The new access token is the account's; the old refresh token is dead.
        self.tweet("after refresh", token=body["access_token"])
        self.assertEqual(self.posts(platform="x")[0]["account"], "u1")
        again = self.refresh("x", "r0")
        self.assertEqual((again.status, again.json["error"]), (400, "invalid_grant"))
        self.assertEqual(self.refresh("x", body["refresh_token"]).status, 200)
        self.assertEqual(self.admin("GET", "oauth")["refreshes"], {"x:u1": 2})

    def test_revoked_refresh_tokens_get_invalid_grant_and_faults_apply(self) -> None:
        self.admin("POST", "oauth", {"platform": "linkedin", "account": "42", "refresh_token": "r"})
        self.fault(platform="linkedin", status=503, endpoints="oauth", count=1)
        self.assertEqual(self.refresh("linkedin", "r").status, 503)
        self.admin("POST", "oauth", {"platform": "linkedin", "account": "42", "revoke": True})
        answer = self.refresh("linkedin", "r")
        self.assertEqual((answer.status, answer.json["error"]), (400, "invalid_grant"))
        self.assertEqual(self.admin("GET", "oauth")["refreshes"], {})

    def test_bad_requests_are_refused(self) -> None:
        answer = self.call("POST", "/x/2/oauth2/token", form={"grant_type": "password"})
        self.assertEqual((answer.status, answer.json["error"]), (400, "invalid_request"))
        self.assertEqual(self.call("POST", "/_admin/oauth", {"platform": "facebook", "account": "a"}).status, 400)


class OAuthClientAuthentication(FakeServerCase):
    """Its own server: a registered client outlives resets, as configuration does."""

    def test_a_registered_client_must_authenticate_every_refresh(self) -> None:
        self.admin("POST", "oauth/clients", {"platform": "x", "client_id": "app", "client_secret": "s3cret"})
        self.admin("POST", "oauth", {"platform": "x", "account": "u1", "refresh_token": "r0"})
        form = {"grant_type": "refresh_token", "refresh_token": "r0"}

        def basic(user: str, password: str) -> dict[str, str]:
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

        for headers, extra in (({}, {}), (basic("app", "wrong"), {}), (basic("other", "s3cret"), {}),
                               (basic("app", "s3cret"), {"client_id": "other"}),
                               ({"Authorization": "Basic !!!"}, {})):
            answer = self.call("POST", "/x/2/oauth2/token", form={**form, **extra}, headers=headers)
            self.assertEqual((answer.status, answer.json["error"]), (401, "invalid_client"), headers)
        ok = self.call("POST", "/x/2/oauth2/token", form={**form, "client_id": "app"}, headers=basic("app", "s3cret"))
        self.assertEqual(ok.status, 200, ok)
        # A reset keeps the client: it is the app's configuration.
        self.assertEqual(self.call("POST", "/_admin/reset").status, 200)
        self.admin("POST", "oauth", {"platform": "x", "account": "u1", "refresh_token": "r1"})
        answer = self.call("POST", "/x/2/oauth2/token", form={**form, "refresh_token": "r1"})
        self.assertEqual(answer.status, 401)
        for bad in ({"platform": "sms", "client_id": "a", "client_secret": "b"},
                    {"platform": "x", "client_id": "a"}):
            self.assertEqual(self.call("POST", "/_admin/oauth/clients", bad).status, 400, bad)


class OAuthAuthorizationCode(FakeServerCase):
    """X's consent page, its redirect, and the PKCE-checked exchange."""

    def basic(self) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(b"app:s3cret").decode()}

    def consent(self, verifier: str, decision: str = "allow") -> Answer:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        request = {"response_type": "code", "client_id": "app", "redirect_uri": "http://herald/cb?x=1",
                   "state": "st4te", "code_challenge": challenge, "code_challenge_method": "S256",
                   "scope": "tweet.write users.read offline.access"}
        page = self.call("GET", "/x/i/oauth2/authorize", query=request)
        self.assertEqual(page.status, 200, page)
        self.assertIn(b"Authorize app", page.raw)
        return self.call("POST", "/x/i/oauth2/authorize", form={**request, "user": "u77", "decision": decision})

    def exchange(self, code: str, verifier: str, redirect: str = "http://herald/cb?x=1") -> Answer:
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect}
        return self.call("POST", "/x/2/oauth2/token", form=form, headers=self.basic())

    def code_of(self, answer: Answer) -> str:
        self.assertEqual(answer.status, 302, answer)
        query = parse_qs(urlparse(answer.headers["Location"]).query)
        self.assertEqual((query["state"], query["x"]), (["st4te"], ["1"]))
        return query["code"][0]

    def test_a_consented_code_is_exchanged_once_for_the_users_tokens(self) -> None:
        self.admin("POST", "oauth/clients", {"platform": "x", "client_id": "app", "client_secret": "s3cret"})
        verifier = "v" * 50
        code = self.code_of(self.consent(verifier))
        for wrong in (self.exchange(code, "w" * 50), self.exchange(code, verifier, "http://evil/cb")):
            self.assertEqual((wrong.status, wrong.json["error"]), (400, "invalid_grant"), wrong)
        code = self.code_of(self.consent(verifier))
        answer = self.exchange(code, verifier)
        self.assertEqual(answer.status, 200, answer)
        me = self.call("GET", "/x/2/users/me", token=answer.json["access_token"])
        self.assertEqual(me.json["data"]["id"], "u77")
        again = self.exchange(code, verifier)
        self.assertEqual((again.status, again.json["error"]), (400, "invalid_grant"))

    def test_cancelling_redirects_with_access_denied_and_bad_requests_are_refused(self) -> None:
        self.admin("POST", "oauth/clients", {"platform": "x", "client_id": "app", "client_secret": "s3cret"})
        denied = self.consent("v" * 50, decision="deny")
        self.assertIn("error=access_denied", denied.headers["Location"])
        for bad in ({"client_id": "other"}, {"code_challenge_method": "plain"}, {"redirect_uri": "javascript:x"}):
            query = {"response_type": "code", "client_id": "app", "redirect_uri": "http://h/cb", "state": "s",
                     "code_challenge": "c", "code_challenge_method": "S256", **bad}
            self.assertEqual(self.call("GET", "/x/i/oauth2/authorize", query=query).status, 400, bad)


class LinkedInSignIn(FakeServerCase):
    def test_the_members_token_names_the_organisations_chosen_at_consent(self) -> None:
        self.admin("POST", "oauth/clients", {"platform": "linkedin", "client_id": "liapp", "client_secret": "s4"})
        verifier = "l" * 50
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        request = {"response_type": "code", "client_id": "liapp", "redirect_uri": "http://herald/cb",
                   "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}
        self.assertIn(b"Organisations you administer", self.call("GET", "/linkedin/oauth/v2/authorization", query=request).raw)
        answer = self.call("POST", "/linkedin/oauth/v2/authorization",
                           form={**request, "user": "m1", "pages": "11,22", "decision": "allow"})
        code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
        basic = {"Authorization": "Basic " + base64.b64encode(b"liapp:s4").decode()}
        token = self.call("POST", "/linkedin/oauth/v2/accessToken", headers=basic, form={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": "http://herald/cb"})
        self.assertEqual(token.status, 200, token)
        access = token.json["access_token"]
        me = self.call("GET", "/linkedin/v2/userinfo", token=access, headers=LINKEDIN_HEADERS)
        self.assertEqual(me.json["sub"], "m1")
        acls = self.call("GET", "/linkedin/rest/organizationAcls", token=access, headers=LINKEDIN_HEADERS,
                         query={"q": "roleAssignee"})
        self.assertEqual([e["organization"] for e in acls.json["elements"]],
                         ["urn:li:organization:11", "urn:li:organization:22"])


class FacebookLogin(FakeServerCase):
    """Facebook Login: consent with the Pages the user manages, the code (PKCE) for a user
    token, a long-lived one, and each Page's own token, which then publishes as the Page."""

    def test_the_code_becomes_page_tokens_that_publish_as_their_pages(self) -> None:
        self.admin("POST", "oauth/clients", {"platform": "facebook", "client_id": "fbapp", "client_secret": "s3"})
        verifier = "q" * 60
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        request = {"response_type": "code", "client_id": "fbapp", "redirect_uri": "http://herald/cb",
                   "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}
        page = self.call("GET", "/facebook/v21.0/dialog/oauth", query=request)
        self.assertIn(b"Pages you manage", page.raw)
        answer = self.call("POST", "/facebook/v21.0/dialog/oauth",
                           form={**request, "user": "fbuser", "pages": "p1, p2", "decision": "allow"})
        code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
        client = {"client_id": "fbapp", "client_secret": "s3", "redirect_uri": "http://herald/cb"}
        wrong = self.call("GET", "/facebook/v21.0/oauth/access_token", query={**client, "client_secret": "no", "code": code})
        self.assertEqual(wrong.status, 400)
        short = self.call("GET", "/facebook/v21.0/oauth/access_token",
                          query={**client, "code": code, "code_verifier": verifier})
        self.assertEqual(short.status, 200, short)
        again = self.call("GET", "/facebook/v21.0/oauth/access_token",
                          query={**client, "code": code, "code_verifier": verifier})
        self.assertEqual(again.status, 400, "a code works once")
        long = self.call("GET", "/facebook/v21.0/oauth/access_token",
                         query={"grant_type": "fb_exchange_token", "client_id": "fbapp", "client_secret": "s3",
                                "fb_exchange_token": short.json["access_token"]})
        self.assertEqual((long.status, long.json["expires_in"]), (200, 5183944))
        pages = self.call("GET", "/facebook/v21.0/me/accounts", token=long.json["access_token"]).json["data"]
        self.assertEqual([p["id"] for p in pages], ["p1", "p2"])
        me = self.call("GET", "/facebook/v21.0/me", token=pages[1]["access_token"])
        self.assertEqual(me.json["id"], "p2")
        self.assertEqual(self.call("GET", "/facebook/v21.0/me/accounts", token="nobody").status, 401)


class Logging(unittest.TestCase):
    def test_one_json_line_per_request_without_tokens_or_contents(self) -> None:
        stream = io.StringIO()
        server = fake_platforms.make_server("127.0.0.1", 0, log_stream=stream)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            host, port = server.server_address[:2]
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("POST", "/facebook/v21.0/p1/feed?access_token=secret-query-token",
                         "message=private+words",
                         {"Authorization": "Bearer secret-header-token",
                          "Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            # The handler's thread writes its line after the answer has gone out.
            deadline = time.monotonic() + 5
            while not stream.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            server.shutdown()
            server.server_close()
        everything = [json.loads(line) for line in stream.getvalue().splitlines()]
        # Other lines may come (a connection torn down by the shutdown under load logs a
        # warning); the request itself is logged exactly once.
        lines = [line for line in everything if line["msg"] == "request"]
        self.assertEqual(len(lines), 1, everything)
        entry = lines[0]
        self.assertEqual(
            (entry["method"], entry["path"], entry["status"], entry["platform"]),
            ("POST", "/facebook/v21.0/p1/feed", 200, "facebook"),
        )
        for secret in ("secret-query-token", "secret-header-token", "private"):
            self.assertNotIn(secret, stream.getvalue())


class CommandLine(unittest.TestCase):
    def test_prints_the_url_once_bound_and_serves(self) -> None:
        process = subprocess.Popen(
            [sys.executable, str(INFRA / "fake_platforms"), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            self.assertRegex(line, r"^listening on http://127\.0\.0\.1:\d+$")
            url = urlsplit(line.removeprefix("listening on "))
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
            conn.request("GET", "/_admin/health")
            self.assertEqual(json.loads(conn.getresponse().read()), {"ok": True})
            conn.close()
        finally:
            process.terminate()
            process.wait(timeout=5)
        self.assertEqual(process.returncode, 0, "SIGTERM stops it cleanly")


if __name__ == "__main__":
    unittest.main()
