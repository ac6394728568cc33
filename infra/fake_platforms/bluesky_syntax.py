"""The AT Protocol's syntax as the fake Bluesky PDS checks it: TIDs and record keys, NSIDs,
AT URIs, CIDs, grapheme counts, and the `app.bsky.feed.post` record (its lexicon's limits)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import unicodedata
from typing import Any

POST_COLLECTION = "app.bsky.feed.post"
#: The post lexicon's `text`: at most 300 graphemes and 3,000 bytes of UTF-8.
MAX_GRAPHEMES = 300
MAX_TEXT_BYTES = 3000
#: `app.bsky.embed.images`: at most 4 images of at most 1,000,000 bytes each.
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000

S32 = "234567abcdefghijklmnopqrstuvwxyz"
TID_RE = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
RKEY_RE = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
NSID_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9-]{0,62}(\.[a-zA-Z0-9][a-zA-Z0-9-]{0,62})+\.[a-zA-Z][a-zA-Z0-9]{0,62}")
AT_URI_RE = re.compile(r"at://(?P<repo>[^/?#]+)(/(?P<collection>[^/?#]+)(/(?P<rkey>[^/?#]+))?)?")
DATETIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")

_tid_lock = threading.Lock()
_last_tid = 0


def new_tid() -> str:
    """A timestamp identifier: microseconds since the epoch and a 10-bit clock id, in 13
    base32-sortable characters; each is greater than the one before."""
    global _last_tid
    with _tid_lock:
        value = max(int(time.time() * 1_000_000) << 10 | 7, _last_tid + 1)
        _last_tid = value
    return "".join(S32[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def is_tid(rkey: str) -> bool:
    return TID_RE.fullmatch(rkey) is not None


def is_record_key(rkey: str) -> bool:
    return RKEY_RE.fullmatch(rkey) is not None and rkey not in (".", "..")


def is_nsid(value: str) -> bool:
    return len(value) <= 317 and NSID_RE.fullmatch(value) is not None


def at_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


def split_at_uri(uri: str) -> tuple[str, str, str] | None:
    """(repo, collection, rkey) of a record's AT URI."""
    match = AT_URI_RE.fullmatch(uri)
    if match is None or match["collection"] is None or match["rkey"] is None:
        return None
    return match["repo"], match["collection"], match["rkey"]


def _cid(codec: int, data: bytes) -> str:
    """A CIDv1 (sha2-256) in base32, as `bafyrei…` (dag-cbor) or `bafkrei…` (raw) look."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def record_cid(value: Any) -> str:
    return _cid(0x71, json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


def blob_cid(content: bytes) -> str:
    return _cid(0x55, content)


# --------------------------------------------------------------------------------------------
# Graphemes (the standard library has no segmentation: extended clusters, approximately)
# --------------------------------------------------------------------------------------------

_ZWJ = 0x200D


def _extends(cp: int) -> bool:
    """Joins the cluster before it: combining marks, variation selectors, emoji modifiers,
    tag characters, the ZWJ itself."""
    return (
        unicodedata.category(chr(cp)) in ("Mn", "Me", "Mc")
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0100 <= cp <= 0xE01EF
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
        or cp == _ZWJ
    )


def grapheme_count(text: str) -> int:
    """User-perceived characters: an emoji (with its modifiers, ZWJ sequences, flags, keycaps)
    or a letter with its combining marks counts as one."""
    count = 0
    previous: int | None = None
    regional_open = False  # a regional indicator waiting for its pair (a flag)
    for ch in text:
        cp = ord(ch)
        regional = 0x1F1E6 <= cp <= 0x1F1FF
        if previous is None:
            joins = False
        elif previous == _ZWJ or _extends(cp) or (previous == 0x0D and cp == 0x0A):
            joins = True
        else:
            joins = regional and regional_open
        regional_open = regional and not (joins and regional_open)
        if not joins:
            count += 1
        previous = cp
    return count


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def _strong_ref(value: Any, where: str) -> str | None:
    if not isinstance(value, dict):
        return f"{where} must be an object"
    uri, cid = value.get("uri"), value.get("cid")
    if not isinstance(uri, str) or split_at_uri(uri) is None:
        return f"{where}/uri must be a valid at-uri"
    if not isinstance(cid, str) or not cid:
        return f"{where}/cid must be a cid string"
    return None


def blob_refs(embed: Any) -> list[tuple[str, int | None, str | None]]:
    """(cid, size, mimeType) of every blob an embed refers to (images, a video, a thumb)."""
    found: list[tuple[str, int | None, str | None]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("$type") == "blob" and isinstance(node.get("ref"), dict):
                link = node["ref"].get("$link")
                if isinstance(link, str):
                    size = node.get("size")
                    found.append((link, size if isinstance(size, int) else None, node.get("mimeType")))
                return
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(embed)
    return found


def post_problem(record: dict[str, Any]) -> str | None:
    """The first way `record` breaks the `app.bsky.feed.post` lexicon, as the PDS words it."""
    where = "Invalid app.bsky.feed.post record: Record"
    text = record.get("text")
    if not isinstance(text, str):
        return f'{where} must have the property "text"'
    if len(text.encode()) > MAX_TEXT_BYTES:
        return f"{where}/text must not be longer than {MAX_TEXT_BYTES} characters"
    if grapheme_count(text) > MAX_GRAPHEMES:
        return f"{where}/text must not be longer than {MAX_GRAPHEMES} graphemes"
    created = record.get("createdAt")
    if not isinstance(created, str):
        return f'{where} must have the property "createdAt"'
    if DATETIME_RE.fullmatch(created) is None:
        return f"{where}/createdAt must be an valid atproto datetime (both RFC-3339 and ISO-8601)"
    if "reply" in record:
        reply = record["reply"]
        if not isinstance(reply, dict):
            return f"{where}/reply must be an object"
        for part in ("root", "parent"):
            if part not in reply:
                return f'{where}/reply must have the property "{part}"'
            if (problem := _strong_ref(reply[part], f"{where}/reply/{part}")) is not None:
                return problem
    langs = record.get("langs")
    if langs is not None and (not isinstance(langs, list) or len(langs) > 3
                              or not all(isinstance(lang, str) and lang for lang in langs)):
        return f"{where}/langs must be an array of at most 3 language tags"
    facets = record.get("facets")
    if facets is not None and (not isinstance(facets, list) or not all(isinstance(f, dict) for f in facets)):
        return f"{where}/facets must be an array of objects"
    embed = record.get("embed")
    if embed is not None:
        if not isinstance(embed, dict) or not isinstance(embed.get("$type"), str):
            return f"{where}/embed must be an object which includes the \"$type\" property"
        if embed["$type"] == "app.bsky.embed.images":
            images = embed.get("images")
            if not isinstance(images, list) or not 1 <= len(images) <= MAX_IMAGES:
                return f"{where}/embed/images must be an array of 1 to {MAX_IMAGES} images"
            for i, image in enumerate(images):
                if not isinstance(image, dict) or not isinstance(image.get("alt"), str):
                    return f'{where}/embed/images/{i} must have the property "alt"'
                if not blob_refs(image.get("image")):
                    return f"{where}/embed/images/{i}/image should be a blob ref"
    return None
