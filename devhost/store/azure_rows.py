"""Rows of the Azure task hub: instance records, history events and inbox messages as table
entities, and back (the tables and keys are described in `azure.py`). Pure functions, no I/O.

Text goes into string properties of at most CHUNK characters (`Input`, `Input_1`, ...), as a
property holds at most 64 KiB of UTF-16; a value over LARGE_TEXT characters is left as a
PendingBlob under `<name>BlobName`, which the store uploads before it writes the row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..taskhub.history import EventType
from ..taskhub.model import InstanceRecord, Message, RuntimeStatus
from .large_values import BLOB_SUFFIX, LARGE_TEXT, PendingBlob

CHUNK = 30_000  # characters per string property


def put_text(entity: dict[str, Any], name: str, text: str | None) -> None:
    """A text property, chunked across properties, or a blob when it is too large for a row."""
    if text is None:
        return
    if len(text) > LARGE_TEXT:
        entity[name + BLOB_SUFFIX] = PendingBlob(text)
        return
    for index in range(0, max(len(text), 1), CHUNK):
        key = name if index == 0 else f"{name}_{index // CHUNK}"
        entity[key] = text[index : index + CHUNK]


def get_text(entity: dict[str, Any], name: str) -> str | None:
    if name not in entity:
        return None
    parts = [entity[name]]
    index = 1
    while f"{name}_{index}" in entity:
        parts.append(entity[f"{name}_{index}"])
        index += 1
    return "".join(parts)


def record_entity(record: InstanceRecord, row_key: str) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": record.instance_id,
        "RowKey": row_key,
        "Name": record.name,
        "RuntimeStatus": str(record.runtime_status),
        "CreatedTime": record.created_time,
        "LastUpdatedTime": record.last_updated_time,
        "ExecutionId": record.execution_id,
    }
    put_text(entity, "Input", record.input)
    put_text(entity, "Output", record.output)
    put_text(entity, "CustomStatus", record.custom_status)
    if record.parent:
        entity["Parent"] = json.dumps(record.parent)
    put_text(entity, "EntityState", record.entity_state)
    if record.recent_requests:
        entity["RecentRequests"] = json.dumps(record.recent_requests)
    put_text(entity, "EntityLock", record.entity_lock)
    # A Durable Task client's options; absent from 1.x rows (and from rows written before them)
    if record.version:
        entity["Version"] = record.version
    if record.tags:
        entity["Tags"] = json.dumps(record.tags)
    if record.scheduled_start is not None:
        entity["ScheduledStartTime"] = record.scheduled_start
    return entity


def record_from(entity: dict[str, Any], instance_id: str | None = None) -> InstanceRecord:
    """The record of a state row (keyed by its partition) or of a listing row (`instance_id`)."""
    return InstanceRecord(
        instance_id=instance_id or entity["PartitionKey"],
        name=entity["Name"],
        runtime_status=RuntimeStatus(entity["RuntimeStatus"]),
        created_time=utc(entity["CreatedTime"]),
        last_updated_time=utc(entity["LastUpdatedTime"]),
        execution_id=entity["ExecutionId"],
        input=get_text(entity, "Input"),
        output=get_text(entity, "Output"),
        custom_status=get_text(entity, "CustomStatus"),
        parent=json.loads(entity["Parent"]) if entity.get("Parent") else None,
        entity_state=get_text(entity, "EntityState"),
        recent_requests=json.loads(entity.get("RecentRequests") or "[]"),
        entity_lock=get_text(entity, "EntityLock"),
        version=entity.get("Version") or None,
        tags=json.loads(entity["Tags"]) if entity.get("Tags") else None,
        scheduled_start=utc(entity["ScheduledStartTime"])
        if entity.get("ScheduledStartTime")
        else None,
    )


def utc(value: datetime) -> datetime:
    """A plain UTC datetime from the SDK's datetime subclass."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(aware.timestamp(), UTC)


def event_entity(instance_id: str, execution_id: str, seq: int, evt: dict) -> dict[str, Any]:
    entity = {
        "PartitionKey": instance_id,
        "RowKey": f"h{seq:08d}",
        "ExecutionId": execution_id,
        "EventType": _event_name(evt["EventType"]),
    }
    put_text(entity, "Event", json.dumps(evt, separators=(",", ":")))
    return entity


def _event_name(number: int) -> str:
    return EventType(number).name


def message_entity(message: Message, row_key: str) -> dict[str, Any]:
    entity = {
        "PartitionKey": message.instance_id,
        "RowKey": row_key,
        "MessageId": message.message_id,
        "ExecutionId": message.execution_id or "",
    }
    put_text(entity, "Event", json.dumps(message.event, separators=(",", ":")))
    return entity


def message_from(entity: dict[str, Any]) -> Message:
    return Message(
        message_id=entity["MessageId"],
        instance_id=entity["PartitionKey"],
        event=json.loads(get_text(entity, "Event") or "{}"),
        execution_id=entity.get("ExecutionId") or None,
        stored=True,
    )


def current_events(rows: list[dict[str, Any]], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The history of the current execution, in order, from a partition's rows: the event rows
    of the state row's execution below its `Next` (rows past it are not committed yet)."""
    count = int(state.get("Next", 0))
    events = [
        r
        for r in rows
        if r["RowKey"].startswith("h")
        and r.get("ExecutionId") == state["ExecutionId"]
        and int(r["RowKey"][1:]) < count
    ]
    events.sort(key=lambda r: r["RowKey"])
    return [json.loads(get_text(r, "Event") or "{}") for r in events]
