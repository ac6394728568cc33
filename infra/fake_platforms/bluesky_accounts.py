"""Bluesky accounts and their sessions (`State.bluesky`): the handle, DID and app password
each account is seeded with (`POST /_admin/bluesky/accounts`), and the access and refresh
JWTs that `com.atproto.server.createSession` and `refreshSession` hand out."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass

#: How long an access JWT lives (seconds), as the PDS's two hours; a refresh JWT, 90 days.
ACCESS_TTL = 7200.0
REFRESH_TTL = 90 * 86400.0


@dataclass
class Account:
    did: str
    handle: str
    password: str  # the app password
    access_ttl: float = ACCESS_TTL

    def view(self) -> dict[str, object]:
        """What the admin API shows: never the password."""
        return {"did": self.did, "handle": self.handle, "access_ttl_seconds": self.access_ttl}


@dataclass
class Session:
    did: str
    kind: str  # "access" or "refresh"
    expires: float  # epoch seconds


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def make_jwt(did: str, kind: str, expires: float, now: float) -> str:
    """An opaque token shaped like the PDS's JWTs (its claims are real; the signature is not)."""
    scope = "com.atproto.access" if kind == "access" else "com.atproto.refresh"
    claims: dict[str, object] = {"scope": scope, "sub": did, "iat": int(now), "exp": int(expires)}
    if kind == "refresh":
        claims["jti"] = secrets.token_urlsafe(16)
    header = {"typ": "at+jwt" if kind == "access" else "refresh+jwt", "alg": "ES256K"}
    return f"{_b64(header)}.{_b64(claims)}.{secrets.token_urlsafe(48)}"


class BlueskyAccounts:
    """Accounts and live sessions, behind their own lock; `clear` is part of `State.reset`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}  # by DID
        self._sessions: dict[str, Session] = {}  # by token
        self._sessions_created = 0
        #: What a create of an existing record answers: "internal_error" (the 500 the
        #: reference PDS serves) or "invalid_request" (400 InvalidRequest).
        self.duplicate_answer = "internal_error"

    def clear(self) -> None:
        with self._lock:
            self._accounts = {}
            self._sessions = {}
            self._sessions_created = 0
            self.duplicate_answer = "internal_error"

    def add(self, account: Account) -> None:
        """Adds or replaces an account (a handle names one account only)."""
        with self._lock:
            self._accounts = {
                d: a for d, a in self._accounts.items() if a.handle != account.handle and d != account.did
            }
            self._accounts[account.did] = account

    def accounts(self) -> list[Account]:
        with self._lock:
            return list(self._accounts.values())

    def resolve(self, repo: str) -> Account | None:
        """The account a `repo` parameter (a DID or a handle) names."""
        with self._lock:
            found = self._accounts.get(repo)
            if found is None:
                found = next((a for a in self._accounts.values() if a.handle == repo.lower()), None)
            return found

    def login(self, identifier: str, password: str) -> Account | None:
        account = self.resolve(identifier.removeprefix("@"))
        if account is None or not hmac.compare_digest(account.password, password):
            return None
        return account

    def open_session(self, account: Account) -> tuple[str, str]:
        """A new access and refresh JWT for the account."""
        now = time.time()
        access_exp, refresh_exp = now + account.access_ttl, now + REFRESH_TTL
        access = make_jwt(account.did, "access", access_exp, now)
        refresh = make_jwt(account.did, "refresh", refresh_exp, now)
        with self._lock:
            self._sessions[access] = Session(account.did, "access", access_exp)
            self._sessions[refresh] = Session(account.did, "refresh", refresh_exp)
            self._sessions_created += 1
        return access, refresh

    def session(self, token: str) -> Session | None:
        with self._lock:
            return self._sessions.get(token)

    def rotate(self, refresh: str) -> Account | None:
        """Spends a refresh JWT (it is single use); the account it was for, if it still lived."""
        with self._lock:
            session = self._sessions.get(refresh)
            if session is None or session.kind != "refresh" or session.expires <= time.time():
                return None
            session.expires = 0  # spent: shown again, it is "revoked", not unknown
            return self._accounts.get(session.did)

    def expire(self, did: str) -> int:
        """Ends the access JWTs of an account now (as if two hours had passed)."""
        with self._lock:
            expired = 0
            for session in self._sessions.values():
                if session.did == did and session.kind == "access":
                    session.expires = 0
                    expired += 1
            return expired

    def tokens(self, did: str) -> list[dict[str, str]]:
        """Every JWT issued to the account (for the tests' log scan: the fake is the outside
        world, and Herald must never log what it was given)."""
        with self._lock:
            return [{"kind": s.kind, "token": t} for t, s in self._sessions.items() if s.did == did]

    def sessions_created(self) -> int:
        with self._lock:
            return self._sessions_created
