"""Facebook's resumable video upload (POST .../{page}/videos with `upload_phase`): `start`
names the video and its upload session and asks for the first chunk by its offsets,
`transfer` takes the chunk at the offset it asked for (any other offset is answered with
error subcode 1363037 and the offsets it expects), and `finish` publishes the video as the
Page's post (with `description` as its text), once per session."""

from __future__ import annotations

from typing import Any

from fake_platforms.base import Platform, _gate, upload
from fake_platforms.chunked_uploads import Session
from fake_platforms.protocol import DROP, BadRequest, FormPart, Outcome, Reply, Request, parse_multipart
from fake_platforms.state import State

#: Facebook takes Page videos up to this size.
MAX_VIDEO_BYTES = 1024 * 1024 * 1024
#: The offset mismatch's subcode: "Upload Failed: Start Offset Mismatch".
OFFSET_MISMATCH = 1_363_037


def upload_phase_fields(req: Request) -> dict[str, Any] | None:
    """The request's fields when it is a phase of a resumable upload, else None."""
    content_type = (req.header("Content-Type") or "").lower()
    try:
        if content_type.startswith("multipart/form-data"):
            fields: dict[str, Any] = dict(parse_multipart(req.header("Content-Type"), req.body))
        else:
            fields = dict(req.form())
    except BadRequest:
        return None
    phase = fields.get("upload_phase")
    return fields if phase is not None else None


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    text = value.text if isinstance(value, FormPart) else value
    if not text:
        raise BadRequest(f"(#100) The parameter {name} is required")
    return text


def _offset(fields: dict[str, Any], name: str) -> int:
    try:
        return int(_text(fields, name))
    except ValueError:
        raise BadRequest(f"(#100) {name} must be a number") from None


def _offsets(start: int, end: int) -> dict[str, str]:
    # The Graph API gives offsets as strings.
    return {"start_offset": str(start), "end_offset": str(end)}


def facebook_video_phase(state: State, req: Request, fields: dict[str, Any], FACEBOOK: Platform) -> Outcome:  # noqa: N803
    page = req.params["page"]
    phase = _text(fields, "upload_phase")
    if phase == "finish":
        return _finish(state, req, page, fields, FACEBOOK)

    def store() -> Reply:
        if phase == "start":
            size = _offset(fields, "file_size")
            if not 0 < size <= MAX_VIDEO_BYTES:
                raise BadRequest(f"(#100) file_size must be between 1 and {MAX_VIDEO_BYTES}")
            session = state.chunked.start("facebook", page, size, "video/mp4")
            start, end = state.chunked.next_range(session)
            return Reply(200, {"video_id": session.id, "upload_session_id": session.id,
                               **_offsets(start, end)})
        if phase != "transfer":
            raise BadRequest("(#100) upload_phase must be start, transfer or finish")
        session = _session(state, page, fields)
        chunk = fields.get("video_file_chunk")
        if not isinstance(chunk, FormPart) or not chunk.data:
            raise BadRequest("(#100) The parameter video_file_chunk is required")
        if not state.chunked.take_at(session, _offset(fields, "start_offset"), chunk.data):
            start, end = state.chunked.next_range(session)
            reply = FACEBOOK.error(400, 6001, "Upload Failed: Start Offset Mismatch",
                                   subcode=OFFSET_MISMATCH)
            reply.body["error"]["error_data"] = _offsets(start, end)
            return reply
        return Reply(200, _offsets(*state.chunked.next_range(session)))

    return upload(state, FACEBOOK, req, page, store)


def _session(state: State, page: str, fields: dict[str, Any]) -> Session:
    session = state.chunked.get("facebook", page, _text(fields, "upload_session_id"))
    if session is None:
        raise BadRequest("(#100) The upload session was not found for this Page")
    return session


def _finish(state: State, req: Request, page: str, fields: dict[str, Any], FACEBOOK: Platform) -> Outcome:  # noqa: N803
    """The post: it meets what any create meets (faults, the rate window); a session's video
    is published once, and finishing it again answers success without a second post."""

    rule, refusal = _gate(state, FACEBOOK, req, page, "create")
    if refusal is not None:
        return FACEBOOK.finish(state, page, refusal)
    try:
        session = _session(state, page, fields)
        description = fields.get("description") or ""
    except BadRequest as e:
        return FACEBOOK.finish(state, page, FACEBOOK.invalid(str(e)))
    if session.media_id is None:
        allowed, usage = state.acquire("facebook", page)
        if not allowed:
            return FACEBOOK.finish(state, page, FACEBOOK.limit_error(usage))
        problem = state.chunked.finish(session)
        if problem is not None:
            return FACEBOOK.finish(state, page, FACEBOOK.invalid(f"(#100) {problem}"))
        state.add_received_media("facebook", page, "video", session.id, session.size,
                                 session.sha256, session.media_type)
        session.media_id = session.id
        state.add_post("facebook", page, description, FACEBOOK.new_id, media=[session.id])
    if rule is not None and rule.ambiguous:
        return DROP
    return FACEBOOK.finish(state, page, Reply(200, {"success": True}))
