"""The fake Bluesky PDS (AT Protocol XRPC) under /bluesky: the platform, its gate (fault
rules, then the session's JWT) and sessions (`com.atproto.server.createSession|refreshSession|
getSession`); bluesky_repo.py holds records, blobs and `app.bsky.feed.getPosts`.

Errors are XRPC's `{"error": Name, "message": ...}`. Rate-limit windows count points as the
PDS's repo-write limit does (5,000 an hour per account; a create costs 3, a delete 1) and
every answer for an account carries `ratelimit-limit|remaining|reset|policy`. A create with
an `rkey` the repo already holds creates nothing and is refused, so a retry of a create whose
answer was lost cannot duplicate it; `getRecord` then finds the record. The refusal is what the
reference PDS serves (its repository's "There is already a value at key" is not caught: `500
InternalServerError`, "Internal Server Error"), or with `POST /_admin/bluesky/settings`
`400 InvalidRequest` "Record already exists: <uri>" (an explicit error is proposed upstream).

Fault rules apply as to the other platforms, matched by the session's DID: createRecord meets
`endpoints` "create" (a reply: "answer" or "create"), uploadBlob "upload", createSession and
refreshSession "oauth", and the reads (getSession, getRecord, listRecords, getPosts) and
deleteRecord "all" only. An `ambiguous` rule does the work and drops the answer."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

from fake_platforms.base import Platform
from fake_platforms.bluesky_accounts import Account
from fake_platforms.protocol import DROP, BadRequest, Outcome, Reply, Request
from fake_platforms.state import FaultRule, State, Usage

ERROR_NAMES = {
    400: "InvalidRequest",
    401: "AuthenticationRequired",
    403: "Forbidden",
    404: "XRPCNotSupported",
    413: "PayloadTooLarge",
    429: "RateLimitExceeded",
    500: "InternalServerError",
    501: "MethodNotImplemented",
    502: "UpstreamFailure",
    503: "NotEnoughResources",
    504: "UpstreamTimeout",
}
MESSAGES = {
    401: "Authentication Required",
    429: "Rate Limit Exceeded",
    500: "Internal Server Error",
}


class BlueskyPlatform(Platform):
    name = "bluesky"

    def error(self, status: int, code: int | None = None, message: str | None = None) -> Reply:
        name = ERROR_NAMES.get(status, "InternalServerError" if status >= 500 else "InvalidRequest")
        return Reply(status, {"error": name, "message": message or MESSAGES.get(status, name)})

    def named(self, status: int, name: str, message: str) -> Reply:
        return Reply(status, {"error": name, "message": message})

    def auth_error(self, missing: bool) -> Reply:
        """No token, or a write to a repo that is not the session's own."""
        return self.error(401)

    def limit_error(self, usage: Usage) -> Reply:
        return self.error(429)  # the usage headers say remaining 0 and when it resets

    def fault_error(self, rule: FaultRule) -> Reply:
        reply = super().fault_error(rule)
        if rule.retry_after is not None:
            reply.headers["ratelimit-remaining"] = "0"
            reply.headers["ratelimit-reset"] = str(math.ceil(time.time() + rule.retry_after))
        return reply

    def finish(self, state: State, account: str | None, outcome: Outcome) -> Outcome:
        """Adds `ratelimit-*` (the account's points window) to an answer for an account."""
        if isinstance(outcome, Reply) and account is not None:
            usage = state.peek(self.name, account)
            window = state.limits()[self.name]["window_seconds"]
            outcome.headers = {
                "ratelimit-limit": str(usage.limit),
                "ratelimit-remaining": str(usage.remaining),
                "ratelimit-reset": str(math.ceil(usage.reset)),
                "ratelimit-policy": f"{usage.limit};w={math.ceil(window)}",
                **outcome.headers,
            }
        return outcome


BLUESKY = BlueskyPlatform()


# --------------------------------------------------------------------------------------------
# The gate: fault rules, then the session
# --------------------------------------------------------------------------------------------


def _faults(state: State, account: str | None, endpoint: str) -> tuple[FaultRule | None, Reply | None]:
    """The first matching fault rule: its latency is slept, its status answers."""
    rule = state.pick_fault(BLUESKY.name, account, endpoint)
    if rule is not None and rule.latency_ms:
        time.sleep(rule.latency_ms / 1000)
    if rule is not None and rule.status is not None:
        return rule, BLUESKY.fault_error(rule)
    return rule, None


def _session(state: State, req: Request, kind: str = "access") -> tuple[Account | None, Reply | None]:
    """The account a Bearer JWT of `kind` acts for, or the PDS's refusal: none is 401
    AuthenticationRequired; one it never issued (or whose account is gone), 400 InvalidToken;
    one of the other kind, 400 InvalidToken; an expired (or spent refresh) one, 400 ExpiredToken."""
    token = req.bearer()
    if token is None:
        return None, BLUESKY.auth_error(missing=True)
    session = state.bluesky.session(token)
    account = state.bluesky.resolve(session.did) if session is not None else None
    if session is None or account is None:
        return None, BLUESKY.named(400, "InvalidToken", "Token could not be verified")
    if session.expires <= time.time():  # checked first, as the JWT's `exp` is
        message = "Token has been revoked" if session.kind == "refresh" else "Token has expired"
        return None, BLUESKY.named(400, "ExpiredToken", message)
    if session.kind != kind:
        return None, BLUESKY.named(400, "InvalidToken", "Bad token scope")
    return account, None


def _gate(state: State, req: Request, endpoint: str) -> tuple[FaultRule | None, Account | None, Reply | None]:
    """Fault rules (matched by the token's account), then the access JWT."""
    token = req.bearer()
    session = state.bluesky.session(token) if token else None
    rule, refusal = _faults(state, session.did if session else None, endpoint)
    if refusal is not None:
        return rule, None, refusal
    account, refusal = _session(state, req)
    return rule, account, refusal


def _did(account: Account | None) -> str | None:
    return account.did if account is not None else None


Handler = Callable[[State, Request], Outcome]


def _xrpc(handler: Handler) -> Handler:
    """An unreadable request (not JSON, a bad parameter) is `400 InvalidRequest`, as XRPC says."""

    @functools.wraps(handler)
    def wrapped(state: State, req: Request) -> Outcome:
        try:
            return handler(state, req)
        except BadRequest as e:
            return BLUESKY.invalid(str(e))

    return wrapped


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


def _session_body(account: Account, access: str, refresh: str) -> dict[str, Any]:
    return {"accessJwt": access, "refreshJwt": refresh, "handle": account.handle,
            "did": account.did, "active": True}


@_xrpc
def create_session(state: State, req: Request) -> Outcome:
    """`{identifier (handle or DID), password (an app password)}`: a new session. Fault rules
    with `endpoints` "oauth" or "all" apply, as to the OAuth platforms' token endpoints."""
    body = req.json_object()
    identifier, password = body.get("identifier"), body.get("password")
    known = state.bluesky.resolve(identifier) if isinstance(identifier, str) else None
    rule, refusal = _faults(state, _did(known), "oauth")
    if refusal is None and (not isinstance(identifier, str) or not isinstance(password, str)):
        refusal = BLUESKY.invalid('Input must have the properties "identifier" and "password"')
    if refusal is not None:
        return BLUESKY.finish(state, _did(known), refusal)
    account = state.bluesky.login(identifier, password)
    if account is None:
        return BLUESKY.error(401, None, "Invalid identifier or password")
    access, refresh = state.bluesky.open_session(account)
    if rule is not None and rule.ambiguous:
        return DROP
    return BLUESKY.finish(state, account.did, Reply(200, _session_body(account, access, refresh)))


@_xrpc
def refresh_session(state: State, req: Request) -> Outcome:
    """Bearer refreshJwt: a new pair; the refresh JWT is spent (shown again: ExpiredToken)."""
    token = req.bearer()
    session = state.bluesky.session(token) if token else None
    rule, refusal = _faults(state, session.did if session else None, "oauth")
    if refusal is None:
        _, refusal = _session(state, req, kind="refresh")
    if refusal is not None:
        return BLUESKY.finish(state, session.did if session else None, refusal)
    assert token is not None
    account = state.bluesky.rotate(token)
    if account is None:  # spent by a concurrent refresh
        return BLUESKY.named(400, "ExpiredToken", "Token has been revoked")
    access, refresh = state.bluesky.open_session(account)
    if rule is not None and rule.ambiguous:
        return DROP
    return BLUESKY.finish(state, account.did, Reply(200, _session_body(account, access, refresh)))


@_xrpc
def get_session(state: State, req: Request) -> Outcome:
    rule, account, refusal = _gate(state, req, "list")
    if refusal is None and rule is not None and rule.ambiguous:
        return DROP
    if refusal is not None or account is None:
        return BLUESKY.finish(state, _did(account), refusal or BLUESKY.auth_error(False))
    body = {"handle": account.handle, "did": account.did, "active": True}
    return BLUESKY.finish(state, account.did, Reply(200, body))
