#!/usr/bin/env python3
"""Fake X, Facebook, LinkedIn and SMS-provider APIs for Herald's local end-to-end tests.

One HTTP server (Python 3.11, standard library only) speaks each platform's request and
response shapes under its own path prefix, keeps everything it receives in memory, and
injects faults on demand:

    /x          X API v2            POST /x/2/tweets, GET /x/2/users/{id}/tweets,
                                    POST /x/2/media/upload (multipart `media`, `media_category`),
                                    POST /x/2/oauth2/token (grant_type=refresh_token; rotates it)
    /facebook   Graph API           POST /facebook/v21.0/{page}/feed, GET .../{page}/feed|posts,
                                    POST .../{page}/photos (multipart `source`, published=false),
                                    POST .../{page}/videos (multipart `source`, `description`:
                                    the video is the post)
                                    (any /vNN.N version segment, or none)
    /linkedin   LinkedIn REST       POST /linkedin/rest/posts, GET /linkedin/rest/posts?q=author,
                                    POST /linkedin/rest/images|documents?action=initializeUpload,
                                    then PUT the bytes to the `uploadUrl` it returns,
                                    POST /linkedin/oauth/v2/accessToken (grant_type=refresh_token)
    /sms        a generic provider  POST /sms/messages
    /sinks      Slack-style alert and outbound-webhook receivers: POST /sinks/{name}
    /_admin     assertions and fault injection (see the handlers under "Admin API" below),
                and timeline seeding for ingestion (`/_admin/timeline`, its own section);
                GET .../{page}/insights (Page insights, `/_admin/insights`, its own section)

Run it with

    python infra/fake_platforms.py --host 127.0.0.1 --port 4580

(`--port 0` picks a free port). Once bound it prints exactly one line,
`listening on http://HOST:PORT`, to stdout; every request is logged to stderr as one JSON line
(method, path without the query string, status, platform). Tokens, Authorization headers and
message contents are never logged. From Python (e.g. in tests) use `make_server(host, port)`
and call `serve_forever()` on the result in a thread.

Behaviour shared by the platforms, in the order a create request meets it:

1. fault rules (`POST /_admin/faults`): the first rule that matches and fires applies; its
   latency is slept, then a status fault answers without creating anything;
2. the token: missing, or starting with `revoked`, gives the platform's auth error;
3. the account (X: the user the token belongs to; Facebook: the page in the path; LinkedIn:
   the id at the end of the author URN; SMS: the `from` number) and its fixed-window rate
   limit: over the limit gives the platform's rate-limit answer;
4. content validation, then the post is created and recorded; an `ambiguous` fault then
   drops the connection instead of answering.

Only requests that get past step 3 count toward the rate-limit window (successful creates,
ambiguous ones included, and validation errors for a known account); injected status
faults, auth failures and the refusals for the limit itself do not.

Media uploads meet the fault rules whose `endpoints` is `upload` or `all` and the token check,
but no rate limit; an `ambiguous` fault stores the upload and drops the answer. A post may
only refer to media its account uploaded (and, on LinkedIn, whose bytes arrived); what was
uploaded (size, SHA-256, content type) is listed by `GET /_admin/media`, and each post lists
the media it refers to.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import math
import random
import re
import signal
import socket
import string
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlencode, urlsplit

PLATFORMS = ("x", "facebook", "linkedin", "sms")

#: (requests, window in seconds) per (platform, account) until `POST /_admin/limits`.
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "x": (300, 900),
    "facebook": (200, 3600),
    "linkedin": (500, 86400),
    "sms": (1000, 60),
}

MAX_BODY_BYTES = 1 << 20
#: Media uploads may be larger than any other request.
MAX_UPLOAD_BYTES = 64 << 20

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def rfc3339_ms(epoch: float) -> str:
    """`2025-01-31T12:00:00.123Z`."""
    stamp = datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def graph_time(epoch: float) -> str:
    """The Graph API's `2025-01-31T12:00:00+0000`."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(f"c:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "c":
            raise ValueError(cursor)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(f"invalid cursor {cursor!r}") from None


def is_revoked(token: str) -> bool:
    return token.startswith("revoked")


class BadRequest(Exception):
    """The request cannot be understood; answered 400 in the endpoint's error shape."""


@dataclass
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def parse_multipart(content_type: str | None, body: bytes) -> dict[str, FormPart]:
    """A multipart/form-data body, byte for byte (binary parts are never re-encoded)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not (content_type or "").lower().startswith("multipart/form-data") or match is None:
        raise BadRequest("expected a multipart/form-data body with a boundary")
    delimiter = b"--" + match.group(1).encode()
    sections = body.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise BadRequest("malformed multipart body: no closing boundary")
    parts: dict[str, FormPart] = {}
    for section in sections[1:-1]:
        head, sep, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep or not data.endswith(b"\r\n"):
            raise BadRequest("malformed multipart part")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        if name is None:
            raise BadRequest("a multipart part has no name")
        filename = re.search(r'filename="([^"]*)"', disposition)
        parts[name.group(1)] = FormPart(
            name.group(1), data[:-2], filename.group(1) if filename else None,
            headers.get("content-type"),
        )
    return parts


# --------------------------------------------------------------------------------------------
# Requests and replies
# --------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    host: str
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None

    def param(self, name: str) -> str | None:
        """A query parameter; empty counts as absent."""
        return self.query.get(name) or None

    def int_param(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.param(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be an integer") from None
        if not low <= value <= high:
            raise BadRequest(f"{name} must be between {low} and {high}")
        return value

    def json(self) -> Any:
        if not self.body.strip():
            raise BadRequest("the request body is empty; expected JSON")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequest(f"malformed JSON: {e}") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise BadRequest("expected a JSON object")
        return data

    def form(self) -> dict[str, str]:
        """Form fields (or a JSON object's string fields, which the Graph API accepts too)."""
        if "json" in self.headers.get("Content-Type", "").lower():
            return {k: v for k, v in self.json_object().items() if isinstance(v, str)}
        text = self.body.decode("utf-8", errors="replace")
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-serialisable; None sends an empty body
    headers: dict[str, str] = field(default_factory=dict)


class Drop:
    """No answer at all: the connection is closed as if the response were lost."""


DROP = Drop()
Outcome = Reply | Drop


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class Post:
    seq: int
    platform: str
    account: str
    text: str
    id: str
    created: float
    author: str | None = None  # LinkedIn's author URN
    media: list[str] = field(default_factory=list)  # the media ids (URNs) it refers to
    # Timeline seeding: fields a listing shows differently (None: left out), and why.
    overrides: dict[str, Any] = field(default_factory=dict)
    malformed: str | None = None

    def admin_view(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "platform": self.platform,
            "account": self.account,
            "text": self.text,
            "id": self.id,
            "media": list(self.media),
            "time": rfc3339_ms(self.created),
        }


@dataclass
class Media:
    """An upload: a file a post may then refer to. `seq` shares the posts' arrival order."""

    seq: int
    platform: str
    account: str
    id: str
    kind: str  # image, gif, video or document
    created: float
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    upload_token: str | None = None  # LinkedIn: where its bytes are PUT

    @property
    def uploaded(self) -> bool:
        return self.sha256 is not None

    def receive(self, content: bytes, content_type: str | None) -> None:
        self.content_type = content_type
        self.size = len(content)
        self.sha256 = hashlib.sha256(content).hexdigest()

    def admin_view(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "platform": self.platform,
            "account": self.account,
            "id": self.id,
            "kind": self.kind,
            "content_type": self.content_type,
            "bytes": self.size,
            "sha256": self.sha256,
            "uploaded": self.uploaded,
            "time": rfc3339_ms(self.created),
        }


@dataclass
class Limit:
    limit: int
    window_seconds: float


@dataclass
class Window:
    start: float
    count: int = 0


@dataclass(frozen=True)
class Usage:
    """One (platform, account) fixed window as a client sees it."""

    limit: int
    used: int
    reset: float  # epoch seconds at which the window ends

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset - time.time()))


FAULT_FIELDS = frozenset(
    {
        "platform",
        "account",
        "status",
        "error_code",
        "message",
        "retry_after",
        "latency_ms",
        "ambiguous",
        "rate",
        "count",
        "seed",
        "endpoints",
    }
)


@dataclass
class FaultRule:
    platform: str
    id: str = ""
    account: str | None = None
    status: int | None = None
    error_code: int | None = None
    message: str | None = None
    retry_after: float | None = None
    latency_ms: float = 0
    ambiguous: bool = False
    rate: float = 1.0
    count: int | None = None
    seed: int | None = None
    endpoints: str = "create"  # "upload": media uploads only; "all": listings and uploads too
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def spent(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def matches(self, platform: str, account: str | None, endpoint: str) -> bool:
        return (
            not self.spent
            and self.platform == platform
            and (self.account is None or self.account == account)
            and self.endpoints in ("all", endpoint)
        )

    def view(self) -> dict[str, Any]:
        fields = {
            "id": self.id,
            "platform": self.platform,
            "account": self.account,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms or None,
            "ambiguous": self.ambiguous or None,
            "rate": self.rate,
            "count": self.count,
            "seed": self.seed,
            "endpoints": self.endpoints,
        }
        view = {k: v for k, v in fields.items() if v is not None}
        view["fired"] = self.fired
        return view


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if value is None:
        return None
    # bool is an int in Python; never accept it where a number is meant.
    if isinstance(value, bool) and kind is not bool:
        raise BadRequest(f"{name} must be {_kind_name(kind)}")
    if not isinstance(value, kind):
        raise BadRequest(f"{name} must be {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names: dict[Any, str] = {bool: "a boolean", str: "a string", int: "an integer"}
    return names.get(kind, "a number")


def _number(
    data: dict[str, Any], name: str, low: float, high: float, integer: bool = False
) -> Any:
    value = _field(data, name, int if integer else (int, float))
    if value is not None and not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def parse_fault_rule(data: Any) -> FaultRule:
    """A rule from `POST /_admin/faults`; raises BadRequest naming the first problem."""
    if not isinstance(data, dict):
        raise BadRequest("a fault rule is a JSON object")
    unknown = sorted(set(data) - FAULT_FIELDS)
    if unknown:
        raise BadRequest(f"unknown fault rule field(s): {', '.join(unknown)}")
    platform = data.get("platform")
    if platform not in PLATFORMS:
        raise BadRequest(f"platform is required and must be one of {', '.join(PLATFORMS)}")
    endpoints = _field(data, "endpoints", str) or "create"
    if endpoints not in ("create", "upload", "oauth", "all"):
        raise BadRequest('endpoints must be "create", "upload", "oauth" or "all"')
    rate = _number(data, "rate", 0, 1)
    seed = _number(data, "seed", -(2**63), 2**63, integer=True)
    rule = FaultRule(
        platform=platform,
        account=_field(data, "account", str),
        status=_number(data, "status", 400, 599, integer=True),
        error_code=_number(data, "error_code", -(2**31), 2**31, integer=True),
        message=_field(data, "message", str),
        retry_after=_number(data, "retry_after", 0, 7 * 86400),
        latency_ms=_number(data, "latency_ms", 0, 600_000) or 0,
        ambiguous=bool(_field(data, "ambiguous", bool)),
        rate=1.0 if rate is None else float(rate),
        count=_number(data, "count", 0, 2**31, integer=True),
        seed=seed,
        endpoints=endpoints,
        rng=random.Random(seed),
    )
    if rule.status is not None and rule.ambiguous:
        raise BadRequest("status and ambiguous exclude each other")
    if rule.status is None and not rule.ambiguous and not rule.latency_ms:
        raise BadRequest("a fault rule needs at least one of status, ambiguous or latency_ms")
    return rule


@dataclass
class Sink:
    statuses: list[int] = field(default_factory=list)
    retry_after: float | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)


class State:
    """Everything the fake remembers, behind one lock. Ids keep increasing across resets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sequences: dict[str, int] = {}
        self._posts: list[Post] = []
        self._media: list[Media] = []
        self._faults: list[FaultRule] = []
        self._tokens: dict[tuple[str, str], str] = {}
        self._refresh_tokens: dict[tuple[str, str], str] = {}
        self._refreshes: dict[tuple[str, str], int] = {}
        # The app's OAuth clients per platform: configuration, so a reset keeps them.
        self._oauth_clients: dict[str, tuple[str, str]] = {}
        self._limits: dict[str, Limit] = {}
        self._windows: dict[tuple[str, str], Window] = {}
        self._sinks: dict[str, Sink] = {}
        self._insights: dict[str, list[InsightValue]] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._posts = []
            self._media = []
            self._faults = []
            self._tokens = {}
            self._refresh_tokens = {}
            self._refreshes = {}
            self._limits = {p: Limit(*DEFAULT_LIMITS[p]) for p in PLATFORMS}
            self._windows = {}
            self._sinks = {}
            self._insights = {}

    def _next(self, name: str) -> int:
        """The next number of a sequence; the caller holds the lock."""
        self._sequences[name] = self._sequences.get(name, 0) + 1
        return self._sequences[name]

    # posts

    def add_post(
        self,
        platform: str,
        account: str,
        text: str,
        make_id: Callable[[int, str], str],
        author: str | None = None,
        media: list[str] | None = None,
    ) -> Post:
        with self._lock:
            post_id = make_id(self._next(platform), account)
            post = Post(
                self._next("post"), platform, account, text, post_id, time.time(), author,
                list(media or []),
            )
            self._posts.append(post)
            return post

    # Page insights

    def set_insights(self, page: str, values: list[InsightValue]) -> None:
        with self._lock:
            self._insights[page] = list(values)

    def insights(self, page: str) -> list[InsightValue]:
        with self._lock:
            return list(self._insights.get(page, []))

    # media

    def add_media(
        self,
        platform: str,
        account: str,
        kind: str,
        make_id: Callable[[int], str],
        content: bytes | None,
        content_type: str | None,
    ) -> Media:
        """Stores an upload; without `content` it waits for its bytes under an upload token."""
        with self._lock:
            media = Media(
                self._next("post"), platform, account, make_id(self._next(f"{platform}-media")),
                kind, time.time(),
            )
            if content is None:
                media.upload_token = "up" + "".join(random.choices(string.ascii_letters + string.digits, k=24))
            else:
                media.receive(content, content_type)
            self._media.append(media)
            return media

    def receive_upload(self, token: str, content: bytes, content_type: str | None) -> Media | None:
        with self._lock:
            for media in self._media:
                if media.upload_token == token:
                    media.receive(content, content_type)
                    return media
            return None

    def media_by_token(self, token: str) -> Media | None:
        with self._lock:
            return next((m for m in self._media if m.upload_token == token), None)

    def find_media(self, platform: str, media_id: str) -> Media | None:
        with self._lock:
            return next((m for m in self._media if m.platform == platform and m.id == media_id), None)

    def media(self, platform: str | None = None, account: str | None = None) -> list[Media]:
        """In arrival order; each filter is an exact match when given."""
        with self._lock:
            return [
                m
                for m in self._media
                if (platform is None or m.platform == platform)
                and (account is None or m.account == account)
            ]

    def posts(
        self, platform: str | None = None, account: str | None = None, author: str | None = None
    ) -> list[Post]:
        """In arrival order; each filter is an exact match when given."""
        with self._lock:
            return [
                p
                for p in self._posts
                if (platform is None or p.platform == platform)
                and (account is None or p.account == account)
                and (author is None or p.author == author)
            ]

    # faults

    def add_fault(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = f"flt_{self._next('fault')}"
            self._faults.append(rule)
            return rule

    def fault_views(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.view() for rule in self._faults]

    def clear_faults(self) -> int:
        with self._lock:
            cleared, self._faults = len(self._faults), []
            return cleared

    def remove_fault(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) < before

    def pick_fault(self, platform: str, account: str | None, endpoint: str) -> FaultRule | None:
        """The first rule, in insertion order, that matches and fires (its `rate`)."""
        with self._lock:
            for rule in self._faults:
                if rule.matches(platform, account, endpoint) and rule.rng.random() < rule.rate:
                    rule.fired += 1
                    return rule
            return None

    # tokens

    def set_token(self, platform: str, token: str, account: str) -> None:
        with self._lock:
            self._tokens[(platform, token)] = account

    def set_refresh_token(self, platform: str, token: str, account: str) -> None:
        with self._lock:
            self._refresh_tokens[(platform, token)] = account

    def revoke_refresh_tokens(self, platform: str, account: str) -> int:
        with self._lock:
            dead = [k for k, a in self._refresh_tokens.items() if k[0] == platform and a == account]
            for k in dead:
                del self._refresh_tokens[k]
            return len(dead)

    def refresh(self, platform: str, refresh_token: str) -> tuple[str, str, str] | None:
        """Rotates a refresh token: the old one dies, a new access and refresh token are
        registered for its account. `None`: the refresh token is unknown (`invalid_grant`)."""
        with self._lock:
            account = self._refresh_tokens.pop((platform, refresh_token), None)
            if account is None:
                return None
            n = self._refreshes.get((platform, account), 0) + 1
            self._refreshes[(platform, account)] = n
            salt = hashlib.sha256(f"{refresh_token}:{n}:{time.time()}".encode()).hexdigest()[:12]
            access, new_refresh = f"at-{account}-{n}-{salt}", f"rt-{account}-{n}-{salt}"
            self._tokens[(platform, access)] = account
            self._refresh_tokens[(platform, new_refresh)] = account
            return account, access, new_refresh

    def set_oauth_client(self, platform: str, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._oauth_clients[platform] = (client_id, client_secret)

    def oauth_client(self, platform: str) -> tuple[str, str] | None:
        with self._lock:
            return self._oauth_clients.get(platform)

    def refresh_counts(self) -> dict[str, int]:
        with self._lock:
            return {f"{p}:{a}": n for (p, a), n in self._refreshes.items()}

    def account_for_token(self, platform: str, token: str) -> str:
        with self._lock:
            account = self._tokens.get((platform, token))
        return account or "token-" + hashlib.sha256(token.encode()).hexdigest()[:12]

    # rate limits

    def set_limit(self, platform: str, limit: int, window_seconds: float) -> None:
        """Also starts fresh windows for the platform."""
        with self._lock:
            self._limits[platform] = Limit(limit, window_seconds)
            self._windows = {k: w for k, w in self._windows.items() if k[0] != platform}

    def limits(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                p: {"limit": l.limit, "window_seconds": l.window_seconds}
                for p, l in self._limits.items()
            }

    def _usage(self, platform: str, account: str | None, now: float, keep: bool) -> tuple[Window, Usage]:
        limit = self._limits[platform]
        key = (platform, account or "")
        window = self._windows.get(key) if account is not None else None
        if window is None or now >= window.start + limit.window_seconds:
            window = Window(now)
            if keep and account is not None:
                self._windows[key] = window
        return window, Usage(limit.limit, window.count, window.start + limit.window_seconds)

    def acquire(self, platform: str, account: str) -> tuple[bool, Usage]:
        """Counts one request in the account's window unless the window is full."""
        with self._lock:
            window, usage = self._usage(platform, account, time.time(), keep=True)
            if usage.exhausted:
                return False, usage
            window.count += 1
            return True, Usage(usage.limit, window.count, usage.reset)

    def peek(self, platform: str, account: str | None) -> Usage:
        with self._lock:
            return self._usage(platform, account, time.time(), keep=False)[1]

    # sinks

    def record_sink(self, name: str, headers: dict[str, str], body: str) -> tuple[int, float | None]:
        """Records a delivery; returns the scripted status (200 once the script runs out)."""
        with self._lock:
            sink = self._sinks.setdefault(name, Sink())
            sink.requests.append(
                {"name": name, "headers": headers, "body": body, "time": rfc3339_ms(time.time())}
            )
            status = sink.statuses.pop(0) if sink.statuses else 200
            return status, sink.retry_after

    def script_sink(self, name: str, statuses: list[int], retry_after: float | None) -> None:
        with self._lock:
            sink = self._sinks.setdefault(name, Sink())
            sink.statuses, sink.retry_after = list(statuses), retry_after

    def sink_requests(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            sink = self._sinks.get(name)
            return [dict(r) for r in sink.requests] if sink else []


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


class XPlatform(Platform):
    name = "x"
    ID_BASE = 1_790_000_000_000_000_000  # 19 digits, like a snowflake id
    MESSAGES = {88: "Rate limit exceeded"}

    def parse_publish(self, state: State, req: Request) -> Draft:
        token = req.bearer()
        draft = Draft(account=state.account_for_token("x", token) if token else None)
        try:
            body = req.json_object()
        except BadRequest as e:
            draft.problem = str(e)
            return draft
        text = body.get("text")
        media = body.get("media", {})
        ids = media.get("media_ids", []) if isinstance(media, dict) else None
        if not isinstance(text, str) or not text:
            draft.problem = "The `text` field is required and must be a non-empty string."
        elif not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 4:
            draft.problem = "`media.media_ids` must be a list of at most 4 media id strings."
        else:
            draft.text = text
            draft.media = ids
        return draft

    def new_id(self, n: int, account: str) -> str:
        return str(self.ID_BASE + n)

    def new_media_id(self, n: int) -> str:
        return str(self.ID_BASE + 500_000_000 + n)

    def created(self, post: Post) -> Reply:
        return Reply(
            201, {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}}
        )

    def error(self, status: int, code: int | None = None, message: str | None = None) -> Reply:
        detail = message or self.MESSAGES.get(code or 0) or phrase(status)
        body: dict[str, Any] = {
            "title": phrase(status),
            "detail": detail,
            "type": "about:blank",
            "status": status,
        }
        if code is not None:
            body = {"errors": [{"code": code, "message": detail}], **body}
        return Reply(status, body)

    def limit_error(self, usage: Usage) -> Reply:
        return self.error(429, 88)  # the usage headers say remaining 0 and when it resets

    def fault_error(self, rule: FaultRule) -> Reply:
        reply = super().fault_error(rule)
        if rule.retry_after is not None:
            reply.headers["x-rate-limit-remaining"] = "0"
            reply.headers["x-rate-limit-reset"] = str(math.ceil(time.time() + rule.retry_after))
        return reply

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(usage.limit),
            "x-rate-limit-remaining": str(usage.remaining),
            "x-rate-limit-reset": str(math.ceil(usage.reset)),
        }


class FacebookPlatform(Platform):
    name = "facebook"
    ID_BASE = 1_000_000_000_000_000
    TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613})
    MESSAGES = {
        1: "An unknown error has occurred.",
        2: "An unexpected error has occurred. Please retry your request later.",
        4: "(#4) Application request limit reached",
        17: "(#17) User request limit reached",
        32: "(#32) Page request limit reached",
        100: "(#100) Invalid parameter",
        190: "Error validating access token: The session has been invalidated because the "
        "user changed their password or Facebook has changed the session for security reasons.",
        200: "(#200) Permissions error",
        613: "(#613) Calls to this api have exceeded the rate limit.",
    }

    def token(self, req: Request) -> str | None:
        token = req.bearer() or req.param("access_token")
        if token is None and req.method == "POST":
            try:
                token = req.form().get("access_token") or None
            except BadRequest:
                token = None
        return token

    @staticmethod
    def default_code(status: int) -> int:
        if status >= 500:
            return 2 if status == 503 else 1
        return {401: 190, 403: 200, 429: 4}.get(status, 100)

    def parse_publish(self, state: State, req: Request) -> Draft:
        draft = Draft(account=req.params["page"])
        try:
            form = req.form()
        except BadRequest as e:
            draft.problem = str(e)
            return draft
        message = form.get("message")
        attached = sorted(
            (int(m["i"]), v) for k, v in form.items() if (m := re.fullmatch(r"attached_media\[(?P<i>\d+)\]", k))
        )
        try:
            media = [json.loads(v)["media_fbid"] for _, v in attached]
        except (ValueError, KeyError, TypeError):
            draft.problem = "(#100) attached_media must be objects like {\"media_fbid\": \"...\"}"
            return draft
        if not message:
            draft.problem = "(#100) The parameter message is required"
        else:
            draft.text = message
            draft.media = [str(m) for m in media]
        return draft

    def new_id(self, n: int, account: str) -> str:
        return f"{account}_{self.ID_BASE + n}"

    def new_media_id(self, n: int) -> str:
        return str(self.ID_BASE + 500_000_000 + n)

    def created(self, post: Post) -> Reply:
        return Reply(200, {"id": post.id})

    def error(
        self,
        status: int,
        code: int | None = None,
        message: str | None = None,
        subcode: int | None = None,
    ) -> Reply:
        code = self.default_code(status) if code is None else code
        error: dict[str, Any] = {
            "message": message or self.MESSAGES.get(code) or phrase(status),
            "type": "OAuthException",
            "code": code,
            "is_transient": code in self.TRANSIENT_CODES,
            "fbtrace_id": "A" + "".join(random.choices(string.ascii_letters + string.digits, k=22)),
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        reply = Reply(status, {"error": error})
        if code == 4:
            reply.headers["X-App-Usage"] = self.app_usage(100)
        return reply

    def auth_error(self, missing: bool) -> Reply:
        if missing:
            return self.error(400, 190, "An active access token must be used to query "
                              "information about the current user.")
        return self.error(400, 190, subcode=460)

    def limit_error(self, usage: Usage) -> Reply:
        return self.error(400, 4)

    @staticmethod
    def app_usage(percent: int) -> str:
        usage = {"call_count": percent, "total_cputime": percent, "total_time": percent}
        return json.dumps(usage, separators=(",", ":"))

    def usage_headers(self, usage: Usage) -> dict[str, str]:
        percent = 100 if usage.exhausted else min(100, usage.used * 100 // usage.limit)
        return {"X-App-Usage": self.app_usage(percent)}


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
        else:
            draft.text = commentary
            draft.media = media
        return draft

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


class SmsPlatform(Platform):
    name = "sms"

    def parse_publish(self, state: State, req: Request) -> Draft:
        try:
            body = req.json_object()
        except BadRequest as e:
            return Draft(account=None, problem=str(e))
        sender, to, text = body.get("from"), body.get("to"), body.get("body")
        draft = Draft(account=sender if isinstance(sender, str) and sender else None)
        if draft.account is None or not all(isinstance(v, str) and v for v in (to, text)):
            draft.problem = "`to`, `from` and `body` are required non-empty strings"
        else:
            draft.text = text
        return draft

    def new_id(self, n: int, account: str) -> str:
        return f"sm_{n}"

    def created(self, post: Post) -> Reply:
        return Reply(201, {"id": post.id, "status": "queued"})

    def error(self, status: int, code: int | None = None, message: str | None = None) -> Reply:
        return Reply(
            status, {"status": status, "code": status if code is None else code,
                     "message": message or phrase(status)}
        )


X, FACEBOOK, LINKEDIN, SMS = XPlatform(), FacebookPlatform(), LinkedInPlatform(), SmsPlatform()


def _gate(
    state: State, platform: Platform, req: Request, account: str | None, endpoint: str
) -> tuple[FaultRule | None, Reply | None]:
    """Fault rules (latency, then a status), then the request's headers and token."""
    rule = state.pick_fault(platform.name, account, endpoint)
    if rule is not None and rule.latency_ms:
        time.sleep(rule.latency_ms / 1000)
    if rule is not None and rule.status is not None:
        return rule, platform.fault_error(rule)
    return rule, platform.precheck(req) or platform.check_token(req)


def publish(state: State, platform: Platform, req: Request) -> Outcome:
    draft = platform.parse_publish(state, req)
    rule, refusal = _gate(state, platform, req, draft.account, "create")
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
    post = state.add_post(
        platform.name, draft.account, draft.text, platform.new_id, draft.author, draft.media
    )
    if rule is not None and rule.ambiguous:
        return DROP
    return platform.created(post)


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
# Platform endpoints
# --------------------------------------------------------------------------------------------


def x_create_tweet(state: State, req: Request) -> Outcome:
    return publish(state, X, req)


X_MEDIA_CATEGORIES = {"tweet_image": ("image", "3"), "tweet_gif": ("gif", "16"), "tweet_video": ("video", "7")}


def x_media_upload(state: State, req: Request) -> Outcome:
    token = req.bearer()
    account = state.account_for_token("x", token) if token else None

    def store() -> Reply:
        parts = parse_multipart(req.header("Content-Type"), req.body)
        media, category = parts.get("media"), parts.get("media_category")
        kind = X_MEDIA_CATEGORIES.get(category.text if category else "tweet_image")
        if media is None or not media.data:
            raise BadRequest("The `media` field is required.")
        if kind is None:
            raise BadRequest(f"media_category must be one of {', '.join(X_MEDIA_CATEGORIES)}")
        assert account is not None  # the token check passed
        stored = state.add_media("x", account, kind[0], X.new_media_id, media.data, media.content_type)
        return Reply(200, {"data": {
            "id": stored.id,
            "media_key": f"{kind[1]}_{stored.id}",
            "size": stored.size,
            "expires_after_secs": 86400,
        }})

    return upload(state, X, req, account, store)


def x_user_tweets(state: State, req: Request) -> Outcome:
    user = req.params["id"]

    def render() -> Reply:
        max_results = req.int_param("max_results", 10, 5, 100)
        tweets = list(reversed(state.posts("x", user)))[:X_TIMELINE_WINDOW]
        if since_id := req.param("since_id"):
            if not since_id.isdigit():
                raise BadRequest("since_id must be a tweet id")
            tweets = [t for t in tweets if int(t.id) > int(since_id)]
        if token := req.param("pagination_token"):
            newest = decode_cursor(token)
            tweets = [t for t in tweets if int(t.id) <= newest]
        page, rest = tweets[:max_results], tweets[max_results:]
        meta: dict[str, Any] = {"result_count": len(page)}
        body: dict[str, Any] = {}
        if page:  # like X, an empty page has no `data` at all
            body["data"] = [
                as_listed(t, {"id": t.id, "text": t.text, "created_at": rfc3339_ms(t.created)})
                for t in page
            ]
            meta.update(newest_id=page[0].id, oldest_id=page[-1].id)
        if rest:
            meta["next_token"] = encode_cursor(int(rest[0].id))
        body["meta"] = meta
        return Reply(200, body)

    return list_posts(state, X, req, user, render)


def facebook_create_post(state: State, req: Request) -> Outcome:
    return publish(state, FACEBOOK, req)


def facebook_upload_photo(state: State, req: Request) -> Outcome:
    page = req.params["page"]

    def store() -> Reply:
        parts = parse_multipart(req.header("Content-Type"), req.body)
        source, published = parts.get("source"), parts.get("published")
        if source is None or not source.data:
            raise BadRequest("(#100) The parameter source is required")
        if published is None or published.text != "false":
            raise BadRequest("(#100) this fake only takes unpublished photos (published=false) "
                             "to attach to a feed post")
        stored = state.add_media("facebook", page, "image", FACEBOOK.new_media_id, source.data,
                                 source.content_type)
        return Reply(200, {"id": stored.id})

    return upload(state, FACEBOOK, req, page, store)


def facebook_create_video(state: State, req: Request) -> Outcome:
    """A Page video is itself a post (its description is the post's text): it meets what any
    create meets, rate window included."""
    page = req.params["page"]
    draft = Draft(account=page)
    source: FormPart | None = None
    try:
        parts = parse_multipart(req.header("Content-Type"), req.body)
        source = parts.get("source")
        description = parts.get("description")
        if source is None or not source.data:
            draft.problem = "(#100) The parameter source is required"
        else:
            draft.text = description.text if description else ""
    except BadRequest as e:
        draft.problem = str(e)
    rule, refusal = _gate(state, FACEBOOK, req, page, "create")
    if refusal is not None:
        return FACEBOOK.finish(state, page, refusal)
    allowed, usage = state.acquire("facebook", page)
    if not allowed:
        return FACEBOOK.finish(state, page, FACEBOOK.limit_error(usage))
    if draft.problem is not None or draft.text is None or source is None:
        return FACEBOOK.finish(state, page, FACEBOOK.invalid(draft.problem or "nothing to publish"))
    video = state.add_media("facebook", page, "video", FACEBOOK.new_media_id, source.data,
                            source.content_type)
    state.add_post("facebook", page, draft.text, FACEBOOK.new_id, media=[video.id])
    if rule is not None and rule.ambiguous:
        return DROP
    return FACEBOOK.finish(state, page, Reply(200, {"id": video.id}))


def facebook_list_posts(state: State, req: Request) -> Outcome:
    page_id = req.params["page"]

    def render() -> Reply:
        limit = req.int_param("limit", 25, 1, 100)
        posts = list(reversed(state.posts("facebook", page_id)))  # newest first
        if after := req.param("after"):
            seq = decode_cursor(after)
            page = [p for p in posts if p.seq < seq][:limit]
        elif before := req.param("before"):
            seq = decode_cursor(before)
            page = [p for p in posts if p.seq > seq][-limit:]
        else:
            page = posts[:limit]
        body: dict[str, Any] = {
            "data": [
                as_listed(p, {"id": p.id, "message": p.text, "created_time": graph_time(p.created)})
                for p in page
            ]
        }
        if page:
            after_cursor = encode_cursor(page[-1].seq)
            paging: dict[str, Any] = {
                "cursors": {"before": encode_cursor(page[0].seq), "after": after_cursor}
            }
            if any(p.seq < page[-1].seq for p in posts):
                query = urlencode({"limit": limit, "after": after_cursor})
                paging["next"] = f"http://{req.host}{req.path}?{query}"
            body["paging"] = paging
        return Reply(200, body)

    return list_posts(state, FACEBOOK, req, page_id, render)


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
        posts = list(reversed(state.posts("linkedin", author=author)))
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


def sms_send(state: State, req: Request) -> Outcome:
    return publish(state, SMS, req)


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
    if data.get("platform") != "x":
        raise BadRequest('platform must be "x": the other platforms name the account in the request')
    token, account = _field(data, "token", str), _field(data, "account", str)
    if not token or not account:
        raise BadRequest("token and account are required strings")
    state.set_token("x", token, account)
    return Reply(200, {"ok": True, "platform": "x", "account": account})


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


def admin_oauth_client(state: State, req: Request) -> Outcome:
    """Registers the app's OAuth client at a platform (`{"platform", "client_id",
    "client_secret"}`): from then on its refreshes must authenticate with it (HTTP Basic), or
    they are `401 invalid_client`."""
    data = req.json_object()
    platform = data.get("platform")
    if platform not in ("x", "linkedin"):
        raise BadRequest('platform must be "x" or "linkedin"')
    client_id, secret = _field(data, "client_id", str), _field(data, "client_secret", str)
    if not client_id or not secret:
        raise BadRequest("client_id and client_secret are required")
    state.set_oauth_client(platform, client_id, secret)
    return Reply(200, {"ok": True, "platform": platform, "client_id": client_id})


def x_oauth_token(state: State, req: Request) -> Outcome:
    return oauth_refresh(state, X, req)


def linkedin_oauth_token(state: State, req: Request) -> Outcome:
    return oauth_refresh(state, LINKEDIN, req)


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
    if platform not in PLATFORMS:
        raise BadRequest(f"platform is required and must be one of {', '.join(PLATFORMS)}")
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
# Herald's ingesters read accounts' timelines through the listing endpoints above (X
# `GET /2/users/{id}/tweets` with `since_id`, `pagination_token`, `max_results`, the 3,200
# newest only; Facebook `GET /{page}/posts` with `after` cursors; LinkedIn
# `GET /rest/posts?q=author` with `start`/`count`). Their answers carry the rate-limit
# headers (`x-rate-limit-*`, `X-App-Usage`), and fault rules with `"endpoints": "all"` (a
# 429 with `retry_after` in the middle of a run, a slow page) apply to them.
#
# `POST /_admin/timeline` {"platform": "x" | "facebook" | "linkedin", "account": "<id>",
#   "count": N (plain items "<prefix> <n>"), "text_prefix": "...",
#   "malformed": {"<index>": "<kind>"}}  adds N items in order (the last is the newest).
#   Kinds: `missing_text`, `text_not_string`, `bad_time`, `missing_id`. Answers the items
#   added: [{id, text, malformed}].
# `GET /_admin/timeline?platform=&account=`: every item the account's timeline holds, oldest
#   first, with `malformed` (null for good ones).

#: X serves only the newest 3,200 posts of a user timeline.
X_TIMELINE_WINDOW = 3200

TIMELINE_FIELDS = {
    "x": ("text", "created_at"),
    "facebook": ("message", "created_time"),
    "linkedin": ("commentary", "createdAt"),
}

MALFORMED_KINDS = ("missing_text", "text_not_string", "bad_time", "missing_id")


def as_listed(post: Post, view: dict[str, Any]) -> dict[str, Any]:
    """A listing's view of a post with its seeded overrides (None removes a field)."""
    for name, value in post.overrides.items():
        if value is None:
            view.pop(name, None)
        else:
            view[name] = value
    return view


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
    platform_obj = {"x": X, "facebook": FACEBOOK, "linkedin": LINKEDIN}[platform]
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
# Facebook Page insights for ingestion
# --------------------------------------------------------------------------------------------
#
# `GET /facebook/v21.0/{page}/insights?metric=page_impressions,page_post_engagements&period=day
#   &since=<unix>&until=<unix>` answers Graph's shape: per metric `{name, period, values:
#   [{value, end_time}], title, id}`, the values whose end time is in (since, until], oldest
#   first, with `paging.previous/next` windows of the same length and the usage headers. At
#   most 93 days per request, `period=day` only, unknown metrics refused (#100).
# `POST /_admin/insights` {"page": "<id>", "days": N, "malformed": {"<day index>": "<kind>"}}
#   replaces the Page's insights with N daily values per metric, the last one ending at
#   today's 00:00 UTC. Kinds (applied to that day's `page_impressions`): `value_not_number`,
#   `negative_value`, `missing_end_time`. `"revise_last": N` adds N to the last day's values
#   (Meta revising a day it already reported). Answers every value: [{id, name, end_time, value,
#   malformed}] where `id` is `<metric>/day/<end_time>`.
# `GET /_admin/insights?page=`: the same list.

INSIGHT_METRICS = ("page_impressions", "page_post_engagements")
INSIGHT_MALFORMED_KINDS = ("value_not_number", "negative_value", "missing_end_time")
DAY_SECONDS = 86_400


@dataclass
class InsightValue:
    metric: str
    end: int  # Unix seconds
    value: int
    malformed: str | None = None

    def admin_view(self) -> dict[str, Any]:
        end_time = graph_time(self.end)
        return {"id": f"{self.metric}/day/{end_time}", "name": self.metric,
                "end_time": end_time, "value": self.value, "malformed": self.malformed}

    def listed(self) -> dict[str, Any]:
        view: dict[str, Any] = {"value": self.value, "end_time": graph_time(self.end)}
        if self.malformed == "value_not_number":
            view["value"] = "n/a"
        elif self.malformed == "negative_value":
            view["value"] = -1
        elif self.malformed == "missing_end_time":
            del view["end_time"]
        return view


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


def facebook_page_insights(state: State, req: Request) -> Outcome:
    page_id = req.params["page"]

    def render() -> Reply:
        metrics = (req.param("metric") or "").split(",")
        unknown = [m for m in metrics if m not in INSIGHT_METRICS]
        if unknown:
            return FACEBOOK.error(400, 100, f"(#100) The value must be a valid insights metric: {unknown[0]!r}")
        if req.param("period") != "day":
            return FACEBOOK.error(400, 100, "(#100) period must be day")
        try:
            since, until = int(req.param("since") or ""), int(req.param("until") or "")
        except ValueError:
            return FACEBOOK.error(400, 100, "(#100) since and until must be Unix times")
        if not 0 < until - since <= 93 * DAY_SECONDS:
            return FACEBOOK.error(400, 100, "(#100) There cannot be more than 93 days between since and until")
        values = [v for v in state.insights(page_id) if since < v.end <= until]
        data = [
            {"name": metric, "period": "day", "title": metric.replace("_", " ").title(),
             "id": f"{page_id}/insights/{metric}/day",
             "values": [v.listed() for v in sorted(values, key=lambda v: v.end) if v.metric == metric]}
            for metric in metrics
        ]
        span = until - since
        link = lambda a, b: f"http://{req.host}{req.path}?" + urlencode(  # noqa: E731
            {"metric": ",".join(metrics), "period": "day", "since": a, "until": b})
        return Reply(200, {"data": data, "paging": {"previous": link(since - span, since),
                                                    "next": link(until, until + span)}})

    return list_posts(state, FACEBOOK, req, page_id, render)

# --------------------------------------------------------------------------------------------
# Routing and the HTTP server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[State, Request], Outcome]
    area: str  # a platform, "admin" or "sink", for the log
    max_body: int = MAX_BODY_BYTES


def _route(
    method: str,
    pattern: str,
    handler: Callable[[State, Request], Outcome],
    area: str,
    max_body: int = MAX_BODY_BYTES,
) -> Route:
    return Route(method, re.compile(pattern), handler, area, max_body)


_GRAPH = r"/facebook(?:/v\d+(?:\.\d+)?)?/(?P<page>[^/]+)"
_NAME = r"(?P<name>[A-Za-z0-9._-]+)"

ROUTES = [
    _route("POST", r"/x/2/tweets", x_create_tweet, "x"),
    _route("POST", r"/x/2/oauth2/token", x_oauth_token, "x"),
    _route("POST", r"/linkedin/oauth/v2/accessToken", linkedin_oauth_token, "linkedin"),
    _route("POST", r"/_admin/oauth", admin_oauth, "admin"),
    _route("POST", r"/_admin/oauth/clients", admin_oauth_client, "admin"),
    _route("GET", r"/_admin/oauth", admin_oauth_view, "admin"),
    _route("POST", r"/x/2/media/upload", x_media_upload, "x", MAX_UPLOAD_BYTES),
    _route("GET", r"/x/2/users/(?P<id>[^/]+)/tweets", x_user_tweets, "x"),
    _route("POST", _GRAPH + r"/feed", facebook_create_post, "facebook"),
    _route("POST", _GRAPH + r"/photos", facebook_upload_photo, "facebook", MAX_UPLOAD_BYTES),
    _route("POST", _GRAPH + r"/videos", facebook_create_video, "facebook", MAX_UPLOAD_BYTES),
    _route("GET", _GRAPH + r"/(?:feed|posts)", facebook_list_posts, "facebook"),
    _route("GET", _GRAPH + r"/insights", facebook_page_insights, "facebook"),
    _route("POST", r"/linkedin/rest/posts", linkedin_create_post, "linkedin"),
    _route("POST", r"/linkedin/rest/(?P<resource>images|documents)", linkedin_initialize_upload, "linkedin"),
    _route("PUT", r"/linkedin/uploads/(?P<token>[A-Za-z0-9]+)", linkedin_upload_bytes, "linkedin",
           MAX_UPLOAD_BYTES),
    _route("GET", r"/linkedin/rest/posts", linkedin_list_posts, "linkedin"),
    _route("POST", r"/sms/messages", sms_send, "sms"),
    _route("POST", r"/sinks/" + _NAME, sink_receive, "sink"),
    _route("GET", r"/_admin/health", admin_health, "admin"),
    _route("GET", r"/_admin/posts", admin_posts, "admin"),
    _route("GET", r"/_admin/media", admin_media, "admin"),
    _route("GET", r"/_admin/faults", admin_faults, "admin"),
    _route("POST", r"/_admin/faults", admin_add_fault, "admin"),
    _route("DELETE", r"/_admin/faults", admin_clear_faults, "admin"),
    _route("DELETE", r"/_admin/faults/(?P<id>flt_\d+)", admin_remove_fault, "admin"),
    _route("POST", r"/_admin/tokens", admin_tokens, "admin"),
    _route("GET", r"/_admin/limits", admin_limits, "admin"),
    _route("POST", r"/_admin/limits", admin_set_limit, "admin"),
    _route("POST", r"/_admin/reset", admin_reset, "admin"),
    _route("POST", r"/_admin/timeline", admin_seed_timeline, "admin"),
    _route("GET", r"/_admin/timeline", admin_timeline, "admin"),
    _route("POST", r"/_admin/insights", admin_seed_insights, "admin"),
    _route("GET", r"/_admin/insights", admin_insights, "admin"),
    _route("GET", r"/_admin/sinks/" + _NAME, admin_sink_requests, "admin"),
    _route("POST", r"/_admin/sinks/" + _NAME, admin_sink_script, "admin"),
]


# --------------------------------------------------------------------------------------------
# Engagement metrics (Herald's engagement snapshots read these)
# --------------------------------------------------------------------------------------------
# Each post the fake created has engagement counts, zero until `POST /_admin/metrics` sets
# them. They live apart from `State` (post ids keep increasing across resets, so counts of an
# old post never attach to a new one).

METRIC_NAMES = ("likes", "comments", "shares", "impressions")


class Engagement:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], dict[str, int]] = {}

    def set(self, platform: str, post_id: str, counts: dict[str, int]) -> dict[str, int]:
        with self._lock:
            merged = {**self._counts.get((platform, post_id), {}), **counts}
            self._counts[(platform, post_id)] = merged
            return dict(merged)

    def get(self, platform: str, post_id: str) -> dict[str, int]:
        with self._lock:
            found = self._counts.get((platform, post_id), {})
        return {name: found.get(name, 0) for name in METRIC_NAMES}


ENGAGEMENT = Engagement()


def _created_post(state: State, platform: str, post_id: str) -> Post | None:
    return next((p for p in state.posts(platform) if p.id == post_id), None)


def admin_set_metrics(state: State, req: Request) -> Outcome:
    data = req.json_object()
    platform, post_id = data.get("platform"), data.get("post_id")
    if platform not in ("x", "facebook", "linkedin") or not isinstance(post_id, str):
        raise BadRequest('platform ("x", "facebook" or "linkedin") and post_id are required')
    if _created_post(state, platform, post_id) is None:
        return Reply(404, {"error": "no such post on the fake"})
    counts: dict[str, int] = {}
    for name in METRIC_NAMES:
        value = _number(data, name, 0, 10**12, integer=True)
        if value is not None:
            counts[name] = int(value)
    return Reply(200, {"platform": platform, "post_id": post_id, "metrics": ENGAGEMENT.set(platform, post_id, counts)})


def x_tweets_lookup(state: State, req: Request) -> Outcome:
    """`GET /2/tweets?ids=1,2&tweet.fields=public_metrics`: found tweets in `data`, the others
    in `errors` (as X answers a partial lookup)."""
    token = req.bearer()
    account = state.account_for_token("x", token) if token else None

    def render() -> Reply:
        ids = [i for i in (req.param("ids") or "").split(",") if i]
        if not ids or len(ids) > 100:
            raise BadRequest("ids must name 1 to 100 tweets")
        fields = (req.param("tweet.fields") or "").split(",")
        data, errors = [], []
        for tweet_id in ids:
            post = _created_post(state, "x", tweet_id)
            if post is None:
                errors.append({"value": tweet_id, "detail": f"Could not find tweet with ids: [{tweet_id}].",
                               "title": "Not Found Error", "resource_type": "tweet", "parameter": "ids",
                               "resource_id": tweet_id,
                               "type": "https://api.twitter.com/2/problems/resource-not-found"})
                continue
            tweet: dict[str, Any] = {"id": post.id, "text": post.text}
            if "public_metrics" in fields:
                m = ENGAGEMENT.get("x", post.id)
                tweet["public_metrics"] = {"retweet_count": m["shares"], "reply_count": m["comments"],
                                           "like_count": m["likes"], "quote_count": 0,
                                           "impression_count": m["impressions"]}
            data.append(tweet)
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return Reply(200, body)

    return list_posts(state, X, req, account, render)


def facebook_post_fields(state: State, req: Request) -> Outcome:
    """`GET /{post-id}?fields=likes.summary(true),comments.summary(true),shares`."""
    post_id = req.params["page"]
    post = _created_post(state, "facebook", post_id)

    def render() -> Reply:
        if post is None:
            return FACEBOOK.error(400, 100, f"Unsupported get request. Object with ID '{post_id}' does not exist")
        m = ENGAGEMENT.get("facebook", post_id)
        fields = req.param("fields") or ""
        body: dict[str, Any] = {"id": post_id}
        if "likes" in fields:
            body["likes"] = {"data": [], "summary": {"total_count": m["likes"]}}
        if "comments" in fields:
            body["comments"] = {"data": [], "summary": {"total_count": m["comments"]}}
        if "shares" in fields and m["shares"]:
            body["shares"] = {"count": m["shares"]}  # Graph omits `shares` when there are none
        return Reply(200, body)

    return list_posts(state, FACEBOOK, req, post.account if post else None, render)


def linkedin_social_actions(state: State, req: Request) -> Outcome:
    """`GET /rest/socialActions/{urn}`: likes and comments summaries."""
    from urllib.parse import unquote

    urn = unquote(req.params["urn"])
    post = _created_post(state, "linkedin", urn)

    def render() -> Reply:
        if post is None:
            return LINKEDIN.error(404, None, f"Not found: {urn}")
        m = ENGAGEMENT.get("linkedin", urn)
        return Reply(200, {"target": urn, "likesSummary": {"totalLikes": m["likes"], "likedByCurrentUser": False},
                           "commentsSummary": {"aggregatedTotalComments": m["comments"], "totalFirstLevelComments": m["comments"]}})

    return list_posts(state, LINKEDIN, req, post.account if post else None, render)


ROUTES += [
    _route("GET", r"/x/2/tweets", x_tweets_lookup, "x"),
    _route("GET", _GRAPH, facebook_post_fields, "facebook"),
    _route("GET", r"/linkedin/rest/socialActions/(?P<urn>[^/]+)", linkedin_social_actions, "linkedin"),
    _route("POST", r"/_admin/metrics", admin_set_metrics, "admin"),
]


def resolve(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """The route and its path parameters, or None and the methods the path allows."""
    allowed: list[str] = []
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            if route.method == method:
                return route, match.groupdict(), []
            allowed.append(route.method)
    return None, {}, allowed


class JsonLog:
    """One JSON object per line; writes from many threads never interleave."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, **fields: Any) -> None:
        if self._stream is None:
            return
        line = json.dumps({"ts": rfc3339_ms(time.time()), **fields})
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Rust clients expect
    server_version = "fake-platforms/1.0"
    server: FakePlatformsServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        route, params, allowed = resolve(self.command, url.path)
        area = route.area if route else None
        try:
            outcome = self._outcome(route, params, allowed, url.path, url.query)
        except Exception as e:  # a bug here must not take the server down
            self.server.log.write(level="error", msg="handler failed", path=url.path,
                                  error=f"{type(e).__name__}: {e}")
            outcome = Reply(500, {"error": "internal error in the fake"})
        fields: dict[str, Any] = {"method": self.command, "path": url.path, "platform": area}
        if isinstance(outcome, Drop):
            self._drop()
            fields.update(status=None, outcome="dropped")
        else:
            fields.update(status=outcome.status, outcome=self._send(outcome))
        fields["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        self.server.log.write(level="info", msg="request", **fields)

    def _outcome(
        self, route: Route | None, params: dict[str, str], allowed: list[str], path: str, query: str
    ) -> Outcome:
        try:
            body = self._read_body(route.max_body if route else MAX_BODY_BYTES)
        except BadRequest as e:
            self.close_connection = True
            return Reply(400, {"error": str(e)})
        if route is None:
            if allowed:
                return Reply(405, {"error": f"{self.command} not allowed on {path}"},
                             {"Allow": ", ".join(allowed)})
            return Reply(404, {"error": f"no such endpoint: {self.command} {path}"})
        req = Request(
            method=self.command,
            path=path,
            query={k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()},
            headers=self.headers,
            body=body,
            host=self.headers.get("Host") or "%s:%s" % self.server.server_address[:2],
            params=params,
        )
        try:
            return route.handler(self.server.state, req)
        except BadRequest as e:
            return Reply(400, {"error": str(e)})

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
        if not 0 <= length <= limit:
            raise BadRequest(f"the body must be at most {limit} bytes")
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > limit:
                raise BadRequest(f"the body must be at most {limit} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, reply: Reply) -> str:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            if reply.body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            return "answered"
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return "client gone"  # e.g. it timed out during an injected latency

    def _drop(self) -> None:
        """Close the connection without a byte of response: the answer is lost."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    # The default access log prints the raw request line, query string (and so Graph API
    # access tokens) included: requests are logged by `_handle` instead.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        self.server.log.write(level="warning", msg="protocol error", detail=format)


class FakePlatformsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default backlog of 5 resets bursts of publishers

    def __init__(self, address: tuple[str, int], log_stream: TextIO | None) -> None:
        self.state = State()
        self.log = JsonLog(log_stream)
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        self.log.write(level="warning", msg="connection error", error=type(error).__name__)


def make_server(
    host: str = "127.0.0.1", port: int = 0, log_stream: TextIO | None = sys.stderr
) -> FakePlatformsServer:
    """A bound server (port 0 picks a free one); call `serve_forever()` to run it.
    `log_stream=None` silences the request log."""
    return FakePlatformsServer((host, port), log_stream)


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4580, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port)
    signal.signal(signal.SIGTERM, _stop)
    print(f"listening on {server.url}", flush=True)
    server.log.write(level="info", msg="listening", url=server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
