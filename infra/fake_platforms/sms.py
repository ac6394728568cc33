"""The fake SMS provider: `POST /sms/messages` sends (queues) a message, `GET /sms/messages
?client_ref=X` finds the messages sent with a client reference. Receipts, inbound messages and
the admin endpoints are in sms_delivery.py; settings and counters in sms_state.py.

    POST /sms/messages   Authorization: Bearer <any token not starting with "revoked">
        {"from": "<sender>", "to": "+E164", "body": "<text>", "client_ref": "<= 64 chars"}
        201 {"id": "sm_N", "status": "queued", "client_ref": <str|null>, "segments": n}
        400 {"status": 400, "code": <code>, "message": ...}: a permanent error (CODES below)
        429 Retry-After: 1: the sender's messages-per-second limit (`mps`, default 50); nothing
            is stored. The older fixed window of `/_admin/limits` ("sms") applies as well.
    GET /sms/messages?client_ref=X   (same Authorization)
        200 {"messages": [{"id", "status", "client_ref", "to", "from", "segments"}]}, oldest
        first; an empty list when none has it.

Segments are counted exactly: a body whose every character is in the GSM 03.38 basic
character set or its extension table (`^{}\\[~]|€` and form feed, two septets each) is GSM-7,
160 septets in one segment or 153 per segment of a longer message; any other body is UCS-2,
counted in UTF-16 code units, 70 in one segment or 67 per segment. An extension character's
two septets, and a surrogate pair (an emoji), are never split between two segments.
"""

from __future__ import annotations

from dataclasses import dataclass

from fake_platforms.base import Draft, Platform, list_posts, publish
from fake_platforms.protocol import BadRequest, Outcome, Reply, Request, phrase
from fake_platforms.sms_delivery import schedule_receipts
from fake_platforms.sms_state import E164
from fake_platforms.state import Post, State

# GSM 03.38: the basic character set (ESC, 0x1B, stands for the extension table) ...
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# ... and the extension table's characters, each sent as ESC and a second septet.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

MAX_CLIENT_REF = 64

FROM_MISSING = "`from` is required: a non-empty string"
TO_MISSING = "`to` is required: an E.164 number"
TO_INVALID = "`to` is not a valid E.164 number (+ then 8 to 15 digits)"
BODY_MISSING = "`body` is required: a non-empty string"
CLIENT_REF_INVALID = f"`client_ref` must be a string of 1 to {MAX_CLIENT_REF} characters"

#: The `code` of each permanent (400) error.
CODES = {
    TO_INVALID: 21211,
    TO_MISSING: 21604,
    FROM_MISSING: 21603,
    BODY_MISSING: 21602,
    CLIENT_REF_INVALID: 21699,  # the fake's own
}
MPS_CODE = 20429


def _segments(units: list[int], single: int, per_part: int) -> int:
    if sum(units) <= single:
        return 1
    parts, room = 1, per_part
    for size in units:
        if size > room:
            parts, room = parts + 1, per_part
        room -= size
    return parts


def encoding(text: str) -> str:
    """"GSM-7" or "UCS-2"."""
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "UCS-2"


def segments(text: str) -> int:
    """How many segments `text` is sent in (see the module's documentation)."""
    if encoding(text) == "GSM-7":
        return _segments([2 if c in GSM7_EXTENSION else 1 for c in text], 160, 153)
    return _segments([2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67)


@dataclass
class SmsDraft(Draft):
    to: str | None = None
    client_ref: str | None = None


class SmsPlatform(Platform):
    name = "sms"

    def parse_publish(self, state: State, req: Request) -> Draft:
        try:
            body = req.json_object()
        except BadRequest as e:
            return SmsDraft(account=None, problem=str(e))
        sender, to, text = body.get("from"), body.get("to"), body.get("body")
        client_ref = body.get("client_ref")
        draft = SmsDraft(account=sender if isinstance(sender, str) and sender else None)
        if draft.account is None:
            draft.problem = FROM_MISSING
        elif not isinstance(to, str) or not to:
            draft.problem = TO_MISSING
        elif not E164.fullmatch(to):
            draft.problem = TO_INVALID
        elif not isinstance(text, str) or not text:
            draft.problem = BODY_MISSING
        elif client_ref is not None and not (isinstance(client_ref, str) and 0 < len(client_ref) <= MAX_CLIENT_REF):
            draft.problem = CLIENT_REF_INVALID
        else:
            draft.text, draft.to, draft.client_ref = text, to, client_ref
        return draft

    def new_id(self, n: int, account: str) -> str:
        return f"sm_{n}"

    def before_store(self, state: State, draft: Draft) -> Reply | None:
        if state.sms.admit(draft.account or ""):
            return None
        reply = self.error(429, MPS_CODE, "too many messages per second from this sender")
        reply.headers["Retry-After"] = "1"
        return reply

    def stored(self, state: State, draft: Draft, post: Post) -> None:
        assert isinstance(draft, SmsDraft) and draft.to is not None
        post.attributes = {
            "to": draft.to,
            "client_ref": draft.client_ref,
            "segments": segments(post.text),
            "status": "queued",
        }
        schedule_receipts(state, post)

    def created(self, post: Post) -> Reply:
        attrs = post.attributes
        return Reply(201, {"id": post.id, "status": "queued", "client_ref": attrs["client_ref"],
                           "segments": attrs["segments"]})

    def invalid(self, message: str) -> Reply:
        return self.error(400, CODES.get(message), message)

    def error(self, status: int, code: int | None = None, message: str | None = None) -> Reply:
        return Reply(
            status, {"status": status, "code": status if code is None else code,
                     "message": message or phrase(status)}
        )


SMS = SmsPlatform()


def message_view(post: Post) -> dict[str, object]:
    """A message as the lookup shows it."""
    attrs = post.attributes
    return {"id": post.id, "status": attrs.get("status"), "client_ref": attrs.get("client_ref"),
            "to": attrs.get("to"), "from": post.account, "segments": attrs.get("segments")}


def sms_send(state: State, req: Request) -> Outcome:
    return publish(state, SMS, req)


def sms_lookup(state: State, req: Request) -> Outcome:
    def render() -> Reply:
        ref = req.query.get("client_ref")
        if not ref or len(ref) > MAX_CLIENT_REF:
            raise BadRequest(f"client_ref is required: 1 to {MAX_CLIENT_REF} characters")
        found = [p for p in state.posts("sms") if p.attributes.get("client_ref") == ref]
        return Reply(200, {"messages": [message_view(p) for p in found]})

    return list_posts(state, SMS, req, None, render)
