"""Purge by filter (the DF HTTP API, the durable CLI, the gRPC PurgeInstances): the ids that
match are collected over every page before any is purged, since a store's continuation token
may be an offset (the memory store's), which purging the first page would move past instances
never seen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..taskhub.model import InstanceQuery, InstanceRecord

PAGE = 1000  # what one Table storage query returns at most
Query = Callable[
    [InstanceQuery, int | None, str | None], Awaitable[tuple[list[InstanceRecord], str | None]]
]


@dataclass
class Matching:
    """The ids to purge, and the live records among them (why a purge may delete nothing)."""

    ids: list[str] = field(default_factory=list)
    live: list[InstanceRecord] = field(default_factory=list)


async def matching(query_page: Query, query: InstanceQuery) -> Matching:
    """Every instance that matches, read a page at a time; only ids and live records kept."""
    found, token = Matching(), None
    while True:
        page, token = await query_page(query, PAGE, token)
        found.ids += [r.instance_id for r in page]
        found.live += [r for r in page if not r.runtime_status.is_terminal]
        if not token:
            return found
