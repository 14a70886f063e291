"""The Azure row codec: records, history events and inbox messages as table entities and back,
as pure functions; and once through the store on Azurite, however long or unusual the text."""

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devhost.store.azure import AzureStore
from devhost.store.azure_rows import (
    CHUNK,
    event_entity,
    message_entity,
    message_from,
    record_entity,
    record_from,
    utc,
)
from devhost.store.large_values import LARGE_TEXT, PendingBlob
from devhost.taskhub.history import EventType, event, execution_started
from devhost.taskhub.model import EpisodeCommit, InstanceRecord, Message, RuntimeStatus

T0 = datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC)
LONG = "ünïcödé ✓ " * 7_000  # 70,000 characters: more than two 30,000-character properties


def round_trip(connection: str, hub: str, record: InstanceRecord, events: list[dict]):
    async def scenario():
        store = AzureStore(connection, hub)
        await store.open()
        try:
            start_event = execution_started(T0, record.name, record.instance_id, "exec", LONG)
            start = Message("start-1", record.instance_id, start_event, "exec", stored=True)
            await store.create_instance(record, start)
            pending = Message(
                "evt-1",
                record.instance_id,
                event(EventType.EventRaised, T0, Name="Go", Input=json.dumps(LONG)),
                stored=True,
            )
            await store.send([pending])
            await store.commit(EpisodeCommit(record, events, ["start-1"]))
            return (
                await store.get_instance(record.instance_id),
                await store.get_history(record.instance_id),
                await store.load(record.instance_id),
            )
        finally:
            await store.close()

    return asyncio.run(scenario())


@pytest.mark.azure
def test_every_field_survives_the_round_trip(azurite, hub_name):
    record = InstanceRecord(
        instance_id="Order:Pat O'Brien",
        name="Checkout",
        runtime_status=RuntimeStatus.Running,
        created_time=T0,
        last_updated_time=T0 + timedelta(seconds=1),
        execution_id="exec",
        input=json.dumps(LONG),
        output=None,
        custom_status=json.dumps({"step": "✓", "big": LONG[:40_000]}),
        parent={
            "Name": "Parent",
            "TaskScheduledId": 3,
            "OrchestrationInstance": {"InstanceId": "mom", "ExecutionId": "e0"},
        },
        entity_state=None,
        recent_requests=["r1", "r2"],
    )
    events = [
        event(EventType.OrchestratorStarted, T0),
        execution_started(T0, "Checkout", record.instance_id, "exec", json.dumps(LONG)),
        event(EventType.TaskScheduled, T0, 0, Name="Reserve", Input=json.dumps(LONG)),
        event(EventType.OrchestratorCompleted, T0),
    ]
    stored, history, loaded = round_trip(azurite.connection_string, hub_name, record, events)
    assert stored == record
    assert history == events
    loaded_record, loaded_history, inbox = loaded
    assert loaded_record == record and loaded_history == events
    assert [(m.message_id, json.loads(m.event["Input"])) for m in inbox] == [("evt-1", LONG)]


def a_record(**fields) -> InstanceRecord:
    values = {
        "instance_id": "Order:Pat",
        "name": "Checkout",
        "runtime_status": RuntimeStatus.Running,
        "created_time": T0,
        "last_updated_time": T0,
        "execution_id": "exec",
    }
    return InstanceRecord(**{**values, **fields})


def test_a_record_becomes_a_row_and_back_unchanged():
    record = a_record(
        input=json.dumps("ünïcödé ✓"),
        output='"done"',
        custom_status='{"step": 2}',
        parent={"Name": "P", "TaskScheduledId": 1, "OrchestrationInstance": {"InstanceId": "p"}},
        entity_state='{"total": 3}',
        recent_requests=["r1"],
    )
    row = record_entity(record, "state")
    assert (row["PartitionKey"], row["RowKey"], row["RuntimeStatus"]) == (
        "Order:Pat",
        "state",
        "Running",
    )
    assert record_from(row) == record


def test_absent_values_leave_no_property():
    row = record_entity(a_record(), "")
    assert not {"Input", "Output", "CustomStatus", "Parent", "EntityState", "RecentRequests"} & set(
        row
    )
    assert record_from(row) == a_record()


def test_long_text_is_split_across_properties_of_at_most_chunk_characters():
    text = "x" * (CHUNK + 10_000)
    row = record_entity(a_record(input=text), "")
    assert len(row["Input"]) == CHUNK and len(row["Input_1"]) == 10_000 and "Input_2" not in row
    assert record_from(row).input == text


def test_text_too_large_for_a_row_is_left_for_a_blob():
    text = "y" * (LARGE_TEXT + 1)
    row = record_entity(a_record(output=text), "")
    assert row["OutputBlobName"] == PendingBlob(text) and "Output" not in row


def test_a_history_event_is_one_row_numbered_in_order():
    evt = event(EventType.TaskScheduled, T0, 3, Name="Reserve", Input='{"id": 7}')
    row = event_entity("inst", "exec", 7, evt)
    assert (row["RowKey"], row["EventType"], row["ExecutionId"]) == (
        "h00000007",
        "TaskScheduled",
        "exec",
    )
    assert json.loads(row["Event"]) == evt


def test_an_inbox_message_becomes_a_row_and_back():
    for execution_id in ("exec", None):
        message = Message("m1", "inst", event(EventType.EventRaised, T0, Name="Go"), execution_id)
        back = message_from(message_entity(message, "i0001-m1"))
        assert back == Message("m1", "inst", message.event, execution_id, stored=True)


def test_times_read_back_are_plain_utc():
    naive = datetime(2026, 1, 1, 12, 0)
    eastern = datetime(2026, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert utc(naive) == utc(eastern) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert utc(eastern).tzinfo is UTC


def test_a_durable_task_clients_start_options_round_trip_and_a_1x_row_has_none():
    record = InstanceRecord(
        instance_id="versioned",
        name="Checkout",
        runtime_status=RuntimeStatus.Pending,
        created_time=T0,
        last_updated_time=T0,
        execution_id="exec",
        version="2.5.0",
        tags={"team": "dungeon"},
        scheduled_start=T0 + timedelta(hours=2),
    )
    back = record_from(record_entity(record, "state"))
    assert (back.version, back.tags, back.scheduled_start) == (
        "2.5.0",
        {"team": "dungeon"},
        T0 + timedelta(hours=2),
    )
    plain = InstanceRecord("plain", "Checkout", RuntimeStatus.Running, T0, T0, "exec")
    row = record_entity(plain, "state")
    assert not {"Version", "Tags", "ScheduledStartTime"} & set(row)  # 1.x rows are as before
    back = record_from(row)  # and a row written before these fields reads back without them
    assert (back.version, back.tags, back.scheduled_start) == (None, None, None)
