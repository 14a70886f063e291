"""The in-memory task hub: for tests on the virtual clock, and `--store memory`."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..taskhub.model import (
    EpisodeCommit,
    InstanceQuery,
    InstanceRecord,
    Message,
    same_parent_task,
)
from ..taskhub.ordering import InstanceOrder, SortedSummaries
from .base import BAD_TOKEN, InstanceExistsError, StorageRequestError, TaskHubStore


class MemoryStore(TaskHubStore):
    """Everything in dicts; lost when the process ends."""

    def __init__(self) -> None:
        self.records: dict[str, InstanceRecord] = {}
        self.histories: dict[str, list[dict[str, Any]]] = {}
        self.inboxes: dict[str, dict[str, Message]] = {}
        self._sorted: SortedSummaries | None = None  # the list in every order, once asked for

    async def create_instance(self, record: InstanceRecord, start: Message) -> None:
        existing = self.records.get(record.instance_id)
        if existing is not None and not existing.runtime_status.is_terminal:
            raise InstanceExistsError(record.instance_id)
        self._reset(record)
        self.inboxes[record.instance_id][start.message_id] = start

    def _reset(self, record: InstanceRecord) -> None:
        self._keep(record)
        self.histories[record.instance_id] = []
        self.inboxes[record.instance_id] = {}

    async def create_child(self, record: InstanceRecord, start: Message) -> InstanceRecord | None:
        existing = self.records.get(record.instance_id)
        if existing is not None and (
            same_parent_task(existing, record) or not existing.runtime_status.is_terminal
        ):
            return existing.copy()
        self._reset(record)
        self.inboxes[record.instance_id][start.message_id] = start
        return None

    async def ensure_entity(self, record: InstanceRecord) -> None:
        if record.instance_id not in self.records:
            self._reset(record)

    async def send(self, messages: list[Message]) -> None:
        for message in messages:
            self.inboxes.setdefault(message.instance_id, {})[message.message_id] = message

    async def commit(self, commit: EpisodeCommit) -> None:
        instance_id = commit.record.instance_id
        self._keep(commit.record)
        history = self.histories.setdefault(instance_id, [])
        if commit.new_execution:
            history.clear()
        history.extend(commit.new_events)
        inbox = self.inboxes.setdefault(instance_id, {})
        for message_id in commit.consumed:
            inbox.pop(message_id, None)

    def _keep(self, record: InstanceRecord) -> None:
        self.records[record.instance_id] = record.copy()
        if self._sorted is not None:
            self._sorted.put(record)

    async def get_instance(self, instance_id: str) -> InstanceRecord | None:
        record = self.records.get(instance_id)
        return record.copy() if record else None

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        return list(self.histories.get(instance_id, []))

    async def load(
        self, instance_id: str
    ) -> tuple[InstanceRecord, list[dict[str, Any]], list[Message]] | None:
        record = self.records.get(instance_id)
        if record is None:
            return None
        history = list(self.histories.get(instance_id, []))
        return record.copy(), history, list(self.inboxes.get(instance_id, {}).values())

    async def replace_history(self, record: InstanceRecord, history: list[dict[str, Any]]) -> None:
        self._keep(record)
        self.histories[record.instance_id] = list(history)

    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        matches = sorted(
            (r for r in self.records.values() if query.matches(r)),
            key=lambda r: (r.created_time, r.instance_id),
        )
        offset = continuation or "0"
        if not (offset.isascii() and offset.isdigit() and len(offset) <= 12):  # ours are offsets
            raise StorageRequestError(400, BAD_TOKEN)
        start = int(offset)
        end = len(matches) if top is None else start + top
        token = str(end) if end < len(matches) else None
        return [r.copy() for r in matches[start:end]], token

    async def summaries(
        self, query: InstanceQuery, order: InstanceOrder, top: int, token: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        if self._sorted is None:
            self._sorted = SortedSummaries(self.records.values())
        return self._sorted.page(query, order, top, token)

    async def count_by_status(self, query: InstanceQuery) -> dict[str, int]:
        matches = (r for r in self.records.values() if query.matches(r))
        return dict(Counter(str(r.runtime_status) for r in matches))

    async def purge(self, instance_ids: list[str], finished_only: bool = False) -> int:
        deleted = 0
        for instance_id in instance_ids:
            record = self.records.get(instance_id)
            if finished_only and record is not None and not record.runtime_status.is_terminal:
                continue
            if self.records.pop(instance_id, None) is not None:
                deleted += 1
            if self._sorted is not None:
                self._sorted.remove(instance_id)
            self.histories.pop(instance_id, None)
            self.inboxes.pop(instance_id, None)
        return deleted

    async def delete_hub(self) -> None:
        self.records.clear()
        self.histories.clear()
        self.inboxes.clear()
        self._sorted = None  # built again, from nothing, when next asked for

    async def active_instances(self) -> list[str]:
        return [
            i
            for i, r in self.records.items()
            if not r.runtime_status.is_terminal or self.inboxes.get(i)
        ]
