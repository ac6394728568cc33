"""Everything the fake remembers: posts, media, fault rules, tokens, rate-limit windows,
sinks and Page insights (`State`, behind one lock), and the posts' engagement counts."""

from __future__ import annotations

import hashlib
import math
import random
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fake_platforms.bluesky_accounts import BlueskyAccounts
from fake_platforms.chunked_uploads import ChunkedUploads
from fake_platforms.instagram_containers import Containers
from fake_platforms.protocol import BadRequest, _field, _number, graph_time, rfc3339_ms
from fake_platforms.sms_state import SmsState


PLATFORMS = ("x", "facebook", "linkedin", "sms", "mastodon", "bluesky", "instagram")

#: (requests, window in seconds) per (platform, account) until `POST /_admin/limits`. A
#: platform's own name is the window its creates count toward; Mastodon also has
#: `mastodon-api`, the window every authenticated request counts toward (mastodon.py).
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "x": (300, 900),
    "facebook": (200, 3600),
    "linkedin": (500, 86400),
    "sms": (1000, 60),
    "mastodon": (300, 3 * 3600),  # statuses: 300 per 3 hours
    "mastodon-api": (300, 300),  # any request: 300 per 5 minutes
    # points, not requests: a Bluesky create costs 3 of the PDS's 5,000 an hour (bluesky.py)
    "bluesky": (5000, 3600),
    "instagram": (100, 86400),  # API-published posts: 100 per 24 hours
}

#: How long Mastodon remembers an `Idempotency-Key` (seconds).
IDEMPOTENCY_SECONDS = 3600


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
    parent: str | None = None  # what it answers: an X reply's tweet, a comment's post
    # Timeline seeding: fields a listing shows differently (None: left out), and why.
    overrides: dict[str, Any] = field(default_factory=dict)
    malformed: str | None = None
    # What only one platform has (Mastodon's visibility, spoiler text, language).
    attributes: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None  # a Bluesky record's value, as created

    def admin_view(self) -> dict[str, Any]:
        view = {
            "seq": self.seq,
            "platform": self.platform,
            "account": self.account,
            "text": self.text,
            "id": self.id,
            "media": list(self.media),
            "parent": self.parent,
            "time": rfc3339_ms(self.created),
        }
        if self.attributes:
            view["attributes"] = dict(self.attributes)
        return view


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
    # What only one platform has (a Mastodon description, when processing ends).
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def uploaded(self) -> bool:
        return self.sha256 is not None

    def receive(self, content: bytes, content_type: str | None) -> None:
        self.content_type = content_type
        self.size = len(content)
        self.sha256 = hashlib.sha256(content).hexdigest()

    def admin_view(self) -> dict[str, Any]:
        view = {
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
        if self.attributes:
            view["attributes"] = dict(self.attributes)
        return view


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
    # "create": posts and answers; "answer": replies and comments only; "upload": media
    # uploads only; "all": listings and uploads too
    endpoints: str = "create"
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
            and (self.endpoints in ("all", endpoint) or (endpoint == "answer" and self.endpoints == "create"))
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
    if endpoints not in ("create", "answer", "upload", "oauth", "all"):
        raise BadRequest('endpoints must be "create", "answer", "upload", "oauth" or "all"')
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
        # Authorisation codes waiting for their exchange, by (platform, code).
        self._codes: dict[tuple[str, str], dict] = {}
        # Facebook user tokens: the user and the Pages they manage.
        self._fb_users: dict[str, tuple[str, list[str]]] = {}
        # LinkedIn member tokens from a consent: the organisations the member administers.
        self._li_orgs: dict[str, list[str]] = {}
        self._limits: dict[str, Limit] = {}
        self._windows: dict[tuple[str, str], Window] = {}
        self._sinks: dict[str, Sink] = {}
        self._insights: dict[str, list[InsightValue]] = {}
        # Idempotency keys: (platform, account, key) -> (post id, when it was first used).
        self._idempotency: dict[tuple[str, str, str], tuple[str, float]] = {}
        self.bluesky = BlueskyAccounts()
        self.instagram = Containers()  # Instagram's media containers (instagram.py)
        self.chunked = ChunkedUploads()  # X's chunked and Facebook's resumable uploads
        self.sms = SmsState()  # the SMS provider's settings and receipts (sms_state.py)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._posts = []
            self._media = []
            self._faults = []
            self._tokens = {}
            self._refresh_tokens = {}
            self._refreshes = {}
            self._limits = {p: Limit(*limit) for p, limit in DEFAULT_LIMITS.items()}
            self._windows = {}
            self._sinks = {}
            self._insights = {}
            self._idempotency = {}
        self.bluesky.clear()
        self.instagram.clear()
        self.chunked.clear()
        self.sms.reset()

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
        parent: str | None = None,
    ) -> Post:
        with self._lock:
            post_id = make_id(self._next(platform), account)
            post = Post(
                self._next("post"), platform, account, text, post_id, time.time(), author,
                list(media or []), parent=parent,
            )
            self._posts.append(post)
            return post

    def delete_post(self, platform: str, post_id: str) -> Post | None:
        """Removes a post (it is no longer listed, even by the admin API); None: no such post."""
        with self._lock:
            found = next((p for p in self._posts if p.platform == platform and p.id == post_id), None)
            if found is not None:
                self._posts.remove(found)
            return found

    # idempotency keys

    def idempotent_post(self, platform: str, account: str, key: str) -> str | None:
        """The id of the post first created with `key` by `account`, within the hour."""
        with self._lock:
            seen = self._idempotency.get((platform, account, key))
            if seen is None or time.time() - seen[1] >= IDEMPOTENCY_SECONDS:
                return None
            return seen[0]

    def remember_idempotent(self, platform: str, account: str, key: str, post_id: str) -> None:
        with self._lock:
            self._idempotency[(platform, account, key)] = (post_id, time.time())

    def add_unique_post(
        self, platform: str, account: str, text: str, post_id: str, parent: str | None,
        media: list[str], record: dict[str, Any],
    ) -> Post | None:
        """Adds a post whose id the client chose (a Bluesky record's URI), unless a post of the
        platform already has that id: then nothing is added and the answer is None."""
        with self._lock:
            if any(p.platform == platform and p.id == post_id for p in self._posts):
                return None
            post = Post(
                self._next("post"), platform, account, text, post_id, time.time(), None,
                list(media), parent=parent, record=record,
            )
            self._posts.append(post)
            ENGAGEMENT.forget(platform, post_id)  # made again under its URI: starts at zero
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

    def add_received_media(
        self, platform: str, account: str, kind: str, media_id: str, size: int | None,
        sha256: str | None, content_type: str | None,
    ) -> Media:
        """Stores an upload that arrived in pieces (chunked_uploads.py) under its own id."""
        with self._lock:
            media = Media(self._next("post"), platform, account, media_id, kind, time.time(),
                          content_type=content_type, size=size, sha256=sha256)
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

    def put_code(self, platform: str, code: str, grant: dict) -> None:
        with self._lock:
            self._codes[(platform, code)] = grant

    def take_code(self, platform: str, code: str) -> dict | None:
        """The grant behind an authorisation code, once: a second exchange finds nothing."""
        with self._lock:
            return self._codes.pop((platform, code), None)

    def set_facebook_user(self, token: str, user: str, pages: list[str]) -> None:
        with self._lock:
            self._fb_users[token] = (user, pages)

    def set_linkedin_organizations(self, token: str, orgs: list[str]) -> None:
        with self._lock:
            self._li_orgs[token] = orgs

    def linkedin_organizations(self, token: str) -> list[str] | None:
        with self._lock:
            return self._li_orgs.get(token)

    def facebook_user(self, token: str) -> tuple[str, list[str]] | None:
        with self._lock:
            return self._fb_users.get(token)

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

    def acquire(self, platform: str, account: str, cost: int = 1) -> tuple[bool, Usage]:
        """Counts one request (`cost` points) in the account's window unless it would not fit."""
        with self._lock:
            window, usage = self._usage(platform, account, time.time(), keep=True)
            if usage.used + cost > usage.limit:
                return False, usage
            window.count += cost
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
# Page insights (served by facebook.py, seeded by admin.py)
# --------------------------------------------------------------------------------------------


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

    def forget(self, platform: str, post_id: str) -> None:
        with self._lock:
            self._counts.pop((platform, post_id), None)

    def get(
        self, platform: str, post_id: str, names: tuple[str, ...] = METRIC_NAMES
    ) -> dict[str, int]:
        with self._lock:
            found = self._counts.get((platform, post_id), {})
        return {name: found.get(name, 0) for name in names}


ENGAGEMENT = Engagement()
