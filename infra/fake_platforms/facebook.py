"""The fake Graph API: POST .../{page}/feed|photos|videos, GET .../{page}/feed|posts,
GET .../{page}/insights and GET .../{post-id} (engagement fields), under /facebook with any
/vNN.N version segment or none."""

from __future__ import annotations

import json
import random
import re
import string
from typing import Any
from urllib.parse import urlencode

from fake_platforms.base import (
    Draft,
    Platform,
    _created_post,
    _gate,
    answers,
    as_listed,
    create_answer,
    delete_own,
    edit_own,
    list_posts,
    publish,
    upload,
)
from fake_platforms.protocol import (
    DROP,
    BadRequest,
    FormPart,
    Outcome,
    Reply,
    Request,
    decode_cursor,
    encode_cursor,
    graph_time,
    parse_multipart,
    phrase,
)
from fake_platforms.facebook_videos import facebook_video_phase, upload_phase_fields
from fake_platforms.state import ENGAGEMENT, Post, State, Usage


class FacebookPlatform(Platform):
    name = "facebook"
    ID_BASE = 1_000_000_000_000_000
    TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613})
    MESSAGES = {
        1: "An unknown error has occurred.",
        2: "An unexpected error has occurred. Please retry your request later.",
        4: "(#4) Application request limit reached",
        17: "(#17) User request limit reached",
        32: "(#32) Page request limit reached",
        100: "(#100) Invalid parameter",
        190: "Error validating access token: The session has been invalidated because the "
        "user changed their password or Facebook has changed the session for security reasons.",
        200: "(#200) Permissions error",
        613: "(#613) Calls to this api have exceeded the rate limit.",
    }

    def token(self, req: Request) -> str | None:
        token = req.bearer() or req.param("access_token")
        if token is None and req.method == "POST":
            try:
                token = req.form().get("access_token") or None
            except BadRequest:
                token = None
        return token

    @staticmethod
    def default_code(status: int) -> int:
        if status >= 500:
            return 2 if status == 503 else 1
        return {401: 190, 403: 200, 429: 4}.get(status, 100)

    def parse_publish(self, state: State, req: Request) -> Draft:
        draft = Draft(account=req.params["page"])
        try:
            form = req.form()
        except BadRequest as e:
            draft.problem = str(e)
            return draft
        message = form.get("message")
        attached = sorted(
            (int(m["i"]), v) for k, v in form.items() if (m := re.fullmatch(r"attached_media\[(?P<i>\d+)\]", k))
        )
        try:
            media = [json.loads(v)["media_fbid"] for _, v in attached]
        except (ValueError, KeyError, TypeError):
            draft.problem = "(#100) attached_media must be objects like {\"media_fbid\": \"...\"}"
            return draft
        link = form.get("link")
        if not message:
            draft.problem = "(#100) The parameter message is required"
        elif link is not None and media:
            draft.problem = "(#100) A link post cannot carry attached_media"
        elif link is not None and not re.match(r"https?://", link):
            draft.problem = "(#100) The parameter link must be a URL"
        else:
            draft.text = message
            draft.media = [str(m) for m in media]
            if link is not None:
                draft.attributes["link"] = link
        return draft

    def new_id(self, n: int, account: str) -> str:
        return f"{account}_{self.ID_BASE + n}"

    def new_media_id(self, n: int) -> str:
        return str(self.ID_BASE + 500_000_000 + n)

    def new_answer_id(self, n: int, account: str, parent: str) -> str:
        return f"{parent}_{self.ID_BASE + n}"

    def created(self, post: Post) -> Reply:
        return Reply(200, {"id": post.id})

    def error(
        self,
        status: int,
        code: int | None = None,
        message: str | None = None,
        subcode: int | None = None,
    ) -> Reply:
        code = self.default_code(status) if code is None else code
        error: dict[str, Any] = {
            "message": message or self.MESSAGES.get(code) or phrase(status),
            "type": "OAuthException",
            "code": code,
            "is_transient": code in self.TRANSIENT_CODES,
            "fbtrace_id": "A" + "".join(random.choices(string.ascii_letters + string.digits, k=22)),
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        reply = Reply(status, {"error": error})
        if code == 4:
            reply.headers["X-App-Usage"] = self.app_usage(100)
        return reply

    def auth_error(self, missing: bool) -> Reply:
        if missing:
            return self.error(400, 190, "An active access token must be used to query "
                              "information about the current user.")
        return self.error(400, 190, subcode=460)

    def limit_error(self, usage: Usage) -> Reply:
        return self.error(400, 4)

    @staticmethod
    def app_usage(percent: int) -> str:
        usage = {"call_count": percent, "total_cputime": percent, "total_time": percent}
        return json.dumps(usage, separators=(",", ":"))

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        percent = 100 if usage.exhausted else min(100, usage.used * 100 // usage.limit)
        return {"X-App-Usage": self.app_usage(percent)}


FACEBOOK = FacebookPlatform()


def facebook_create_post(state: State, req: Request) -> Outcome:
    return publish(state, FACEBOOK, req)


def facebook_delete_object(state: State, req: Request) -> Outcome:
    """`DELETE /{object-id}`: the token's own post or comment; a missing one is Graph's
    code 100, subcode 33."""
    gone = FACEBOOK.error(400, 100, "Unsupported delete request. Object does not exist", subcode=33)
    return delete_own(state, FACEBOOK, req, req.params["object"], gone, Reply(200, {"success": True}))


def facebook_edit_object(state: State, req: Request) -> Outcome:
    """`POST /{post-id}` with `message`: the token's own post, its text replaced."""
    try:
        message = req.form().get("message")
    except BadRequest as e:
        return FACEBOOK.invalid(str(e))
    gone = FACEBOOK.error(400, 100, "Unsupported post request. Object does not exist", subcode=33)
    return edit_own(state, FACEBOOK, req, req.params["object"], message, gone, Reply(200, {"success": True}))


def facebook_upload_photo(state: State, req: Request) -> Outcome:
    page = req.params["page"]

    def store() -> Reply:
        parts = parse_multipart(req.header("Content-Type"), req.body)
        source, published = parts.get("source"), parts.get("published")
        if source is None or not source.data:
            raise BadRequest("(#100) The parameter source is required")
        if published is None or published.text != "false":
            raise BadRequest("(#100) this fake only takes unpublished photos (published=false) "
                             "to attach to a feed post")
        stored = state.add_media("facebook", page, "image", FACEBOOK.new_media_id, source.data,
                                 source.content_type)
        alt = parts.get("alt_text_custom")
        if alt is not None:
            stored.attributes["alt_text"] = alt.text
        return Reply(200, {"id": stored.id})

    return upload(state, FACEBOOK, req, page, store)


def facebook_create_video(state: State, req: Request) -> Outcome:
    """A Page video is itself a post (its description is the post's text): it meets what any
    create meets, rate window included. With `upload_phase`, a phase of the resumable upload
    (facebook_videos.py)."""
    fields = upload_phase_fields(req)
    if fields is not None:
        return facebook_video_phase(state, req, fields, FACEBOOK)
    page = req.params["page"]
    draft = Draft(account=page)
    source: FormPart | None = None
    try:
        parts = parse_multipart(req.header("Content-Type"), req.body)
        source = parts.get("source")
        description = parts.get("description")
        if source is None or not source.data:
            draft.problem = "(#100) The parameter source is required"
        else:
            draft.text = description.text if description else ""
    except BadRequest as e:
        draft.problem = str(e)
    rule, refusal = _gate(state, FACEBOOK, req, page, "create")
    if refusal is not None:
        return FACEBOOK.finish(state, page, refusal)
    allowed, usage = state.acquire("facebook", page)
    if not allowed:
        return FACEBOOK.finish(state, page, FACEBOOK.limit_error(usage))
    if draft.problem is not None or draft.text is None or source is None:
        return FACEBOOK.finish(state, page, FACEBOOK.invalid(draft.problem or "nothing to publish"))
    video = state.add_media("facebook", page, "video", FACEBOOK.new_media_id, source.data,
                            source.content_type)
    state.add_post("facebook", page, draft.text, FACEBOOK.new_id, media=[video.id])
    if rule is not None and rule.ambiguous:
        return DROP
    return FACEBOOK.finish(state, page, Reply(200, {"id": video.id}))


def facebook_list_posts(state: State, req: Request) -> Outcome:
    page_id = req.params["page"]

    def render() -> Reply:
        limit = req.int_param("limit", 25, 1, 100)
        # Newest first; a comment is on its post, not in the feed.
        posts = [p for p in reversed(state.posts("facebook", page_id)) if p.parent is None]
        if after := req.param("after"):
            seq = decode_cursor(after)
            page = [p for p in posts if p.seq < seq][:limit]
        elif before := req.param("before"):
            seq = decode_cursor(before)
            page = [p for p in posts if p.seq > seq][-limit:]
        else:
            page = posts[:limit]
        body: dict[str, Any] = {
            "data": [
                as_listed(p, {"id": p.id, "message": p.text, "created_time": graph_time(p.created)})
                for p in page
            ]
        }
        if page:
            after_cursor = encode_cursor(page[-1].seq)
            paging: dict[str, Any] = {
                "cursors": {"before": encode_cursor(page[0].seq), "after": after_cursor}
            }
            if any(p.seq < page[-1].seq for p in posts):
                query = urlencode({"limit": limit, "after": after_cursor})
                paging["next"] = f"http://{req.host}{req.path}?{query}"
            body["paging"] = paging
        return Reply(200, body)

    return list_posts(state, FACEBOOK, req, page_id, render)


# --------------------------------------------------------------------------------------------
# Comments: `POST /{post-id}/comments` (form `message`) answers `{"id"}`; `GET
# /{post-id}/comments?fields=id,message,created_time,from&order=reverse_chronological&limit=N`
# lists them (oldest first unless `order=reverse_chronological`), each `from` the Page.
# --------------------------------------------------------------------------------------------


def facebook_create_comment(state: State, req: Request) -> Outcome:
    parent = req.params["page"]
    post = _created_post(state, "facebook", parent)
    draft = Draft(account=post.account if post else parent.split("_")[0], parent=parent)
    try:
        message = req.form().get("message")
    except BadRequest as e:
        message, draft.problem = None, str(e)
    if draft.problem is None and not message:
        draft.problem = "(#100) The parameter message is required"
    draft.text = message or None
    return create_answer(state, FACEBOOK, req, draft)


def facebook_list_comments(state: State, req: Request) -> Outcome:
    parent = req.params["page"]
    post = _created_post(state, "facebook", parent)

    def render() -> Reply:
        if post is None:
            return FACEBOOK.error(400, 100, f"Unsupported get request. Object with ID '{parent}' does not exist")
        limit = req.int_param("limit", 25, 1, 100)
        found = answers(state, "facebook", parent)
        if req.param("order") != "reverse_chronological":
            found.reverse()
        data = [
            {"id": c.id, "message": c.text, "created_time": graph_time(c.created),
             "from": {"id": c.account, "name": f"Page {c.account}"}}
            for c in found[:limit]
        ]
        return Reply(200, {"data": data})

    return list_posts(state, FACEBOOK, req, post.account if post else None, render)


# --------------------------------------------------------------------------------------------
# Page insights for ingestion
# --------------------------------------------------------------------------------------------
#
# `GET /facebook/v21.0/{page}/insights?metric=page_impressions,page_post_engagements&period=day
#   &since=<unix>&until=<unix>` answers Graph's shape: per metric `{name, period, values:
#   [{value, end_time}], title, id}`, the values whose end time is in (since, until], oldest
#   first, with `paging.previous/next` windows of the same length and the usage headers. At
#   most 93 days per request, `period=day` only, unknown metrics refused (#100).
# `POST /_admin/insights` {"page": "<id>", "days": N, "malformed": {"<day index>": "<kind>"}}
#   replaces the Page's insights with N daily values per metric, the last one ending at
#   today's 00:00 UTC. Kinds (applied to that day's `page_impressions`): `value_not_number`,
#   `negative_value`, `missing_end_time`. `"revise_last": N` adds N to the last day's values
#   (Meta revising a day it already reported). Answers every value: [{id, name, end_time, value,
#   malformed}] where `id` is `<metric>/day/<end_time>`.
# `GET /_admin/insights?page=`: the same list.


INSIGHT_METRICS = ("page_impressions", "page_post_engagements")
INSIGHT_MALFORMED_KINDS = ("value_not_number", "negative_value", "missing_end_time")
DAY_SECONDS = 86_400


def facebook_page_insights(state: State, req: Request) -> Outcome:
    page_id = req.params["page"]

    def render() -> Reply:
        metrics = (req.param("metric") or "").split(",")
        unknown = [m for m in metrics if m not in INSIGHT_METRICS]
        if unknown:
            return FACEBOOK.error(400, 100, f"(#100) The value must be a valid insights metric: {unknown[0]!r}")
        if req.param("period") != "day":
            return FACEBOOK.error(400, 100, "(#100) period must be day")
        try:
            since, until = int(req.param("since") or ""), int(req.param("until") or "")
        except ValueError:
            return FACEBOOK.error(400, 100, "(#100) since and until must be Unix times")
        if not 0 < until - since <= 93 * DAY_SECONDS:
            return FACEBOOK.error(400, 100, "(#100) There cannot be more than 93 days between since and until")
        values = [v for v in state.insights(page_id) if since < v.end <= until]
        data = [
            {"name": metric, "period": "day", "title": metric.replace("_", " ").title(),
             "id": f"{page_id}/insights/{metric}/day",
             "values": [v.listed() for v in sorted(values, key=lambda v: v.end) if v.metric == metric]}
            for metric in metrics
        ]
        span = until - since
        link = lambda a, b: f"http://{req.host}{req.path}?" + urlencode(  # noqa: E731
            {"metric": ",".join(metrics), "period": "day", "since": a, "until": b})
        return Reply(200, {"data": data, "paging": {"previous": link(since - span, since),
                                                    "next": link(until, until + span)}})

    return list_posts(state, FACEBOOK, req, page_id, render)


def facebook_post_fields(state: State, req: Request) -> Outcome:
    """`GET /{post-id}?fields=likes.summary(true),comments.summary(true),shares`."""
    post_id = req.params["page"]
    post = _created_post(state, "facebook", post_id)

    def render() -> Reply:
        if post is None:
            return FACEBOOK.error(400, 100, f"Unsupported get request. Object with ID '{post_id}' does not exist")
        m = ENGAGEMENT.get("facebook", post_id)
        fields = req.param("fields") or ""
        body: dict[str, Any] = {"id": post_id}
        if "likes" in fields:
            body["likes"] = {"data": [], "summary": {"total_count": m["likes"]}}
        if "comments" in fields:
            body["comments"] = {"data": [], "summary": {"total_count": m["comments"]}}
        if "shares" in fields and m["shares"]:
            body["shares"] = {"count": m["shares"]}  # Graph omits `shares` when there are none
        return Reply(200, body)

    return list_posts(state, FACEBOOK, req, post.account if post else None, render)


def facebook_me(state: State, req: Request) -> Outcome:
    """GET /me: a Page access token's `me` is its Page."""
    page = state.account_for_token("facebook", FACEBOOK.token(req) or "")
    return list_posts(state, FACEBOOK, req, page, lambda: Reply(200, {"id": page, "name": f"Page {page}"}))
