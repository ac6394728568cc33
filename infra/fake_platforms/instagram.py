"""The fake Instagram Graph API (Instagram Login: `graph.instagram.com`), under /instagram with
any /vNN.N version segment or none.

Publishing is Meta's two steps:
- `POST /{ig-user}/media` (form `caption`, and `image_url`, or `media_type=REELS|VIDEO` and
  `video_url`, or `media_type=CAROUSEL` and `children`; `is_carousel_item=true` for a carousel's
  items) makes a container and answers `{"id"}`. The fake fetches each URL itself, as Instagram
  does, and refuses one it cannot read or that is not a JPEG / MP4-MOV (code 9004, subcode
  2207052). A video container is `IN_PROGRESS` for its first status reads, then `FINISHED`.
  Fault rules: endpoint `upload`.
- `GET /{container}?fields=status_code` answers `IN_PROGRESS`, `FINISHED`, `PUBLISHED`,
  `ERROR` or `EXPIRED` (24 hours after it was made).
- `POST /{ig-user}/media_publish` (form `creation_id`) publishes a `FINISHED` container once and
  answers the media's `{"id"}`; a container not finished is refused with code 9007 (subcode
  2207027, "not ready"), one published already with code 100. Counts toward the account's
  window (100 a day; past it code 9, subcode 2207042). Fault rules: endpoint `create`.
- `GET /{ig-user}/media?fields=id,caption,timestamp&limit=&after=`: the account's media, newest
  first, with cursor paging. `POST|GET /{media}/comments`: comments (`message`; `id, text,
  timestamp, from`). `GET /{media}?fields=like_count,comments_count`: engagement. `GET
  /me?fields=user_id,username`: whom a token acts for (tokens set with `POST /_admin/tokens`).
- `GET /_admin/instagram/containers?account=`: every container, its status and what it fetched.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fake_platforms.base import Draft, _created_post, _gate, answers, as_listed, create_answer, list_posts, upload
from fake_platforms.facebook import FacebookPlatform
from fake_platforms.instagram_containers import ID_BASE, Container
from fake_platforms.protocol import DROP, BadRequest, Outcome, Reply, Request, decode_cursor, encode_cursor, graph_time
from fake_platforms.state import ENGAGEMENT, State, Usage

MAX_CAPTION = 2_200
#: The longest alt text this fake takes on an image container (Meta documents none).
MAX_ALT_TEXT = 1_000


class InstagramPlatform(FacebookPlatform):
    name = "instagram"
    ID_BASE = ID_BASE

    def new_id(self, n: int, account: str) -> str:
        return str(self.ID_BASE + n)

    def new_answer_id(self, n: int, account: str, parent: str) -> str:
        return str(self.ID_BASE + 50_000_000 + n)

    def limit_error(self, usage: Usage) -> Reply:
        """The account's content-publishing limit (100 posts in 24 hours)."""
        return self.error(400, 9, "Application request limit reached: the account may publish "
                          "no more posts for now", subcode=2207042)


INSTAGRAM = InstagramPlatform()


def _fetch(url: str, kind: str) -> dict[str, Any]:
    """Reads a media URL as Instagram does; BadRequest (9004/2207052) when it cannot."""
    refused = "(#9004) Media download has failed. The media URI doesn't meet our requirements."
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (test fake)
            content = response.read()
            content_type = response.headers.get("Content-Type")
    except (urllib.error.URLError, ValueError, OSError):
        raise BadRequest(refused) from None
    jpeg = content[:3] == b"\xff\xd8\xff"
    video = content[4:8] == b"ftyp"
    if (kind == "IMAGE" and not jpeg) or (kind != "IMAGE" and not video):
        raise BadRequest(refused + f" ({'only JPEG images' if kind == 'IMAGE' else 'only MP4 or MOV video'})")
    # The link's signature stays with the fake (its admin view), for the tests' log scan: a
    # signed link reads a tenant's media, so Herald must never log one.
    query = dict(parse_qsl(url.partition("?")[2]))
    return {"url": url.split("?")[0], "signature": query.get("X-Amz-Signature"), "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(), "content_type": content_type}


def instagram_create_container(state: State, req: Request) -> Outcome:
    account = req.params["user"]

    def make() -> Reply:
        form = req.form()
        caption = form.get("caption", "")
        if len(caption.encode("utf-16-le")) // 2 > MAX_CAPTION:
            raise BadRequest(f"(#100) The caption is longer than {MAX_CAPTION} characters")
        kind = form.get("media_type") or "IMAGE"
        item = form.get("is_carousel_item") == "true"
        children: list[str] = []
        if kind == "CAROUSEL":
            children = [c for c in form.get("children", "").split(",") if c]
            if not 2 <= len(children) <= 10:
                raise BadRequest("(#100) A carousel takes 2 to 10 children")
            for child in children:
                c = state.instagram.get(child)
                if c is None or c.account != account or not c.carousel_item:
                    raise BadRequest(f"(#100) {child} is not a carousel item of this account")
                if state.instagram.read_status(child) != "FINISHED":
                    raise BadRequest(f"(#9007) The carousel item {child} is not ready")
            fetched: dict[str, Any] = {}
        elif kind == "IMAGE":
            if not form.get("image_url"):
                raise BadRequest("(#100) The parameter image_url is required")
            fetched = _fetch(form["image_url"], kind)
            alt = form.get("alt_text")
            if alt is not None:
                if len(alt) > MAX_ALT_TEXT:
                    raise BadRequest(f"(#100) alt_text is longer than {MAX_ALT_TEXT} characters")
                fetched["alt_text"] = alt
        elif kind in ("VIDEO", "REELS"):
            if not form.get("video_url"):
                raise BadRequest("(#100) The parameter video_url is required")
            if kind == "VIDEO" and not item:
                raise BadRequest("(#100) A video that is not a carousel item is published as REELS")
            fetched = _fetch(form["video_url"], kind)
        else:
            raise BadRequest(f"(#100) media_type {kind!r} is not supported")
        status = "IN_PROGRESS" if kind in ("VIDEO", "REELS") else "FINISHED"
        container = state.instagram.add(lambda cid: Container(
            cid, account, kind, caption, time.time(), item, children, fetched, status=status))
        return Reply(200, {"id": container.id})

    return upload(state, INSTAGRAM, req, account, make)


def instagram_publish(state: State, req: Request) -> Outcome:
    account = req.params["user"]
    rule, refusal = _gate(state, INSTAGRAM, req, account, "create")
    if refusal is not None:
        return INSTAGRAM.finish(state, account, refusal)
    allowed, usage = state.acquire("instagram", account)
    if not allowed:
        return INSTAGRAM.finish(state, account, INSTAGRAM.limit_error(usage))
    try:
        creation_id = req.form().get("creation_id") or ""
    except BadRequest as e:
        return INSTAGRAM.finish(state, account, INSTAGRAM.invalid(str(e)))
    container, problem = state.instagram.take_for_publish(creation_id, account)
    if container is None:
        assert problem is not None
        code, subcode = (9007, 2207027) if "not ready" in problem else (100, None)
        return INSTAGRAM.finish(state, account, INSTAGRAM.error(400, code, problem, subcode))
    post = state.add_post("instagram", account, container.caption, INSTAGRAM.new_id,
                          media=container.children or [container.id])
    post.attributes["media_type"] = container.kind
    container.media_id = post.id
    if rule is not None and rule.ambiguous:
        return DROP
    return INSTAGRAM.finish(state, account, Reply(200, {"id": post.id}))


def instagram_list_media(state: State, req: Request) -> Outcome:
    account = req.params["user"]

    def render() -> Reply:
        limit = req.int_param("limit", 25, 1, 100)
        posts = [p for p in reversed(state.posts("instagram", account)) if p.parent is None]
        if after := req.param("after"):
            seq = decode_cursor(after)
            posts = [p for p in posts if p.seq < seq]
        page = posts[:limit]
        body: dict[str, Any] = {"data": [
            as_listed(p, {"id": p.id, "caption": p.text, "timestamp": graph_time(p.created),
                          "media_type": p.attributes.get("media_type", "IMAGE")})
            for p in page
        ]}
        if page:
            cursor = encode_cursor(page[-1].seq)
            body["paging"] = {"cursors": {"after": cursor}}
            if len(posts) > limit:
                body["paging"]["next"] = f"http://{req.host}{req.path}?" + urlencode({"limit": limit, "after": cursor})
        return Reply(200, body)

    return list_posts(state, INSTAGRAM, req, account, render)


def instagram_object(state: State, req: Request) -> Outcome:
    """`GET /{id}`: a container's status, or a media's engagement fields."""
    object_id = req.params["user"]
    container = state.instagram.get(object_id)
    post = _created_post(state, "instagram", object_id)
    owner = container.account if container else post.account if post else None

    def render() -> Reply:
        if container is not None:
            return Reply(200, {"id": object_id, "status_code": state.instagram.read_status(object_id)})
        if post is None:
            return INSTAGRAM.error(400, 100, f"Unsupported get request. Object with ID '{object_id}' does not exist")
        m = ENGAGEMENT.get("instagram", object_id)
        return Reply(200, {"id": object_id, "like_count": m["likes"], "comments_count": m["comments"]})

    return list_posts(state, INSTAGRAM, req, owner, render)


def instagram_create_comment(state: State, req: Request) -> Outcome:
    parent = req.params["user"]
    post = _created_post(state, "instagram", parent)
    draft = Draft(account=post.account if post else None, parent=parent)
    try:
        message = req.form().get("message")
    except BadRequest as e:
        message, draft.problem = None, str(e)
    if draft.problem is None and not message:
        draft.problem = "(#100) The parameter message is required"
    if post is None:
        draft.problem = f"(#100) Object with ID '{parent}' does not exist"
    draft.text = message or None
    return create_answer(state, INSTAGRAM, req, draft)


def instagram_list_comments(state: State, req: Request) -> Outcome:
    parent = req.params["user"]
    post = _created_post(state, "instagram", parent)

    def render() -> Reply:
        if post is None:
            return INSTAGRAM.error(400, 100, f"Unsupported get request. Object with ID '{parent}' does not exist")
        data = [{"id": c.id, "text": c.text, "timestamp": graph_time(c.created),
                 "from": {"id": c.account, "username": f"user{c.account}"}}
                for c in answers(state, "instagram", parent)]
        return Reply(200, {"data": data})

    return list_posts(state, INSTAGRAM, req, post.account if post else None, render)


def instagram_me(state: State, req: Request) -> Outcome:
    user = state.account_for_token("instagram", INSTAGRAM.token(req) or "")
    return list_posts(state, INSTAGRAM, req, user,
                      lambda: Reply(200, {"id": f"app-{user}", "user_id": user, "username": f"user{user}"}))


def admin_instagram_containers(state: State, req: Request) -> Outcome:
    return Reply(200, {"containers": state.instagram.views(req.param("account"))})
