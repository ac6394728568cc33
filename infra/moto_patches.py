"""Patches to moto so that an SQS request costs what it touches, not what the queue holds, and
every request skips work moto repeats per request.

(DynamoDB no longer runs on moto: the local stack and the tests run dynoxide for it, see
`infra/stack.py`. moto's DynamoDB paths that grew with the whole table, and the patches that
fixed them, went with it.)

SQS, where every received message cost several passes over the whole queue:

1. Receiving checks each message's retention by building *all* the queue's attributes, whose
   approximate counts walk every message; here it reads the retention period itself.
2. moto reads the clock through ``datetime`` arithmetic, several times per message per pass,
   and builds the queue's approximate counts (three passes) on every send; here
   ``moto.sqs.models`` reads the clock from ``time.time()`` (the same UTC epoch seconds), and the
   visible-message list and the counts read it once per pass.
3. Deleting a message walked the queue twice, building a list of receipt handles per message,
   and a batch of ten did that ten times; here a delete, or a whole batch, walks it once.

and two that every request paid, whatever it asked:

4. Finding the backend for a request's host lists moto's package directory and stats each of its
   ~150 folders, twice per request; here the list is read once (it cannot change while the
   server runs).
5. Every request lists its response class's methods with ``inspect.getmembers``; here once per
   class.

Everything else is moto's own code. The patches are pinned to the moto version they were
written against: :func:`apply` refuses to run on any other, so an upgrade is a deliberate step
(re-read moto's SQS receive and delete paths and its per-request backend lookup, then move the
pin). Written so they could be offered upstream as they are.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import moto
from moto import backends
from moto.core import responses as core_responses
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import ReceiptHandleIsInvalid

PATCHED_MOTO_VERSION = "5.2.5"

_ORIGINAL = {
    "sqs_unix_time": sqs_models.unix_time,
    "list_of_moto_modules": backends.list_of_moto_modules,
    "method_names_from_class": core_responses.method_names_from_class,
}

_applied = False


class MotoVersionMismatch(RuntimeError):
    pass


def apply() -> None:
    """Installs the patches (idempotent). Fails loudly on a moto version they were not written for."""
    global _applied
    if moto.__version__ != PATCHED_MOTO_VERSION:
        raise MotoVersionMismatch(
            f"infra/moto_patches.py patches moto {PATCHED_MOTO_VERSION}, but moto {moto.__version__} is "
            "installed: re-read moto's SQS receive and delete paths, then update the patches and the pin"
        )
    if _applied:
        return
    sqs_models.unix_time = _unix_time
    sqs_models.unix_time_millis = _unix_time_millis
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _retained
    sqs_models.Queue.delete_message = _queue_delete_message
    sqs_models.SQSBackend.delete_message_batch = _delete_message_batch
    sqs_models.Queue.messages = property(_visible_messages)
    sqs_models.Queue.approximate_number_of_messages = property(lambda q: len(_visible_messages(q)))
    sqs_models.Queue.approximate_number_of_messages_delayed = property(_delayed_count)
    sqs_models.Queue.approximate_number_of_messages_not_visible = property(_in_flight_count)
    modules = tuple(_ORIGINAL["list_of_moto_modules"]())
    backends.list_of_moto_modules = lambda: modules
    core_responses.method_names_from_class = functools.cache(_ORIGINAL["method_names_from_class"])
    _applied = True


# ---------------------------------------------------------------------------------------------
# 1-3. SQS: receiving and deleting without walking the whole queue per message


def _unix_time(dt: Any = None) -> float:
    """moto's ``unix_time``: seconds since the epoch, UTC; without ``datetime`` when it is now."""
    return time.time() if dt is None else _ORIGINAL["sqs_unix_time"](dt)


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


def _retained(self: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading the one attribute it needs instead of all of them."""
    retention_period = self.get_queue(queue_name).message_retention_period
    return int(retention_period) + message.sent_timestamp / 1000 > _unix_time()


def _queue_delete_message(self: Any, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message`` in one pass: every message that ever had the handle goes."""
    if _delete_handles(self, {receipt_handle}) != {receipt_handle}:
        raise ReceiptHandleIsInvalid()


def _delete_handles(queue: Any, handles: set[str]) -> set[str]:
    """Deletes every message that ever had one of ``handles``, in one pass over the queue; answers
    the handles that were valid (already deleted ones count: deleting again is fine)."""
    valid = handles & queue.deleted_messages
    wanted = handles - valid
    if not wanted:
        return valid
    kept = []
    for message in queue._messages:
        mine = {h for h in message.all_receipt_handles if h in wanted}
        if mine:
            valid |= mine
            queue.pending_messages.discard(message)
            queue.deleted_messages.update(message.all_receipt_handles)
        else:
            kept.append(message)
    queue._messages = kept
    return valid


def _delete_message_batch(self: Any, queue_name: str, receipts: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, str]]]:
    """moto's ``delete_message_batch`` (same answers, entry by entry) with one pass for the batch."""
    queue = self.get_queue(queue_name)
    valid = _delete_handles(queue, {r["ReceiptHandle"] for r in receipts})
    success = [r["Id"] for r in receipts if r["ReceiptHandle"] in valid]
    errors = [
        {
            "Id": r["Id"],
            "SenderFault": True,
            "Code": "ReceiptHandleIsInvalid",
            "Message": f'The input receipt handle "{r["ReceiptHandle"]}" is not a valid receipt handle.',
        }
        for r in receipts
        if r["ReceiptHandle"] not in valid
    ]
    return success, errors


def _visible_messages(self: Any) -> list[Any]:
    """moto's ``Queue.messages``: visible and not delayed, against one reading of the clock."""
    now = _unix_time_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def _delayed_count(self: Any) -> int:
    now = _unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


def _in_flight_count(self: Any) -> int:
    now = _unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)
