"""The fake LinkedIn REST API: POST /linkedin/rest/posts, GET /linkedin/rest/posts?q=author,
POST /linkedin/rest/images|documents?action=initializeUpload and the PUT of the bytes to the
`uploadUrl` it returns, GET /linkedin/rest/socialActions/{urn} and
POST /linkedin/oauth/v2/accessToken."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any
from urllib.parse import unquote

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
    oauth_refresh,
    publish,
    upload,
)
from fake_platforms.protocol import DROP, BadRequest, Outcome, Reply, Request, phrase
from fake_platforms.state import ENGAGEMENT, Post, State, Usage


#: Who may see a post, as the Posts API takes `visibility`.
LINKEDIN_VISIBILITY = ("PUBLIC", "CONNECTIONS", "LOGGED_IN")

class LinkedInPlatform(Platform):
    name = "linkedin"
    ID_BASE = 7_000_000_000_000_000_000
    AUTHOR = re.compile(r"urn:li:(?:organization|person):(?P<id>[^:\s]+)")

    def precheck(self, req: Request) -> Reply | None:
        version = req.header("LinkedIn-Version")
        if not version:
            return self.error(
                400,
                message="A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
                name="VERSION_MISSING",
            )
        if not re.fullmatch(r"\d{6}(?:\.\d{2})?", version):
            return self.error(
                426, message=f"Requested version {version} is not active", name="NONEXISTENT_VERSION"
            )
        if req.header("X-Restli-Protocol-Version") != "2.0.0":
            return self.error(
                400,
                message="The X-Restli-Protocol-Version: 2.0.0 header is required.",
                name="VERSION_MISSING",
            )
        return None

    def account_of(self, author: Any) -> str | None:
        match = self.AUTHOR.fullmatch(author) if isinstance(author, str) else None
        return match["id"] if match else None

    def parse_publish(self, state: State, req: Request) -> Draft:
        try:
            body = req.json_object()
        except BadRequest as e:
            return Draft(account=None, problem=str(e))
        author = body.get("author")
        draft = Draft(account=self.account_of(author), author=author)
        commentary = body.get("commentary")
        media = self.content_media(body.get("content"))
        if draft.account is None:
            draft.problem = "ERROR :: /author :: must be urn:li:organization:{id} or urn:li:person:{id}"
        elif not isinstance(commentary, str):
            draft.problem = "ERROR :: /commentary :: field is required and must be a string"
        elif media is None:
            draft.problem = "ERROR :: /content :: must be {media: {id}} or {multiImage: {images: [{id}]}}"
        elif body.get("visibility", "PUBLIC") not in LINKEDIN_VISIBILITY:
            draft.problem = f"ERROR :: /visibility :: must be one of {', '.join(LINKEDIN_VISIBILITY)}"
        elif body.get("visibility") == "CONNECTIONS" and author.startswith("urn:li:organization:"):
            draft.problem = "ERROR :: /visibility :: CONNECTIONS is for a member's posts"
        else:
            draft.text = commentary
            draft.media = media
            draft.attributes["visibility"] = body.get("visibility", "PUBLIC")
            alt = self.content_alt_text(body.get("content"))
            if alt:
                draft.attributes["alt_text"] = alt
        return draft

    @staticmethod
    def content_alt_text(content: Any) -> list[str | None]:
        """Each media's `altText`, in order (None where it has none); [] for a post without."""
        if not isinstance(content, dict):
            return []
        if isinstance(content.get("media"), dict):
            items = [content["media"]]
        else:
            items = content.get("multiImage", {}).get("images", [])
        alts = [i.get("altText") for i in items if isinstance(i, dict)]
        return alts if any(a is not None for a in alts) else []

    @staticmethod
    def content_media(content: Any) -> list[str] | None:
        """The URNs a post's `content` refers to; None when it is malformed."""
        if content is None:
            return []
        if not isinstance(content, dict):
            return None
        if "media" in content:
            urn = content["media"].get("id") if isinstance(content["media"], dict) else None
            return [urn] if isinstance(urn, str) else None
        images = content.get("multiImage", {}).get("images") if isinstance(content.get("multiImage"), dict) else None
        if isinstance(images, list) and all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in images):
            return [i["id"] for i in images]
        return None

    def new_id(self, n: int, account: str) -> str:
        return f"urn:li:share:{self.ID_BASE + n}"

    def created(self, post: Post) -> Reply:
        return Reply(201, None, {"x-restli-id": post.id})

    def new_answer_id(self, n: int, account: str, parent: str) -> str:
        return f"urn:li:comment:({parent},{self.ID_BASE + n})"

    def created_answer(self, post: Post) -> Reply:
        return Reply(201, comment_view(post), {"x-restli-id": post.id})

    def error(
        self,
        status: int,
        code: int | None = None,
        message: str | None = None,
        name: str | None = None,
    ) -> Reply:
        if status == 401 and code is None:
            code, name = 65600, name or "INVALID_ACCESS_TOKEN"
        name = name or phrase(status).upper().replace(" ", "_").replace("-", "_")
        body = {
            "status": status,
            "serviceErrorCode": code or 0,
            "code": name,
            "message": message or phrase(status),
        }
        return Reply(status, body)

    def invalid(self, message: str) -> Reply:
        return self.error(422, message=message)

    def auth_error(self, missing: bool) -> Reply:
        if missing:
            return self.error(401, 65604, "Empty oauth2 access token", name="EMPTY_ACCESS_TOKEN")
        return self.error(401, 65600, "Invalid access token", name="INVALID_ACCESS_TOKEN")

    def limit_error(self, usage: Usage) -> Reply:
        reply = self.error(
            429,
            message="Resource level throttle APPLICATION DAY limit for calls to this resource "
            "is reached.",
        )
        reply.headers["Retry-After"] = str(usage.retry_after())
        return reply


LINKEDIN = LinkedInPlatform()


def linkedin_create_post(state: State, req: Request) -> Outcome:
    return publish(state, LINKEDIN, req)


def linkedin_list_posts(state: State, req: Request) -> Outcome:
    author = req.param("author")

    def render() -> Reply:
        if req.param("q") != "author":
            raise BadRequest("q=author is the only supported finder")
        if LINKEDIN.account_of(author) is None:
            raise BadRequest("author must be urn:li:organization:{id} or urn:li:person:{id}")
        start = req.int_param("start", 0, 0, 10**9)
        count = req.int_param("count", 10, 1, 100)
        # A comment is on its post, not among the author's posts.
        posts = [p for p in reversed(state.posts("linkedin", author=author)) if p.parent is None]
        elements = [
            as_listed(p, {
                "id": p.id,
                "author": p.author,
                "commentary": p.text,
                "createdAt": int(p.created * 1000),
                "lastModifiedAt": int(p.created * 1000),
                "lifecycleState": "PUBLISHED",
                "visibility": "PUBLIC",
            })
            for p in posts[start : start + count]
        ]
        paging = {"start": start, "count": count, "total": len(posts)}
        return Reply(200, {"elements": elements, "paging": paging})

    return list_posts(state, LINKEDIN, req, LINKEDIN.account_of(author), render)


LINKEDIN_UPLOADS = {"images": ("image", "image"), "documents": ("document", "document")}


def linkedin_initialize_upload(state: State, req: Request) -> Outcome:
    """`POST /rest/images|documents?action=initializeUpload`: an URN and where to PUT the bytes."""
    kind, field_name = LINKEDIN_UPLOADS[req.params["resource"]]
    try:
        owner = req.json_object().get("initializeUploadRequest", {}).get("owner")
    except (BadRequest, AttributeError):
        owner = None
    account = LINKEDIN.account_of(owner)

    def store() -> Reply:
        if req.param("action") != "initializeUpload":
            raise BadRequest("action=initializeUpload is the only supported action")
        if account is None:
            raise BadRequest("ERROR :: /initializeUploadRequest/owner :: must be an organization or person URN")
        prefix = f"urn:li:{field_name}:D"
        media = state.add_media("linkedin", account, kind, lambda n: f"{prefix}{n:015d}", None, None)
        value = {
            "uploadUrlExpiresAt": int((time.time() + 3600) * 1000),
            "uploadUrl": f"http://{req.host}/linkedin/uploads/{media.upload_token}",
            field_name: media.id,
        }
        return Reply(200, {"value": value})

    return upload(state, LINKEDIN, req, account, store)


def linkedin_upload_bytes(state: State, req: Request) -> Outcome:
    """The `uploadUrl`: takes the bytes (with the token, like LinkedIn's own upload host)."""
    pending = state.media_by_token(req.params["token"])
    account = pending.account if pending else None

    def store() -> Reply:
        if pending is None:
            return LINKEDIN.error(404, message="no such upload")
        if not req.body:
            raise BadRequest("the upload has no bytes")
        state.receive_upload(req.params["token"], req.body, req.header("Content-Type"))
        return Reply(201, None)

    rule, refusal = _gate(state, LINKEDIN, req, account, "upload")
    # The upload host takes no version headers: only the token is checked.
    if refusal is not None and (rule is None or rule.status is None):
        refusal = LINKEDIN.check_token(req)
    if refusal is not None:
        return LINKEDIN.finish(state, account, refusal)
    try:
        outcome: Outcome = store()
    except BadRequest as e:
        outcome = LINKEDIN.invalid(str(e))
    if rule is not None and rule.ambiguous and isinstance(outcome, Reply) and outcome.status < 300:
        return DROP
    return LINKEDIN.finish(state, account, outcome)


def linkedin_oauth_token(state: State, req: Request) -> Outcome:
    return oauth_refresh(state, LINKEDIN, req)


def linkedin_social_actions(state: State, req: Request) -> Outcome:
    """`GET /rest/socialActions/{urn}`: likes and comments summaries."""
    urn = unquote(req.params["urn"])
    post = _created_post(state, "linkedin", urn)

    def render() -> Reply:
        if post is None:
            return LINKEDIN.error(404, None, f"Not found: {urn}")
        m = ENGAGEMENT.get("linkedin", urn)
        return Reply(200, {"target": urn, "likesSummary": {"totalLikes": m["likes"], "likedByCurrentUser": False},
                           "commentsSummary": {"aggregatedTotalComments": m["comments"], "totalFirstLevelComments": m["comments"]}})

    return list_posts(state, LINKEDIN, req, post.account if post else None, render)


def _linkedin_member(state: State, req: Request) -> tuple[str, str]:
    """(member id, organisation URN) of a token: a token registered for `urn:li:person:<id>`
    is that member; one registered for an organisation is an administrator of it."""
    token = LINKEDIN.token(req) or ""
    account = state.account_for_token("linkedin", token)
    if account.startswith("urn:li:person:"):
        return account.removeprefix("urn:li:person:"), ""
    member = "member-" + hashlib.sha256(token.encode()).hexdigest()[:12]
    org = account if account.startswith("urn:") else f"urn:li:organization:{account}"
    return member, org


def linkedin_userinfo(state: State, req: Request) -> Outcome:
    """GET /v2/userinfo (OpenID Connect): the member the token acts for."""
    member, _ = _linkedin_member(state, req)
    return list_posts(state, LINKEDIN, req, None, lambda: Reply(200, {"sub": member, "name": f"Member {member}"}))


def linkedin_organization_acls(state: State, req: Request) -> Outcome:
    """GET /rest/organizationAcls?q=roleAssignee: the organisations the member administers."""
    member, org = _linkedin_member(state, req)
    orgs = state.linkedin_organizations(LINKEDIN.token(req) or "")
    orgs = orgs if orgs is not None else [org] if org else []
    elements = [
        {"organization": o, "role": "ADMINISTRATOR", "state": "APPROVED", "roleAssignee": f"urn:li:person:{member}"}
        for o in orgs
    ]
    return list_posts(state, LINKEDIN, req, None, lambda: Reply(200, {"elements": elements, "paging": {"count": len(elements), "start": 0}}))


# --------------------------------------------------------------------------------------------
# Comments: `POST /rest/socialActions/{urn}/comments` {actor, object, message: {text}} answers
# 201 with the comment and its URN in `x-restli-id`; `GET` the same path lists them, newest
# first, as `elements`.
# --------------------------------------------------------------------------------------------


def comment_view(c: Post) -> dict[str, Any]:
    return {
        "id": c.id.rsplit(",", 1)[-1].rstrip(")"),
        "$URN": c.id,
        "actor": c.author,
        "object": c.parent,
        "message": {"text": c.text},
        "created": {"actor": c.author, "time": int(c.created * 1000)},
    }


def linkedin_create_comment(state: State, req: Request) -> Outcome:
    parent = unquote(req.params["urn"])
    try:
        body = req.json_object()
    except BadRequest as e:
        return create_answer(state, LINKEDIN, req, Draft(account=None, problem=str(e), parent=parent))
    actor = body.get("actor")
    message = body.get("message")
    text = message.get("text") if isinstance(message, dict) else None
    draft = Draft(account=LINKEDIN.account_of(actor), author=actor, parent=parent)
    if draft.account is None:
        draft.problem = "ERROR :: /actor :: must be urn:li:organization:{id} or urn:li:person:{id}"
    elif body.get("object") != parent:
        draft.problem = "ERROR :: /object :: must be the URN the path names"
    elif not isinstance(text, str) or not text:
        draft.problem = "ERROR :: /message/text :: field is required and must be a string"
    else:
        draft.text = text
    return create_answer(state, LINKEDIN, req, draft)


def linkedin_list_comments(state: State, req: Request) -> Outcome:
    parent = unquote(req.params["urn"])
    post = _created_post(state, "linkedin", parent)

    def render() -> Reply:
        if post is None:
            return LINKEDIN.error(404, None, f"Not found: {parent}")
        start = req.int_param("start", 0, 0, 10**9)
        count = req.int_param("count", 10, 1, 100)
        found = answers(state, "linkedin", parent)
        elements = [comment_view(c) for c in found[start : start + count]]
        return Reply(200, {"elements": elements, "paging": {"start": start, "count": count, "total": len(found)}})

    return list_posts(state, LINKEDIN, req, post.account if post else None, render)


def linkedin_delete_post(state: State, req: Request) -> Outcome:
    """`DELETE /rest/posts/{urn}`: one's own post (204; 404 when there is none)."""
    return delete_own(state, LINKEDIN, req, unquote(req.params["urn"]),
                      LINKEDIN.error(404, message="Not Found"), Reply(204, None))


def linkedin_delete_comment(state: State, req: Request) -> Outcome:
    """`DELETE /rest/socialActions/{post}/comments/{id}`: one's own comment."""
    urn = f"urn:li:comment:({unquote(req.params['urn'])},{unquote(req.params['id'])})"
    return delete_own(state, LINKEDIN, req, urn, LINKEDIN.error(404, message="Not Found"), Reply(204, None))


def linkedin_update_post(state: State, req: Request) -> Outcome:
    """`POST /rest/posts/{urn}` with `X-RestLi-Method: PARTIAL_UPDATE` and
    `{"patch": {"$set": {"commentary"}}}`: one's own post's text replaced (204)."""
    if (req.header("X-RestLi-Method") or "").upper() != "PARTIAL_UPDATE":
        return LINKEDIN.invalid("ERROR :: an update needs the header X-RestLi-Method: PARTIAL_UPDATE")
    try:
        body = req.json_object()
    except BadRequest as e:
        return LINKEDIN.invalid(str(e))
    patch = body.get("patch", {}).get("$set", {}) if isinstance(body.get("patch"), dict) else {}
    text = patch.get("commentary") if isinstance(patch, dict) else None
    return edit_own(state, LINKEDIN, req, unquote(req.params["urn"]), text if isinstance(text, str) else None,
                    LINKEDIN.error(404, message="Not Found"), Reply(204, None))
