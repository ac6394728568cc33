"""The Python client generated from Herald's OpenAPI document (`openapi-python-client`, by
infra/clients.sh into clients/python/gen/herald_client) against the local stack: connect an
account, create posts, page through the list, and read a problem answer."""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
import unittest
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "gen"))

from herald_client import AuthenticatedClient  # noqa: E402
from herald_client.api.accounts import connect_account  # noqa: E402
from herald_client.api.posts import create_post, list_posts  # noqa: E402
from herald_client.models import ConnectAccount, CreatePost, PostList, PostView, Problem, TargetInput  # noqa: E402


def fake_token(platform: str, token: str, account: str) -> None:
    """Teaches the fake platform who `token` belongs to (Herald asks before it connects)."""
    request = urllib.request.Request(
        f"{os.environ['FAKE_PLATFORMS_URL']}/_admin/tokens",
        data=json.dumps({"platform": platform, "token": token, "account": account}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status < 300


class GeneratedClient(unittest.TestCase):
    def setUp(self) -> None:
        self.client = AuthenticatedClient(
            base_url=os.environ["HERALD_API_URL"], token=os.environ["HERALD_API_KEY"], timeout=30
        )
        self.run_id = f"py{time.time_ns()}"

    def test_create_page_and_read_a_problem(self) -> None:
        page = f"{self.run_id}-page"
        fake_token("facebook", f"{self.run_id}-token", page)
        account = connect_account.sync(
            client=self.client,
            body=ConnectAccount(platform="facebook", external_id=page, access_token=f"{self.run_id}-token"),
        )
        self.assertNotIsInstance(account, Problem, account)
        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        created = []
        for i in range(3):
            post = create_post.sync(
                client=self.client,
                idempotency_key=f"{self.run_id}-{i}",
                body=CreatePost(
                    text=f"from Python {i}", scheduled_at=later, targets=[TargetInput(account_id=account.id)]
                ),
            )
            self.assertIsInstance(post, PostView, post)
            self.assertEqual(post.status, "scheduled")
            created.append(post.id)

        # Two at a time, newest first, until all three are seen (other tests post too).
        seen: list[str] = []
        cursor = None
        for _ in range(50):
            listed = list_posts.sync(client=self.client, limit=2, **({"cursor": cursor} if cursor else {}))
            self.assertIsInstance(listed, PostList, listed)
            self.assertLessEqual(len(listed.items), 2)
            seen += [p.id for p in listed.items]
            cursor = listed.next_cursor if isinstance(listed.next_cursor, str) else None
            if set(created) <= set(seen) or cursor is None:
                break
        self.assertLessEqual(set(created), set(seen))
        self.assertEqual(seen.index(created[2]) < seen.index(created[0]), True, "newest first")

        answer = create_post.sync_detailed(
            client=self.client,
            idempotency_key=f"{self.run_id}-bad",
            body=CreatePost(text="fine", targets=[TargetInput(account_id="acc_nobody")]),
        )
        self.assertEqual(answer.status_code, 422)
        self.assertEqual(answer.headers["content-type"], "application/problem+json")
        problem = answer.parsed
        self.assertIsInstance(problem, Problem, problem)
        self.assertEqual(problem.status, 422)
        self.assertEqual([e.field for e in problem.errors], ["targets[0].account_id"])


if __name__ == "__main__":
    unittest.main()
