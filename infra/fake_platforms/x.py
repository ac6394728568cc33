"""The fake X API v2: POST /x/2/tweets, GET /x/2/users/{id}/tweets, GET /x/2/tweets (lookup
with public metrics), POST /x/2/media/upload (one request, or chunked: command=INIT, APPEND,
FINALIZE, and GET ?command=STATUS; chunked_uploads.py) and POST /x/2/oauth2/token."""

from __future__ import annotations

import math
import time
from typing import Any

from fake_platforms.base import (
    Draft,
    Platform,
    _created_post,
    as_listed,
    delete_own,
    list_posts,
    oauth_refresh,
    publish,
    upload,
)
from fake_platforms.protocol import (
    BadRequest,
    Outcome,
    Reply,
    Request,
    decode_cursor,
    encode_cursor,
    parse_multipart,
    phrase,
    rfc3339_ms,
)
from fake_platforms.chunked_uploads import X_EXPIRES_AFTER_SECS
from fake_platforms.state import ENGAGEMENT, FaultRule, Post, State, Usage

#: X takes at most 5 MB per APPEND.
X_SEGMENT_MAX = 5 * 1024 * 1024


#: X serves only the newest 3,200 posts of a user timeline.
X_TIMELINE_WINDOW = 3200


class XPlatform(Platform):
    name = "x"
    ID_BASE = 1_790_000_000_000_000_000  # 19 digits, like a snowflake id
    MESSAGES = {88: "Rate limit exceeded"}

    def parse_publish(self, state: State, req: Request) -> Draft:
        token = req.bearer()
        draft = Draft(account=state.account_for_token("x", token) if token else None)
        try:
            body = req.json_object()
        except BadRequest as e:
            draft.problem = str(e)
            return draft
        text = body.get("text")
        media = body.get("media", {})
        ids = media.get("media_ids", []) if isinstance(media, dict) else None
        reply = body.get("reply")
        parent = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
        if not isinstance(text, str) or not text:
            draft.problem = "The `text` field is required and must be a non-empty string."
        elif not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 4:
            draft.problem = "`media.media_ids` must be a list of at most 4 media id strings."
        elif reply is not None and not isinstance(parent, str):
            draft.problem = "`reply.in_reply_to_tweet_id` must be a tweet id string."
        elif any(not state.chunked.ready("x", draft.account, i) for i in ids):
            # A chunked upload is usable once finalized and processed (STATUS: succeeded).
            draft.problem = "Your media IDs are invalid."
        elif "reply_settings" in body and body["reply_settings"] not in X_REPLY_SETTINGS:
            draft.problem = f"`reply_settings` must be one of {', '.join(X_REPLY_SETTINGS)}."
        else:
            draft.text = text
            draft.media = ids
            draft.parent = parent
            if "reply_settings" in body:
                draft.attributes["reply_settings"] = body["reply_settings"]
        return draft

    def new_id(self, n: int, account: str) -> str:
        return str(self.ID_BASE + n)

    def new_media_id(self, n: int) -> str:
        return str(self.ID_BASE + 500_000_000 + n)

    def created(self, post: Post) -> Reply:
        return Reply(
            201, {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}}
        )

    def error(self, status: int, code: int | None = None, message: str | None = None) -> Reply:
        detail = message or self.MESSAGES.get(code or 0) or phrase(status)
        body: dict[str, Any] = {
            "title": phrase(status),
            "detail": detail,
            "type": "about:blank",
            "status": status,
        }
        if code is not None:
            body = {"errors": [{"code": code, "message": detail}], **body}
        return Reply(status, body)

    def limit_error(self, usage: Usage) -> Reply:
        return self.error(429, 88)  # the usage headers say remaining 0 and when it resets

    def fault_error(self, rule: FaultRule) -> Reply:
        reply = super().fault_error(rule)
        if rule.retry_after is not None:
            reply.headers["x-rate-limit-remaining"] = "0"
            reply.headers["x-rate-limit-reset"] = str(math.ceil(time.time() + rule.retry_after))
        return reply

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(usage.limit),
            "x-rate-limit-remaining": str(usage.remaining),
            "x-rate-limit-reset": str(math.ceil(usage.reset)),
        }


X = XPlatform()


def x_create_tweet(state: State, req: Request) -> Outcome:
    return publish(state, X, req)


def x_delete_tweet(state: State, req: Request) -> Outcome:
    """`DELETE /2/tweets/{id}`: one's own tweet (or reply)."""
    return delete_own(state, X, req, req.params["id"], X.error(404, message="Not Found"),
                      Reply(200, {"data": {"deleted": True}}))


#: Who may reply to a tweet, as `POST /2/tweets` takes it (absent: everyone).
X_REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")
#: The longest alt text X takes.
X_ALT_TEXT_MAX = 1000


def x_media_metadata(state: State, req: Request) -> Outcome:
    """`POST /2/media/metadata`: `{"id", "metadata": {"alt_text": {"text"}}}` on the account's
    own upload; the alt text is kept on the media."""
    token = req.bearer()
    account = state.account_for_token("x", token) if token else None

    def store() -> Reply:
        body = req.json_object()
        media = state.find_media("x", str(body.get("id")))
        alt = body.get("metadata", {}).get("alt_text", {}) if isinstance(body.get("metadata"), dict) else None
        text = alt.get("text") if isinstance(alt, dict) else None
        if media is None or media.account != account:
            raise BadRequest("`id` must be a media id this account uploaded.")
        if not isinstance(text, str) or not 1 <= len(text) <= X_ALT_TEXT_MAX:
            raise BadRequest(f"`metadata.alt_text.text` must be 1 to {X_ALT_TEXT_MAX} characters.")
        media.attributes["alt_text"] = text
        return Reply(200, {"data": {"id": media.id, "associated_metadata": True}})

    return upload(state, X, req, account, store)


X_MEDIA_CATEGORIES = {"tweet_image": ("image", "3"), "tweet_gif": ("gif", "16"), "tweet_video": ("video", "7")}


def x_media_upload(state: State, req: Request) -> Outcome:
    token = req.bearer()
    account = state.account_for_token("x", token) if token else None

    def store() -> Reply:
        parts = parse_multipart(req.header("Content-Type"), req.body)
        if "command" in parts:
            assert account is not None  # the token check passed
            return _chunked_command(state, account, {k: v for k, v in parts.items()})
        media, category = parts.get("media"), parts.get("media_category")
        kind = X_MEDIA_CATEGORIES.get(category.text if category else "tweet_image")
        if media is None or not media.data:
            raise BadRequest("The `media` field is required.")
        if kind is None:
            raise BadRequest(f"media_category must be one of {', '.join(X_MEDIA_CATEGORIES)}")
        assert account is not None  # the token check passed
        stored = state.add_media("x", account, kind[0], X.new_media_id, media.data, media.content_type)
        return Reply(200, {"data": {
            "id": stored.id,
            "media_key": f"{kind[1]}_{stored.id}",
            "size": stored.size,
            "expires_after_secs": 86400,
        }})

    return upload(state, X, req, account, store)


#: What a chunked upload may carry: X's video types, up to 512 MB.
X_CHUNKED_TYPES = ("video/mp4", "video/quicktime")
X_CHUNKED_MAX = 512 * 1024 * 1024


def _chunked_command(state: State, account: str, parts: dict[str, Any]) -> Reply:
    """INIT, APPEND or FINALIZE of a chunked upload, X's way."""
    command = parts["command"].text

    def field(name: str) -> str:
        part = parts.get(name)
        if part is None or not part.text:
            raise BadRequest(f"The `{name}` field is required for {command}.")
        return part.text

    def number(name: str) -> int:
        try:
            return int(field(name))
        except ValueError:
            raise BadRequest(f"`{name}` must be a whole number.") from None

    if command == "INIT":
        total, media_type = number("total_bytes"), field("media_type")
        if media_type not in X_CHUNKED_TYPES:
            raise BadRequest(f"media_type must be one of {', '.join(X_CHUNKED_TYPES)}")
        if not 0 < total <= X_CHUNKED_MAX:
            raise BadRequest(f"total_bytes must be between 1 and {X_CHUNKED_MAX}")
        session = state.chunked.start("x", account, total, media_type)
        return Reply(200, {"data": {
            "id": session.id,
            "media_key": f"7_{session.id}",
            "expires_after_secs": X_EXPIRES_AFTER_SECS,
        }})
    session = state.chunked.get("x", account, field("media_id"))
    if session is None:
        raise BadRequest("The media_id was not found for this user.")
    if command == "APPEND":
        media = parts.get("media")
        if media is None or not media.data:
            raise BadRequest("The `media` field is required for APPEND.")
        if len(media.data) > X_SEGMENT_MAX:
            raise BadRequest("A segment must be at most 5 MB.")
        problem = state.chunked.append_segment(session, number("segment_index"), media.data)
        if problem is not None:
            raise BadRequest(problem)
        return Reply(204)
    if command == "FINALIZE":
        first = not session.finalized
        problem = state.chunked.finish(session)
        if problem is not None:
            raise BadRequest(problem)
        if first:
            state.add_received_media("x", account, "video", session.id, session.size,
                                     session.sha256, session.media_type)
            session.media_id = session.id
        return Reply(200, {"data": {
            "id": session.id,
            "media_key": f"7_{session.id}",
            "size": session.size,
            "expires_after_secs": X_EXPIRES_AFTER_SECS,
            "processing_info": {"state": "pending", "check_after_secs": 1},
        }})
    raise BadRequest("command must be INIT, APPEND, FINALIZE or STATUS")


def x_media_status(state: State, req: Request) -> Outcome:
    """GET /2/media/upload?command=STATUS&media_id=...: processing, then succeeded."""
    token = req.bearer()
    account = state.account_for_token("x", token) if token else None

    def status() -> Reply:
        if req.param("command") != "STATUS":
            raise BadRequest("command must be STATUS")
        assert account is not None  # the token check passed
        session = state.chunked.get("x", account, req.param("media_id") or "")
        if session is None or not session.finalized:
            raise BadRequest("The media_id was not found or was not finalized.")
        current = state.chunked.status(session)
        return Reply(200, {"data": {
            "id": session.id,
            "media_key": f"7_{session.id}",
            "processing_info": {"state": current, "check_after_secs": 1,
                                "progress_percent": 100 if current == "succeeded" else 50},
        }})

    return upload(state, X, req, account, status)


def x_user_tweets(state: State, req: Request) -> Outcome:
    user = req.params["id"]

    def render() -> Reply:
        max_results = req.int_param("max_results", 10, 5, 100)
        tweets = list(reversed(state.posts("x", user)))[:X_TIMELINE_WINDOW]
        if since_id := req.param("since_id"):
            if not since_id.isdigit():
                raise BadRequest("since_id must be a tweet id")
            tweets = [t for t in tweets if int(t.id) > int(since_id)]
        if token := req.param("pagination_token"):
            newest = decode_cursor(token)
            tweets = [t for t in tweets if int(t.id) <= newest]
        page, rest = tweets[:max_results], tweets[max_results:]
        meta: dict[str, Any] = {"result_count": len(page)}
        body: dict[str, Any] = {}
        fields = (req.param("tweet.fields") or "").split(",")
        if page:  # like X, an empty page has no `data` at all
            body["data"] = [as_listed(t, _listed_tweet(t, fields)) for t in page]
            meta.update(newest_id=page[0].id, oldest_id=page[-1].id)
        if rest:
            meta["next_token"] = encode_cursor(int(rest[0].id))
        body["meta"] = meta
        return Reply(200, body)

    return list_posts(state, X, req, user, render)


def _listed_tweet(t: Post, fields: list[str]) -> dict[str, Any]:
    tweet: dict[str, Any] = {"id": t.id, "text": t.text, "created_at": rfc3339_ms(t.created)}
    if t.parent is not None and "referenced_tweets" in fields:
        tweet["referenced_tweets"] = [{"type": "replied_to", "id": t.parent}]
    return tweet


def x_oauth_token(state: State, req: Request) -> Outcome:
    return oauth_refresh(state, X, req)


def x_tweets_lookup(state: State, req: Request) -> Outcome:
    """`GET /2/tweets?ids=1,2&tweet.fields=public_metrics`: found tweets in `data`, the others
    in `errors` (as X answers a partial lookup)."""
    token = req.bearer()
    account = state.account_for_token("x", token) if token else None

    def render() -> Reply:
        ids = [i for i in (req.param("ids") or "").split(",") if i]
        if not ids or len(ids) > 100:
            raise BadRequest("ids must name 1 to 100 tweets")
        fields = (req.param("tweet.fields") or "").split(",")
        data, errors = [], []
        for tweet_id in ids:
            post = _created_post(state, "x", tweet_id)
            if post is None:
                errors.append({"value": tweet_id, "detail": f"Could not find tweet with ids: [{tweet_id}].",
                               "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                               "resource_id": tweet_id,
                               "type": "https://api.twitter.com/2/problems/resource-not-found"})
                continue
            tweet: dict[str, Any] = {"id": post.id, "text": post.text}
            if "public_metrics" in fields:
                m = ENGAGEMENT.get("x", post.id)
                tweet["public_metrics"] = {"retweet_count": m["shares"], "reply_count": m["comments"],
                                           "like_count": m["likes"], "quote_count": 0,
                                           "impression_count": m["impressions"]}
            data.append(tweet)
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return Reply(200, body)

    return list_posts(state, X, req, account, render)


def x_users_me(state: State, req: Request) -> Outcome:
    """GET /2/users/me: the user the token acts as (tokens registered with /_admin/tokens name
    their account; any other token is a user of its own)."""
    account = state.account_for_token("x", X.token(req) or "")
    body = {"data": {"id": account, "name": f"X user {account}", "username": f"user_{account}"}}
    return list_posts(state, X, req, account, lambda: Reply(200, body))
