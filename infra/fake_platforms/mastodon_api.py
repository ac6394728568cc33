"""The fake Mastodon's endpoints (the model is in mastodon.py), under `/mastodon`:

    POST   /api/v1/statuses                 a status (JSON, form or multipart), `Idempotency-Key`
    GET    /api/v1/statuses/{id}            one status (404 when absent, deleted or not visible)
    DELETE /api/v1/statuses/{id}            one's own status (anyone else's is a 404)
    GET    /api/v1/accounts/{id}/statuses   newest first: `limit` (20, at most 40), `max_id`,
                                            `since_id`, `min_id`, `exclude_replies`; `Link`
    GET    /api/v1/accounts/verify_credentials  who the token is
    POST   /api/v2/media                    multipart `file`, `description`: 200 for an image,
                                            202 with `url: null` for video, GIF and audio
    GET    /api/v1/media/{id}               206 while processing, 200 once processed

`Idempotency-Key`: a create with a key an account already used within the hour (and that
created a status) answers that status, 200, and creates nothing, whatever its body; it counts
toward no status window. A status fault creates nothing and so records no key; an ambiguous one
records it with the status it created (and a replay it hits is lost the same way). Unlike
Mastodon, concurrent requests with one key are serialised, so a retry racing its first attempt
never makes a second status. A key whose status was deleted answers 404.

Fault rules apply as on X: `create` (statuses and replies), `answer` (replies only), `upload`,
and `all` (also listings, lookups, deletes and `verify_credentials`).
"""

from __future__ import annotations

import contextlib
import mimetypes
import threading
from urllib.parse import urlencode

from fake_platforms.base import _create, _created_post, _gate, as_listed, edit_own, list_posts, upload
from fake_platforms.mastodon import (
    REPLY_NOT_FOUND,
    MastodonPlatform,
    StatusDraft,
    instance,
    media_kind,
    processing,
    ready_at,
    token_account,
    visible,
)
from fake_platforms.protocol import DROP, BadRequest, Outcome, Reply, Request, parse_multipart
from fake_platforms.state import FaultRule, State

# An idempotent create's lookup and its recording happen as one step.
_IDEMPOTENT = threading.Lock()


# --------------------------------------------------------------------------------------------
# Statuses
# --------------------------------------------------------------------------------------------


def mastodon_create_status(state: State, req: Request) -> Outcome:
    masto = instance(state, req, window="mastodon")
    draft = masto.parse_publish(state, req)
    endpoint = "create" if draft.parent is None else "answer"
    rule, refusal = _gate(state, masto, req, draft.account, endpoint)
    if refusal is not None:
        return masto.finish(state, draft.account, refusal)
    guard = _IDEMPOTENT if draft.idempotency_key is not None else contextlib.nullcontext()
    with guard:
        outcome = _create_once(state, masto, draft, rule)
    return masto.finish(state, draft.account, outcome)


def _create_once(state: State, masto: MastodonPlatform, draft: StatusDraft, rule: FaultRule | None) -> Outcome:
    """The first status created with the draft's idempotency key, or a new one."""
    assert draft.account is not None  # the token check passed
    key = draft.idempotency_key
    seen = state.idempotent_post("mastodon", draft.account, key) if key is not None else None
    if seen is not None:
        post = _created_post(state, "mastodon", seen)
        outcome: Outcome = Reply(200, masto.status(post)) if post else masto.error(404)
        return DROP if rule is not None and rule.ambiguous else outcome
    if draft.parent is not None and not visible(_created_post(state, "mastodon", draft.parent), draft.account):
        return masto.error(404, None, REPLY_NOT_FOUND)
    return _create(state, masto, draft, rule)


def mastodon_get_status(state: State, req: Request) -> Outcome:
    masto, viewer = instance(state, req), token_account(state, req)

    def render() -> Reply:
        post = _created_post(state, "mastodon", req.params["id"])
        if post is None or not visible(post, viewer):
            return masto.error(404)
        return Reply(200, masto.status(post))

    return list_posts(state, masto, req, viewer, render)


def mastodon_delete_status(state: State, req: Request) -> Outcome:
    """Deletes one's own status and answers it with its source `text`; an ambiguous fault
    deletes it and loses the answer."""
    masto, viewer = instance(state, req), token_account(state, req)
    rule, refusal = _gate(state, masto, req, viewer, "delete")
    if refusal is not None:
        return masto.finish(state, viewer, refusal)
    post = _created_post(state, "mastodon", req.params["id"])
    if post is None or post.account != viewer:
        return masto.finish(state, viewer, masto.error(404))
    view = {**masto.status(post), "text": post.text}
    state.delete_post("mastodon", post.id)
    return masto.finish(state, viewer, DROP if rule is not None and rule.ambiguous else Reply(200, view))


def mastodon_edit_status(state: State, req: Request) -> Outcome:
    """`PUT /api/v1/statuses/{id}` with `status`: one's own status, its text replaced."""
    masto = instance(state, req)
    try:
        body = req.json_object()
    except BadRequest as e:
        return masto.invalid(str(e))
    text = body.get("status")
    post = _created_post(state, "mastodon", req.params["id"])
    done = Reply(200, masto.status(post)) if post is not None else Reply(200, {})
    return edit_own(state, masto, req, req.params["id"], text if isinstance(text, str) else None,
                    masto.error(404), done)


def mastodon_account_statuses(state: State, req: Request) -> Outcome:
    """Newest first. As Mastodon, a full page has a `rel="next"` link (`max_id`: its oldest),
    even when nothing older is left, and any non-empty page a `rel="prev"` one (`min_id`);
    `exclude_replies` leaves out replies to other accounts' statuses (a thread stays)."""
    masto, viewer, user = instance(state, req), token_account(state, req), req.params["id"]

    def render() -> Reply:
        limit = min(max(req.int_param("limit", 20, -(2**31), 2**31), 1), 40)
        statuses = [p for p in reversed(state.posts("mastodon", user)) if visible(p, viewer)]
        if req.param("exclude_replies") in ("true", "1"):
            statuses = [p for p in statuses if p.parent is None
                        or p.attributes.get("in_reply_to_account_id") == p.account]
        for name, keep in (("max_id", lambda p, n: int(p.id) < n), ("since_id", lambda p, n: int(p.id) > n),
                           ("min_id", lambda p, n: int(p.id) > n)):
            if (raw := req.param(name)) is not None:
                if not raw.isdigit():
                    raise BadRequest(f"{name} must be a status id")
                statuses = [p for p in statuses if keep(p, int(raw))]
        page = statuses[-limit:] if req.param("min_id") else statuses[:limit]
        kept = {k: v for k, v in req.query.items()
                if k in ("limit", "exclude_replies", "exclude_reblogs", "only_media") and v}
        url = f"{masto.base}/api/v1/accounts/{user}/statuses"
        links = []
        if page and len(page) == limit:
            links.append(f'<{url}?{urlencode({**kept, "max_id": page[-1].id})}>; rel="next"')
        if page:
            links.append(f'<{url}?{urlencode({**kept, "min_id": page[0].id})}>; rel="prev"')
        headers = {"Link": ", ".join(links)} if links else {}
        return Reply(200, [as_listed(p, masto.status(p)) for p in page], headers)

    return list_posts(state, masto, req, viewer, render)


def mastodon_verify_credentials(state: State, req: Request) -> Outcome:
    """The CredentialAccount of the token's account."""
    masto, viewer = instance(state, req), token_account(state, req)

    def render() -> Reply:
        assert viewer is not None  # the token check passed
        body = {**masto.account(viewer), "locked": False, "bot": False, "note": "",
                "avatar": "", "header": "", "followers_count": 0, "following_count": 0,
                "statuses_count": len(state.posts("mastodon", viewer)),
                "source": {"privacy": "public", "sensitive": False, "language": "", "note": "",
                           "fields": []}}
        return Reply(200, body)

    return list_posts(state, masto, req, viewer, render)


# --------------------------------------------------------------------------------------------
# Media
# --------------------------------------------------------------------------------------------


def mastodon_upload_media(state: State, req: Request) -> Outcome:
    masto, account = instance(state, req), token_account(state, req)

    def store() -> Reply:
        parts = parse_multipart(req.header("Content-Type"), req.body)
        file, description = parts.get("file"), parts.get("description")
        if file is None or not file.data:
            return masto.invalid("Validation failed: File can't be blank")
        content_type = (file.content_type or mimetypes.guess_type(file.filename or "")[0] or "").lower()
        kind = media_kind(content_type)
        if kind is None:
            return masto.invalid("Validation failed: File content type is invalid")
        assert account is not None  # the token check passed
        media = state.add_media("mastodon", account, kind, masto.new_media_id, file.data, content_type)
        media.attributes = {"description": description.text if description else None,
                            "ready_at": ready_at(kind)}
        return Reply(202 if kind != "image" else 200, masto.media(media))

    return upload(state, masto, req, account, store)


def mastodon_get_media(state: State, req: Request) -> Outcome:
    masto, viewer = instance(state, req), token_account(state, req)

    def render() -> Reply:
        media = state.find_media("mastodon", req.params["id"])
        if media is None or media.account != viewer:
            return masto.error(404)
        return Reply(206 if processing(media) else 200, masto.media(media))

    return list_posts(state, masto, req, viewer, render)
