"""Slack-style sinks (POST /sinks/{name}) and the admin API under /_admin: assertions, fault
rules, tokens and OAuth clients, rate limits, reset, and seeding timelines, Page insights and
engagement metrics for ingestion."""

from __future__ import annotations

import hashlib
import math
import re
import time
from typing import Any

from fake_platforms.base import _created_post
from fake_platforms.bluesky_accounts import ACCESS_TTL, Account
from fake_platforms.bluesky_syntax import S32
from fake_platforms.facebook import DAY_SECONDS, FACEBOOK, INSIGHT_MALFORMED_KINDS, INSIGHT_METRICS
from fake_platforms.instagram import INSTAGRAM
from fake_platforms.linkedin import LINKEDIN
from fake_platforms.mastodon import MASTODON
from fake_platforms.protocol import BadRequest, Outcome, Reply, Request, _field, _number, phrase
from fake_platforms.state import (
    DEFAULT_LIMITS,
    ENGAGEMENT,
    METRIC_NAMES,
    InsightValue,
    State,
    parse_fault_rule,
)
from fake_platforms.x import X


# --------------------------------------------------------------------------------------------
# Sinks and the admin API
# --------------------------------------------------------------------------------------------


def sink_receive(state: State, req: Request) -> Outcome:
    headers: dict[str, str] = {}
    for name, value in req.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    status, retry_after = state.record_sink(
        req.params["name"], headers, req.body.decode("utf-8", errors="replace")
    )
    if 200 <= status < 300:
        return Reply(status, {"ok": True})
    reply = Reply(status, {"ok": False, "error": phrase(status)})
    if retry_after is not None:
        reply.headers["Retry-After"] = str(math.ceil(retry_after))
    return reply


def admin_sink_script(state: State, req: Request) -> Outcome:
    data = req.json_object()
    statuses = data.get("statuses", [])
    if not isinstance(statuses, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 200 <= s <= 599 for s in statuses
    ):
        raise BadRequest("statuses must be a list of HTTP statuses between 200 and 599")
    retry_after = _number(data, "retry_after", 0, 7 * 86400)
    state.script_sink(req.params["name"], statuses, retry_after)
    return Reply(200, {"name": req.params["name"], "statuses": statuses, "retry_after": retry_after})


def admin_sink_requests(state: State, req: Request) -> Outcome:
    return Reply(200, {"requests": state.sink_requests(req.params["name"])})


def admin_health(state: State, req: Request) -> Outcome:
    return Reply(200, {"ok": True})


def admin_posts(state: State, req: Request) -> Outcome:
    posts = state.posts(req.param("platform"), req.param("account"))
    return Reply(200, {"posts": [p.admin_view() for p in posts]})


def admin_media(state: State, req: Request) -> Outcome:
    media = state.media(req.param("platform"), req.param("account"))
    return Reply(200, {"media": [m.admin_view() for m in media]})


def admin_uploads(state: State, req: Request) -> Outcome:
    """Chunked and resumable upload sessions: bytes received, chunk requests, the whole's hash."""
    return Reply(200, {"uploads": state.chunked.views(req.param("platform"), req.param("account"))})


def admin_add_fault(state: State, req: Request) -> Outcome:
    rule = state.add_fault(parse_fault_rule(req.json()))
    return Reply(201, rule.view())


def admin_faults(state: State, req: Request) -> Outcome:
    return Reply(200, {"faults": state.fault_views()})


def admin_clear_faults(state: State, req: Request) -> Outcome:
    return Reply(200, {"ok": True, "cleared": state.clear_faults()})


def admin_remove_fault(state: State, req: Request) -> Outcome:
    if not state.remove_fault(req.params["id"]):
        return Reply(404, {"error": "no such fault rule"})
    return Reply(200, {"ok": True})


def admin_tokens(state: State, req: Request) -> Outcome:
    data = req.json_object()
    platform = data.get("platform")
    if platform not in ("x", "facebook", "linkedin", "mastodon", "instagram"):
        raise BadRequest('platform must be "x", "facebook", "linkedin", "mastodon" or "instagram"')
    token, account = _field(data, "token", str), _field(data, "account", str)
    if not token or not account:
        raise BadRequest("token and account are required strings")
    # X and Mastodon post as the token's user; every platform answers "who is this token" with it.
    state.set_token(platform, token, account)
    return Reply(200, {"ok": True, "platform": platform, "account": account})


def admin_oauth_client(state: State, req: Request) -> Outcome:
    """Registers the app's OAuth client at a platform (`{"platform", "client_id",
    "client_secret"}`): from then on its refreshes must authenticate with it (HTTP Basic), or
    they are `401 invalid_client`."""
    data = req.json_object()
    platform = data.get("platform")
    if platform not in ("x", "linkedin", "facebook"):
        raise BadRequest('platform must be "x", "linkedin" or "facebook"')
    client_id, secret = _field(data, "client_id", str), _field(data, "client_secret", str)
    if not client_id or not secret:
        raise BadRequest("client_id and client_secret are required")
    state.set_oauth_client(platform, client_id, secret)
    return Reply(200, {"ok": True, "platform": platform, "client_id": client_id})


def admin_oauth(state: State, req: Request) -> Outcome:
    """Registers a refresh token for an account (`{"platform", "account", "refresh_token"}`),
    or with `"revoke": true` revokes every refresh token of the account."""
    data = req.json_object()
    platform = data.get("platform")
    if platform not in ("x", "linkedin"):
        raise BadRequest('platform must be "x" or "linkedin"')
    account = _field(data, "account", str)
    if not account:
        raise BadRequest("account is required")
    if _field(data, "revoke", bool):
        return Reply(200, {"ok": True, "revoked": state.revoke_refresh_tokens(platform, account)})
    token = _field(data, "refresh_token", str)
    if not token:
        raise BadRequest("refresh_token is required (or revoke: true)")
    state.set_refresh_token(platform, token, account)
    return Reply(200, {"ok": True, "platform": platform, "account": account})


def admin_oauth_view(state: State, req: Request) -> Outcome:
    """Successful refreshes per `platform:account`."""
    return Reply(200, {"refreshes": state.refresh_counts()})


def admin_set_limit(state: State, req: Request) -> Outcome:
    data = req.json_object()
    platform = data.get("platform")
    if platform not in DEFAULT_LIMITS:  # the platforms, and Mastodon's request window
        raise BadRequest(f"platform is required and must be one of {', '.join(DEFAULT_LIMITS)}")
    limit = _number(data, "limit", 0, 10**9, integer=True)
    window = _number(data, "window_seconds", 0.001, 366 * 86400)
    if limit is None or window is None:
        raise BadRequest("limit and window_seconds are required")
    state.set_limit(platform, limit, float(window))
    return Reply(200, {"platform": platform, "limit": limit, "window_seconds": window})


def admin_limits(state: State, req: Request) -> Outcome:
    return Reply(200, {"limits": state.limits()})


def admin_reset(state: State, req: Request) -> Outcome:
    state.reset()
    return Reply(200, {"ok": True})


# --------------------------------------------------------------------------------------------
# Timelines for ingestion: seeding items (some malformed) that the listings then serve
# --------------------------------------------------------------------------------------------
#
# Herald's ingesters read accounts' timelines through the listing endpoints (X
# `GET /2/users/{id}/tweets` with `since_id`, `pagination_token`, `max_results`, the 3,200
# newest only; Facebook `GET /{page}/posts` with `after` cursors; LinkedIn
# `GET /rest/posts?q=author` with `start`/`count`; Mastodon
# `GET /api/v1/accounts/{id}/statuses` with `max_id`/`since_id` and its `Link` header). Their answers carry the rate-limit
# headers (`x-rate-limit-*`, `X-App-Usage`), and fault rules with `"endpoints": "all"` (a
# 429 with `retry_after` in the middle of a run, a slow page) apply to them.
#
# `POST /_admin/timeline` {"platform": "x" | "facebook" | "linkedin" | "mastodon", "account": "<id>",
#   "count": N (plain items "<prefix> <n>"), "text_prefix": "...",
#   "malformed": {"<index>": "<kind>"}}  adds N items in order (the last is the newest).
#   Kinds: `missing_text`, `text_not_string`, `bad_time`, `missing_id`. Answers the items
#   added: [{id, text, malformed}].
# `GET /_admin/timeline?platform=&account=`: every item the account's timeline holds, oldest
#   first, with `malformed` (null for good ones).


TIMELINE_FIELDS = {
    "x": ("text", "created_at"),
    "facebook": ("message", "created_time"),
    "linkedin": ("commentary", "createdAt"),
    "mastodon": ("content", "created_at"),
    "instagram": ("caption", "timestamp"),
}

MALFORMED_KINDS = ("missing_text", "text_not_string", "bad_time", "missing_id")


def _overrides(platform: str, kind: str) -> dict[str, Any]:
    text_field, time_field = TIMELINE_FIELDS[platform]
    return {
        "missing_text": {text_field: None},
        "text_not_string": {text_field: 12345},
        "bad_time": {time_field: "not a time" if platform != "linkedin" else "soon"},
        "missing_id": {"id": None},
    }[kind]


def admin_seed_timeline(state: State, req: Request) -> Outcome:
    data = req.json_object()
    platform = data.get("platform")
    if platform not in TIMELINE_FIELDS:
        raise BadRequest(f"platform must be one of {', '.join(TIMELINE_FIELDS)}")
    account = _field(data, "account", str)
    if not account:
        raise BadRequest("account is required")
    count = _number(data, "count", 0, 10_000, integer=True)
    if count is None:
        raise BadRequest("count is required")
    prefix = _field(data, "text_prefix", str) or "item"
    malformed = _field(data, "malformed", dict) or {}
    kinds: dict[int, str] = {}
    for index, kind in malformed.items():
        if not str(index).isdigit() or not 0 <= int(index) < count:
            raise BadRequest(f"malformed index {index!r} is not an item's index")
        if kind not in MALFORMED_KINDS:
            raise BadRequest(f"malformed kind must be one of {', '.join(MALFORMED_KINDS)}")
        kinds[int(index)] = kind
    platform_obj = {"x": X, "facebook": FACEBOOK, "linkedin": LINKEDIN, "mastodon": MASTODON,
                    "instagram": INSTAGRAM}[platform]
    author = f"urn:li:organization:{account}" if platform == "linkedin" else None
    added = []
    for n in range(int(count)):
        post = state.add_post(platform, account, f"{prefix} {n}", platform_obj.new_id, author)
        if n in kinds:
            post.overrides = _overrides(platform, kinds[n])
            post.malformed = kinds[n]
        added.append({"id": post.id, "text": post.text, "malformed": post.malformed})
    return Reply(201, {"items": added})


def admin_timeline(state: State, req: Request) -> Outcome:
    platform, account = req.param("platform"), req.param("account")
    if platform not in TIMELINE_FIELDS or not account:
        raise BadRequest("platform and account are required")
    posts = state.posts(platform, account)
    return Reply(200, {"items": [
        {"id": p.id, "text": p.text, "malformed": p.malformed} for p in posts
    ]})


# --------------------------------------------------------------------------------------------
# Page insights for ingestion (served by facebook.py: see there)
# --------------------------------------------------------------------------------------------


def admin_seed_insights(state: State, req: Request) -> Outcome:
    data = req.json_object()
    page = _field(data, "page", str)
    if not page:
        raise BadRequest("page is required")
    days = _number(data, "days", 1, 93, integer=True)
    if days is None:
        raise BadRequest("days is required")
    kinds: dict[int, str] = {}
    for index, kind in (_field(data, "malformed", dict) or {}).items():
        if not str(index).isdigit() or not 0 <= int(index) < days:
            raise BadRequest(f"malformed index {index!r} is not a day's index")
        if kind not in INSIGHT_MALFORMED_KINDS:
            raise BadRequest(f"malformed kind must be one of {', '.join(INSIGHT_MALFORMED_KINDS)}")
        kinds[int(index)] = kind
    revise = _number(data, "revise_last", 0, 1_000_000, integer=True) or 0
    today = int(time.time()) // DAY_SECONDS * DAY_SECONDS
    values = [
        InsightValue(metric, today - (int(days) - 1 - day) * DAY_SECONDS,
                     (day + 1) * (100 if metric == INSIGHT_METRICS[0] else 7)
                     + (int(revise) if day == int(days) - 1 else 0),
                     kinds.get(day) if metric == INSIGHT_METRICS[0] else None)
        for day in range(int(days))
        for metric in INSIGHT_METRICS
    ]
    state.set_insights(page, values)
    return Reply(201, {"values": [v.admin_view() for v in values]})


def admin_insights(state: State, req: Request) -> Outcome:
    page = req.param("page")
    if not page:
        raise BadRequest("page is required")
    return Reply(200, {"values": [v.admin_view() for v in state.insights(page)]})


# --------------------------------------------------------------------------------------------
# Engagement metrics (Herald's engagement snapshots read these)
# --------------------------------------------------------------------------------------------
# Each post the fake created has engagement counts, zero until `POST /_admin/metrics` sets
# them (state.ENGAGEMENT).


def admin_set_metrics(state: State, req: Request) -> Outcome:
    data = req.json_object()
    platform, post_id = data.get("platform"), data.get("post_id")
    if platform not in ("x", "facebook", "linkedin", "mastodon", "bluesky", "instagram") or not isinstance(post_id, str):
        raise BadRequest('platform ("x", "facebook", "linkedin", "mastodon", "bluesky" or "instagram") and post_id are required')
    if _created_post(state, platform, post_id) is None:
        return Reply(404, {"error": "no such post on the fake"})
    counts: dict[str, int] = {}
    # A Bluesky post (its AT URI) also has quotes: likes, comments (replies), shares (reposts).
    for name in METRIC_NAMES + (("quotes",) if platform == "bluesky" else ()):
        value = _number(data, name, 0, 10**12, integer=True)
        if value is not None:
            counts[name] = int(value)
    return Reply(200, {"platform": platform, "post_id": post_id, "metrics": ENGAGEMENT.set(platform, post_id, counts)})


# --------------------------------------------------------------------------------------------
# Bluesky accounts (served by bluesky.py: see there)
# --------------------------------------------------------------------------------------------
#
# `POST /_admin/bluesky/accounts` {"handle": "alice.test", "password": "<app password>",
#   "did": "did:plc:…" (optional: derived from the handle), "access_ttl_seconds": 7200}
#   adds (or replaces) an account that `com.atproto.server.createSession` then logs in.
# `GET /_admin/bluesky/accounts`: the accounts (never their passwords) and how many sessions
#   were opened.
# `POST /_admin/bluesky/expire` {"account": "<did or handle>"}: its access JWTs expire now.
# `GET /_admin/bluesky/sessions?account=<did or handle>`: every JWT it was issued (the tests'
#   log scan looks for them in Herald's logs).
# `POST /_admin/bluesky/settings` {"duplicate_rkey": "internal_error" | "invalid_request"}:
#   what a create of an existing record answers (the reference PDS's 500, the default, or a
#   400 InvalidRequest "Record already exists"). A reset restores the default.

_HANDLE = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?")


def admin_bluesky_add_account(state: State, req: Request) -> Outcome:
    data = req.json_object()
    handle, password = _field(data, "handle", str), _field(data, "password", str)
    if not handle or not password or _HANDLE.fullmatch(handle.lower()) is None:
        raise BadRequest("handle (a domain name, e.g. alice.test) and password are required")
    handle = handle.lower()
    digest = hashlib.sha256(handle.encode()).digest()
    did = _field(data, "did", str) or "did:plc:" + "".join(S32[b % 32] for b in digest[:24])
    if not re.fullmatch(r"did:[a-z]+:[A-Za-z0-9._:%-]+", did):
        raise BadRequest("did must be a DID, e.g. did:plc:ewvi7nxzyoun6zhxrhs64oiz")
    ttl = _number(data, "access_ttl_seconds", 0.001, 366 * 86400)
    account = Account(did, handle, password, float(ttl) if ttl is not None else ACCESS_TTL)
    state.bluesky.add(account)
    return Reply(201, account.view())


def admin_bluesky_accounts(state: State, req: Request) -> Outcome:
    return Reply(200, {"accounts": [a.view() for a in state.bluesky.accounts()],
                       "sessions_created": state.bluesky.sessions_created()})


def admin_bluesky_sessions(state: State, req: Request) -> Outcome:
    """`?account=<did or handle>`: every access and refresh JWT the account was issued."""
    account = state.bluesky.resolve(req.param("account") or "")
    if account is None:
        return Reply(404, {"error": "no such Bluesky account"})
    return Reply(200, {"sessions": state.bluesky.tokens(account.did)})


def admin_bluesky_expire(state: State, req: Request) -> Outcome:
    name = _field(req.json_object(), "account", str)
    account = state.bluesky.resolve(name) if name else None
    if account is None:
        return Reply(404, {"error": "no such Bluesky account"})
    return Reply(200, {"ok": True, "expired": state.bluesky.expire(account.did)})


def admin_bluesky_settings(state: State, req: Request) -> Outcome:
    answer = _field(req.json_object(), "duplicate_rkey", str)
    if answer not in ("invalid_request", "internal_error"):
        raise BadRequest('duplicate_rkey must be "invalid_request" or "internal_error"')
    state.bluesky.duplicate_answer = answer
    return Reply(200, {"duplicate_rkey": answer})
