"""What the fake SMS provider remembers besides its messages (`State.sms`): its settings
(`POST /_admin/sms/settings`), the messages-per-second windows of each sender, the receipts it
posted, and the numbering of receipts and inbound messages. The messages themselves are posts
of platform "sms" (sms.py), so `/_admin/posts` and the fault rules see them like any other.

A reset (`POST /_admin/reset`) restores every default except `webhook_url` and
`webhook_secret`: those are configuration, set once when the local stack starts (stack.py),
as the OAuth clients are. It also forgets the receipts posted and abandons receipts not yet
posted. Ids (`dlr_N`, `in_N`) keep increasing across resets."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fake_platforms.protocol import BadRequest

#: E.164 as the fake accepts it: `+` then 8 to 15 digits.
E164 = re.compile(r"\+[0-9]{8,15}")

DEFAULT_MPS = 50
DEFAULT_RECEIPT_DELAY_MS = 200.0

SETTINGS_FIELDS = (
    "webhook_url", "webhook_secret", "mps", "receipt_delay_ms", "duplicate_rate", "reorder_rate",
    "undeliverable", "seed",
)


class SettingError(BadRequest):
    """A setting that cannot be applied; `field` names it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.field = name


@dataclass
class Settings:
    webhook_url: str | None = None
    webhook_secret: str | None = None
    mps: int = DEFAULT_MPS
    receipt_delay_ms: float = DEFAULT_RECEIPT_DELAY_MS
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    undeliverable: list[str] = field(default_factory=list)
    seed: int | None = None

    def view(self) -> dict[str, Any]:
        """What `GET /_admin/sms/settings` shows: never the secret, only whether it is set."""
        return {
            "webhook_url": self.webhook_url,
            "webhook_secret_set": self.webhook_secret is not None,
            "mps": self.mps,
            "receipt_delay_ms": self.receipt_delay_ms,
            "duplicate_rate": self.duplicate_rate,
            "reorder_rate": self.reorder_rate,
            "undeliverable": list(self.undeliverable),
            "seed": self.seed,
        }


def _rate(data: dict[str, Any], name: str) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SettingError(name, f"{name} must be a number between 0 and 1")
    return float(value)


def parse_settings(data: Any) -> dict[str, Any]:
    """The changes a settings request asks for; raises SettingError naming the first bad field.
    `null` clears `webhook_url`, `webhook_secret` and `seed`."""
    if not isinstance(data, dict):
        raise BadRequest("expected a JSON object")
    unknown = sorted(set(data) - set(SETTINGS_FIELDS))
    if unknown:
        raise SettingError(unknown[0], f"unknown setting(s): {', '.join(unknown)}")
    changes: dict[str, Any] = {}
    for name in ("webhook_url", "webhook_secret"):
        if name in data:
            value = data[name]
            if value is not None and (not isinstance(value, str) or not value):
                raise SettingError(name, f"{name} must be a non-empty string or null")
            changes[name] = value
    url = changes.get("webhook_url")
    if url is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise SettingError("webhook_url", "webhook_url must be an http:// or https:// URL")
    if "mps" in data:
        mps = data["mps"]
        if isinstance(mps, bool) or not isinstance(mps, int) or not 1 <= mps <= 1_000_000:
            raise SettingError("mps", "mps must be an integer between 1 and 1000000")
        changes["mps"] = mps
    if "receipt_delay_ms" in data:
        delay = data["receipt_delay_ms"]
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 600_000:
            raise SettingError("receipt_delay_ms", "receipt_delay_ms must be a number between 0 and 600000")
        changes["receipt_delay_ms"] = float(delay)
    for name in ("duplicate_rate", "reorder_rate"):
        if name in data:
            changes[name] = _rate(data, name)
    if "undeliverable" in data:
        numbers = data["undeliverable"]
        if not isinstance(numbers, list) or not all(
            isinstance(n, str) and E164.fullmatch(n) for n in numbers
        ):
            raise SettingError("undeliverable", "undeliverable must be a list of E.164 numbers (+ then 8-15 digits)")
        changes["undeliverable"] = list(numbers)
    if "seed" in data:
        seed = data["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise SettingError("seed", "seed must be an integer or null")
        changes["seed"] = seed
    return changes


@dataclass
class ReceiptPlan:
    """One receipt a message will get: its id, status, and whether it is posted twice."""

    id: str
    status: str
    duplicate: bool


@dataclass
class Delivery:
    """What a stored message's receipts need, fixed when it is stored."""

    generation: int
    url: str
    secret: str
    delay_seconds: float
    receipts: list[ReceiptPlan]  # in the order they are posted


class SmsState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters = {"dlr": 0, "in": 0}
        self.settings = Settings()
        self._rng = random.Random()
        self._generation = 0
        self._sent: dict[str, deque[float]] = {}
        self._receipts: list[dict[str, Any]] = []

    def reset(self) -> None:
        with self._lock:
            kept = self.settings
            self.settings = Settings(webhook_url=kept.webhook_url, webhook_secret=kept.webhook_secret)
            self._rng = random.Random()
            self._generation += 1
            self._sent = {}
            self._receipts = []

    def _next(self, name: str) -> int:
        self._counters[name] += 1
        return self._counters[name]

    # settings

    def apply(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            for name, value in changes.items():
                setattr(self.settings, name, value)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])
            if "mps" in changes:
                self._sent = {}
            return self.settings.view()

    def view(self) -> dict[str, Any]:
        with self._lock:
            return self.settings.view()

    def webhook(self) -> tuple[str, str] | None:
        with self._lock:
            s = self.settings
            return (s.webhook_url, s.webhook_secret) if s.webhook_url and s.webhook_secret else None

    # the messages-per-second limit

    def admit(self, sender: str) -> bool:
        """Counts a message from `sender` in its one-second sliding window unless it is full."""
        now = time.monotonic()
        with self._lock:
            sent = self._sent.setdefault(sender, deque())
            while sent and sent[0] <= now - 1.0:
                sent.popleft()
            if len(sent) >= self.settings.mps:
                return False
            sent.append(now)
            return True

    # receipts

    def plan(self, to: str) -> Delivery | None:
        """The receipts of a message just stored (None: no webhook is configured). The random
        draws are made here, in the order messages are stored, so a seed repeats them."""
        with self._lock:
            s = self.settings
            if not (s.webhook_url and s.webhook_secret):
                return None
            final = "undelivered" if to in s.undeliverable else "delivered"
            reorder = self._rng.random() < s.reorder_rate
            receipts = [
                ReceiptPlan(f"dlr_{self._next('dlr')}", status, self._rng.random() < s.duplicate_rate)
                for status in ("sent", final)
            ]
            if reorder:
                receipts.reverse()
            return Delivery(self._generation, s.webhook_url, s.webhook_secret,
                            s.receipt_delay_ms / 1000, receipts)

    def current(self, generation: int) -> bool:
        """False once a reset has abandoned the receipts planned in `generation`."""
        with self._lock:
            return generation == self._generation

    def record_receipt(self, generation: int, entry: dict[str, Any]) -> dict[str, Any] | None:
        """Lists a receipt about to be posted; the caller updates the entry it gets back."""
        with self._lock:
            if generation != self._generation:
                return None
            self._receipts.append(entry)
            return entry

    def update_receipt(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def advance(self, attributes: dict[str, Any], status: str) -> None:
        """A message's status as its receipts say: "sent" never replaces a final status."""
        with self._lock:
            if not (status == "sent" and attributes.get("status") in ("delivered", "undelivered")):
                attributes["status"] = status

    def receipts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._receipts]

    def next_inbound_id(self) -> str:
        with self._lock:
            return f"in_{self._next('in')}"
