"""Tests for what only one platform takes, in the fakes: X's `reply_settings` and media alt
text (`POST /2/media/metadata`), LinkedIn's `visibility` and `altText`, Facebook's `link` and
photo `alt_text_custom`, Instagram's container `alt_text`, over real HTTP.

Run with `python3 -m unittest discover -s infra/tests -v` from the repository root.
"""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_fake_platforms as shared  # noqa: E402
from test_fake_platforms import LINKEDIN_HEADERS, multipart  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


class XOptions(shared.FakeServerCase):
    def setUp(self) -> None:
        super().setUp()
        self.admin("POST", "tokens", {"platform": "x", "token": "xt", "account": "u1"})
        self.admin("POST", "tokens", {"platform": "x", "token": "other", "account": "u2"})

    def upload(self) -> str:
        body, headers = multipart({"media_category": "tweet_image"}, {"media": ("a.png", "image/png", PNG)})
        answer = self.call("POST", "/x/2/media/upload", body, token="xt", headers=headers)
        self.assertEqual(answer.status, 200, answer)
        return answer.json["data"]["id"]

    def test_reply_settings_are_kept_and_unknown_ones_refused(self) -> None:
        bad = self.call("POST", "/x/2/tweets", {"text": "a", "reply_settings": "friends"}, token="xt")
        self.assertEqual(bad.status, 400, bad)
        good = self.call("POST", "/x/2/tweets", {"text": "b", "reply_settings": "following"}, token="xt")
        self.assertEqual(good.status, 201, good)
        [post] = self.posts(platform="x")
        self.assertEqual(post["attributes"]["reply_settings"], "following")

    def test_alt_text_goes_on_the_accounts_own_upload_only(self) -> None:
        media_id = self.upload()
        meta = {"id": media_id, "metadata": {"alt_text": {"text": "A red bicycle"}}}
        theirs = self.call("POST", "/x/2/media/metadata", meta, token="other")
        self.assertEqual(theirs.status, 400, "another account's upload")
        too_long = {"id": media_id, "metadata": {"alt_text": {"text": "x" * 1001}}}
        self.assertEqual(self.call("POST", "/x/2/media/metadata", too_long, token="xt").status, 400)
        ok = self.call("POST", "/x/2/media/metadata", meta, token="xt")
        self.assertEqual(ok.status, 200, ok)
        [media] = self.admin("GET", "media", query={"platform": "x"})["media"]
        self.assertEqual(media["attributes"]["alt_text"], "A red bicycle")


class LinkedInAndFacebookOptions(shared.FakeServerCase):
    def test_linkedin_visibility_is_kept_and_connections_is_for_members(self) -> None:
        self.admin("POST", "tokens", {"platform": "linkedin", "token": "li", "account": "42"})
        body = {"author": "urn:li:organization:42", "commentary": "hi", "visibility": "CONNECTIONS"}
        org = self.call("POST", "/linkedin/rest/posts", body, token="li", headers=LINKEDIN_HEADERS)
        self.assertEqual(org.status, 422, org)
        body["visibility"] = "LOGGED_IN"
        ok = self.call("POST", "/linkedin/rest/posts", body, token="li", headers=LINKEDIN_HEADERS)
        self.assertEqual(ok.status, 201, ok)
        [post] = self.posts(platform="linkedin")
        self.assertEqual(post["attributes"]["visibility"], "LOGGED_IN")

    def test_a_facebook_link_post_carries_its_link_and_no_photos(self) -> None:
        self.admin("POST", "tokens", {"platform": "facebook", "token": "fb", "account": "page1"})
        body, headers = multipart({"published": "false", "alt_text_custom": "A cat"},
                                  {"source": ("a.png", "image/png", PNG)})
        photo = self.call("POST", "/facebook/v21.0/page1/photos", body, token="fb", headers=headers)
        self.assertEqual(photo.status, 200, photo)
        [media] = self.admin("GET", "media", query={"platform": "facebook"})["media"]
        self.assertEqual(media["attributes"]["alt_text"], "A cat")
        form = {"message": "see https://example.com/a", "link": "https://example.com/a",
                "attached_media[0]": '{"media_fbid": "%s"}' % photo.json["id"]}
        both = self.call("POST", "/facebook/v21.0/page1/feed", token="fb", form=form)
        self.assertEqual(both.status, 400, both)
        del form["attached_media[0]"]
        ok = self.call("POST", "/facebook/v21.0/page1/feed", token="fb", form=form)
        self.assertEqual(ok.status, 200, ok)
        [post] = self.posts(platform="facebook")
        self.assertEqual(post["attributes"]["link"], "https://example.com/a")


class Deletes(shared.FakeServerCase):
    def test_each_platform_deletes_only_the_tokens_own_posts_and_says_when_none_is_left(self) -> None:
        self.admin("POST", "tokens", {"platform": "x", "token": "xt", "account": "u1"})
        self.admin("POST", "tokens", {"platform": "x", "token": "other", "account": "u2"})
        tweet = self.call("POST", "/x/2/tweets", {"text": "bye"}, token="xt").json["data"]["id"]
        self.assertEqual(self.call("DELETE", f"/x/2/tweets/{tweet}", token="other").status, 404)
        gone = self.call("DELETE", f"/x/2/tweets/{tweet}", token="xt")
        self.assertEqual((gone.status, gone.json), (200, {"data": {"deleted": True}}))
        self.assertEqual(self.call("DELETE", f"/x/2/tweets/{tweet}", token="xt").status, 404)

        self.admin("POST", "tokens", {"platform": "facebook", "token": "fb", "account": "page1"})
        post = self.fb_post("page1", "bye", token="fb").json["id"]
        self.assertEqual(self.call("DELETE", f"/facebook/v21.0/{post}", token="fb").json, {"success": True})
        again = self.call("DELETE", f"/facebook/v21.0/{post}", token="fb")
        self.assertEqual((again.status, again.json["error"]["error_subcode"]), (400, 33))

        self.admin("POST", "tokens", {"platform": "linkedin", "token": "li", "account": "42"})
        urn = self.li_post("42", "bye", token="li").headers["x-restli-id"]
        path = "/linkedin/rest/posts/" + urn.replace(":", "%3A")
        self.assertEqual(self.call("DELETE", path, token="li", headers=LINKEDIN_HEADERS).status, 204)
        self.assertEqual(self.call("DELETE", path, token="li", headers=LINKEDIN_HEADERS).status, 404)
        self.assertEqual(self.posts(), [])


class Edits(shared.FakeServerCase):
    def test_facebook_linkedin_and_mastodon_edit_only_the_tokens_own_posts(self) -> None:
        self.admin("POST", "tokens", {"platform": "facebook", "token": "fb", "account": "page1"})
        post = self.fb_post("page1", "before", token="fb").json["id"]
        edited = self.call("POST", f"/facebook/v21.0/{post}", token="fb", form={"message": "after"})
        self.assertEqual((edited.status, edited.json), (200, {"success": True}))
        missing = self.call("POST", "/facebook/v21.0/page1_1", token="fb", form={"message": "x"})
        self.assertEqual(missing.json["error"]["error_subcode"], 33)

        self.admin("POST", "tokens", {"platform": "linkedin", "token": "li", "account": "42"})
        urn = self.li_post("42", "before", token="li").headers["x-restli-id"]
        path = "/linkedin/rest/posts/" + urn.replace(":", "%3A")
        patch = {"patch": {"$set": {"commentary": "after"}}}
        plain = self.call("POST", path, patch, token="li", headers=LINKEDIN_HEADERS)
        self.assertEqual(plain.status, 422, "an update says it is one")
        update = self.call("POST", path, patch, token="li",
                           headers={**LINKEDIN_HEADERS, "X-RestLi-Method": "PARTIAL_UPDATE"})
        self.assertEqual(update.status, 204, update)
        texts = {p["platform"]: (p["text"], p["attributes"]["edits"]) for p in self.posts()}
        self.assertEqual(texts, {"facebook": ("after", 1), "linkedin": ("after", 1)})


if __name__ == "__main__":
    unittest.main()
