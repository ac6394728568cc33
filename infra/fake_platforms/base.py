"""What the platforms share: the `Platform` base class (what differs between the fakes) and
the one way a create, an upload, a listing or an OAuth refresh goes through fault rules, the
token check and the rate-limit window."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fake_platforms.authorize import exchange_code
from fake_platforms.protocol import DROP, BadRequest, Outcome, Reply, Request, is_revoked, phrase
from fake_platforms.state import FaultRule, Post, State, Usage


# --------------------------------------------------------------------------------------------
# Platforms
# --------------------------------------------------------------------------------------------


@dataclass
class Draft:
    """A create request as far as it could be read: `problem` is the first validation error."""

    account: str | None
    text: str | None = None
    author: str | None = None
    problem: str | None = None
    media: list[str] = field(default_factory=list)  # ids (URNs) of uploaded media
    parent: str | None = None  # the post this answers (a reply or a comment)
    # What only one platform takes (X's reply settings, LinkedIn's visibility and alt texts,
    # a Facebook link), kept on the post as its attributes.
    attributes: dict[str, Any] = field(default_factory=dict)


class Platform:
    """What differs between the fakes; `publish` and `list_posts` hold what does not."""

    name = ""

    def token(self, req: Request) -> str | None:
        return req.bearer()

    def precheck(self, req: Request) -> Reply | None:
        """Refuses a request before authentication (LinkedIn's version headers)."""
        return None

    def parse_publish(self, state: State, req: Request) -> Draft:
        raise NotImplementedError

    def new_id(self, n: int, account: str) -> str:
        raise NotImplementedError

    def created(self, post: Post) -> Reply:
        raise NotImplementedError

    def new_answer_id(self, n: int, account: str, parent: str) -> str:
        """The id of an answer (reply, comment) to `parent`."""
        return self.new_id(n, account)

    def created_answer(self, post: Post) -> Reply:
        return self.created(post)

    def error(self, status: int, code: int | None = None, message: str | None = None) -> Reply:
        raise NotImplementedError

    def invalid(self, message: str) -> Reply:
        return self.error(400, None, message)

    def auth_error(self, missing: bool) -> Reply:
        return self.error(401)

    def limit_error(self, usage: Usage) -> Reply:
        reply = self.error(429)
        reply.headers["Retry-After"] = str(usage.retry_after())
        return reply

    def fault_error(self, rule: FaultRule) -> Reply:
        assert rule.status is not None
        reply = self.error(rule.status, rule.error_code, rule.message)
        if rule.retry_after is not None:
            reply.headers["Retry-After"] = str(math.ceil(rule.retry_after))
        return reply

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        return {}

    def admit(self, state: State, account: str | None) -> Reply | None:
        """Refuses a request that passed the token check (Mastodon's limit on every request)."""
        return None

    def before_store(self, state: State, draft: Draft) -> Reply | None:
        """Refuses a valid create just before it would be stored (the SMS provider's
        messages-per-second limit): nothing is stored."""
        return None

    def stored(self, state: State, draft: Draft, post: Post) -> None:
        """Called once a create is recorded, before its answer (or its loss to a fault)."""

    def check_token(self, req: Request) -> Reply | None:
        token = self.token(req)
        if token is None or is_revoked(token):
            return self.auth_error(missing=token is None)
        return None

    def finish(self, state: State, account: str | None, outcome: Outcome) -> Outcome:
        """Adds the rate-limit headers every answer of the platform carries."""
        if isinstance(outcome, Reply):
            outcome.headers = {**self.usage_headers(state.peek(self.name, account)), **outcome.headers}
        return outcome


# --------------------------------------------------------------------------------------------
# Creates, uploads and listings: fault rules, the token, the rate-limit window
# --------------------------------------------------------------------------------------------


def _gate(
    state: State, platform: Platform, req: Request, account: str | None, endpoint: str
) -> tuple[FaultRule | None, Reply | None]:
    """Fault rules (latency, then a status), then the request's headers and token."""
    rule = state.pick_fault(platform.name, account, endpoint)
    if rule is not None and rule.latency_ms:
        time.sleep(rule.latency_ms / 1000)
    if rule is not None and rule.status is not None:
        return rule, platform.fault_error(rule)
    return rule, (
        platform.precheck(req) or platform.check_token(req) or platform.admit(state, account)
    )


def publish(state: State, platform: Platform, req: Request) -> Outcome:
    draft = platform.parse_publish(state, req)
    endpoint = "create" if draft.parent is None else "answer"  # an X reply
    rule, refusal = _gate(state, platform, req, draft.account, endpoint)
    return platform.finish(state, draft.account, refusal or _create(state, platform, draft, rule))


def _create(state: State, platform: Platform, draft: Draft, rule: FaultRule | None) -> Outcome:
    if draft.account is None:
        return platform.invalid(draft.problem or "the request names no account")
    allowed, usage = state.acquire(platform.name, draft.account)
    if not allowed:
        return platform.limit_error(usage)
    if draft.problem is not None or draft.text is None:
        return platform.invalid(draft.problem or "nothing to publish")
    for ref in draft.media:
        media = state.find_media(platform.name, ref)
        if media is None or media.account != draft.account:
            return platform.invalid(f"media {ref} was not uploaded by this account")
        if not media.uploaded:
            return platform.invalid(f"media {ref} has no content: its upload never completed")
    parent = draft.parent
    if parent is not None and _created_post(state, platform.name, parent) is None:
        return platform.invalid(f"{parent} does not exist: there is nothing to answer")
    refusal = platform.before_store(state, draft)
    if refusal is not None:
        return refusal
    make_id = platform.new_id if parent is None else (
        lambda n, account: platform.new_answer_id(n, account, parent)
    )
    post = state.add_post(
        platform.name, draft.account, draft.text, make_id, draft.author, draft.media, parent
    )
    platform.stored(state, draft, post)
    post.attributes.update(draft.attributes)
    if rule is not None and rule.ambiguous:
        return DROP
    return platform.created(post) if parent is None else platform.created_answer(post)


def create_answer(state: State, platform: Platform, req: Request, draft: Draft) -> Outcome:
    """A reply or a comment: the same fault rules, token check and rate window as a post."""
    rule, refusal = _gate(state, platform, req, draft.account, "answer")
    return platform.finish(state, draft.account, refusal or _create(state, platform, draft, rule))


def delete_own(
    state: State, platform: Platform, req: Request, post_id: str, gone: Reply, done: Reply
) -> Outcome:
    """Deletes the token's own post (or reply, or comment): `done`, or `gone` when there is
    no such post of its. Fault rules apply (endpoint `delete`); an ambiguous one deletes and
    loses the answer."""
    token = platform.token(req)
    account = state.account_for_token(platform.name, token) if token else None
    rule, refusal = _gate(state, platform, req, account, "delete")
    if refusal is not None:
        return platform.finish(state, account, refusal)
    post = _created_post(state, platform.name, post_id)
    if post is None or post.account != account:
        return platform.finish(state, account, gone)
    state.delete_post(platform.name, post.id)
    return platform.finish(state, account, DROP if rule is not None and rule.ambiguous else done)


def edit_own(
    state: State, platform: Platform, req: Request, post_id: str, text: str | None, gone: Reply, done: Reply
) -> Outcome:
    """Replaces the text of the token's own post: `done` (the post's `edits` attribute counts
    them), `gone` when there is no such post of its. Fault rules apply (endpoint `edit`)."""
    token = platform.token(req)
    account = state.account_for_token(platform.name, token) if token else None
    rule, refusal = _gate(state, platform, req, account, "edit")
    if refusal is not None:
        return platform.finish(state, account, refusal)
    if not text:
        return platform.finish(state, account, platform.invalid("the new text is required"))
    post = _created_post(state, platform.name, post_id)
    if post is None or post.account != account:
        return platform.finish(state, account, gone)
    post.text = text
    post.attributes["edits"] = post.attributes.get("edits", 0) + 1
    return platform.finish(state, account, DROP if rule is not None and rule.ambiguous else done)


def answers(state: State, platform: str, parent: str) -> list[Post]:
    """The answers to `parent`, newest first."""
    return [p for p in reversed(state.posts(platform)) if p.parent == parent]


def upload(
    state: State,
    platform: Platform,
    req: Request,
    account: str | None,
    store: Callable[[], Outcome],
) -> Outcome:
    """Fault rules for uploads and the token, then `store`; an ambiguous fault keeps the
    upload and loses the answer. Uploads count toward no rate window."""
    rule, refusal = _gate(state, platform, req, account, "upload")
    if refusal is not None:
        return platform.finish(state, account, refusal)
    try:
        outcome = store()
    except BadRequest as e:
        outcome = platform.invalid(str(e))
    if rule is not None and rule.ambiguous and isinstance(outcome, Reply) and outcome.status < 300:
        return DROP
    return platform.finish(state, account, outcome)


def list_posts(
    state: State,
    platform: Platform,
    req: Request,
    account: str | None,
    render: Callable[[], Reply],
) -> Outcome:
    rule, refusal = _gate(state, platform, req, account, "list")
    if refusal is not None:
        outcome: Outcome = refusal
    elif rule is not None and rule.ambiguous:
        outcome = DROP
    else:
        try:
            outcome = render()
        except BadRequest as e:
            outcome = platform.error(400, None, str(e))
    return platform.finish(state, account, outcome)


# --------------------------------------------------------------------------------------------
# What listings and lookups show of the posts
# --------------------------------------------------------------------------------------------


def as_listed(post: Post, view: dict[str, Any]) -> dict[str, Any]:
    """A listing's view of a post with its seeded overrides (None removes a field)."""
    for name, value in post.overrides.items():
        if value is None:
            view.pop(name, None)
        else:
            view[name] = value
    return view


def _created_post(state: State, platform: str, post_id: str) -> Post | None:
    return next((p for p in state.posts(platform) if p.id == post_id), None)


# --------------------------------------------------------------------------------------------
# OAuth refresh (X's and LinkedIn's token endpoints)
# --------------------------------------------------------------------------------------------


#: What a refreshed access token is said to live for (seconds), as X's two hours.
OAUTH_EXPIRES_IN = 7200


def oauth_refresh(state: State, platform: Platform, req: Request) -> Outcome:
    """`grant_type=refresh_token` at X's `/2/oauth2/token` or LinkedIn's `/oauth/v2/accessToken`.
    Fault rules with `endpoints` "oauth" (or "all") apply first; an unknown, revoked or already
    rotated refresh token is `400 invalid_grant`, as real OAuth servers answer."""
    form = req.form()
    rule = state.pick_fault(platform.name, None, "oauth")
    if rule is not None and rule.latency_ms:
        time.sleep(rule.latency_ms / 1000)
    if rule is not None and rule.status is not None:
        return Reply(rule.status, {"error": "server_error", "error_description": rule.message or phrase(rule.status)})
    if (client := state.oauth_client(platform.name)) is not None and not _client_authenticated(req, form, client):
        return Reply(401, {"error": "invalid_client", "error_description": "client authentication failed"})
    if form.get("grant_type") == "authorization_code":
        return exchange_code(state, platform.name, req, form)
    if form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
        return Reply(400, {"error": "invalid_request", "error_description": "grant_type=refresh_token and refresh_token are required"})
    rotated = state.refresh(platform.name, form["refresh_token"])
    if rotated is None:
        return Reply(400, {"error": "invalid_grant", "error_description": "the refresh token is invalid, expired or revoked"})
    _, access, refresh = rotated
    if rule is not None and rule.ambiguous:
        return DROP
    return Reply(
        200,
        {
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": OAUTH_EXPIRES_IN,
            "scope": "tweet.read tweet.write users.read offline.access" if platform.name == "x" else "w_organization_social",
        },
    )


def _client_authenticated(req: Request, form: dict[str, str], client: tuple[str, str]) -> bool:
    """HTTP Basic with the registered client's id and secret (and, when the form names a
    `client_id`, the same one), as a confidential client authenticates."""
    scheme, _, encoded = (req.header("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    if form.get("client_id") not in (None, client_id):
        return False
    return hmac.compare_digest(client_id, client[0]) and hmac.compare_digest(secret, client[1])
