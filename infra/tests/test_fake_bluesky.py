"""Tests for the fake Bluesky PDS in infra/fake_platforms/ (bluesky*.py): one in-process server
on a free port, real HTTP, as test_fake_platforms.py tests the other platforms.

Run with `python3 -m unittest discover -s infra/tests -v` from the repository root.
"""

from __future__ import annotations

import io
import http.client
import json
import threading
import time
import unittest
from typing import Any

from test_fake_platforms import Answer, FakeServerCase

import fake_platforms

XRPC = "/bluesky/xrpc/"
POST = "app.bsky.feed.post"
NOW = "2026-12-04T12:00:00.000Z"


def post_record(text: str = "hello", **fields: Any) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": NOW, **fields}


class BlueskyCase(FakeServerCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice = self.account("alice.test", "app-pass-alice")
        self.bob = self.account("bob.test", "app-pass-bob")
        self.token = self.login("alice.test", "app-pass-alice")["accessJwt"]

    def account(self, handle: str, password: str, **extra: Any) -> dict[str, Any]:
        return self.admin("POST", "bluesky/accounts", {"handle": handle, "password": password, **extra})

    def login(self, identifier: str, password: str) -> dict[str, Any]:
        answer = self.xrpc("POST", "com.atproto.server.createSession",
                           {"identifier": identifier, "password": password})
        self.assertEqual(answer.status, 200, answer)
        return answer.json

    def xrpc(self, method: str, name: str, body: Any = None, **kw: Any) -> Answer:
        return self.call(method, XRPC + name, body, **kw)

    def create(
        self, rkey: str | None = None, record: dict[str, Any] | None = None, token: str | None = None,
        repo: str | None = None, **extra: Any,
    ) -> Answer:
        body: dict[str, Any] = {"repo": repo or self.alice["did"], "collection": POST,
                                "record": record or post_record(), **extra}
        if rkey is not None:
            body["rkey"] = rkey
        return self.xrpc("POST", "com.atproto.repo.createRecord", body, token=token or self.token)

    def get_record(self, rkey: str, repo: str | None = None) -> Answer:
        return self.xrpc("GET", "com.atproto.repo.getRecord",
                         query={"repo": repo or self.alice["did"], "collection": POST, "rkey": rkey})


RKEY = "3lbqtuzkqzs2a"  # a TID, as a client would choose it


class Sessions(BlueskyCase):
    def test_create_session_by_handle_or_did_gives_jwt_shaped_tokens(self) -> None:
        session = self.login("alice.test", "app-pass-alice")
        self.assertEqual((session["handle"], session["did"], session["active"]),
                         ("alice.test", self.alice["did"], True))
        self.assertRegex(session["did"], r"^did:plc:[a-z2-7]{24}$")
        for jwt in (session["accessJwt"], session["refreshJwt"]):
            self.assertEqual(len(jwt.split(".")), 3)
        self.assertNotEqual(session["accessJwt"], session["refreshJwt"])
        by_did = self.login(self.alice["did"], "app-pass-alice")
        self.assertEqual(by_did["handle"], "alice.test")
        me = self.xrpc("GET", "com.atproto.server.getSession", token=session["accessJwt"])
        self.assertEqual((me.status, me.json["did"], me.json["handle"]), (200, self.alice["did"], "alice.test"))
        listed = self.admin("GET", "bluesky/accounts")
        self.assertEqual(sorted(a["handle"] for a in listed["accounts"]), ["alice.test", "bob.test"])
        self.assertNotIn("app-pass-alice", json.dumps(listed))

    def test_a_wrong_password_or_unknown_account_is_refused(self) -> None:
        for identifier, password in (("alice.test", "wrong"), ("nobody.test", "x")):
            answer = self.xrpc("POST", "com.atproto.server.createSession",
                               {"identifier": identifier, "password": password})
            self.assertEqual((answer.status, answer.json["error"]), (401, "AuthenticationRequired"), answer)
        bad = self.xrpc("POST", "com.atproto.server.createSession", {"identifier": "alice.test"})
        self.assertEqual((bad.status, bad.json["error"]), (400, "InvalidRequest"))

    def test_refresh_rotates_the_pair_and_spends_the_refresh_jwt(self) -> None:
        session = self.login("alice.test", "app-pass-alice")
        fresh = self.xrpc("POST", "com.atproto.server.refreshSession", token=session["refreshJwt"])
        self.assertEqual(fresh.status, 200, fresh)
        self.assertEqual(fresh.json["did"], self.alice["did"])
        self.assertNotEqual(fresh.json["refreshJwt"], session["refreshJwt"])
        self.assertEqual(self.create(token=fresh.json["accessJwt"]).status, 200)
        again = self.xrpc("POST", "com.atproto.server.refreshSession", token=session["refreshJwt"])
        self.assertEqual((again.status, again.json["error"]), (400, "ExpiredToken"))
        # An access JWT is not a refresh JWT, and the other way round.
        wrong = self.xrpc("POST", "com.atproto.server.refreshSession", token=fresh.json["accessJwt"])
        self.assertEqual((wrong.status, wrong.json["error"]), (400, "InvalidToken"))
        self.assertEqual(self.create(token=fresh.json["refreshJwt"]).json["error"], "InvalidToken")

    def test_the_admin_api_lists_every_jwt_an_account_was_issued(self) -> None:
        session = self.login("alice.test", "app-pass-alice")
        listed = self.call("GET", "/_admin/bluesky/sessions?account=alice.test")
        self.assertEqual(listed.status, 200, listed)
        tokens = {(s["kind"], s["token"]) for s in listed.json["sessions"]}
        self.assertIn(("access", session["accessJwt"]), tokens)
        self.assertIn(("refresh", session["refreshJwt"]), tokens)
        self.assertNotIn(self.login("bob.test", "app-pass-bob")["accessJwt"], {t for _, t in tokens})
        self.assertEqual(self.call("GET", "/_admin/bluesky/sessions?account=nobody.test").status, 404)

    def test_an_expired_access_jwt_is_400_expired_token_until_refreshed(self) -> None:
        session = self.login("alice.test", "app-pass-alice")
        self.admin("POST", "bluesky/expire", {"account": "alice.test"})
        expired = self.create(token=session["accessJwt"])
        self.assertEqual(expired.status, 400)
        self.assertEqual(expired.json, {"error": "ExpiredToken", "message": "Token has expired"})
        fresh = self.xrpc("POST", "com.atproto.server.refreshSession", token=session["refreshJwt"]).json
        self.assertEqual(self.create(token=fresh["accessJwt"]).status, 200)
        # An account's access JWTs live as long as it was seeded with.
        self.account("short.test", "pw", access_ttl_seconds=0.2)
        short = self.login("short.test", "pw")["accessJwt"]
        self.assertEqual(self.xrpc("GET", "com.atproto.server.getSession", token=short).status, 200)
        time.sleep(0.3)
        self.assertEqual(self.xrpc("GET", "com.atproto.server.getSession", token=short).json["error"],
                         "ExpiredToken")
        self.assertEqual(self.posts(platform="bluesky", account=self.alice["did"])[0]["platform"], "bluesky")

    def test_no_token_is_401_and_a_token_the_pds_never_issued_is_400_invalid_token(self) -> None:
        missing = self.xrpc("POST", "com.atproto.repo.createRecord",
                            {"repo": self.alice["did"], "collection": POST, "record": post_record()})
        self.assertEqual(missing.status, 401)
        self.assertEqual(missing.json, {"error": "AuthenticationRequired", "message": "Authentication Required"})
        for token in ("not-a-session", "revoked-1", "a.b.c"):
            answer = self.create(token=token)
            self.assertEqual(answer.status, 400, token)
            self.assertEqual(answer.json, {"error": "InvalidToken", "message": "Token could not be verified"})
        self.assertEqual(self.xrpc("GET", "com.atproto.server.getSession").status, 401)
        self.assertEqual(self.xrpc("POST", "com.atproto.server.refreshSession", token="nope").status, 400)
        self.assertEqual(self.posts(platform="bluesky"), [])


class Records(BlueskyCase):
    def test_a_chosen_rkey_names_the_record_and_get_record_finds_it(self) -> None:
        created = self.create(RKEY, post_record("first", langs=["en"]))
        self.assertEqual(created.status, 200, created)
        uri = f"at://{self.alice['did']}/{POST}/{RKEY}"
        self.assertEqual(created.json["uri"], uri)
        self.assertRegex(created.json["cid"], r"^bafyrei[a-z2-7]{52}$")
        self.assertEqual(created.json["validationStatus"], "valid")
        self.assertEqual(set(created.json["commit"]), {"cid", "rev"})
        found = self.get_record(RKEY, repo="alice.test")
        self.assertEqual(found.status, 200, found)
        self.assertEqual((found.json["uri"], found.json["cid"]), (uri, created.json["cid"]))
        self.assertEqual(found.json["value"]["text"], "first")
        missing = self.get_record("3lbqtuzkqzs2b")
        self.assertEqual((missing.status, missing.json["error"]), (400, "RecordNotFound"))
        [post] = self.posts(platform="bluesky")
        self.assertEqual((post["id"], post["account"], post["text"]), (uri, self.alice["did"], "first"))

    def test_without_an_rkey_the_pds_picks_increasing_tids(self) -> None:
        first, second = self.create().json["uri"], self.create().json["uri"]
        self.assertRegex(first.rsplit("/", 1)[1], r"^[234567abcdefghij][234567a-z]{12}$")
        self.assertLess(first, second)

    def test_the_same_rkey_twice_creates_one_record(self) -> None:
        self.assertEqual(self.create(RKEY, post_record("once")).status, 200)
        # As the reference PDS: its repository refuses the key, uncaught, as a 500.
        again = self.create(RKEY, post_record("twice"))
        self.assertEqual(again.status, 500, again)
        self.assertEqual(again.json, {"error": "InternalServerError", "message": "Internal Server Error"})
        self.assertEqual([p["text"] for p in self.posts(platform="bluesky")], ["once"])
        # The explicit refusal, when set; it too creates nothing.
        self.admin("POST", "bluesky/settings", {"duplicate_rkey": "invalid_request"})
        third = self.create(RKEY, post_record("thrice"))
        self.assertEqual((third.status, third.json["error"]), (400, "InvalidRequest"))
        self.assertIn("Record already exists", third.json["message"])
        self.assertEqual(len(self.posts(platform="bluesky")), 1)
        self.assertEqual(self.get_record(RKEY).json["value"]["text"], "once")
        self.admin("POST", "reset")
        self.assertEqual(self.call("POST", "/_admin/bluesky/settings", {"duplicate_rkey": "x"}).status, 400)
        # Another account may use the same rkey in its own repo (accounts are seeded again
        # after the reset).
        self.alice = self.account("alice.test", "app-pass-alice")
        self.bob = self.account("bob.test", "app-pass-bob")
        self.token = self.login("alice.test", "app-pass-alice")["accessJwt"]
        self.assertEqual(self.create(RKEY).status, 200)
        self.assertEqual(self.create(RKEY).status, 500)
        bob = self.login("bob.test", "app-pass-bob")["accessJwt"]
        self.assertEqual(self.create(RKEY, token=bob, repo="bob.test").status, 200)

    def test_concurrent_creates_of_one_rkey_make_one_record(self) -> None:
        statuses: list[int] = []
        lock = threading.Lock()

        def attempt() -> None:
            status = self.create(RKEY, post_record("raced")).status
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=attempt) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(sorted(statuses), [200] + [500] * 7)
        self.assertEqual(len(self.posts(platform="bluesky")), 1)

    def test_invalid_rkeys_and_collections_are_refused(self) -> None:
        for rkey in ("short", "3LBQTUZKQZS2A", "kbqtuzkqzs2aa", "3lbqtuzkqzs2a1", "has space", ".."):
            answer = self.create(rkey)
            self.assertEqual((answer.status, answer.json["error"]), (400, "InvalidRequest"), rkey)
        # Without validation a post's rkey need only be a record key.
        self.assertEqual(self.create("my-key", validate=False).json["validationStatus"], "unknown")
        bad = self.xrpc("POST", "com.atproto.repo.createRecord",
                        {"repo": self.alice["did"], "collection": "not an nsid", "record": {}}, token=self.token)
        self.assertEqual(bad.status, 400)
        self.assertEqual([p["id"].rsplit("/", 1)[1] for p in self.posts(platform="bluesky")], ["my-key"])

    def test_text_is_at_most_300_graphemes_an_emoji_counting_as_one(self) -> None:
        family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # 1 grapheme, 18 bytes
        self.assertEqual(self.create(record=post_record(family * 150)).status, 200)  # 2,700 bytes
        self.assertEqual(self.create(record=post_record("a" * 299 + "\U0001F44D\U0001F3FD")).status, 200)
        too_long = self.create(record=post_record("a" * 301))
        self.assertEqual((too_long.status, too_long.json["error"]), (400, "InvalidRequest"))
        self.assertIn("300 graphemes", too_long.json["message"])
        too_many_bytes = self.create(record=post_record(family * 170))  # 170 graphemes, 3,060 bytes
        self.assertEqual(too_many_bytes.status, 400)
        no_time = self.create(record={"$type": POST, "text": "t"})
        self.assertEqual(no_time.status, 400)
        self.assertEqual(len(self.posts(platform="bluesky")), 2)

    def test_a_reply_names_its_root_and_parent(self) -> None:
        root = self.create(RKEY, post_record("root")).json
        ref = {"uri": root["uri"], "cid": root["cid"]}
        answer = self.create("3lbqtuzkqzs2b", post_record("reply", reply={"root": ref, "parent": ref}))
        self.assertEqual(answer.status, 200, answer)
        value = self.get_record("3lbqtuzkqzs2b").json["value"]
        self.assertEqual(value["reply"]["parent"]["uri"], root["uri"])
        self.assertEqual(self.posts(platform="bluesky")[1]["parent"], root["uri"])
        broken = self.create(record=post_record("r", reply={"parent": ref}))
        self.assertEqual((broken.status, broken.json["error"]), (400, "InvalidRequest"))

    def test_the_repo_must_be_the_sessions_own(self) -> None:
        other = self.create(repo=self.bob["did"])
        self.assertEqual((other.status, other.json["error"]), (401, "AuthenticationRequired"))
        unknown = self.create(repo="did:plc:nobody")
        self.assertEqual((unknown.status, unknown.json["error"]), (400, "InvalidRequest"))
        self.assertEqual(self.posts(platform="bluesky"), [])

    def test_list_records_pages_by_cursor_newest_first_or_reversed(self) -> None:
        uris = [self.create(record=post_record(f"p{i}")).json["uri"] for i in range(5)]
        query = {"repo": "alice.test", "collection": POST, "limit": 2}
        seen, cursor = [], None
        for _ in range(5):
            page = self.xrpc("GET", "com.atproto.repo.listRecords",
                             query={**query, **({"cursor": cursor} if cursor else {})}).json
            seen += [r["uri"] for r in page["records"]]
            cursor = page.get("cursor")
            if cursor is None:
                break
        self.assertEqual(seen, uris[::-1])
        oldest = self.xrpc("GET", "com.atproto.repo.listRecords", query={**query, "reverse": "true"}).json
        self.assertEqual([r["uri"] for r in oldest["records"]], uris[:2])
        self.assertEqual(oldest["records"][0]["value"]["text"], "p0")
        bad = self.xrpc("GET", "com.atproto.repo.listRecords", query={**query, "limit": 500})
        self.assertEqual((bad.status, bad.json["error"]), (400, "InvalidRequest"))

    def test_delete_record_only_in_the_sessions_own_repo(self) -> None:
        self.create(RKEY)
        bob = self.login("bob.test", "app-pass-bob")["accessJwt"]
        body = {"repo": self.alice["did"], "collection": POST, "rkey": RKEY}
        refused = self.xrpc("POST", "com.atproto.repo.deleteRecord", body, token=bob)
        self.assertEqual((refused.status, refused.json["error"]), (401, "AuthenticationRequired"))
        self.assertEqual(self.get_record(RKEY).status, 200)
        deleted = self.xrpc("POST", "com.atproto.repo.deleteRecord", body, token=self.token)
        self.assertEqual(deleted.status, 200, deleted)
        self.assertIn("commit", deleted.json)
        self.assertEqual(self.get_record(RKEY).json["error"], "RecordNotFound")
        self.assertEqual(self.posts(platform="bluesky"), [])
        # Deleting what is not there is a no-op, as on the PDS.
        again = self.xrpc("POST", "com.atproto.repo.deleteRecord", body, token=self.token)
        self.assertEqual((again.status, again.json), (200, {}))


class BlobsAndPosts(BlueskyCase):
    def upload(self, data: bytes, mime: str = "image/png", token: str | None = None) -> Answer:
        return self.xrpc("POST", "com.atproto.repo.uploadBlob", data, token=token or self.token,
                         headers={"Content-Type": mime})

    def test_upload_blob_then_a_post_embeds_it(self) -> None:
        blob = self.upload(b"\x89PNG fake image")
        self.assertEqual(blob.status, 200, blob)
        ref = blob.json["blob"]
        self.assertEqual((ref["$type"], ref["mimeType"], ref["size"]), ("blob", "image/png", 15))
        self.assertRegex(ref["ref"]["$link"], r"^bafkrei[a-z2-7]{52}$")
        embed = {"$type": "app.bsky.embed.images", "images": [{"alt": "a picture", "image": ref}]}
        answer = self.create(record=post_record("with image", embed=embed))
        self.assertEqual(answer.status, 200, answer)
        self.assertEqual(self.posts(platform="bluesky")[0]["media"], [ref["ref"]["$link"]])
        [media] = self.admin("GET", "media", query={"platform": "bluesky"})["media"]
        self.assertEqual((media["id"], media["bytes"], media["account"]), (ref["ref"]["$link"], 15, self.alice["did"]))

    def test_images_over_1_000_000_bytes_and_others_blobs_are_refused_in_a_post(self) -> None:
        big = self.upload(b"x" * 1_000_001).json["blob"]
        embed = {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": big}]}
        too_big = self.create(record=post_record("big", embed=embed))
        self.assertEqual((too_big.status, too_big.json["error"]), (400, "InvalidRequest"))
        bob = self.login("bob.test", "app-pass-bob")["accessJwt"]
        bobs = self.upload(b"bob's", token=bob).json["blob"]
        embed["images"][0]["image"] = bobs
        self.assertEqual(self.create(record=post_record("theirs", embed=embed)).status, 400)
        self.assertEqual(self.posts(platform="bluesky"), [])
        self.assertEqual(self.xrpc("POST", "com.atproto.repo.uploadBlob", b"x").status, 401)
        self.assertEqual(self.xrpc("POST", "com.atproto.repo.uploadBlob", b"x", token="bad").status, 400)

    def test_get_posts_shows_engagement_counts(self) -> None:
        first = self.create(RKEY, post_record("one")).json["uri"]
        second = self.create(record=post_record("two")).json["uri"]
        self.admin("POST", "metrics", {"platform": "bluesky", "post_id": first, "likes": 7,
                                       "shares": 3, "comments": 2, "quotes": 1})
        gone = f"at://{self.alice['did']}/{POST}/3lbqtuzkqzs2z"
        answer = self.call("GET", XRPC + f"app.bsky.feed.getPosts?uris={first}&uris={second}&uris={gone}",
                           token=self.token)
        self.assertEqual(answer.status, 200, answer)
        posts = answer.json["posts"]
        self.assertEqual([p["uri"] for p in posts], [first, second])
        counts = [(p["likeCount"], p["repostCount"], p["replyCount"], p["quoteCount"]) for p in posts]
        self.assertEqual(counts, [(7, 3, 2, 1), (0, 0, 0, 0)])
        self.assertEqual(posts[0]["author"], {"did": self.alice["did"], "handle": "alice.test"})
        self.assertEqual(posts[0]["record"]["text"], "one")
        # A handle in the URI names the same post.
        by_handle = self.xrpc("GET", "app.bsky.feed.getPosts", query={"uris": f"at://alice.test/{POST}/{RKEY}"})
        self.assertEqual([p["uri"] for p in by_handle.json["posts"]], [first])
        self.assertEqual(self.xrpc("GET", "app.bsky.feed.getPosts").status, 400)
        # A record deleted and made again under the same URI starts with no engagement.
        self.xrpc("POST", "com.atproto.repo.deleteRecord",
                  {"repo": "alice.test", "collection": POST, "rkey": RKEY}, token=self.token)
        self.create(RKEY, post_record("one again"))
        again = self.xrpc("GET", "app.bsky.feed.getPosts", query={"uris": first}).json["posts"]
        self.assertEqual((again[0]["record"]["text"], again[0]["likeCount"]), ("one again", 0))


class FaultsAndLimits(BlueskyCase):
    def test_a_dropped_answer_still_creates_and_the_retry_is_refused_as_existing(self) -> None:
        self.fault(platform="bluesky", ambiguous=True, count=1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.create(RKEY, post_record("lost answer"))
        retry = self.create(RKEY, post_record("lost answer"))
        self.assertEqual((retry.status, retry.json["error"]), (500, "InternalServerError"), retry)
        found = self.get_record(RKEY)
        self.assertEqual((found.status, found.json["value"]["text"]), (200, "lost answer"))
        self.assertEqual(len(self.posts(platform="bluesky")), 1)

    def test_a_dropped_session_answer_still_opens_the_session(self) -> None:
        self.fault(platform="bluesky", ambiguous=True, endpoints="oauth", count=1)
        before = self.admin("GET", "bluesky/accounts")["sessions_created"]
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.xrpc("POST", "com.atproto.server.createSession",
                      {"identifier": "alice.test", "password": "app-pass-alice"})
        self.assertEqual(self.admin("GET", "bluesky/accounts")["sessions_created"], before + 1)
        self.assertEqual(self.login("alice.test", "app-pass-alice")["did"], self.alice["did"])

    def test_status_faults_create_nothing_and_use_the_xrpc_error_shape(self) -> None:
        self.fault(platform="bluesky", status=502, count=1)
        failed = self.create(RKEY)
        self.assertEqual(failed.status, 502)
        self.assertEqual(failed.json["error"], "UpstreamFailure")
        self.assertEqual(self.posts(platform="bluesky"), [])
        self.assertEqual(self.create(RKEY).status, 200)
        # Reads meet only rules with endpoints "all"; a latency applies to them too.
        self.fault(platform="bluesky", status=503, endpoints="all", count=1)
        self.assertEqual(self.get_record(RKEY).status, 503)
        self.assertEqual(self.get_record(RKEY).status, 200)
        self.fault(platform="bluesky", status=500, endpoints="upload", count=1)
        self.assertEqual(self.create().status, 200)
        self.assertEqual(self.xrpc("POST", "com.atproto.repo.uploadBlob", b"x", token=self.token).status, 500)
        self.fault(platform="bluesky", status=503, endpoints="oauth", count=1)
        refused = self.xrpc("POST", "com.atproto.server.createSession",
                            {"identifier": "alice.test", "password": "app-pass-alice"})
        self.assertEqual(refused.status, 503)

    def test_faults_match_the_sessions_account(self) -> None:
        self.fault(platform="bluesky", account=self.bob["did"], status=500)
        self.assertEqual(self.create().status, 200)
        bob = self.login("bob.test", "app-pass-bob")["accessJwt"]
        self.assertEqual(self.create(token=bob, repo="bob.test").status, 500)

    def test_creates_cost_3_of_5000_points_with_ratelimit_headers(self) -> None:
        first = self.create()
        self.assertEqual(first.headers["ratelimit-limit"], "5000")
        self.assertEqual(first.headers["ratelimit-remaining"], "4997")
        self.assertEqual(first.headers["ratelimit-policy"], "5000;w=3600")
        self.assertAlmostEqual(int(first.headers["ratelimit-reset"]), time.time() + 3600, delta=5)
        self.assertEqual(self.create().headers["ratelimit-remaining"], "4994")

    def test_over_the_limit_is_429_rate_limit_exceeded_and_creates_nothing(self) -> None:
        self.admin("POST", "limits", {"platform": "bluesky", "limit": 7, "window_seconds": 60})
        self.assertEqual([self.create().status for _ in range(2)], [200, 200])
        limited = self.create(RKEY)
        self.assertEqual(limited.status, 429)
        self.assertEqual(limited.json["error"], "RateLimitExceeded")
        self.assertEqual(limited.headers["ratelimit-remaining"], "1")
        self.assertEqual(len(self.posts(platform="bluesky")), 2)
        self.assertEqual(self.get_record(RKEY).json["error"], "RecordNotFound")
        # Another account has its own window; a 429 fault says when to come back.
        bob = self.login("bob.test", "app-pass-bob")["accessJwt"]
        self.assertEqual(self.create(token=bob, repo="bob.test").status, 200)
        self.fault(platform="bluesky", status=429, retry_after=30, count=1)
        faulted = self.create(token=bob, repo="bob.test")
        self.assertEqual((faulted.status, faulted.headers["ratelimit-remaining"]), (429, "0"))


class Logging(unittest.TestCase):
    def test_tokens_passwords_and_post_text_never_reach_the_log(self) -> None:
        stream = io.StringIO()
        server = fake_platforms.make_server("127.0.0.1", 0, log_stream=stream)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.server_address[:2]

        def call(path: str, body: Any, token: str | None = None) -> dict[str, Any]:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            conn.request("POST", path, json.dumps(body), headers)
            answer = json.loads(conn.getresponse().read())
            conn.close()
            return answer

        try:
            call("/_admin/bluesky/accounts", {"handle": "carol.test", "password": "secret-app-pass"})
            session = call(XRPC + "com.atproto.server.createSession",
                           {"identifier": "carol.test", "password": "secret-app-pass"})
            call(XRPC + "com.atproto.repo.createRecord",
                 {"repo": "carol.test", "collection": POST, "record": post_record("private words")},
                 session["accessJwt"])
            deadline = time.monotonic() + 5
            while stream.getvalue().count('"msg": "request"') < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            server.shutdown()
            server.server_close()
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        requests = [line for line in lines if line["msg"] == "request"]
        # Each handler logs after it answers, so a log line may come after the next request's.
        self.assertEqual(sorted((r["platform"], r["status"]) for r in requests),
                         [("admin", 201), ("bluesky", 200), ("bluesky", 200)])
        for secret in ("secret-app-pass", session["accessJwt"], session["refreshJwt"], "private words"):
            self.assertNotIn(secret, stream.getvalue())


if __name__ == "__main__":
    unittest.main()
