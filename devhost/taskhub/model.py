"""The records the engine and its stores share: instance status rows and inbox messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .history import StartOptions, start_options


class RuntimeStatus(StrEnum):
    """Runtime statuses as the HTTP API and the SDK's OrchestrationRuntimeStatus name them."""

    Pending = "Pending"
    Running = "Running"
    Completed = "Completed"
    ContinuedAsNew = "ContinuedAsNew"
    Failed = "Failed"
    Canceled = "Canceled"
    Terminated = "Terminated"
    Suspended = "Suspended"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        RuntimeStatus.Completed,
        RuntimeStatus.Failed,
        RuntimeStatus.Canceled,
        RuntimeStatus.Terminated,
    }
)


@dataclass
class InstanceRecord:
    """One row per instance: what the status API serves. JSON fields hold JSON text."""

    instance_id: str
    name: str
    runtime_status: RuntimeStatus
    created_time: datetime
    last_updated_time: datetime
    execution_id: str
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    parent: dict[str, Any] | None = None
    entity_state: str | None = None
    recent_requests: list[str] = field(default_factory=list)
    entity_lock: str | None = None  # the orchestration whose critical section holds the entity
    version: str | None = None  # a Durable Task client's; the 1.x SDK sets none
    tags: dict[str, str] | None = None
    scheduled_start: datetime | None = None

    def copy(self) -> InstanceRecord:
        values = vars(self).copy()
        values["recent_requests"] = list(self.recent_requests)
        values["tags"] = dict(self.tags) if self.tags else None
        return InstanceRecord(**values)

    @property
    def start_options(self) -> StartOptions:
        """What a new execution of this instance keeps (its start time is not kept)."""
        return StartOptions(version=self.version, tags=self.tags)

    @property
    def is_entity(self) -> bool:
        return is_entity_id(self.instance_id)


def is_entity_id(instance_id: str) -> bool:
    """Entities have the scheduler ids of the SDK: @name@key."""
    return instance_id.startswith("@")


@dataclass
class Message:
    """An event for an instance's inbox.

    What a client was told is accepted (starts, raised events, control messages) is `stored`
    before the answer; results of activities, timers and children are kept in memory only, as
    the history that scheduled them is enough to produce them again after a crash.
    `execution_id` ties task results to the execution that scheduled them, so results of an
    execution that continued as new are dropped; external events and control messages carry None.
    """

    message_id: str
    instance_id: str
    event: dict[str, Any]
    execution_id: str | None = None
    stored: bool = False


@dataclass
class EpisodeCommit:
    """Everything one episode changes for one instance, applied by the store as one unit.

    `consumed` are ids of stored inbox messages now in history; `outbox` is handed to other
    instances in memory after the commit (children are created through the store first).
    """

    record: InstanceRecord
    new_events: list[dict[str, Any]]
    consumed: list[str]
    outbox: list[Message] = field(default_factory=list)
    new_execution: bool = False
    status_changed: bool = True


@dataclass
class InstanceQuery:
    """Filters of the list API; all optional."""

    runtime_status: set[RuntimeStatus] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    instance_id_prefix: str | None = None
    name: str | None = None  # the orchestrator's (or entity's) name, exactly
    orchestrations_only: bool = False  # leave entities out

    def matches(self, record: InstanceRecord) -> bool:
        if self.orchestrations_only and record.is_entity:
            return False
        if self.name and record.name != self.name:
            return False
        if self.runtime_status and record.runtime_status not in self.runtime_status:
            return False
        if self.created_from and record.created_time < self.created_from:
            return False
        if self.created_to and record.created_time > self.created_to:
            return False
        return not (
            self.instance_id_prefix and not record.instance_id.startswith(self.instance_id_prefix)
        )


def record_from_start(start: Message, created: datetime) -> InstanceRecord:
    """The Pending status row of an instance, from its ExecutionStarted message."""
    evt = start.event
    parent = evt.get("ParentInstance")
    options = start_options(evt)
    return InstanceRecord(
        instance_id=start.instance_id,
        name=evt["Name"],
        runtime_status=RuntimeStatus.Pending,
        created_time=created,
        last_updated_time=created,
        execution_id=evt["OrchestrationInstance"]["ExecutionId"],
        input=evt.get("Input"),
        parent=parent,
        version=options.version,
        tags=options.tags,
        scheduled_start=options.scheduled_start,
    )


def same_parent_task(a: InstanceRecord, b: InstanceRecord) -> bool:
    """Whether two records are the same child: started by the same task of the same execution,
    in the same attempt (a Durable Task SDK retries a sub-orchestration under the same task id)."""
    if not a.parent or not b.parent:
        return False
    return (
        a.parent.get("TaskScheduledId") == b.parent.get("TaskScheduledId")
        and a.parent["OrchestrationInstance"] == b.parent["OrchestrationInstance"]
        and a.parent.get("Attempt", 1) == b.parent.get("Attempt", 1)
    )
