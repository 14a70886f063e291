"""The instance list in an order a person asks for: newest first, or by name, status or last
update, a page at a time. Pure: the stores hand it their instance summaries.

Pages are cut by key, not by offset: a page's token holds the sort key of its last instance, so
an instance that starts meanwhile (at the top of a newest-first list) does not shift the pages
after it. A summary is an InstanceRecord without input, output or entity state, its custom
status cut to PREVIEW_CHARS: what a list shows, small enough for a store to keep in memory.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .errors import EngineError
from .model import InstanceQuery, InstanceRecord, RuntimeStatus

PREVIEW_CHARS = 200

# Statuses that need a look come first.
STATUS_RANK = {
    status: rank
    for rank, status in enumerate(
        [
            RuntimeStatus.Running,
            RuntimeStatus.Pending,
            RuntimeStatus.Suspended,
            RuntimeStatus.Failed,
            RuntimeStatus.Terminated,
            RuntimeStatus.Canceled,
            RuntimeStatus.Completed,
            RuntimeStatus.ContinuedAsNew,
        ]
    )
}

Key = tuple[Any, ...]

# Each sort key ends in the instance id, so that keys are unique and a page ends at one place.
# Within a name or a status, the newest come first.
KEYS: dict[str, Callable[[InstanceRecord], Key]] = {
    "createdTime": lambda r: (r.created_time.timestamp(), r.instance_id),
    "lastUpdatedTime": lambda r: (r.last_updated_time.timestamp(), r.instance_id),
    "name": lambda r: (r.name.casefold(), -r.created_time.timestamp(), r.instance_id),
    "runtimeStatus": lambda r: (
        STATUS_RANK.get(r.runtime_status, len(STATUS_RANK)),
        -r.created_time.timestamp(),
        r.instance_id,
    ),
}
DESCENDING_FIRST = {"createdTime", "lastUpdatedTime"}  # the newest first, unless asked otherwise


@dataclass(frozen=True)
class InstanceOrder:
    """What the list is sorted by (a key of KEYS) and in which direction."""

    field: str = "createdTime"
    descending: bool = True

    @classmethod
    def parse(cls, sort: str | None, order: str | None) -> InstanceOrder:
        """From the list API's `sort` and `order` (`asc`, `desc`); each field has a default
        direction: times newest first, names and statuses from the top."""
        sort = sort or "createdTime"
        if sort not in KEYS:
            raise EngineError(400, f"sort must be one of {', '.join(KEYS)}, not {sort[:100]!r}.")
        if order not in (None, "", "asc", "desc"):
            raise EngineError(400, f"order must be asc or desc, not {order[:100]!r}.")
        descending = sort in DESCENDING_FIRST if not order else order == "desc"
        return cls(sort, descending)

    def key(self, record: InstanceRecord) -> Key:
        return KEYS[self.field](record)


def summary(record: InstanceRecord) -> InstanceRecord:
    """What the list needs of an instance (a new record; the original is left alone)."""
    custom = record.custom_status
    if custom is not None and len(custom) > PREVIEW_CHARS:
        custom = custom[: PREVIEW_CHARS - 1] + "…"
    return replace(
        record,
        input=None,
        output=None,
        entity_state=None,
        custom_status=custom,
        recent_requests=[],
    )


def sorted_page(
    summaries: Iterable[InstanceRecord],
    query: InstanceQuery,
    order: InstanceOrder,
    top: int,
    token: str | None,
) -> tuple[list[InstanceRecord], str | None]:
    """The page after `token` of the summaries that match `query`, and the next page's token.

    One pass and a bounded heap: the cost grows with the hub, but only by a comparison an
    instance (a few milliseconds for 10,000)."""
    after = _decode(token, order) if token else None
    keyed = ((order.key(r), r) for r in summaries if query.matches(r))
    if after is not None:
        if order.descending:
            keyed = ((k, r) for k, r in keyed if k < after)
        else:
            keyed = ((k, r) for k, r in keyed if k > after)
    pick = heapq.nlargest if order.descending else heapq.nsmallest
    chosen = pick(top + 1, keyed, key=lambda item: item[0])
    page = chosen[:top]
    next_token = _encode(page[-1][0], order) if len(chosen) > top else None
    return [summary(r) for _, r in page], next_token


class SortedSummaries:
    """Summaries kept in every order (a sorted list of keys for each field of KEYS), for a
    store that keeps them in memory: a page is a bisect to where the last one ended and a walk
    from there, so its cost grows with the page (and the rows its filters skip), not the hub."""

    def __init__(self, records: Iterable[InstanceRecord] = ()) -> None:
        self._records = {r.instance_id: summary(r) for r in records}
        self._keys = {
            field: sorted(key(r) for r in self._records.values()) for field, key in KEYS.items()
        }

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: InstanceRecord) -> None:
        """Add an instance's summary, or replace the one it had."""
        self.remove(record.instance_id)
        new = self._records[record.instance_id] = summary(record)
        for field, key in KEYS.items():
            insort(self._keys[field], key(new))

    def remove(self, instance_id: str) -> None:
        old = self._records.pop(instance_id, None)
        if old is None:
            return
        for field, key in KEYS.items():
            keys = self._keys[field]
            del keys[bisect_left(keys, key(old))]

    def page(
        self, query: InstanceQuery, order: InstanceOrder, top: int, token: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        """As `sorted_page` of every summary kept here, without reading the others."""
        keys = self._keys[order.field]
        after = _decode(token, order) if token else None
        if order.descending:
            end = len(keys) if after is None else bisect_left(keys, after)
            positions = range(end - 1, -1, -1)
        else:
            positions = range(0 if after is None else bisect_right(keys, after), len(keys))
        found: list[tuple[Key, InstanceRecord]] = []
        for position in positions:
            record = self._records[keys[position][-1]]
            if query.matches(record):
                found.append((keys[position], record))
                if len(found) > top:
                    break
        next_token = _encode(found[top - 1][0], order) if len(found) > top else None
        return [r for _, r in found[:top]], next_token


BAD_TOKEN = "The continuation token is not one this list gave out (or is for another order)."


def _encode(key: Key, order: InstanceOrder) -> str:
    text = json.dumps({"sort": order.field, "desc": order.descending, "after": list(key)})
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(token: str, order: InstanceOrder) -> Key:
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = body["after"]
        right = body["sort"] == order.field and body["desc"] == order.descending
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeError):
        raise EngineError(400, BAD_TOKEN) from None
    if not right or not isinstance(after, list) or len(after) != len(_sample_key(order)):
        raise EngineError(400, BAD_TOKEN)
    key = tuple(after)
    if [type(v) for v in key] != [type(v) for v in _sample_key(order)]:
        raise EngineError(400, BAD_TOKEN)
    return key


def _sample_key(order: InstanceOrder) -> Key:
    """A key of the order's shape, to check a token's against."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return order.key(InstanceRecord("i", "n", RuntimeStatus.Running, epoch, epoch, "e"))
