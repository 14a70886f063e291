"""The task-hub store interface: what the engine needs to keep durable, in few round trips."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..taskhub.model import EpisodeCommit, InstanceQuery, InstanceRecord, Message
from ..taskhub.ordering import InstanceOrder, sorted_page


class InstanceExistsError(Exception):
    """An instance with this id is pending or running, so it cannot be started again."""


class StorageUnavailableError(Exception):
    """Storage stayed unreachable past the caller's deadline; nothing was acknowledged."""


class StorageRequestError(Exception):
    """Storage refused a request for good (a 4xx such as InvalidInput): retrying cannot help.

    `status` is the HTTP status to answer a client with; the message is one sentence.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


BAD_TOKEN = "The continuation token is not one this host gave out."

_deadline: ContextVar[float | None] = ContextVar("storage_deadline", default=None)


@contextmanager
def storage_deadline(seconds: float | None) -> Iterator[None]:
    """Within this block a store gives up retrying an outage after `seconds` (None: never).

    Requests answered to a client set one; the engine's own work runs without, so that work
    already acknowledged waits out any outage.
    """
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def clear_deadline() -> None:
    """Drop the deadline in the current context (background work that a request started)."""
    _deadline.set(None)


def current_deadline() -> float | None:
    """The monotonic time after which a retried storage call gives up, if any."""
    return _deadline.get()


class TaskHubStore(ABC):
    """Durable state of one task hub: instance rows, history per instance, and inboxes.

    The engine keeps each active instance in memory; the store is written before anything is
    acknowledged and read when an instance is not in memory (status queries, restarts).
    """

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Create what the hub needs (tables, queues); called once at start-up."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    async def create_instance(self, record: InstanceRecord, start: Message) -> None:
        """Store a new instance and its start message; raise InstanceExistsError if it is live."""

    @abstractmethod
    async def create_child(self, record: InstanceRecord, start: Message) -> InstanceRecord | None:
        """Store a sub-orchestration's start, idempotently.

        If an instance with this id was already started by the same parent task (a replay after
        a crash), nothing is written and that instance's record is returned; a finished instance
        of another parent is replaced; None means the child was created.
        """

    @abstractmethod
    async def ensure_entity(self, record: InstanceRecord) -> None:
        """Create an entity's state row on its first request, unless it exists."""

    @abstractmethod
    async def send(self, messages: list[Message]) -> None:
        """Append messages to their (live) instances' inboxes."""

    @abstractmethod
    async def commit(self, commit: EpisodeCommit) -> None:
        """Apply one episode: new history, the status row, consumed messages and the outbox."""

    @abstractmethod
    async def get_instance(self, instance_id: str) -> InstanceRecord | None: ...

    @abstractmethod
    async def get_history(self, instance_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def load(
        self, instance_id: str
    ) -> tuple[InstanceRecord, list[dict[str, Any]], list[Message]] | None:
        """An instance's authoritative state, current history and stored inbox, for recovery."""

    @abstractmethod
    async def replace_history(self, record: InstanceRecord, history: list[dict[str, Any]]) -> None:
        """Rewrite an instance's history and status (rewind)."""

    @abstractmethod
    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        """Matching instances by creation time, a page at a time, with the next page's token."""

    async def summaries(
        self, query: InstanceQuery, order: InstanceOrder, top: int, token: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        """A page of the matching instances' summaries (`ordering.summary`) in `order`, with
        the next page's token. This default reads every match; a store may keep an index."""
        records: list[InstanceRecord] = []
        continuation = None
        while True:
            page, continuation = await self.query(query, 1000, continuation)
            records.extend(page)
            if not continuation:
                return sorted_page(records, query, order, top, token)

    async def count_by_status(self, query: InstanceQuery) -> dict[str, int]:
        """How many instances match the query, by runtime status (a store may do it cheaper)."""
        counts: dict[str, int] = {}
        token = None
        while True:
            records, token = await self.query(query, 1000, token)
            for record in records:
                status = str(record.runtime_status)
                counts[status] = counts.get(status, 0) + 1
            if not token:
                return counts

    async def delete_hub(self) -> None:
        """Delete everything the hub stores, entities included (`func durable delete-task-hub`);
        a store may do it cheaper than by listing every instance."""
        token = None
        ids: list[str] = []
        while True:
            records, token = await self.query(InstanceQuery(), 1000, token)
            ids.extend(r.instance_id for r in records)
            if not token:
                break
        await self.purge(ids)

    @abstractmethod
    async def purge(self, instance_ids: list[str], finished_only: bool = False) -> int:
        """Delete instances with their history and inbox; the number deleted. `finished_only`
        leaves alone any instance the store finds live (it reads the status on the way)."""

    @abstractmethod
    async def active_instances(self) -> list[str]:
        """Ids of instances that are not finished or that have messages waiting (for recovery)."""
