"""Tests for the fake's uploads in pieces (infra/fake_platforms/chunked_uploads.py): X's
chunked INIT/APPEND/FINALIZE/STATUS and Facebook's resumable start/transfer/finish, over
real HTTP.

Run with `python3 -m unittest discover -s infra/tests -v` from the repository root.
"""

from __future__ import annotations

import hashlib
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_fake_platforms as shared  # noqa: E402
from test_fake_platforms import multipart  # noqa: E402

MB = 1024 * 1024
VIDEO = (b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * (10 * MB // 256))[: 9 * MB + 5]


class XChunked(shared.FakeServerCase):
    def setUp(self) -> None:
        super().setUp()
        self.admin("POST", "tokens", {"platform": "x", "token": "xt", "account": "u1"})

    def command(self, fields: dict[str, str], media: bytes | None = None) -> shared.Answer:
        files = {"media": ("chunk", "application/octet-stream", media)} if media is not None else {}
        body, headers = multipart(fields, files)
        return self.call("POST", "/x/2/media/upload", body, token="xt", headers=headers)

    def status(self, media_id: str) -> shared.Answer:
        return self.call("GET", "/x/2/media/upload", token="xt",
                         query={"command": "STATUS", "media_id": media_id})

    def test_a_video_goes_up_in_segments_and_is_tweetable_once_processed(self) -> None:
        init = self.command({"command": "INIT", "total_bytes": str(len(VIDEO)),
                             "media_type": "video/mp4", "media_category": "tweet_video"})
        self.assertEqual(init.status, 200, init)
        media_id = init.json["data"]["id"]
        self.assertEqual(init.json["data"]["expires_after_secs"], 86400)
        chunks = [VIDEO[i:i + 4 * MB] for i in range(0, len(VIDEO), 4 * MB)]
        # The first segment twice (a lost answer sent again): it is replaced, not added.
        for i, chunk in [(0, chunks[0]), *enumerate(chunks)]:
            answer = self.command({"command": "APPEND", "media_id": media_id, "segment_index": str(i)}, chunk)
            self.assertEqual((answer.status, answer.raw), (204, b""), answer)
        finalized = self.command({"command": "FINALIZE", "media_id": media_id})
        self.assertEqual(finalized.status, 200, finalized)
        self.assertEqual(finalized.json["data"]["processing_info"]["state"], "pending")
        tweet = self.call("POST", "/x/2/tweets", {"text": "v", "media": {"media_ids": [media_id]}}, token="xt")
        self.assertEqual(tweet.status, 400, "not processed yet")
        self.assertEqual(self.status(media_id).json["data"]["processing_info"]["state"], "in_progress")
        self.assertEqual(self.status(media_id).json["data"]["processing_info"]["state"], "succeeded")
        tweet = self.call("POST", "/x/2/tweets", {"text": "v", "media": {"media_ids": [media_id]}}, token="xt")
        self.assertEqual(tweet.status, 201, tweet)
        [upload] = self.admin("GET", "uploads", query={"platform": "x"})["uploads"]
        self.assertEqual(upload["sha256"], hashlib.sha256(VIDEO).hexdigest())
        self.assertEqual((upload["appends"], upload["finalized"]), (len(chunks) + 1, True))

    def test_chunked_uploads_refuse_what_x_refuses(self) -> None:
        too_big = self.command({"command": "INIT", "total_bytes": str(513 * MB), "media_type": "video/mp4"})
        self.assertEqual(too_big.status, 400)
        init = self.command({"command": "INIT", "total_bytes": "10", "media_type": "video/mp4"})
        media_id = init.json["data"]["id"]
        over = self.command({"command": "APPEND", "media_id": media_id, "segment_index": "0"}, b"x" * 11)
        self.assertEqual(over.status, 400, "more than total_bytes")
        short = self.command({"command": "APPEND", "media_id": media_id, "segment_index": "0"}, b"x" * 4)
        self.assertEqual(short.status, 204)
        self.assertEqual(self.command({"command": "FINALIZE", "media_id": media_id}).status, 400, "4 of 10 bytes")
        # Another user's token does not reach the upload.
        self.admin("POST", "tokens", {"platform": "x", "token": "other", "account": "u2"})
        body, headers = multipart({"command": "FINALIZE", "media_id": media_id}, {})
        theirs = self.call("POST", "/x/2/media/upload", body, token="other", headers=headers)
        self.assertEqual(theirs.status, 400)


class FacebookResumable(shared.FakeServerCase):
    API = "/facebook/v21.0/page1/videos"

    def setUp(self) -> None:
        super().setUp()
        self.admin("POST", "tokens", {"platform": "facebook", "token": "fb", "account": "page1"})

    def transfer(self, session: str, offset: int, chunk: bytes) -> shared.Answer:
        body, headers = multipart({"upload_phase": "transfer", "upload_session_id": session,
                                   "start_offset": str(offset)},
                                  {"video_file_chunk": ("chunk", "application/octet-stream", chunk)})
        return self.call("POST", self.API, body, token="fb", headers=headers)

    def finish(self, session: str) -> shared.Answer:
        return self.call("POST", self.API, token="fb", form={
            "upload_phase": "finish", "upload_session_id": session, "description": "a video"})

    def test_chunks_go_where_facebook_asks_and_finish_publishes_once(self) -> None:
        start = self.call("POST", self.API, token="fb",
                          form={"upload_phase": "start", "file_size": str(len(VIDEO))})
        self.assertEqual(start.status, 200, start)
        session, video = start.json["upload_session_id"], start.json["video_id"]
        offset, end = int(start.json["start_offset"]), int(start.json["end_offset"])
        self.assertEqual((offset, end), (0, 4 * MB))
        first = self.transfer(session, 0, VIDEO[:end])
        self.assertEqual(first.status, 200, first)
        # The same chunk again (its answer lost): refused with the offsets Facebook expects.
        again = self.transfer(session, 0, VIDEO[:end])
        self.assertEqual(again.status, 400)
        self.assertEqual(again.json["error"]["error_subcode"], 1363037)
        self.assertEqual(again.json["error"]["error_data"],
                         {"start_offset": str(4 * MB), "end_offset": str(8 * MB)})
        offset, end = int(first.json["start_offset"]), int(first.json["end_offset"])
        while offset < len(VIDEO):
            answer = self.transfer(session, offset, VIDEO[offset:end])
            self.assertEqual(answer.status, 200, answer)
            offset, end = int(answer.json["start_offset"]), int(answer.json["end_offset"])
        self.assertEqual(end, len(VIDEO))
        self.assertEqual(self.finish(session).json, {"success": True})
        self.assertEqual(self.finish(session).json, {"success": True}, "a repeat finish")
        [post] = self.posts(platform="facebook")
        self.assertEqual((post["text"], post["media"]), ("a video", [video]))
        [upload] = self.admin("GET", "uploads", query={"platform": "facebook"})["uploads"]
        self.assertEqual(upload["sha256"], hashlib.sha256(VIDEO).hexdigest())

    def test_an_unfinished_upload_publishes_nothing(self) -> None:
        start = self.call("POST", self.API, token="fb", form={"upload_phase": "start", "file_size": "100"})
        session = start.json["upload_session_id"]
        self.assertEqual(self.transfer(session, 0, b"x" * 40).status, 200)
        refused = self.finish(session)
        self.assertEqual(refused.status, 400, refused)
        self.assertEqual(self.posts(platform="facebook"), [])
        self.assertEqual(self.transfer("999", 0, b"x").status, 400, "an unknown session")


if __name__ == "__main__":
    unittest.main()
