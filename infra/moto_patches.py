"""Patches to moto so that a request costs what it touches, not what the table or queue holds.

moto 5.2.5 is a faithful emulator, but three of its DynamoDB paths grow with the whole table,
and Herald's hot paths hit all three:

1. ``TransactWriteItems`` deep-copies every table it touches (once per transaction item) so it
   can put the copy back if the transaction is cancelled. Each transaction costs time and memory
   in proportion to the table: on a table of a few thousand items the local stack ran out of
   both. Here the transaction keeps an *undo log* instead: before each operation it copies the
   one item that operation is about to change (or notes that it did not exist), and a cancelled
   transaction puts exactly those items back, newest first. Nothing else in the table is
   touched, so a cancelled transaction can never undo another request's committed write.
2. ``Query`` on the base table sorts every item of the table to find one partition. Here it
   reads that partition only, and within it (as within a GSI partition) only the run of keys
   the sort-key condition keeps, plus one neighbour each side (see ``_in_range``).
3. ``Query`` on a global secondary index sorts and filters every item of the table. Here each
   table keeps, per GSI, a map from the index's partition-key value to the items that carry it,
   kept up to date by every write path (put, update, delete, batch writes and transactions all
   go through the three methods wrapped below, and the undo log re-indexes what it restores).

and one that grows with every item a Scan reads (the token sweep scans after each key rotation,
which locally is every two seconds for six minutes after `make up`):

3b. ``Query`` and ``Scan`` deep-copy every item they read (a Scan, every item of the table)
    before filtering. The copies only guard the answer against later writes, and the server
    serializes each answer while it holds the DynamoDB lock, so here the answer shares the
    stored items: ``copy.deepcopy`` inside ``moto.dynamodb.models.table`` returns an ``Item`` (or
    a list of them) as it is, and copies everything else (backups, restores) as before.

SQS, where every received message cost several passes over the whole queue:

4. Receiving checks each message's retention by building *all* the queue's attributes, whose
   approximate counts walk every message; here it reads the retention period itself.
5. moto reads the clock through ``datetime`` arithmetic, several times per message per pass,
   and builds the queue's approximate counts (three passes) on every send; here
   ``moto.sqs.models`` reads the clock from ``time.time()`` (the same UTC epoch seconds), and the
   visible-message list and the counts read it once per pass.
6. Deleting a message walked the queue twice, building a list of receipt handles per message,
   and a batch of ten did that ten times; here a delete, or a whole batch, walks it once.

and two that every request paid, whatever it asked (together 1.3 of the 2.1 ms an empty
``GetItem`` took in-process):

7. Finding the backend for a request's host lists moto's package directory and stats each of its
   ~150 folders, twice per request; here the list is read once (it cannot change while the
   server runs).
8. Every request lists its response class's methods with ``inspect.getmembers``; here once per
   class.

and one that every DynamoDB answer paid per attribute of every item it carries:

9. moto serializes each answer by walking the API's shapes, and an ``AttributeValue`` (every
   attribute of every item) goes through a dozen generic calls per level. Stored attributes
   are already in the wire's JSON form, so an ``AttributeValue`` whose every level is a string,
   number, boolean, null, string or number set, map or list is written as it is; anything else
   (binary values, which moto holds as bytes) still goes through moto's serializer.

and two that every write paid per attribute:

10. Building an ``Item`` checks the 400 KB limit after each attribute by summing the sizes of
    all attributes so far (quadratic in the attribute count); here the sizes are summed once
    and checked against the same limit (the sums only grow, so the one check refuses exactly
    the items the per-attribute checks refused, with the same error).
11. Every ``UpdateItem`` (and every ``Update`` in a transaction) parses its update expression
    twice, and moto's validator deep-copies the tree before it changes it (the copy cost more
    than a parse). Here the parse is kept per expression text for the two readers that only
    look at it, and the validator parses the text afresh instead of copying: the shared tree
    is never changed, and each validation still works on a tree of its own.

Everything else (condition checks, cancellation reasons with ``ALL_OLD`` items, the 100-item
limit, one operation per item, validation errors, projections, sort order, paging) is moto's own
code: the transaction body below is moto's, with only the backup and rollback replaced, and the
queries call moto's ``Table.query`` with a narrowed candidate list. The patches are pinned to
the moto version they were written against: :func:`apply` refuses to run on any other, so an
upgrade is a deliberate step (re-read moto's ``transact_write_items`` and ``Table.query``, then
move the pin). Written so it could be offered upstream as is.

Thread safety: moto's DynamoDB backend is not thread-safe (a query iterates dicts that a write
resizes), and a transaction must be isolated from other requests, so ``moto_server.py`` still
runs DynamoDB requests one at a time. With every hot path now proportional to what it touches,
that lock is held for about a millisecond per call.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import moto
from moto import backends
from moto.core import responses as core_responses
from moto.core import serialize as core_serialize
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    ItemSizeTooLarge,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.parsing.validators import Validator
from moto.dynamodb.models import table as table_module
from moto.dynamodb.models.table import GlobalSecondaryIndex, Table
from moto.dynamodb.comparisons import get_comparison_func, get_filter_expression

from moto.sqs import models as sqs_models
from moto.sqs.exceptions import ReceiptHandleIsInvalid

PATCHED_MOTO_VERSION = "5.2.5"

_ORIGINAL = {
    "backend_update_item": DynamoDBBackend.update_item,
    "put_item": Table.put_item,
    "delete_item": Table.delete_item,
    "query": Table.query,
    "all_items": Table.all_items,
    "sqs_unix_time": sqs_models.unix_time,
    "list_of_moto_modules": backends.list_of_moto_modules,
    "method_names_from_class": core_responses.method_names_from_class,
    "json_serialize_structure": core_serialize.BaseJSONSerializer._serialize_type_structure,
    "update_expression_make": UpdateExpressionParser.make,
    "validator_init": Validator.__init__,
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
            "installed: re-read moto's transact_write_items and Table.query, then update the patches and the pin"
        )
    if _applied:
        return
    DynamoDBBackend.transact_write_items = _transact_write_items
    DynamoDBBackend.update_item = _backend_update_item
    Table.put_item = _put_item
    Table.delete_item = _delete_item
    Table.query = _query
    Table.all_items = _all_items
    table_module.copy = _ItemsUncopied()  # type: ignore[assignment]
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
    core_serialize.BaseJSONSerializer._serialize_type_structure = _json_serialize_structure
    Item.__init__ = _item_init
    UpdateExpressionParser.make = staticmethod(functools.lru_cache(maxsize=4096)(_parsed_update_expression))
    Validator.__init__ = _validator_init
    _applied = True


# ---------------------------------------------------------------------------------------------
# 1. Transactions with an undo log


class _UndoLog:
    """The items a transaction changed, as they were before it changed them."""

    def __init__(self) -> None:
        self._entries: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []
        self._stream_lengths: dict[int, tuple[Table, int]] = {}

    def remember(self, table: Table, hash_key: DynamoType | None, range_key: DynamoType | None) -> None:
        if hash_key is None or (table.has_range_key and range_key is None):
            return  # not a whole key: moto refuses the operation before it changes anything
        before = table.get_item(hash_key, range_key)
        self._entries.append((table, hash_key, range_key, copy.deepcopy(before)))
        if table.stream_shard is not None and id(table) not in self._stream_lengths:
            self._stream_lengths[id(table)] = (table, len(table.stream_shard.items))

    def roll_back(self) -> None:
        for table, hash_key, range_key, before in reversed(self._entries):
            _restore(table, hash_key, range_key, before)
        for table, length in self._stream_lengths.values():
            del table.stream_shard.items[length:]  # type: ignore[union-attr]
        self._entries.clear()


def _restore(table: Table, hash_key: DynamoType, range_key: DynamoType | None, before: Item | None) -> None:
    if range_key is not None:
        partition = table.items.get(hash_key)
        if before is not None:
            table.items[hash_key][range_key] = before
        elif partition is not None:
            partition.pop(range_key, None)
            if not partition:
                del table.items[hash_key]
    elif before is not None:
        table.items[hash_key] = before
    else:
        table.items.pop(hash_key, None)
    _changed(table)
    _reindex(table, hash_key, range_key)


def _key_of(table: Table, key: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    hash_key = DynamoType(key[table.hash_key_attr]) if table.hash_key_attr in key else None
    range_key = None
    if table.range_key_attr is not None and table.range_key_attr in key:
        range_key = DynamoType(key[table.range_key_attr])
    return hash_key, range_key  # type: ignore[return-value]


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's ``transact_write_items`` with the whole-table backup replaced by an undo log
    (marked ``undo log`` below); every check and error is moto's, in moto's order."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _UndoLog()  # undo log

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException

        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type != "ConditionCheck":  # undo log: remember the one item this operation changes
                table = self.get_table(table_name)
                undo.remember(table, *_key_of(table, key))

            if op_type == "Put":
                attrs = op["Item"]
                self.put_item(
                    table_name,
                    attrs,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                update_expression = op["UpdateExpression"]
                self.update_item(
                    table_name,
                    key,
                    update_expression=update_expression,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo.roll_back()  # undo log
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore
        except Exception as e:  # noqa: BLE001 (moto's own: any other failure cancels the transaction)
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore

    if any(code is not None for code, _, _ in errors):
        undo.roll_back()  # undo log
        raise TransactionCanceledException(errors)


# ---------------------------------------------------------------------------------------------
# 2 and 3. Queries that read one partition (of the table or of a GSI)
#
# Each table gets `_herald_gsi`: {index name: {partition value: {item key: Item}}} and
# `_herald_gsi_of`: {item key: {index name: partition value}}, built on the first GSI query
# and kept current by the write paths below. An item key is (hash, range or None).


def _gsi_partition_attrs(index: GlobalSecondaryIndex) -> tuple[str, ...]:
    return tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")


def _gsi_value(item: Item, attrs: tuple[str, ...]) -> tuple[DynamoType, ...] | None:
    values = tuple(item.attrs.get(a) for a in attrs)
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def _gsi_maps(table: Table) -> dict[str, dict[Any, dict[Any, Item]]] | None:
    """The table's GSI maps, or None before the first GSI query (writes then skip the upkeep)."""
    return table.__dict__.get("_herald_gsi")


def _current_gsi_maps(table: Table) -> dict[str, dict[Any, dict[Any, Item]]]:
    """The maps, (re)built when missing or when the table's GSIs changed (UpdateTable)."""
    maps = _gsi_maps(table)
    if maps is None or set(maps) != {i.name for i in (table.global_indexes or [])}:
        maps = _build_gsi_maps(table)
    return maps


def _build_gsi_maps(table: Table) -> dict[str, dict[Any, dict[Any, Item]]]:
    maps: dict[str, dict[Any, dict[Any, Item]]] = {i.name: {} for i in (table.global_indexes or [])}
    table.__dict__["_herald_gsi"] = maps
    table.__dict__["_herald_gsi_of"] = {}
    for item in _ORIGINAL["all_items"](table):
        _index_item(table, (item.hash_key, item.range_key), item)
    return maps


def _index_item(table: Table, item_key: tuple[Any, Any], item: Item | None) -> None:
    maps = _gsi_maps(table)
    if maps is None:
        return
    memberships: dict[Any, dict[str, Any]] = table.__dict__["_herald_gsi_of"]
    for name, value in memberships.pop(item_key, {}).items():
        partition = maps[name].get(value)
        if partition is not None:
            partition.pop(item_key, None)
            if not partition:
                del maps[name][value]
    if item is None:
        return
    mine: dict[str, Any] = {}
    for index in table.global_indexes or []:
        value = _gsi_value(item, _gsi_partition_attrs(index))
        if value is not None:
            maps[index.name].setdefault(value, {})[item_key] = item
            mine[index.name] = value
    if mine:
        memberships[item_key] = mine


def _reindex(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> None:
    if _gsi_maps(table) is None:
        return
    try:
        current = table.get_item(hash_key, range_key)
    except MockValidationException:
        current = None
    _index_item(table, (hash_key, range_key), current)


def _put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    item = _ORIGINAL["put_item"](self, item_attrs, *args, **kwargs)
    _changed(self)
    _index_item(self, (item.hash_key, item.range_key), item)
    return item


def _delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    item = _ORIGINAL["delete_item"](self, hash_key, range_key)
    _changed(self)
    if item is not None:
        _index_item(self, (item.hash_key, item.range_key), None)
    return item


def _backend_update_item(self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    # moto updates the stored item in place, also when the update then fails part way, so the
    # item is re-indexed whatever happened.
    table = self.get_table(table_name)
    try:
        return _ORIGINAL["backend_update_item"](self, table_name, key, *args, **kwargs)
    finally:
        try:
            hash_key, range_key = _key_of(table, key)
        except Exception:  # noqa: BLE001 (a malformed key: moto refused it, nothing changed)
            hash_key = range_key = None
        if hash_key is not None and (range_key is not None or not table.has_range_key):
            _reindex(table, hash_key, range_key)


@contextmanager
def _candidates(table: Table, items: list[Item] | None) -> Iterator[None]:
    """Makes ``all_items`` answer ``items`` (sorted as moto sorts) during one query."""
    if items is None:
        yield
        return
    table.__dict__["_herald_candidates"] = sorted(
        items, key=lambda x: (x.hash_key.cast_value, x.range_key.cast_value if x.range_key else "")
    )
    try:
        yield
    finally:
        del table.__dict__["_herald_candidates"]


def _all_items(self: Table) -> list[Item]:
    """moto's ``all_items`` (every item, in key order), sorted once per change of the table's
    item set rather than on every Scan page, and by the keys' values (what ``DynamoType``'s
    ordering compares) instead of through Python-level comparisons."""
    candidates = self.__dict__.get("_herald_candidates")
    if candidates is not None:
        return list(candidates)
    version = self.__dict__.get("_herald_version", 0)
    cached = self.__dict__.get("_herald_sorted")
    if cached is None or cached[0] != version:
        items = [i for partition in self.items.values() for i in (partition.values() if self.range_key_attr else [partition])]
        items.sort(key=lambda x: (x.hash_key.cast_value, x.range_key.cast_value if x.range_key else ""))
        cached = (version, items)
        self.__dict__["_herald_sorted"] = cached
    return list(cached[1])


def _changed(table: Table) -> None:
    """Notes that the table's set of item objects changed (a put, a delete, a restore)."""
    table.__dict__["_herald_version"] = table.__dict__.get("_herald_version", 0) + 1


def _query_candidates(
    table: Table,
    hash_key: DynamoType | None,
    index_name: str | None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None,
) -> list[Item] | None:
    """The only items a query can return, or None where moto's full read must decide."""
    if index_name is None:
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)
        if partition is None:
            return []
        return list(partition.values()) if table.has_range_key else [partition]
    index = next((i for i in (table.global_indexes or []) if i.name == index_name), None)
    if index is None or not hash_key_conditions:
        return None  # a local index, or an unknown one: moto validates and reads everything
    attrs = _gsi_partition_attrs(index)
    conditions = dict(hash_key_conditions)
    if set(conditions) != set(attrs):
        return None
    maps = _current_gsi_maps(table)
    return list(maps.get(index_name, {}).get(tuple(conditions[a] for a in attrs), {}).values())


def _in_range(
    items: list[Item], sort_key: Callable[[Item], DynamoType | None], comparison: str, objs: list[DynamoType]
) -> list[Item]:
    """A query's partition (of the table or of a GSI) narrowed to the items its sort-key
    condition keeps (with moto's own comparison, ``DynamoType.compare``) and their two
    neighbours in key order, so moto's loop no longer sizes and skips the rest one by one.
    Every sort-key condition keeps one run of keys in key order; the neighbours keep moto's
    answers exactly: moto returns a LastEvaluatedKey when the page is full and *any* item
    follows. Items without the sort key are left out, as moto's index query leaves them out.
    (moto also stopped a page early when a skipped item would have taken it past 1 MB; no
    single item is that large.)"""
    compare = get_comparison_func(comparison)
    bounds = [obj.cast_value for obj in objs]
    keyed = [(value.cast_value, item) for item in items if (value := sort_key(item)) is not None]
    keyed.sort(key=lambda pair: pair[0])
    kept = [i for i, (value, _) in enumerate(keyed) if compare(value, *bounds)]
    if not kept:
        return []
    return [item for _, item in keyed[max(kept[0] - 1, 0) : kept[-1] + 2]]


def _sort_key_of(table: Table, index_name: str | None, conditions: list[Any]) -> Callable[[Item], DynamoType | None] | None:
    """How to read a query's one sort key from an item, or None where moto must decide (a
    local index, a multi-attribute key, an unknown index)."""
    if index_name is None:
        attr = table.range_key_attr
        getter: Callable[[Item], DynamoType | None] = lambda item: item.range_key  # noqa: E731
    else:
        index = next((i for i in (table.global_indexes or []) if i.name == index_name), None)
        ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"] if index else []
        if len(ranges) != 1:
            return None
        attr = ranges[0]
        getter = lambda item: item.attrs.get(attr)  # noqa: E731
    if not attr or len(conditions) > 1 or any(name != attr for name, _, _ in conditions):
        return None
    return getter


def _query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    narrowed = _query_candidates(self, hash_key, index_name, kwargs.get("hash_key_conditions"))
    comparison = kwargs.get("range_comparison", args[0] if args else None)
    if narrowed is not None and comparison:
        sort_key = _sort_key_of(self, index_name, kwargs.get("range_key_conditions") or [])
        if sort_key is not None:
            objs = kwargs.get("range_objs", args[1] if len(args) > 1 else [])
            narrowed = _in_range(narrowed, sort_key, comparison, objs)
    with _candidates(self, narrowed):
        return _ORIGINAL["query"](self, hash_key, *args, **kwargs)


class _ItemsUncopied:
    """Stands for the ``copy`` module inside ``moto.dynamodb.models.table`` (3b above)."""

    copy = staticmethod(copy.copy)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Item):
            return value
        if isinstance(value, list) and all(isinstance(v, Item) for v in value):
            return list(value)
        return copy.deepcopy(value, memo)


# ---------------------------------------------------------------------------------------------
# 4-6. SQS: receiving and deleting without walking the whole queue per message


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


# ---------------------------------------------------------------------------------------------
# 9. DynamoDB answers: attribute values written as they are stored

_SCALARS: dict[str, type] = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def _wire_ready(value: Any) -> bool:
    """True when an ``AttributeValue`` is already exactly what moto's serializer would write."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in _SCALARS:
        return type(inner) is _SCALARS[kind]
    if kind in ("SS", "NS"):
        return type(inner) is list and all(type(v) is str for v in inner)
    if kind == "M":
        return type(inner) is dict and all(type(k) is str and _wire_ready(v) for k, v in inner.items())
    if kind == "L":
        return type(inner) is list and all(_wire_ready(v) for v in inner)
    return False


def _json_serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    if shape.name == "AttributeValue" and _wire_ready(value):
        self._default_serialize(serialized, value, shape, key)
        return
    _ORIGINAL["json_serialize_structure"](self, serialized, value, shape, key)


# ---------------------------------------------------------------------------------------------
# 10. Items built with one size check

ITEM_SIZE_LIMIT = 405000  # moto's own figure (LimitedSizeDict): between DynamoDB's 409 and 410 KB


def _item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
    self.hash_key = hash_key
    self.range_key = range_key
    converted = {key: DynamoType(value) for key, value in attrs.items()}
    if sum(bytesize(key) + value.size() for key, value in converted.items()) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    # Filled as dict, not through LimitedSizeDict.__setitem__ (which re-sums at each key);
    # later writes to the item still go through it.
    self.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.update(self.attrs, converted)


# ---------------------------------------------------------------------------------------------
# 11. Update expressions parsed once per text; each validation on a fresh parse


def _parsed_update_expression(text: str) -> Any:
    tree = _ORIGINAL["update_expression_make"](text)
    tree._herald_source = text
    return tree


def _validator_init(self: Validator, expression: Any, *args: Any, **kwargs: Any) -> None:
    source = getattr(expression, "_herald_source", None)
    if source is None:  # not a tree from the cache above: moto's own copy
        _ORIGINAL["validator_init"](self, expression, *args, **kwargs)
        return
    # moto's __init__ with a fresh parse where it deep-copies (``expression`` is only copied there).
    _ORIGINAL["validator_init"](self, _Unparsed(source), *args, **kwargs)


class _Unparsed:
    """Handed to moto's ``Validator.__init__``, whose only use of the tree is
    ``deepcopy(expression)``: the copy is a fresh parse of the text."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __deepcopy__(self, memo: Any) -> Any:
        return _ORIGINAL["update_expression_make"](self.source)
