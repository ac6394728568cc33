"""The fake Mastodon's model: the `MastodonPlatform` (errors, rate-limit headers, the
Status, Account and MediaAttachment entities) and how a status is read and checked. The
endpoints are in mastodon_api.py; the instance's base URL is `<fake>/mastodon`.

Accounts are the tokens' accounts, as on X (`POST /_admin/tokens` with platform "mastodon";
any other token is an account of its own). Two fixed windows per account, Mastodon's defaults:
every request with a valid token counts toward `mastodon-api` (300 per 5 minutes), each created
status toward `mastodon` (300 per 3 hours). Every answer carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (ISO 8601): of the status window for
`POST /api/v1/statuses`, of the request window otherwise, as Mastodon's controllers do. Errors
are `{"error": "..."}`; validation errors are 422.

A status's length is counted as Mastodon does, with two simplifications: code points (not
grapheme clusters), and every `http(s)://` URL as 23 characters; mentions count in full.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from fake_platforms.base import Draft, Platform, _created_post, answers
from fake_platforms.protocol import (
    BadRequest,
    Outcome,
    Reply,
    Request,
    parse_multipart,
    phrase,
    rfc3339_ms,
)
from fake_platforms.state import ENGAGEMENT, FaultRule, Media, Post, State, Usage


#: Mastodon's default character limit; a URL counts as 23 characters whatever its length.
STATUS_LIMIT = 500
URL_LENGTH = 23
MAX_MEDIA = 4
VISIBILITIES = ("public", "unlisted", "private", "direct")
#: How long a video, GIF or audio upload stays "processing" (202 and `url: null`).
PROCESSING_SECONDS = 0.5
NOT_FOUND = "Record not found"
REPLY_NOT_FOUND = "The post you are trying to reply to does not appear to exist."

_URL = re.compile(r"https?://\S+")


def iso8601_us(epoch: float) -> str:
    """`2025-01-31T12:00:00.123456Z`, as Mastodon's `X-RateLimit-Reset`."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def countable_length(text: str) -> int:
    """The length Mastodon checks against its limit (code points; URLs as 23)."""
    return len(_URL.sub("x" * URL_LENGTH, text))


def to_html(text: str) -> str:
    """Plain text as Mastodon renders it: `<p>` per paragraph, `<br />` per line break."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p]
    escaped = (html.escape(p).replace("&#x27;", "&#39;").replace("\n", "<br />") for p in paragraphs)
    return "".join(f"<p>{p}</p>" for p in escaped)


@dataclass
class StatusDraft(Draft):
    """A status as far as it could be read, with what only Mastodon has."""

    visibility: str = "public"
    spoiler_text: str = ""
    sensitive: bool = False
    language: str | None = None
    idempotency_key: str | None = None


class MastodonPlatform(Platform):
    """One request's view of the instance: its base URL, and which window its headers show."""

    name = "mastodon"
    ID_BASE = 113_000_000_000_000_000  # 18 digits, like Mastodon's snowflake ids
    MEDIA_ID_BASE = 114_000_000_000_000_000
    MESSAGES = {401: "The access token is invalid", 404: NOT_FOUND, 429: "Too many requests"}

    def __init__(self, state: State | None = None, base: str = "", window: str = "mastodon-api") -> None:
        self.state = state
        self.base = base
        self.window = window

    # -- the Platform hooks -----------------------------------------------------------------

    def parse_publish(self, state: State, req: Request) -> StatusDraft:
        token = req.bearer()
        draft = StatusDraft(account=state.account_for_token("mastodon", token) if token else None)
        draft.idempotency_key = (req.header("Idempotency-Key") or "").strip() or None
        try:
            fields = _status_fields(req)
        except BadRequest as e:
            draft.problem = str(e)
            return draft
        text, spoiler = fields["status"] or "", fields["spoiler_text"] or ""
        media = [str(m) for m in fields["media_ids"]]
        visibility = fields["visibility"] or "public"
        if not text.strip() and not media:
            draft.problem = "Validation failed: Text can't be blank"
        elif countable_length(text) + len(spoiler) > STATUS_LIMIT:
            draft.problem = f"Validation failed: Text character limit of {STATUS_LIMIT} exceeded"
        elif visibility not in VISIBILITIES:
            draft.problem = "Validation failed: Visibility is not included in the list"
        elif len(media) > MAX_MEDIA:
            draft.problem = f"Cannot attach more than {MAX_MEDIA} files"
        elif any(processing(state.find_media("mastodon", m)) for m in media):
            draft.problem = "Cannot attach files that have not finished processing. Try again in a moment!"
        else:
            draft.text, draft.media, draft.parent = text, media, fields["in_reply_to_id"] or None
            draft.visibility, draft.spoiler_text = visibility, spoiler
            draft.sensitive, draft.language = fields["sensitive"], fields["language"] or None
        return draft

    def new_id(self, n: int, account: str) -> str:
        return str(self.ID_BASE + n)

    def new_media_id(self, n: int) -> str:
        return str(self.MEDIA_ID_BASE + n)

    def stored(self, state: State, draft: Draft, post: Post) -> None:
        assert isinstance(draft, StatusDraft)
        parent = _created_post(state, "mastodon", post.parent) if post.parent else None
        post.attributes = {
            "visibility": draft.visibility,
            "spoiler_text": draft.spoiler_text,
            "sensitive": draft.sensitive,
            "language": draft.language,
            "in_reply_to_account_id": parent.account if parent else None,
        }
        if draft.idempotency_key is not None:
            state.remember_idempotent("mastodon", post.account, draft.idempotency_key, post.id)

    def created(self, post: Post) -> Reply:
        return Reply(200, self.status(post))

    def error(self, status: int, code: int | None = None, message: str | None = None) -> Reply:
        return Reply(status, {"error": message or self.MESSAGES.get(status) or phrase(status)})

    def invalid(self, message: str) -> Reply:
        return self.error(422, None, message)

    def limit_error(self, usage: Usage) -> Reply:
        return self.error(429)  # the usage headers say remaining 0 and when the window resets

    def fault_error(self, rule: FaultRule) -> Reply:
        reply = super().fault_error(rule)
        if rule.retry_after is not None:
            reply.headers["X-RateLimit-Remaining"] = "0"
            reply.headers["X-RateLimit-Reset"] = iso8601_us(time.time() + rule.retry_after)
        return reply

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(usage.limit),
            "X-RateLimit-Remaining": str(usage.remaining),
            "X-RateLimit-Reset": iso8601_us(usage.reset),
        }

    def admit(self, state: State, account: str | None) -> Reply | None:
        """Every request with a valid token counts toward the account's request window."""
        if account is None:
            return None
        allowed, usage = state.acquire("mastodon-api", account)
        if allowed:
            return None
        reply = self.error(429)
        reply.headers.update(self.usage_headers(usage))
        return reply

    def finish(self, state: State, account: str | None, outcome: Outcome) -> Outcome:
        if isinstance(outcome, Reply):
            outcome.headers = {**self.usage_headers(state.peek(self.window, account)), **outcome.headers}
        return outcome

    # -- entities ----------------------------------------------------------------------------

    def account(self, account: str) -> dict[str, Any]:
        username = re.sub(r"[^A-Za-z0-9_]", "_", f"user_{account}")
        return {"id": account, "username": username, "acct": username,
                "display_name": f"Mastodon user {account}", "url": f"{self.base}/@{username}"}

    def status(self, post: Post) -> dict[str, Any]:
        """The Status entity (`replies_count` counts the replies still there)."""
        assert self.state is not None
        attrs, who = post.attributes, self.account(post.account)
        metrics = ENGAGEMENT.get("mastodon", post.id)
        media = [self.state.find_media("mastodon", m) for m in post.media]
        return {
            "id": post.id,
            "created_at": rfc3339_ms(post.created),
            "in_reply_to_id": post.parent,
            "in_reply_to_account_id": attrs.get("in_reply_to_account_id"),
            "sensitive": attrs.get("sensitive", False),
            "spoiler_text": attrs.get("spoiler_text", ""),
            "visibility": attrs.get("visibility", "public"),
            "language": attrs.get("language"),
            "uri": f"{self.base}/users/{who['username']}/statuses/{post.id}",
            "url": f"{who['url']}/{post.id}",
            "replies_count": len(answers(self.state, "mastodon", post.id)) + metrics["comments"],
            "reblogs_count": metrics["shares"],
            "favourites_count": metrics["likes"],
            "edited_at": None,
            "content": to_html(post.text),
            "reblog": None,
            "account": who,
            "media_attachments": [self.media(m) for m in media if m is not None],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def media(self, media: Media) -> dict[str, Any]:
        """The MediaAttachment entity; `url` is null while it is processed."""
        url = None
        if not processing(media):
            url = f"{self.base}/system/media_attachments/files/{media.id}/original/{media.id}"
        return {
            "id": media.id,
            "type": media.kind,
            "url": url,
            "preview_url": url,
            "remote_url": None,
            "meta": {},
            "description": media.attributes.get("description"),
            "blurhash": None,
        }


#: For the admin API's timeline seeding (ids only).
MASTODON = MastodonPlatform()


def processing(media: Media | None) -> bool:
    """Whether an upload is still being processed (`url: null`, not yet attachable)."""
    return media is not None and media.attributes.get("ready_at", 0) > time.time()


def media_kind(content_type: str) -> str | None:
    """The MediaAttachment type of an upload; None: not a type Mastodon takes."""
    if content_type == "image/gif":
        return "gifv"  # Mastodon turns GIFs into silent videos
    for prefix, kind in (("image/", "image"), ("video/", "video"), ("audio/", "audio")):
        if content_type.startswith(prefix):
            return kind
    return None


def ready_at(kind: str) -> float:
    """When an upload of `kind` is processed: images at once, moving media and audio later."""
    return time.time() + (0 if kind == "image" else PROCESSING_SECONDS)


def _status_fields(req: Request) -> dict[str, Any]:
    """The create's parameters from a JSON, form or multipart body."""
    content_type = (req.header("Content-Type") or "").lower()
    if "json" in content_type:
        body = req.json_object()
        ids = body.get("media_ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
            raise BadRequest("media_ids must be a list of media ids")
        flat = {k: body.get(k) for k in ("status", "in_reply_to_id", "visibility", "spoiler_text", "language")}
        if any(v is not None and not isinstance(v, (str, int)) for v in flat.values()):
            raise BadRequest("status, in_reply_to_id, visibility, spoiler_text and language are strings")
        fields = {k: None if v is None else str(v) for k, v in flat.items()}
        return {**fields, "media_ids": ids, "sensitive": body.get("sensitive") in (True, "true", "1")}
    if content_type.startswith("multipart/form-data"):
        form = {name: [part.text] for name, part in parse_multipart(content_type, req.body).items()}
    else:
        form = parse_qs(req.body.decode("utf-8", errors="replace"), keep_blank_values=True)
    one = {k: (form.get(k) or [None])[0] for k in
           ("status", "in_reply_to_id", "visibility", "spoiler_text", "language", "sensitive")}
    ids = [i for i in form.get("media_ids[]", []) + form.get("media_ids", []) if i]
    return {**one, "media_ids": ids, "sensitive": one["sensitive"] in ("true", "1")}


def instance(state: State, req: Request, window: str = "mastodon-api") -> MastodonPlatform:
    return MastodonPlatform(state, f"http://{req.host}/mastodon", window)


def token_account(state: State, req: Request) -> str | None:
    token = req.bearer()
    return state.account_for_token("mastodon", token) if token else None


def visible(post: Post | None, viewer: str | None) -> bool:
    """Public and unlisted statuses are anyone's to see; private and direct ones the author's."""
    if post is None:
        return False
    return post.account == viewer or post.attributes.get("visibility", "public") in ("public", "unlisted")
