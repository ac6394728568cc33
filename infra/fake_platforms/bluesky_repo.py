"""The fake Bluesky PDS's repository (bluesky.py holds the platform and sessions): records
(`com.atproto.repo.createRecord|getRecord|listRecords|deleteRecord`), blobs
(`com.atproto.repo.uploadBlob`) and `app.bsky.feed.getPosts` with engagement counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fake_platforms.bluesky import BLUESKY, _did, _faults, _gate, _xrpc
from fake_platforms.bluesky_accounts import Account
from fake_platforms.bluesky_syntax import (
    MAX_IMAGE_BYTES,
    POST_COLLECTION,
    at_uri,
    blob_cid,
    blob_refs,
    is_nsid,
    is_record_key,
    is_tid,
    new_tid,
    post_problem,
    record_cid,
    split_at_uri,
)
from fake_platforms.protocol import DROP, BadRequest, Outcome, Reply, Request, rfc3339_ms
from fake_platforms.state import ENGAGEMENT, FaultRule, Post, State

#: What a create and a delete cost in the repo-write window (the PDS's points).
CREATE_POINTS = 3
DELETE_POINTS = 1


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def _own_repo(state: State, repo: Any, account: Account) -> Reply | None:
    """A write's `repo` must be the session's own DID or handle."""
    if not isinstance(repo, str) or not repo:
        return BLUESKY.invalid('Input must have the property "repo"')
    named = state.bluesky.resolve(repo)
    if named is None:
        return BLUESKY.invalid(f"Could not find repo: {repo}")
    if named.did != account.did:
        return BLUESKY.auth_error(missing=False)
    return None


@_xrpc
def create_record(state: State, req: Request) -> Outcome:
    body = req.json_object()
    record = body.get("record")
    reply = record.get("reply") if isinstance(record, dict) else None
    rule, account, refusal = _gate(state, req, "answer" if reply is not None else "create")
    if refusal is not None or account is None:
        return BLUESKY.finish(state, _did(account), refusal or BLUESKY.auth_error(False))
    refusal = _own_repo(state, body.get("repo"), account)
    if refusal is not None:
        return BLUESKY.finish(state, account.did, refusal)
    allowed, usage = state.acquire(BLUESKY.name, account.did, CREATE_POINTS)
    if not allowed:
        return BLUESKY.finish(state, account.did, BLUESKY.limit_error(usage))
    outcome = _create(state, account, body, rule)
    return outcome if outcome is DROP else BLUESKY.finish(state, account.did, outcome)


def _create(state: State, account: Account, body: dict[str, Any], rule: FaultRule | None) -> Outcome:
    collection, record, rkey = body.get("collection"), body.get("record"), body.get("rkey")
    validate = body.get("validate")
    if not isinstance(collection, str) or not is_nsid(collection):
        return BLUESKY.invalid("Input/collection must be a valid nsid")
    if not isinstance(record, dict):
        return BLUESKY.invalid('Input must have the property "record"')
    if validate is not None and not isinstance(validate, bool):
        return BLUESKY.invalid("Input/validate must be a boolean")
    if record.get("$type") != collection:
        return BLUESKY.invalid(f"Invalid $type: expected {collection}, got {record.get('$type')}")
    checked = validate is not False and collection == POST_COLLECTION
    if rkey is None:
        rkey = new_tid()
    elif not isinstance(rkey, str) or not is_record_key(rkey):
        return BLUESKY.invalid("Invalid record key")
    elif checked and not is_tid(rkey):
        return BLUESKY.invalid(f"Invalid record key for {collection}: must be a TID, got {rkey}")
    if checked and (problem := post_problem(record)) is not None:
        return BLUESKY.invalid(problem)
    blobs = blob_refs(record.get("embed"))
    for cid, _, _ in blobs:
        media = state.find_media(BLUESKY.name, cid)
        if media is None or media.account != account.did:
            return BLUESKY.invalid(f"Could not find blob: {cid}")
        if media.kind == "image" and (media.size or 0) > MAX_IMAGE_BYTES:
            return BLUESKY.invalid(
                f"Invalid {collection} record: image {cid} is too large ({media.size} bytes; "
                f"the limit is {MAX_IMAGE_BYTES})"
            )
    uri = at_uri(account.did, collection, rkey)
    reply = record.get("reply")
    parent_ref = reply.get("parent") if isinstance(reply, dict) else None
    parent = parent_ref.get("uri") if isinstance(parent_ref, dict) else None
    parent = parent if isinstance(parent, str) else None
    text = record.get("text") if isinstance(record.get("text"), str) else ""
    post = state.add_unique_post(BLUESKY.name, account.did, text, uri, parent, [c for c, _, _ in blobs], record)
    if post is None:
        if state.bluesky.duplicate_answer == "internal_error":
            return BLUESKY.error(500)  # what the reference PDS answers
        return BLUESKY.invalid(f"Record already exists: {uri}")
    if rule is not None and rule.ambiguous:
        return DROP
    rev = new_tid()
    return Reply(200, {
        "uri": uri,
        "cid": record_cid(record),
        "commit": {"cid": record_cid({"uri": uri, "rev": rev}), "rev": rev},
        "validationStatus": "valid" if checked else "unknown",
    })


def _records(state: State, did: str, collection: str) -> list[Post]:
    prefix = f"at://{did}/{collection}/"
    return [p for p in state.posts(BLUESKY.name, did) if p.id.startswith(prefix)]


def _record_view(post: Post) -> dict[str, Any]:
    return {"uri": post.id, "cid": record_cid(post.record), "value": post.record}


def _public(state: State, req: Request, account: str | None, render: Callable[[], Reply]) -> Outcome:
    """A read anyone may make: fault rules (`endpoints` "all"), then `render`."""
    rule, refusal = _faults(state, account, "list")
    if refusal is None and rule is not None and rule.ambiguous:
        return DROP
    if refusal is None:
        try:
            refusal = render()
        except BadRequest as e:
            refusal = BLUESKY.invalid(str(e))
    return BLUESKY.finish(state, account, refusal)


def _repo_param(state: State, req: Request) -> tuple[Account | None, str]:
    repo = req.param("repo")
    if repo is None:
        raise BadRequest('Params must have the property "repo"')
    return state.bluesky.resolve(repo), repo


@_xrpc
def get_record(state: State, req: Request) -> Outcome:
    """`?repo=&collection=&rkey=[&cid=]`: the record, or `400 RecordNotFound`."""
    owner, repo = _repo_param(state, req)

    def render() -> Reply:
        collection, rkey = req.param("collection"), req.param("rkey")
        if collection is None or rkey is None:
            raise BadRequest('Params must have the properties "collection" and "rkey"')
        if owner is None:
            return BLUESKY.invalid(f"Could not find repo: {repo}")
        uri = at_uri(owner.did, collection, rkey)
        post = next((p for p in _records(state, owner.did, collection) if p.id == uri), None)
        if post is None or req.param("cid") not in (None, record_cid(post.record)):
            return BLUESKY.named(400, "RecordNotFound", f"Could not locate record: {uri}")
        return Reply(200, _record_view(post))

    return _public(state, req, _did(owner), render)


@_xrpc
def list_records(state: State, req: Request) -> Outcome:
    """`?repo=&collection=&limit=&cursor=&reverse=`: newest first (by rkey), or oldest first
    with `reverse=true`; `cursor` is the last rkey of any non-empty page, as on the PDS (the
    page after the last one is empty)."""
    owner, repo = _repo_param(state, req)

    def render() -> Reply:
        collection = req.param("collection")
        if collection is None:
            raise BadRequest('Params must have the property "collection"')
        limit = req.int_param("limit", 50, 1, 100)
        reverse = req.param("reverse") == "true"
        if owner is None:
            return BLUESKY.invalid(f"Could not find repo: {repo}")
        records = sorted(_records(state, owner.did, collection), key=lambda p: p.id, reverse=not reverse)
        if (cursor := req.param("cursor")) is not None:
            after = at_uri(owner.did, collection, cursor)
            records = [p for p in records if (p.id > after if reverse else p.id < after)]
        page = records[:limit]
        body: dict[str, Any] = {"records": [_record_view(p) for p in page]}
        if page:
            body["cursor"] = page[-1].id.rsplit("/", 1)[1]
        return Reply(200, body)

    return _public(state, req, _did(owner), render)


@_xrpc
def delete_record(state: State, req: Request) -> Outcome:
    """`{repo, collection, rkey}`: only the repo's own session may; a missing record is a no-op."""
    rule, account, refusal = _gate(state, req, "delete")
    if refusal is not None or account is None:
        return BLUESKY.finish(state, _did(account), refusal or BLUESKY.auth_error(False))
    body = req.json_object()
    refusal = _own_repo(state, body.get("repo"), account)
    collection, rkey = body.get("collection"), body.get("rkey")
    if refusal is None and (not isinstance(collection, str) or not isinstance(rkey, str)):
        refusal = BLUESKY.invalid('Input must have the properties "collection" and "rkey"')
    if refusal is not None:
        return BLUESKY.finish(state, account.did, refusal)
    allowed, usage = state.acquire(BLUESKY.name, account.did, DELETE_POINTS)
    if not allowed:
        return BLUESKY.finish(state, account.did, BLUESKY.limit_error(usage))
    deleted = state.delete_post(BLUESKY.name, at_uri(account.did, collection, rkey)) is not None
    if rule is not None and rule.ambiguous:
        return DROP
    rev = new_tid()
    answer = {"commit": {"cid": record_cid({"deleted": rkey, "rev": rev}), "rev": rev}} if deleted else {}
    return BLUESKY.finish(state, account.did, Reply(200, answer))


# --------------------------------------------------------------------------------------------
# Blobs and post views
# --------------------------------------------------------------------------------------------


@_xrpc
def upload_blob(state: State, req: Request) -> Outcome:
    """The raw bytes, typed by `Content-Type`: a blob a record may then refer to (by its CID).
    Fault rules with `endpoints` "upload" or "all" apply; uploads count toward no window."""
    rule, account, refusal = _gate(state, req, "upload")
    if refusal is not None or account is None:
        return BLUESKY.finish(state, _did(account), refusal or BLUESKY.auth_error(False))
    if not req.body:
        return BLUESKY.finish(state, account.did, BLUESKY.invalid("Request body is empty"))
    mime = (req.header("Content-Type") or "application/octet-stream").split(";")[0].strip().lower()
    kind = "image" if mime.startswith("image/") else "video" if mime.startswith("video/") else "blob"
    cid = blob_cid(req.body)
    state.add_media(BLUESKY.name, account.did, kind, lambda n: cid, req.body, mime)
    if rule is not None and rule.ambiguous:
        return DROP
    blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(req.body)}
    return BLUESKY.finish(state, account.did, Reply(200, {"blob": blob}))


@_xrpc
def get_posts(state: State, req: Request) -> Outcome:
    """`?uris=at://…&uris=…` (at most 25): the posts found (the others are left out), with
    `likeCount`, `repostCount`, `replyCount` and `quoteCount` (`POST /_admin/metrics`)."""
    token = req.bearer()
    session = state.bluesky.session(token) if token else None
    viewer = session.did if session is not None else None

    def render() -> Reply:
        uris = req.query_lists.get("uris", [])
        if not uris or len(uris) > 25:
            raise BadRequest("Params/uris must name 1 to 25 posts")
        posts = {p.id: p for p in state.posts(BLUESKY.name)}
        views = []
        for uri in uris:
            parts = split_at_uri(uri)
            owner = state.bluesky.resolve(parts[0]) if parts is not None else None
            if parts is None or owner is None or parts[1] != POST_COLLECTION:
                continue
            post = posts.get(at_uri(owner.did, parts[1], parts[2]))
            if post is not None:
                views.append(_post_view(post, owner))
        return Reply(200, {"posts": views})

    return _public(state, req, viewer, render)


def _post_view(post: Post, owner: Account) -> dict[str, Any]:
    m = ENGAGEMENT.get(BLUESKY.name, post.id, ("likes", "comments", "shares", "quotes"))
    return {
        "uri": post.id,
        "cid": record_cid(post.record),
        "author": {"did": owner.did, "handle": owner.handle},
        "record": post.record,
        "replyCount": m["comments"],
        "repostCount": m["shares"],
        "likeCount": m["likes"],
        "quoteCount": m["quotes"],
        "indexedAt": rfc3339_ms(post.created),
        "labels": [],
    }
