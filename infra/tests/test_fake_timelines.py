"""The fake platforms' timelines for ingestion: seeding (malformed items included), X's
`since_id`/`pagination_token` paging and 3,200 window, Facebook cursors, LinkedIn start/count,
rate-limit headers and a 429 fault in the middle of a run.

Run with `python3 -m unittest discover -s infra/tests -v` from the repository root.
"""

from __future__ import annotations

import sys
import time
import unittest
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_fake_platforms import LINKEDIN_HEADERS, FakeServerCase  # noqa: E402


class TimelineCase(FakeServerCase):
    def seed(self, platform: str, account: str, count: int, **extra: Any) -> list[dict[str, Any]]:
        answer = self.call("POST", "/_admin/timeline",
                           {"platform": platform, "account": account, "count": count, **extra})
        self.assertEqual(answer.status, 201, answer)
        return answer.json["items"]

    def x_page(self, user: str, **query: Any) -> Any:
        answer = self.call("GET", f"/x/2/users/{user}/tweets", token="t", query=query)
        self.assertEqual(answer.status, 200, answer)
        return answer

    def test_x_pages_newest_first_then_since_id_returns_only_newer(self) -> None:
        items = self.seed("x", "u1", 25, malformed={"3": "missing_text", "10": "bad_time"})
        seen: list[dict[str, Any]] = []
        token = None
        newest = None
        while True:
            query: dict[str, Any] = {"max_results": 10}
            if token:
                query["pagination_token"] = token
            answer = self.x_page("u1", **query)
            self.assertIn("x-rate-limit-remaining", answer.headers)
            body = answer.json
            newest = newest or body["meta"]["newest_id"]
            seen.extend(body["data"])
            token = body["meta"].get("next_token")
            if not token:
                break
        self.assertEqual([t["id"] for t in seen], [i["id"] for i in reversed(items)])
        by_id = {t["id"]: t for t in seen}
        self.assertNotIn("text", by_id[items[3]["id"]])
        self.assertEqual(by_id[items[10]["id"]]["created_at"], "not a time")
        self.assertEqual(newest, items[-1]["id"])
        more = self.seed("x", "u1", 2)
        body = self.x_page("u1", since_id=newest, max_results=10).json
        self.assertEqual([t["id"] for t in body["data"]], [m["id"] for m in reversed(more)])
        listed = self.admin("GET", "timeline", query={"platform": "x", "account": "u1"})["items"]
        self.assertEqual([i["malformed"] for i in listed if i["malformed"]], ["missing_text", "bad_time"])

    def test_x_serves_only_the_newest_3200(self) -> None:
        items = self.seed("x", "big", 3205)
        ids: list[str] = []
        token = None
        while True:
            query: dict[str, Any] = {"max_results": 100}
            if token:
                query["pagination_token"] = token
            body = self.x_page("big", **query).json
            ids.extend(t["id"] for t in body["data"])
            token = body["meta"].get("next_token")
            if not token:
                break
        self.assertEqual(len(ids), 3200)
        self.assertEqual(ids[-1], items[5]["id"])

    def test_a_429_in_the_middle_of_a_run_then_the_run_continues(self) -> None:
        self.seed("x", "u2", 30)
        first = self.x_page("u2", max_results=10).json
        self.fault(platform="x", account="u2", endpoints="all", status=429, retry_after=2, count=1)
        token = first["meta"]["next_token"]
        limited = self.call("GET", "/x/2/users/u2/tweets", token="t",
                            query={"max_results": 10, "pagination_token": token})
        self.assertEqual(limited.status, 429)
        self.assertEqual(limited.headers["x-rate-limit-remaining"], "0")
        self.assertEqual(limited.headers["Retry-After"], "2")
        again = self.x_page("u2", max_results=10, pagination_token=token).json
        self.assertEqual(len(again["data"]), 10)

    def test_facebook_cursors_and_usage_header(self) -> None:
        items = self.seed("facebook", "p1", 7, malformed={"0": "missing_id"})
        seen: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 3, "access_token": "tok"}
        while True:
            answer = self.call("GET", "/facebook/v21.0/p1/posts", query=query)
            self.assertEqual(answer.status, 200, answer)
            self.assertIn("call_count", answer.headers["X-App-Usage"])
            body = answer.json
            seen.extend(body["data"])
            nxt = body.get("paging", {}).get("next")
            if not nxt:
                break
            query = {**query, "after": parse_qs(urlsplit(nxt).query)["after"][0]}
        self.assertEqual(len(seen), 7)
        self.assertNotIn("id", seen[-1])
        self.assertEqual([s.get("id") for s in seen[:-1]], [i["id"] for i in reversed(items[1:])])

    def test_linkedin_start_and_count(self) -> None:
        self.seed("linkedin", "42", 5, malformed={"4": "text_not_string"})
        answer = self.call("GET", "/linkedin/rest/posts", token="t", headers=LINKEDIN_HEADERS,
                           query={"q": "author", "author": "urn:li:organization:42", "start": 0, "count": 2})
        self.assertEqual(answer.status, 200, answer)
        body = answer.json
        self.assertEqual(body["paging"]["total"], 5)
        self.assertEqual(body["elements"][0]["commentary"], 12345)

    def test_bad_seeds_are_refused(self) -> None:
        for body in (
            {"platform": "sms", "account": "a", "count": 1},
            {"platform": "x", "count": 1},
            {"platform": "x", "account": "a"},
            {"platform": "x", "account": "a", "count": 2, "malformed": {"5": "missing_text"}},
            {"platform": "x", "account": "a", "count": 2, "malformed": {"0": "weird"}},
        ):
            self.assertEqual(self.call("POST", "/_admin/timeline", body).status, 400, body)
        self.assertEqual(self.admin("GET", "timeline", query={"platform": "x", "account": "a"})["items"], [])

    def test_facebook_insights_are_daily_values_in_since_until_windows(self) -> None:
        seeded = self.call("POST", "/_admin/insights", {"page": "p5", "days": 10,
                                                        "malformed": {"2": "value_not_number", "4": "missing_end_time"}})
        self.assertEqual(seeded.status, 201, seeded)
        values = seeded.json["values"]
        self.assertEqual(len(values), 20)
        day = 86_400
        today = int(time.time()) // day * day
        query = {"metric": "page_impressions,page_post_engagements", "period": "day",
                 "since": today - 10 * day, "until": today - 3 * day, "access_token": "tok"}
        answer = self.call("GET", "/facebook/v21.0/p5/insights", query=query)
        self.assertEqual(answer.status, 200, answer)
        self.assertIn("X-App-Usage", answer.headers)
        data = answer.json["data"]
        self.assertEqual([d["name"] for d in data], ["page_impressions", "page_post_engagements"])
        impressions = data[0]["values"]
        self.assertEqual(len(impressions), 7, "(since, until]: days 0-6")
        self.assertEqual(impressions[0]["value"], 100)
        self.assertEqual(impressions[2]["value"], "n/a")
        self.assertNotIn("end_time", impressions[4])
        self.assertEqual(data[1]["values"][1]["value"], 14)
        nxt = parse_qs(urlsplit(answer.json["paging"]["next"]).query)
        self.assertEqual(int(nxt["since"][0]), today - 3 * day)
        rest = self.call("GET", "/facebook/v21.0/p5/insights",
                         query={**query, "since": today - 3 * day, "until": today}).json["data"]
        self.assertEqual(len(rest[0]["values"]), 3, "the last value ends today at 00:00 UTC")
        listed = self.admin("GET", "insights", query={"page": "p5"})["values"]
        self.assertEqual([v["malformed"] for v in listed if v["malformed"]], ["value_not_number", "missing_end_time"])
        self.assertEqual(listed[0]["id"], f"page_impressions/day/{listed[0]['end_time']}")
        revised = self.call("POST", "/_admin/insights", {"page": "p5", "days": 10, "revise_last": 50}).json["values"]
        self.assertEqual([v["value"] for v in revised[-2:]], [1050, 120])
        self.assertEqual([v["id"] for v in revised], [v["id"] for v in listed])

    def test_facebook_insights_refuse_bad_queries_and_seeds(self) -> None:
        base = {"metric": "page_impressions", "period": "day", "since": 0, "until": 86_400, "access_token": "t"}
        for bad in ({"metric": "page_fans_online"}, {"period": "week"}, {"until": "soon"},
                    {"since": 0, "until": 94 * 86_400}, {"since": 5, "until": 5}):
            answer = self.call("GET", "/facebook/v21.0/p6/insights", query={**base, **bad})
            self.assertEqual(answer.status, 400, bad)
            self.assertEqual(answer.json["error"]["code"], 100, bad)
        no_token = {k: v for k, v in base.items() if k != "access_token"}
        self.assertEqual(self.call("GET", "/facebook/v21.0/p6/insights", query=no_token).status, 400)
        for body in ({"days": 3}, {"page": "p", "days": 0}, {"page": "p", "days": 2, "malformed": {"2": "value_not_number"}},
                     {"page": "p", "days": 2, "malformed": {"0": "weird"}}):
            self.assertEqual(self.call("POST", "/_admin/insights", body).status, 400, body)


if __name__ == "__main__":
    unittest.main()
