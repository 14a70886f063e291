"""Hands work items to connected workers, and takes them back when a worker goes away.

A work item (an orchestrator episode, an activity or an entity's operation) waits here until a
connected worker whose filters accept its name (and its version, when the filter lists versions)
has room for it; a worker has room while it holds fewer items of that kind than the maximum it
declared in `GetWorkItems`. That bound is what makes several workers share the work: a burst goes
to whoever has room, not to the first stream that asks.

An item stays owned by its worker until the worker completes it. If the worker abandons it or
its stream ends (a closed process, a dropped connection), the item goes back to the front of the
queue for the next worker: nothing handed out is lost, and nothing waits for a worker that left.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .proto import pb


class Kind(Enum):
    ORCHESTRATION = "orchestration"
    ACTIVITY = "activity"
    ENTITY = "entity"


@dataclass(eq=False)
class WorkItem:
    """One piece of work for a worker; `done` receives the worker's response message."""

    kind: Kind
    name: str
    message: pb.WorkItem
    done: Callable[[Any], None]
    version: str | None = None
    token: str = ""
    owner: WorkerStream | None = None


Wanted = dict[str, frozenset[str]]  # name -> the versions asked for (empty: any version)


@dataclass
class Filters:
    """What a worker asked for, per kind; None for a kind means every name and version."""

    orchestrations: Wanted | None = None
    activities: Wanted | None = None
    entities: frozenset[str] | None = None

    @classmethod
    def from_request(cls, request: pb.GetWorkItemsRequest) -> Filters:
        """A worker that sends filters gets only the names it lists; a name's filter that lists
        versions takes only those (strict: work without a version is not among them)."""
        if not request.HasField("workItemFilters"):
            return cls()
        wanted = request.workItemFilters
        return cls(
            orchestrations={f.name: frozenset(f.versions) for f in wanted.orchestrations},
            activities={f.name: frozenset(f.versions) for f in wanted.activities},
            entities=frozenset(f.name.lower() for f in wanted.entities),
        )

    def accepts(self, item: WorkItem) -> bool:
        if item.kind == Kind.ENTITY:  # an entity's name is lower case; entities have no version
            return self.entities is None or item.name in self.entities
        wanted = self.orchestrations if item.kind == Kind.ORCHESTRATION else self.activities
        if wanted is None:
            return True
        versions = wanted.get(item.name)
        return versions is not None and (not versions or (item.version or "") in versions)


@dataclass(eq=False)
class WorkerStream:
    """One connected `GetWorkItems` stream: what it accepts, how much, and what it holds."""

    filters: Filters
    limits: dict[Kind, int]
    held: dict[str, WorkItem] = field(default_factory=dict)
    counts: Counter[Kind] = field(default_factory=Counter)
    outbox: deque[WorkItem] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_request(cls, request: pb.GetWorkItemsRequest) -> WorkerStream:
        limits = {
            Kind.ORCHESTRATION: request.maxConcurrentOrchestrationWorkItems,
            Kind.ACTIVITY: request.maxConcurrentActivityWorkItems,
            Kind.ENTITY: request.maxConcurrentEntityWorkItems,
        }
        return cls(Filters.from_request(request), limits)

    def room_for(self, kind: Kind) -> bool:
        limit = self.limits[kind]
        return limit <= 0 or self.counts[kind] < limit

    def hold(self, item: WorkItem) -> None:
        item.owner = self
        self.held[item.token] = item
        self.counts[item.kind] += 1
        self.outbox.append(item)
        self.wake.set()

    def release(self, item: WorkItem) -> None:
        if self.held.pop(item.token, None) is not None:
            self.counts[item.kind] -= 1


class WorkDispatcher:
    """The queue of work items and the workers connected to take them."""

    def __init__(self) -> None:
        self._waiting: dict[Kind, deque[WorkItem]] = {kind: deque() for kind in Kind}
        self._workers: list[WorkerStream] = []
        self._owned: dict[str, WorkItem] = {}
        self._tokens = itertools.count(1)
        self._turn = 0  # where the next search for a worker with room starts: workers take turns

    @property
    def workers(self) -> int:
        return len(self._workers)

    def submit(self, item: WorkItem) -> None:
        """Queue an item; it goes to a worker with room at once, or when one has room."""
        item.token = str(next(self._tokens))
        item.message.completionToken = item.token
        self._waiting[item.kind].append(item)
        self._assign()

    def connect(self, worker: WorkerStream) -> None:
        self._workers.append(worker)
        self._assign()

    def disconnect(self, worker: WorkerStream) -> None:
        """The stream ended: what it held or had not yet sent goes to the next worker."""
        if worker in self._workers:
            self._workers.remove(worker)
        returned = list(worker.held.values())
        worker.held.clear()
        worker.counts.clear()
        worker.outbox.clear()
        for item in returned:
            self._owned.pop(item.token, None)
            self._requeue(item)
        self._assign()

    def accepted(self, item: WorkItem) -> bool:
        """Whether a connected worker asked for such work (it may be busy now)."""
        return any(w.filters.accepts(item) for w in self._workers)

    def complete(self, token: str, response: Any) -> bool:
        """A worker's answer for an item it holds; False for an unknown (or stale) token."""
        item = self._released(token)
        if item is None:
            return False
        item.done(response)
        self._assign()
        return True

    def abandon(self, token: str) -> bool:
        """A worker gave an item back: another worker (or the same one) gets it again."""
        item = self._released(token)
        if item is None:
            return False
        self._requeue(item)
        self._assign()
        return True

    def _released(self, token: str) -> WorkItem | None:
        """The item a token names, taken from its worker (which then has room again)."""
        item = self._owned.pop(token, None)
        if item is not None and item.owner is not None:
            item.owner.release(item)
        return item

    def cancel(self, item: WorkItem) -> None:
        """Nobody needs the item's answer any more (the host stops, or the work was dropped)."""
        self._owned.pop(item.token, None)
        if item.owner is None and item in self._waiting[item.kind]:
            self._waiting[item.kind].remove(item)
        if item.owner is not None:
            item.owner.release(item)
            if item in item.owner.outbox:
                item.owner.outbox.remove(item)

    def _requeue(self, item: WorkItem) -> None:
        item.owner = None
        item.token = str(next(self._tokens))  # an answer to the old token is stale now
        item.message.completionToken = item.token
        self._waiting[item.kind].appendleft(item)

    def _assign(self) -> None:
        """Give waiting items, oldest first, to workers with room (taking turns).

        Each kind stops at once when no worker has room for it, so a burst that waits costs
        nothing per new item; only items no worker's filters accept are looked at again."""
        if not self._workers:
            return
        for kind, queue in self._waiting.items():
            skipped: list[WorkItem] = []
            while queue and any(w.room_for(kind) for w in self._workers):
                item = queue.popleft()
                worker = self._worker_for(item)
                if worker is None:
                    skipped.append(item)
                    continue
                worker.hold(item)
                self._owned[item.token] = item
            queue.extendleft(reversed(skipped))

    def _worker_for(self, item: WorkItem) -> WorkerStream | None:
        count = len(self._workers)
        for offset in range(count):
            candidate = self._workers[(self._turn + offset) % count]
            if candidate.room_for(item.kind) and candidate.filters.accepts(item):
                self._turn = (self._turn + offset + 1) % count
                return candidate
        return None
