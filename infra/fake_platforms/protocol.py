"""HTTP requests and replies as the handlers see them (`Request`, `Reply`, `Drop`,
`BadRequest`), multipart bodies, paging cursors, the platforms' time formats, and the checks of
JSON fields that the admin API and fault rules share."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs


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
    #: Every value of each query parameter (XRPC repeats a parameter for an array).
    query_lists: dict[str, list[str]] = field(default_factory=dict)

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
# JSON fields of admin requests and fault rules
# --------------------------------------------------------------------------------------------


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
