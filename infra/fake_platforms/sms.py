"""The fake SMS provider: POST /sms/messages."""

from __future__ import annotations

from fake_platforms.base import Draft, Platform, publish
from fake_platforms.protocol import BadRequest, Outcome, Reply, Request, phrase
from fake_platforms.state import Post, State


class SmsPlatform(Platform):
    name = "sms"

    def parse_publish(self, state: State, req: Request) -> Draft:
        try:
            body = req.json_object()
        except BadRequest as e:
            return Draft(account=None, problem=str(e))
        sender, to, text = body.get("from"), body.get("to"), body.get("body")
        draft = Draft(account=sender if isinstance(sender, str) and sender else None)
        if draft.account is None or not all(isinstance(v, str) and v for v in (to, text)):
            draft.problem = "`to`, `from` and `body` are required non-empty strings"
        else:
            draft.text = text
        return draft

    def new_id(self, n: int, account: str) -> str:
        return f"sm_{n}"

    def created(self, post: Post) -> Reply:
        return Reply(201, {"id": post.id, "status": "queued"})

    def error(self, status: int, code: int | None = None, message: str | None = None) -> Reply:
        return Reply(
            status, {"status": status, "code": status if code is None else code,
                     "message": message or phrase(status)}
        )


SMS = SmsPlatform()


def sms_send(state: State, req: Request) -> Outcome:
    return publish(state, SMS, req)
