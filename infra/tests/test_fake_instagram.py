"""Tests for the fake Instagram (infra/fake_platforms/instagram.py): the fake on a free port,
real HTTP, media fetched from a second little server as Instagram fetches them.

Run with `python3 -m unittest discover -s infra/tests -v` from the repository root.
"""

from __future__ import annotations

import http.client
import http.server
import sys
import threading
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_fake_platforms as shared  # noqa: E402

API = "/instagram/v21.0"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
FILES = {"/a.jpg": JPEG, "/b.jpg": JPEG + b"b", "/c.mp4": VIDEO, "/not.jpg": b"GIF89a..."}


class Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = FILES.get(self.path.split("?")[0])
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        pass


class InstagramCase(shared.FakeServerCase):
    files: http.server.ThreadingHTTPServer

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
        threading.Thread(target=cls.files.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.files.shutdown()
        cls.files.server_close()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.admin("POST", "tokens", {"platform": "instagram", "token": "ig", "account": "1784"})

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.files.server_address[1]}{path}?X-Amz-Signature=x"

    def container(self, **form: str) -> shared.Answer:
        return self.call("POST", f"{API}/1784/media", token="ig", form=form)

    def publish(self, creation_id: str) -> shared.Answer:
        return self.call("POST", f"{API}/1784/media_publish", token="ig", form={"creation_id": creation_id})

    def status(self, container: str) -> str:
        return self.call("GET", f"{API}/{container}", token="ig", query={"fields": "status_code"}).json["status_code"]

    def test_an_image_is_fetched_then_published_once(self) -> None:
        made = self.container(image_url=self.url("/a.jpg"), caption="hello #ig")
        self.assertEqual(made.status, 200, made)
        cid = made.json["id"]
        self.assertEqual(self.status(cid), "FINISHED")
        published = self.publish(cid)
        self.assertEqual(published.status, 200, published)
        self.assertEqual(self.status(cid), "PUBLISHED")
        again = self.publish(cid)
        self.assertEqual((again.status, again.json["error"]["code"]), (400, 100))
        posts = self.posts(platform="instagram")
        self.assertEqual([(p["id"], p["text"]) for p in posts], [(published.json["id"], "hello #ig")])
        (view,) = self.admin("GET", "instagram/containers", query={"account": "1784"})["containers"]
        self.assertEqual((view["fetched"]["bytes"], view["media_id"]), (len(JPEG), published.json["id"]))
        self.assertEqual((view["fetched"]["signature"], view["fetched"]["url"].endswith("/a.jpg")), ("x", True))
        listed = self.call("GET", f"{API}/1784/media", token="ig", query={"fields": "id,caption,timestamp"})
        self.assertEqual(listed.json["data"][0]["caption"], "hello #ig")

    def test_a_carousel_waits_for_its_video_and_refuses_what_cannot_be_fetched(self) -> None:
        image = self.container(image_url=self.url("/a.jpg"), is_carousel_item="true").json["id"]
        video = self.container(video_url=self.url("/c.mp4"), media_type="VIDEO", is_carousel_item="true").json["id"]
        early = self.container(media_type="CAROUSEL", children=f"{image},{video}", caption="c")
        self.assertEqual((early.status, early.json["error"]["code"]), (400, 100), early)
        reel = self.container(video_url=self.url("/c.mp4"), media_type="REELS").json["id"]
        not_ready = self.publish(reel)
        self.assertEqual((not_ready.json["error"]["code"], not_ready.json["error"]["error_subcode"]),
                         (9007, 2207027), not_ready)
        self.assertEqual(self.status(video), "FINISHED")  # the second read: processed
        carousel = self.container(media_type="CAROUSEL", children=f"{image},{video}", caption="c")
        self.assertEqual(carousel.status, 200, carousel)
        self.assertEqual(self.publish(image).status, 400)  # an item is never a post
        self.assertEqual(self.publish(carousel.json["id"]).status, 200)
        (post,) = self.posts(platform="instagram")
        self.assertEqual(post["media"], [image, video])
        for form in ({"image_url": self.url("/not.jpg")}, {"image_url": self.url("/gone.jpg")},
                     {"video_url": self.url("/c.mp4"), "media_type": "REELS", "caption": "x" * 2201}):
            refused = self.container(**form)
            self.assertEqual(refused.status, 400, (form, refused))

    def test_a_lost_publish_answer_leaves_the_post_and_the_container_says_so(self) -> None:
        cid = self.container(image_url=self.url("/b.jpg"), caption="lost").json["id"]
        self.fault(platform="instagram", endpoints="create", ambiguous=True, count=1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.publish(cid)
        self.assertEqual(self.status(cid), "PUBLISHED")
        self.assertEqual(len(self.posts(platform="instagram")), 1)

    def test_the_daily_publishing_limit_answers_code_9(self) -> None:
        self.admin("POST", "limits", {"platform": "instagram", "limit": 1, "window_seconds": 86400})
        first = self.container(image_url=self.url("/a.jpg")).json["id"]
        second = self.container(image_url=self.url("/a.jpg")).json["id"]
        self.assertEqual(self.publish(first).status, 200)
        refused = self.publish(second)
        self.assertEqual((refused.json["error"]["code"], refused.json["error"]["error_subcode"]),
                         (9, 2207042), refused)

    def test_a_seeded_timeline_pages_newest_first_with_its_malformed_items(self) -> None:
        self.admin("POST", "timeline", {"platform": "instagram", "account": "1784", "count": 3,
                                        "malformed": {"1": "bad_time"}})
        first = self.call("GET", f"{API}/1784/media", token="ig", query={"limit": 2}).json
        self.assertEqual([m["caption"] for m in first["data"]], ["item 2", "item 1"])
        self.assertEqual(first["data"][1]["timestamp"], "not a time")
        rest = self.call("GET", f"{API}/1784/media", token="ig",
                         query={"limit": 2, "after": first["paging"]["cursors"]["after"]}).json
        self.assertEqual([m["caption"] for m in rest["data"]], ["item 0"])
        self.assertNotIn("next", rest["paging"])

    def test_comments_and_who_a_token_is(self) -> None:
        cid = self.container(image_url=self.url("/a.jpg"), caption="p").json["id"]
        media = self.publish(cid).json["id"]
        comment = self.call("POST", f"{API}/{media}/comments", token="ig", form={"message": "first!"})
        self.assertEqual(comment.status, 200, comment)
        listed = self.call("GET", f"{API}/{media}/comments", token="ig").json["data"]
        self.assertEqual([(c["text"], c["from"]["id"]) for c in listed], [("first!", "1784")])
        me = self.call("GET", f"{API}/me", token="ig", query={"fields": "user_id,username"}).json
        self.assertEqual(me["user_id"], "1784")
        refused = self.call("GET", f"{API}/me", token="revoked-ig")
        self.assertEqual((refused.status, refused.json["error"]["code"]), (400, 190))


if __name__ == "__main__":
    unittest.main()
