"""The OAuth 2.0 authorisation-code flow, as Herald's connect links use it (X, with PKCE):

GET  /x/i/oauth2/authorize   the consent page: which user signs in, and "Authorize app"
POST /x/i/oauth2/authorize   the user's answer: 302 to `redirect_uri` with `code` and `state`
                             (or `error=access_denied` when they cancel)
POST /x/2/oauth2/token       `grant_type=authorization_code`: the client authenticates (HTTP
                             Basic), the code is single use and ten minutes old at most, the
                             `redirect_uri` is the one authorised, and `code_verifier` must hash
                             (S256) to the `code_challenge`; the answer's tokens are registered
                             for the user, so `GET /x/2/users/me` names them

Requests the real service would refuse (an unknown client, a missing or plain PKCE challenge, a
`redirect_uri` that is not http(s)) get the same errors here."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from urllib.parse import urlencode

from fake_platforms.protocol import BadRequest, Outcome, Reply, Request
from fake_platforms.state import State

#: How long a code may wait for its exchange.
CODE_LIFETIME = 600.0


def _page(title: str, body: str) -> Reply:
    document = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body style='font-family:sans-serif;margin:2rem'>{body}</body></html>"
    return Reply(200, document.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _required(values: dict[str, str], *names: str) -> dict[str, str]:
    missing = [n for n in names if not values.get(n)]
    if missing:
        raise BadRequest(f"missing {', '.join(missing)}")
    return {n: values[n] for n in names}


def _check_request(state: State, platform: str, values: dict[str, str]) -> dict[str, str]:
    found = _required(values, "response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method")
    client = state.oauth_client(platform)
    if found["response_type"] != "code":
        raise BadRequest("response_type must be code")
    if client is None or found["client_id"] != client[0]:
        raise BadRequest("unknown client_id")
    if found["code_challenge_method"] != "S256":
        raise BadRequest("code_challenge_method must be S256")
    if not found["redirect_uri"].startswith(("https://", "http://")):
        raise BadRequest("redirect_uri must be an http(s) URL")
    found["scope"] = values.get("scope", "")
    return found


def x_authorize_page(state: State, req: Request) -> Outcome:
    request = _check_request(state, "x", req.query)
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>" for k, v in request.items()
    )
    return _page(
        "Authorize app",
        f"<h1>Authorize Herald to use your account?</h1><p>Scopes: {html.escape(request['scope'])}</p>"
        f"<form method='post' action='/x/i/oauth2/authorize'>{hidden}"
        "<label>Signed in as <input id='user' name='user' required></label> "
        "<button id='authorize' name='decision' value='allow'>Authorize app</button> "
        "<button id='cancel' name='decision' value='deny' formnovalidate>Cancel</button></form>",
    )


def x_authorize_decision(state: State, req: Request) -> Outcome:
    form = req.form()
    request = _check_request(state, "x", form)
    redirect = request["redirect_uri"]
    sep = "&" if "?" in redirect else "?"
    if form.get("decision") != "allow":
        return Reply(302, None, {"Location": redirect + sep + urlencode({"error": "access_denied", "state": request["state"]})})
    user = form.get("user", "").strip()
    if not user:
        raise BadRequest("user is required")
    code = secrets.token_urlsafe(24)
    state.put_code("x", code, {**request, "user": user, "issued": time.time()})
    return Reply(302, None, {"Location": redirect + sep + urlencode({"code": code, "state": request["state"]})})


def exchange_code(state: State, platform: str, req: Request, form: dict[str, str]) -> Outcome:
    """`grant_type=authorization_code` (the client already authenticated by the caller)."""
    code, verifier, redirect = form.get("code", ""), form.get("code_verifier", ""), form.get("redirect_uri", "")
    granted = state.take_code(platform, code)
    if granted is None or time.time() - granted["issued"] > CODE_LIFETIME:
        return Reply(400, {"error": "invalid_grant", "error_description": "the authorization code is invalid, expired or used"})
    if redirect != granted["redirect_uri"]:
        return Reply(400, {"error": "invalid_grant", "error_description": "redirect_uri does not match the authorization request"})
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if not verifier or not secrets.compare_digest(challenge, granted["code_challenge"]):
        return Reply(400, {"error": "invalid_grant", "error_description": "the code_verifier does not match the code_challenge"})
    access, refresh = f"at-{secrets.token_hex(12)}", f"rt-{secrets.token_hex(12)}"
    state.set_token(platform, access, granted["user"])
    state.set_refresh_token(platform, refresh, granted["user"])
    return Reply(200, {"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                       "expires_in": 7200, "scope": granted["scope"]})
