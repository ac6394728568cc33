"""The OAuth 2.0 authorisation-code flow, as Herald's connect links use it (with PKCE):

GET  /x/i/oauth2/authorize   the consent page: which user signs in, and "Authorize app"
POST /x/i/oauth2/authorize   the user's answer: 302 to `redirect_uri` with `code` and `state`
                             (or `error=access_denied` when they cancel)
POST /x/2/oauth2/token       `grant_type=authorization_code`: the client authenticates (HTTP
                             Basic), the code is single use and ten minutes old at most, the
                             `redirect_uri` is the one authorised, and `code_verifier` must hash
                             (S256) to the `code_challenge`; the answer's tokens are registered
                             for the user, so `GET /x/2/users/me` names them

GET  /linkedin/oauth/v2/authorization   LinkedIn's consent page: the member, and the
                             organisations they administer
POST /linkedin/oauth/v2/authorization   the answer (as X's)
POST /linkedin/oauth/v2/accessToken     `grant_type=authorization_code` (as X's exchange)
GET  /facebook/dialog/oauth  Facebook Login's consent page: the user, and the Pages they manage
POST /facebook/dialog/oauth  the answer (as X's)
GET  /facebook/oauth/access_token   `code` (client_id and client_secret in the query, PKCE
                             checked), or `grant_type=fb_exchange_token` for a long-lived token
GET  /facebook/me/accounts   the user's Pages, each with its own Page token
(any /vNN.N version segment, or none)

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


def _consent_page(state: State, req: Request, platform: str, action: str, extra: str) -> Reply:
    request = _check_request(state, platform, req.query)
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>" for k, v in request.items()
    )
    return _page(
        "Authorize app",
        f"<h1>Authorize Herald to use your account?</h1><p>Scopes: {html.escape(request['scope'])}</p>"
        f"<form method='post' action='{action}'>{hidden}"
        "<label>Signed in as <input id='user' name='user' required></label> "
        f"{extra}"
        "<button id='authorize' name='decision' value='allow'>Authorize app</button> "
        "<button id='cancel' name='decision' value='deny' formnovalidate>Cancel</button></form>",
    )


def x_authorize_page(state: State, req: Request) -> Outcome:
    return _consent_page(state, req, "x", "/x/i/oauth2/authorize", "")


def linkedin_authorization_page(state: State, req: Request) -> Outcome:
    orgs = "<label>Organisations you administer <input id='orgs' name='pages' placeholder='organisation ids, commas'></label> "
    return _consent_page(state, req, "linkedin", req.path, orgs)


def linkedin_authorization_decision(state: State, req: Request) -> Outcome:
    return _decision(state, req, "linkedin")


def facebook_dialog_page(state: State, req: Request) -> Outcome:
    pages = "<label>Pages you manage <input id='pages' name='pages' placeholder='page ids, commas'></label> "
    return _consent_page(state, req, "facebook", req.path, pages)


def x_authorize_decision(state: State, req: Request) -> Outcome:
    return _decision(state, req, "x")


def facebook_dialog_decision(state: State, req: Request) -> Outcome:
    return _decision(state, req, "facebook")


def _decision(state: State, req: Request, platform: str) -> Outcome:
    form = req.form()
    request = _check_request(state, platform, form)
    redirect = request["redirect_uri"]
    sep = "&" if "?" in redirect else "?"
    if form.get("decision") != "allow":
        return Reply(302, None, {"Location": redirect + sep + urlencode({"error": "access_denied", "state": request["state"]})})
    user = form.get("user", "").strip()
    if not user:
        raise BadRequest("user is required")
    code = secrets.token_urlsafe(24)
    pages = [p.strip() for p in form.get("pages", "").split(",") if p.strip()]
    state.put_code(platform, code, {**request, "user": user, "pages": pages, "issued": time.time()})
    return Reply(302, None, {"Location": redirect + sep + urlencode({"code": code, "state": request["state"]})})


def exchange_code(state: State, platform: str, req: Request, form: dict[str, str]) -> Outcome:
    """`grant_type=authorization_code` (the client already authenticated by the caller)."""
    code, verifier, redirect = form.get("code", ""), form.get("code_verifier", ""), form.get("redirect_uri", "")
    granted = state.take_code(platform, code)
    refusal = _pkce_refusal(granted, verifier, redirect)
    if refusal is not None or granted is None:
        return Reply(400, {"error": "invalid_grant", "error_description": refusal or "invalid code"})
    access, refresh = f"at-{secrets.token_hex(12)}", f"rt-{secrets.token_hex(12)}"
    # A LinkedIn token is its member's, who administers the organisations named at consent.
    user = f"urn:li:person:{granted['user']}" if platform == "linkedin" else granted["user"]
    state.set_token(platform, access, user)
    state.set_refresh_token(platform, refresh, user)
    if platform == "linkedin":
        state.set_linkedin_organizations(access, [f"urn:li:organization:{o}" for o in granted["pages"]])
    return Reply(200, {"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                       "expires_in": 7200, "scope": granted["scope"]})


def _pkce_refusal(granted: dict | None, verifier: str, redirect: str) -> str | None:
    if granted is None or time.time() - granted["issued"] > CODE_LIFETIME:
        return "the authorization code is invalid, expired or used"
    if redirect != granted["redirect_uri"]:
        return "redirect_uri does not match the authorization request"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if not verifier or not secrets.compare_digest(challenge, granted["code_challenge"]):
        return "the code_verifier does not match the code_challenge"
    return None


def _graph_error(status: int, message: str, code: int = 100) -> Reply:
    return Reply(status, {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "fake"}})


def facebook_access_token(state: State, req: Request) -> Outcome:
    """The code for a short-lived user token, or that for a long-lived one."""
    q = req.query
    client = state.oauth_client("facebook")
    if client is None or q.get("client_id") != client[0] or not secrets.compare_digest(q.get("client_secret", ""), client[1]):
        return _graph_error(400, "Error validating client secret.", 1)
    if q.get("grant_type") == "fb_exchange_token":
        known = state.facebook_user(q.get("fb_exchange_token", ""))
        if known is None:
            return _graph_error(400, "Invalid OAuth access token.", 190)
        token = f"fbl-{secrets.token_hex(12)}"
        state.set_facebook_user(token, *known)
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 5183944})
    granted = state.take_code("facebook", q.get("code", ""))
    refusal = _pkce_refusal(granted, q.get("code_verifier", ""), q.get("redirect_uri", ""))
    if refusal is not None or granted is None:
        return _graph_error(400, refusal or "invalid code")
    token = f"fbu-{secrets.token_hex(12)}"
    state.set_facebook_user(token, granted["user"], granted["pages"])
    return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})


def facebook_my_pages(state: State, req: Request) -> Outcome:
    """GET /me/accounts: the Pages the user manages, each with a fresh Page token that the fake
    then knows as that Page's."""
    token = req.bearer() or req.param("access_token") or ""
    known = state.facebook_user(token)
    if known is None:
        return _graph_error(401, "Invalid OAuth access token.", 190)
    data = []
    for page in known[1]:
        page_token = f"fbp-{page}-{secrets.token_hex(8)}"
        state.set_token("facebook", page_token, page)
        data.append({"id": page, "name": f"Page {page}", "access_token": page_token, "category": "Brand"})
    return Reply(200, {"data": data, "paging": {"cursors": {"before": "b", "after": "a"}}})
