"""Named constructors for the messages the engine sends between instances.

Pure: each takes the moment it is made at, so the parts that send them need no clock of theirs.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from ..app.invoke import ActivityOutcome
from ..taskhub.history import (
    NO_OPTIONS,
    EventType,
    StartOptions,
    event,
    execution_started,
    format_time,
)
from ..taskhub.model import InstanceRecord, Message, RuntimeStatus
from .replay import EncodedText


def new_id() -> str:
    return uuid.uuid4().hex


def to_json_text(value: Any) -> str | None:
    if value is None or isinstance(value, EncodedText):  # encoded by the SDK already
        return value
    return json.dumps(value)


def start_message(
    now: datetime,
    instance_id: str,
    name: str,
    input_json: str | None,
    parent: dict | None,
    options: StartOptions = NO_OPTIONS,
    execution_id: str | None = None,
) -> Message:
    """The start of a new execution (a new execution id unless given), for a client, a parent
    or a continue-as-new."""
    execution_id = execution_id or new_id()
    evt = execution_started(now, name, instance_id, execution_id, input_json, parent, options)
    evt["MessageId"] = message_id = new_id()
    return Message(message_id, instance_id, evt, execution_id)


def restart_message(now: datetime, record: InstanceRecord) -> Message:
    """The start of an execution whose start message was not kept (continue-as-new)."""
    evt = execution_started(
        now,
        record.name,
        record.instance_id,
        record.execution_id,
        record.input,
        record.parent,
        record.start_options,
    )
    return Message(new_id(), record.instance_id, evt, record.execution_id)


def parent_message(
    now: datetime,
    instance_id: str,
    execution_id: str,
    task_id: int,
    failed: bool,
    result: str | None = None,
    reason: str | None = None,
) -> Message:
    """A child's outcome, for task `task_id` of the parent's execution."""
    if failed:
        evt = event(
            EventType.SubOrchestrationInstanceFailed,
            now,
            TaskScheduledId=task_id,
            Reason=reason,
            Details=reason,
        )
    else:
        evt = event(
            EventType.SubOrchestrationInstanceCompleted,
            now,
            TaskScheduledId=task_id,
            Result=result,
        )
    return Message(new_id(), instance_id, evt, execution_id)


def child_outcome(now: datetime, child: InstanceRecord) -> Message:
    """The outcome of a child that finished, for its parent (from the child's record)."""
    parent = child.parent or {}
    instance = parent.get("OrchestrationInstance") or {}
    failed = child.runtime_status != RuntimeStatus.Completed
    return parent_message(
        now,
        instance.get("InstanceId", ""),
        instance.get("ExecutionId", ""),
        parent.get("TaskScheduledId", -1),
        failed=failed,
        result=child.output,
        reason=json.loads(child.output) if failed and child.output else None,
    )


def activity_result_message(
    now: datetime, instance_id: str, execution_id: str, task_id: int, outcome: ActivityOutcome
) -> Message:
    """An activity's outcome, for task `task_id` of the execution that scheduled it."""
    if outcome.ok:
        evt = event(EventType.TaskCompleted, now, TaskScheduledId=task_id, Result=outcome.result)
    else:
        evt = event(
            EventType.TaskFailed,
            now,
            TaskScheduledId=task_id,
            Reason=outcome.reason,
            Details=outcome.details,
        )
    return Message(new_id(), instance_id, evt, execution_id)


def timer_fired_message(
    now: datetime, instance_id: str, execution_id: str, timer_id: int, due: datetime
) -> Message:
    evt = event(EventType.TimerFired, now, TimerId=timer_id, FireAt=format_time(due))
    return Message(new_id(), instance_id, evt, execution_id)


def failure_line(
    instance_id: str, function: str, kind: str, reason: str, task_id: int | None = None
) -> str:
    """The line the Durable Functions extension logs when a function fails."""
    line = (
        f"{instance_id}: Function '{function} ({kind})' failed with an error. "
        f"Reason: {reason}. IsReplay: False. State: Failed."
    )
    return line if task_id is None else f"{line} TaskEventId: {task_id}"
