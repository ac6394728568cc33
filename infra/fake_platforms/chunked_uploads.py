"""Uploads that arrive in pieces (x.py's chunked INIT/APPEND/FINALIZE/STATUS, facebook.py's
resumable start/transfer/finish): each session's bytes, in order, until it is whole.

X takes a segment by its index (sending one again replaces it); Facebook takes the chunk at
the offset it expects and answers any other offset with the one it expects. A whole upload
is hashed for the admin view (`GET /_admin/uploads`), and its bytes are dropped."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Ids for sessions, numbered apart from posts and media.
SESSION_ID_BASE = 1_880_000_000_000_000_000
#: X forgets an upload that was not finalized within a day.
X_EXPIRES_AFTER_SECS = 86_400
#: Facebook asks for chunks of this size (the last one shorter).
FACEBOOK_CHUNK = 4 * 1024 * 1024
#: How many STATUS reads a video answers `in_progress` before `succeeded`.
PROCESSING_READS = 1


@dataclass
class Session:
    id: str
    platform: str
    account: str
    total: int
    media_type: str
    created: float
    # X: segment index -> bytes; Facebook: the bytes so far, in order.
    segments: dict[int, bytes] = field(default_factory=dict)
    received: bytearray = field(default_factory=bytearray)
    appends: int = 0  # every chunk request taken, repeats included
    finalized: bool = False
    status_reads: int = 0
    size: int | None = None
    sha256: str | None = None
    media_id: str | None = None  # the media (or video post) it became

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform,
            "account": self.account,
            "total_bytes": self.total,
            "media_type": self.media_type,
            "received_bytes": self.received_bytes(),
            "appends": self.appends,
            "finalized": self.finalized,
            "size": self.size,
            "sha256": self.sha256,
            "media_id": self.media_id,
        }

    def received_bytes(self) -> int:
        if self.sha256 is not None:
            return self.size or 0
        return sum(len(s) for s in self.segments.values()) + len(self.received)


class ChunkedUploads:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._next = 0

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()

    def start(self, platform: str, account: str, total: int, media_type: str) -> Session:
        with self._lock:
            self._next += 1
            session = Session(str(SESSION_ID_BASE + self._next), platform, account, total,
                              media_type, time.time())
            self._sessions[session.id] = session
            return session

    def get(self, platform: str, account: str, session_id: str) -> Session | None:
        with self._lock:
            s = self._sessions.get(session_id)
            return s if s is not None and s.platform == platform and s.account == account else None

    def append_segment(self, session: Session, index: int, data: bytes) -> str | None:
        """X's APPEND: the segment at its index (again: replaced). A problem, or None."""
        with self._lock:
            if session.finalized:
                return "the upload was already finalized"
            if not 0 <= index <= 999:
                return "segment_index must be between 0 and 999"
            session.segments[index] = data
            session.appends += 1
            if session.received_bytes() > session.total:
                del session.segments[index]
                return "more bytes than total_bytes were appended"
            return None

    def take_at(self, session: Session, offset: int, data: bytes) -> bool:
        """Facebook's transfer: the chunk only at the offset expected (False otherwise)."""
        with self._lock:
            session.appends += 1
            if offset != len(session.received) or session.finalized:
                return False
            session.received.extend(data[: session.total - offset])
            return True

    def next_range(self, session: Session) -> tuple[int, int]:
        """The chunk Facebook asks for next; (total, total) once every byte is there."""
        with self._lock:
            start = len(session.received)
            return start, min(session.total, start + FACEBOOK_CHUNK)

    def finish(self, session: Session) -> str | None:
        """Whole: hashes the bytes in order and drops them. A problem, or None."""
        with self._lock:
            if session.finalized:
                return None
            if session.segments:
                indexes = sorted(session.segments)
                if indexes != list(range(len(indexes))):
                    return "a segment is missing"
                data = b"".join(session.segments[i] for i in indexes)
            else:
                data = bytes(session.received)
            if len(data) != session.total:
                return f"{len(data)} bytes were uploaded, total_bytes said {session.total}"
            session.size, session.sha256 = len(data), hashlib.sha256(data).hexdigest()
            session.segments, session.received = {}, bytearray()
            session.finalized = True
            return None

    def status(self, session: Session) -> str:
        """X's processing state after FINALIZE: in_progress, then succeeded."""
        with self._lock:
            session.status_reads += 1
            return "succeeded" if session.status_reads > PROCESSING_READS else "in_progress"

    def ready(self, platform: str, account: str | None, media_id: str) -> bool:
        """Whether a media id may go in the account's post: any id not of a chunked upload, or
        one of the account's own, finalized and processed."""
        with self._lock:
            s = self._sessions.get(media_id)
            if s is None or s.platform != platform:
                return True
            return s.account == account and s.finalized and s.status_reads > PROCESSING_READS

    def views(self, platform: str | None = None, account: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                s.view()
                for s in self._sessions.values()
                if (platform is None or s.platform == platform) and (account is None or s.account == account)
            ]
