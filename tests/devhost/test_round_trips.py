"""Round trips to Azure Storage, counted by a proxy in front of the real Azurite: a start is one
transaction, a step of a running instance one, and polling an instance held in memory none."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devhost.store.azure import AzureStore
from devhost.store.base import InstanceExistsError
from devhost.taskhub.history import execution_started
from devhost.taskhub.model import (
    EpisodeCommit,
    InstanceQuery,
    InstanceRecord,
    Message,
    RuntimeStatus,
    record_from_start,
)
from devhost.testing import DurableHarness

PATTERNS = Path(__file__).parent / "apps" / "patterns"


def new_start(instance_id: str) -> tuple[InstanceRecord, Message]:
    now = datetime.now(UTC)
    execution = f"e-{now.timestamp()}"
    evt = execution_started(now, "Chain", instance_id, execution, "5", None)
    start = Message(f"m-{now.timestamp()}", instance_id, evt, execution, stored=True)
    return record_from_start(start, now), start


def test_a_start_is_one_transaction_and_a_refused_start_changes_nothing(storage_proxy, hub_name):
    async def scenario() -> None:
        store = AzureStore(storage_proxy.connection_string, hub_name)
        await store.open()
        try:
            record, start = new_start("once")
            storage_proxy.reset()
            await store.create_instance(record, start)
            assert [(r.method, r.batch_table) for r in storage_proxy.requests] == [
                ("POST", f"{hub_name}History")
            ]
            with pytest.raises(InstanceExistsError):
                await store.create_instance(*new_start("once"))
            stored = await store.get_instance("once")
            assert stored is not None and stored.execution_id == record.execution_id
            loaded = await store.load("once")
            assert loaded is not None and [m.message_id for m in loaded[2]] == [start.message_id]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_child_started_again_after_a_restart_still_consumes_its_stored_start(azurite, hub_name):
    """The parent replays after a crash and starts its child again: the insert finds the child,
    and the child's first commit must delete the start row that is stored, not a new key."""

    async def scenario() -> None:
        record, start = new_start("child")
        record.parent = {"TaskScheduledId": 3, "OrchestrationInstance": {"InstanceId": "p"}}
        first = AzureStore(azurite.connection_string, hub_name)
        await first.open()
        assert await first.create_child(record, start) is None
        await first.close()
        store = AzureStore(azurite.connection_string, hub_name)  # the host after the restart
        await store.open()
        try:
            loaded = await store.load("child")
            assert loaded is not None and [m.message_id for m in loaded[2]] == [start.message_id]
            again = await store.create_child(record.copy(), start)
            assert again is not None and again.execution_id == record.execution_id
            running = record.copy()
            running.runtime_status = RuntimeStatus.Running
            await store.commit(EpisodeCommit(running, [start.event], [start.message_id]))
            loaded = await store.load("child")
            assert loaded is not None and loaded[2] == [] and len(loaded[1]) == 1
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_step_of_a_running_instance_is_one_transaction(storage_proxy, hub_name):
    store = AzureStore(storage_proxy.connection_string, hub_name)
    with DurableHarness(PATTERNS, store=store) as host:
        storage_proxy.reset()
        instance_id = host.start("Chain", 5)
        assert host.wait_for(instance_id).output == 2
        listed, _ = host.run(store.query(InstanceQuery(), None, None))
        assert [(r.instance_id, r.runtime_status) for r in listed] == [
            (instance_id, RuntimeStatus.Completed)
        ]
        writes = [r.batch_table for r in storage_proxy.requests if r.method != "GET"]
        # the start, then six episodes (the start, and one for each result), one each
        assert writes.count(f"{hub_name}History") == 7
        # the listing follows behind, gathering changes: Pending, Running and Completed at most
        assert 1 <= writes.count(f"{hub_name}Instances") <= 3
        assert len(writes) == 7 + writes.count(f"{hub_name}Instances")


def test_polling_an_instance_held_or_finished_here_reads_no_storage(storage_proxy, hub_name):
    store = AzureStore(storage_proxy.connection_string, hub_name)
    with DurableHarness(PATTERNS, store=store) as host:
        instance_id = host.start("Approval")
        host.wait_for(instance_id, statuses=("Running",))
        host.idle()
        host.run(store.query(InstanceQuery(), None, None))  # the listing has caught up
        storage_proxy.reset()
        for _ in range(20):
            assert host.status(instance_id).runtime_status.value == "Running"
        assert [r for r in storage_proxy.requests if "Leases" not in r.path] == []
        host.raise_event(instance_id, "Approval", "yes")
        assert host.wait_for(instance_id).output == "approved: yes"
        storage_proxy.reset()  # finished here: its last record is still this host's to serve
        for _ in range(5):
            assert host.status(instance_id).runtime_status.value == "Completed"
        assert [r for r in storage_proxy.requests if "Leases" not in r.path] == []
        host.run(host.client.purge_instance_history(instance_id))
        assert host.run(host.client.get_status(instance_id)).runtime_status is None


def test_the_listing_writes_many_changes_in_few_transactions(storage_proxy, hub_name):
    store = AzureStore(storage_proxy.connection_string, hub_name)
    with DurableHarness(PATTERNS, store=store) as host:
        storage_proxy.reset()

        async def start_all() -> list[str]:
            return await asyncio.gather(*(host.client.start_new("Approval") for _ in range(30)))

        ids = host.run(start_all())
        for instance_id in ids:
            host.wait_for(instance_id, statuses=("Running",))
        listed, _ = host.run(store.query(InstanceQuery(), None, None))
        assert sorted(r.instance_id for r in listed) == sorted(ids)
        assert {r.runtime_status for r in listed} == {RuntimeStatus.Running}
        # 60 changes (30 Pending, then 30 Running): a transaction a change would be 60; the
        # writer gathers 50 ms of them (2 or 3 transactions here, when the machine is quiet)
        assert storage_proxy.transactions(f"{hub_name}Instances") <= 10
