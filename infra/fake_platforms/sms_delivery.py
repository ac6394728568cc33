"""The fake SMS provider's webhooks and admin endpoints: signed delivery receipts posted in the
background after each stored message, inbound messages posted on demand, its settings and
what it received and posted.

Every webhook is a JSON POST to `webhook_url`, signed as Herald verifies (shared/webhooks/src/
sms.rs):

    X-Sms-Timestamp: <Unix seconds>
    X-Sms-Signature: sha256=<hex HMAC-SHA256(key = webhook_secret as is,
                                             msg = "<timestamp>.<raw body>")>

Receipts (only while both `webhook_url` and `webhook_secret` are set), after
`receipt_delay_ms`, one message's in one background thread:

    {"id": "dlr_N", "type": "receipt", "message_id": "sm_N", "client_ref": ..., "status": "sent"}
    {"id": "dlr_M", ..., "status": "delivered"}   (or "undelivered", "error_code": 30003, for
                                                  a number in `undeliverable`)

With probability `duplicate_rate` a receipt is posted a second time with the same id (and
body); with probability `reorder_rate` the final receipt is posted before "sent". A non-2xx
answer or a connection error is retried up to 3 times, 0.5 s apart. A message's `status`
follows its receipts (queued, sent, then delivered or undelivered); without a webhook it stays
"queued". Nothing here logs a number or a body.

Admin endpoints:

    POST /_admin/sms/settings  {"webhook_url", "webhook_secret", "mps", "receipt_delay_ms",
                               "duplicate_rate", "reorder_rate", "undeliverable", "seed"}
        (any of them; `null` clears webhook_url, webhook_secret or seed) -> 200, the settings
        as GET shows them; a bad value -> 400 {"error": ..., "field": <its name>}, nothing
        applied
    GET  /_admin/sms/settings  -> 200 the settings, with "webhook_secret_set" instead of the
        secret
    POST /_admin/sms/inbound   {"from": "+E164", "to": <sender>, "text": "STOP"} -> posts the
        signed {"id": "in_N", "type": "inbound", "from", "to", "text"} synchronously (once)
        and answers 200 {"id": "in_N", "webhook_status": <Herald's status>}, or 502
        {"error": ...} when no webhook is configured or it is unreachable
    GET  /_admin/sms/messages  -> 200 {"messages": [{"id", "from", "to", "body", "client_ref",
        "segments", "status", "time"}]}, every stored message in the order received
    GET  /_admin/sms/receipts  -> 200 {"receipts": [{"id", "message_id", "status",
        "duplicate", "attempts", "last_http_status", "delivered", "error"}]}, every receipt
        posting in the order it began (a duplicate is listed twice)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from fake_platforms.protocol import BadRequest, Outcome, Reply, Request, rfc3339_ms
from fake_platforms.sms_state import E164, Delivery, SettingError, parse_settings
from fake_platforms.state import Post, State

#: A receipt is posted at most 1 + RETRIES times, RETRY_DELAY seconds apart.
RETRIES = 3
RETRY_DELAY = 0.5
TIMEOUT = 5.0
UNDELIVERED_CODE = 30003


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other non-2xx: never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy (the receiver is local) and no redirects.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Sms-Signature` header's value."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def post_signed(url: str, secret: str, body: bytes) -> tuple[int | None, str | None]:
    """Posts `body` once: (the HTTP status, None) or (None, why it could not be posted)."""
    timestamp = str(int(time.time()))
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "fake-sms/1.0",
        "X-Sms-Timestamp": timestamp,
        "X-Sms-Signature": sign(secret, timestamp, body),
    })
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            response.read()
            return response.status, None
    except urllib.error.HTTPError as e:
        e.close()
        return e.code, None
    except (OSError, ValueError) as e:  # refused, reset, timed out, a malformed URL
        reason = getattr(e, "reason", None) or e
        return None, type(reason).__name__ if not isinstance(reason, str) else reason


def _encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Receipts
# --------------------------------------------------------------------------------------------


def schedule_receipts(state: State, post: Post) -> None:
    """Called as a message is stored: plans its receipts and posts them in a thread."""
    delivery = state.sms.plan(post.attributes["to"])
    if delivery is not None:
        threading.Thread(target=_deliver, args=(state, post, delivery), daemon=True,
                         name=f"sms-receipts-{post.id}").start()


def _deliver(state: State, post: Post, delivery: Delivery) -> None:
    time.sleep(delivery.delay_seconds)
    for plan in delivery.receipts:
        event: dict[str, Any] = {"id": plan.id, "type": "receipt", "message_id": post.id,
                                 "client_ref": post.attributes.get("client_ref"),
                                 "status": plan.status}
        if plan.status == "undelivered":
            event["error_code"] = UNDELIVERED_CODE
        if not state.sms.current(delivery.generation):
            return
        state.sms.advance(post.attributes, plan.status)
        body = _encode(event)
        for duplicate in (False, True) if plan.duplicate else (False,):
            if not _post_receipt(state, delivery, event, body, duplicate):
                return


def _post_receipt(state: State, delivery: Delivery, event: dict[str, Any], body: bytes,
                  duplicate: bool) -> bool:
    """Posts one receipt with its retries; False once a reset abandoned it."""
    entry = state.sms.record_receipt(delivery.generation, {
        "id": event["id"], "message_id": event["message_id"], "status": event["status"],
        "duplicate": duplicate, "attempts": 0, "last_http_status": None, "delivered": False,
        "error": None,
    })
    if entry is None:
        return False
    for attempt in range(1, RETRIES + 2):
        if attempt > 1:
            time.sleep(RETRY_DELAY)
            if not state.sms.current(delivery.generation):
                return False
        status, error = post_signed(delivery.url, delivery.secret, body)
        ok = status is not None and 200 <= status < 300
        state.sms.update_receipt(entry, attempts=attempt, last_http_status=status,
                                 delivered=ok, error=error)
        if ok:
            break
    return True


# --------------------------------------------------------------------------------------------
# The admin endpoints
# --------------------------------------------------------------------------------------------


def admin_sms_settings(state: State, req: Request) -> Outcome:
    try:
        changes = parse_settings(req.json())
    except SettingError as e:
        return Reply(400, {"error": str(e), "field": e.field})
    return Reply(200, state.sms.apply(changes))


def admin_sms_settings_view(state: State, req: Request) -> Outcome:
    return Reply(200, state.sms.view())


def admin_sms_inbound(state: State, req: Request) -> Outcome:
    data = req.json_object()
    sender, to, text = data.get("from"), data.get("to"), data.get("text")
    if not isinstance(sender, str) or not E164.fullmatch(sender):
        raise BadRequest("from must be an E.164 number (+ then 8 to 15 digits)")
    if not isinstance(to, str) or not to:
        raise BadRequest("to (the sender it answers) is required: a non-empty string")
    if not isinstance(text, str):
        raise BadRequest("text is required: a string")
    webhook = state.sms.webhook()
    if webhook is None:
        return Reply(502, {"error": "no webhook is configured: set webhook_url and webhook_secret "
                                    "with POST /_admin/sms/settings"})
    inbound_id = state.sms.next_inbound_id()
    event = {"id": inbound_id, "type": "inbound", "from": sender, "to": to, "text": text}
    status, error = post_signed(*webhook, _encode(event))
    if status is None:
        return Reply(502, {"id": inbound_id, "error": f"the webhook is unreachable: {error}"})
    return Reply(200, {"id": inbound_id, "webhook_status": status})


def admin_sms_messages(state: State, req: Request) -> Outcome:
    return Reply(200, {"messages": [
        {"id": p.id, "from": p.account, "to": p.attributes.get("to"), "body": p.text,
         "client_ref": p.attributes.get("client_ref"), "segments": p.attributes.get("segments"),
         "status": p.attributes.get("status"), "time": rfc3339_ms(p.created)}
        for p in state.posts("sms")
    ]})


def admin_sms_receipts(state: State, req: Request) -> Outcome:
    return Reply(200, {"receipts": state.sms.receipts()})
