"""Instagram's media containers (instagram.py): made by one request, published by another,
at most once."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Instagram ids are large numbers; media and containers are numbered apart from this.
ID_BASE = 17_900_000_000_000_000
#: How many status reads a video container answers `IN_PROGRESS` before `FINISHED`.
VIDEO_PROCESSING_READS = 2
#: A container not published within a day expires.
CONTAINER_SECONDS = 86_400


@dataclass
class Container:
    id: str
    account: str
    kind: str  # IMAGE, VIDEO, REELS, CAROUSEL
    caption: str
    created: float
    carousel_item: bool = False
    children: list[str] = field(default_factory=list)
    fetched: dict[str, Any] = field(default_factory=dict)  # url, bytes, sha256, content_type
    reads: int = 0
    status: str = "FINISHED"
    media_id: str | None = None

    def status_code(self) -> str:
        if self.status in ("PUBLISHED", "ERROR"):
            return self.status
        if time.time() - self.created >= CONTAINER_SECONDS:
            return "EXPIRED"
        return self.status

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "account": self.account, "media_type": self.kind,
                "caption": self.caption, "carousel_item": self.carousel_item,
                "children": list(self.children), "status_code": self.status_code(),
                "media_id": self.media_id, "fetched": dict(self.fetched)}


class Containers:
    """Every container made, behind its own lock (cleared with the state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Container] = {}
        self._n = 0

    def clear(self) -> None:
        with self._lock:
            self._items = {}

    def add(self, make: Any) -> Container:
        with self._lock:
            self._n += 1
            container = make(str(ID_BASE + 90_000_000 + self._n))
            self._items[container.id] = container
            return container

    def get(self, container_id: str) -> Container | None:
        with self._lock:
            return self._items.get(container_id)

    def read_status(self, container_id: str) -> str | None:
        """One status read: a processing video moves on after its reads."""
        with self._lock:
            c = self._items.get(container_id)
            if c is None:
                return None
            if c.status == "IN_PROGRESS":
                c.reads += 1
                if c.reads >= VIDEO_PROCESSING_READS:
                    c.status = "FINISHED"
            return c.status_code()

    def take_for_publish(self, container_id: str, account: str) -> tuple[Container | None, str | None]:
        """The container, marked published, or why it cannot be published."""
        with self._lock:
            c = self._items.get(container_id)
            if c is None or c.account != account:
                return None, f"(#100) The container {container_id} does not exist for this account"
            if c.carousel_item:
                return None, "(#100) A carousel item cannot be published on its own"
            code = c.status_code()
            if code == "PUBLISHED":
                return None, f"(#100) The container {container_id} has already been published"
            if code != "FINISHED":
                return None, f"The media is not ready for publishing (status {code})"
            c.status = "PUBLISHED"
            return c, None

    def views(self, account: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [c.view() for c in self._items.values() if account in (None, c.account)]
