"""The Azure row codec, through the store on Azurite: every field of an instance row, its history
events and its inbox come back as they went in, however long or unusual the text."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from devhost.engine.history import EventType, event, execution_started
from devhost.engine.model import EpisodeCommit, InstanceRecord, Message, RuntimeStatus
from devhost.store.azure import AzureStore

pytestmark = pytest.mark.azure
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
