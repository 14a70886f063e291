"""Purges on Azure Storage at scale: many instances across partitions, instances larger than a
transaction, delete-task-hub with entities, and a host killed (SIGKILL) in the middle of a purge.

The hubs are filled through the store's public writes (a commit of a finished instance with its
history), so an instance can hold more rows than one transaction; what is left afterwards is read
straight from the tables, as Storage Explorer would show it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import azure.durable_functions as df
import pytest
from azure.data.tables import TableServiceClient

from devhost.commands.cli import main
from devhost.store.azure import AzureStore
from devhost.store.bounded import bounded_gather
from devhost.taskhub.model import EpisodeCommit, InstanceRecord, RuntimeStatus
from devhost.testing import DurableHarness
from tests.devhost.conftest import PATTERNS_APP
from tests.devhost.test_crash_safety import CrashHost
from tests.devhost.test_durable_cli import app_folder

pytestmark = pytest.mark.azure  # every test here runs on Azure Storage (Azurite)
WEBHOOKS = "/runtime/webhooks/durabletask"
FILL_AT_ONCE = 16
PURGE_ALL = f"{WEBHOOKS}/instances?createdTimeFrom=2000-01-01T00:00:00Z"


def finished(instance_id: str, status: RuntimeStatus = RuntimeStatus.Completed) -> InstanceRecord:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return InstanceRecord(instance_id, "Filled", status, at, at, "x", input='"in"', output="1")


def fill(connection: str, hub: str, instances: dict[str, int]) -> None:
    """Finished instances, each with its number of history events, committed as an episode."""

    async def run() -> None:
        store = AzureStore(connection, hub)
        await store.open()
        try:

            async def commit(instance_id: str, events: int) -> None:
                history = [{"EventType": 4, "EventId": n, "Result": "1"} for n in range(events)]
                await store.commit(
                    EpisodeCommit(finished(instance_id), history, [], new_execution=True)
                )

            await bounded_gather((commit(i, n) for i, n in instances.items()), FILL_AT_ONCE)
            await store.listing.settled()
        finally:
            await store.close()

    asyncio.run(run())


def stored(connection: str, hub: str) -> tuple[dict[str, set[str]], set[str]]:
    """The History table's row keys by instance, and the listing's instance ids."""
    with TableServiceClient.from_connection_string(connection) as service:
        partitions: dict[str, set[str]] = {}
        for row in service.get_table_client(f"{hub}History").list_entities(
            select=["PartitionKey", "RowKey"]
        ):
            partitions.setdefault(row["PartitionKey"], set()).add(row["RowKey"])
        listing = service.get_table_client(f"{hub}Instances").list_entities(select=["RowKey"])
        return partitions, {row["RowKey"] for row in listing}


def state_rows(connection: str, hub: str) -> int:
    """How many instances the History table holds (their state rows)."""
    with TableServiceClient.from_connection_string(connection) as service:
        rows = service.get_table_client(f"{hub}History").query_entities(
            "RowKey eq 'state'", select=["PartitionKey"]
        )
        return sum(1 for _ in rows)


def test_purge_by_filter_deletes_finished_instances_of_every_partition_and_keeps_running_ones(
    azurite, hub_name
):
    small = {f"done-{n:04}": 6 for n in range(250)}  # three query groups of a hundred
    large = {f"long-{n}": 150 for n in range(2)}  # more rows than one transaction holds
    fill(azurite.connection_string, hub_name, small | large)
    store = AzureStore(azurite.connection_string, hub_name)
    with DurableHarness(PATTERNS_APP, store=store) as host:
        running = [host.run(host.client.start_new("Waiter")) for _ in range(2)]
        for instance_id in running:
            host.wait_for(instance_id, statuses=("Running",))
        code, _, body = host.http("DELETE", PURGE_ALL)
        assert (code, body) == (200, {"instancesDeleted": 252})
        partitions, listed = stored(azurite.connection_string, hub_name)
        assert set(partitions) == listed == set(running)
        for instance_id in running:
            assert host.status(instance_id).runtime_status.value == "Running"
            assert host.http("GET", f"{WEBHOOKS}/instances/{instance_id}?showHistory=true")[2][
                "historyEvents"
            ]
        assert host.http("GET", f"{WEBHOOKS}/instances/long-0")[0] == 404


def test_purging_one_instance_larger_than_a_transaction_deletes_all_its_rows(azurite, hub_name):
    fill(azurite.connection_string, hub_name, {"long": 250, "other": 3})
    assert len(stored(azurite.connection_string, hub_name)[0]["long"]) == 251  # history and state
    store = AzureStore(azurite.connection_string, hub_name)
    with DurableHarness(PATTERNS_APP, store=store) as host:
        code, _, body = host.http("DELETE", f"{WEBHOOKS}/instances/long")
        assert (code, body) == (200, {"instancesDeleted": 1})
        assert host.http("DELETE", f"{WEBHOOKS}/instances/long")[0] == 404
        assert host.http("GET", f"{WEBHOOKS}/instances/long")[0] == 404
    partitions, listed = stored(azurite.connection_string, hub_name)
    assert set(partitions) == listed == {"other"}


def test_an_id_started_again_during_a_long_purge_keeps_its_rows_listing_and_blobs(
    azurite, hub_name
):
    """The first group's id is started again (with an input large enough for a blob) once its
    state row is gone, while the purge goes on with the other groups: the new instance stays
    whole, readable and listed."""
    connection = azurite.connection_string
    fill(connection, hub_name, {f"done-{n:04}": 1 for n in range(800)})  # eight groups
    again, large = "done-0000", "x" * 50_000  # over LARGE_TEXT: kept in a blob
    with DurableHarness(PATTERNS_APP, store=AzureStore(connection, hub_name)) as host:
        request = urllib.request.Request(host.base_url + PURGE_ALL, method="DELETE")
        with ThreadPoolExecutor(max_workers=1) as thread:
            purge = thread.submit(lambda: urllib.request.urlopen(request, timeout=600).read())
            history = TableServiceClient.from_connection_string(connection).get_table_client(
                f"{hub_name}History"
            )
            deadline = time.monotonic() + 120
            while any(history.query_entities(f"PartitionKey eq '{again}' and RowKey eq 'state'")):
                assert time.monotonic() < deadline and not purge.done(), "its group was not purged"
                time.sleep(0.05)  # Azurite is another process: poll it gently
            host.run(host.client.start_new("Waiter", again, large), timeout=120)
            assert not purge.done(), "the purge ended before the id was started again"
            assert json.loads(purge.result()) == {"instancesDeleted": 800}
        assert host.wait_for(again, statuses=("Running",)).input_ == large
        code, _, body = host.http("GET", f"{WEBHOOKS}/instances?instanceIdPrefix={again}")
        assert (code, [i["instanceId"] for i in body]) == (200, [again])
    partitions, listed = stored(connection, hub_name)
    assert set(partitions) == listed == {again}


@pytest.mark.parametrize("emulator", [True, False], ids=["emulator", "azure-account"])
def test_delete_task_hub_deletes_every_instance_entity_and_row(
    azurite, hub_name, emulator, monkeypatch
):
    """On the emulator the tables are dropped and created again; on an Azure account (which
    these machines cannot reach: the store is told Azurite is not the emulator) the rows are
    deleted in transactions."""
    if not emulator:
        monkeypatch.setattr("devhost.store.azure.is_emulator", lambda connection: False)
    connection = azurite.connection_string
    fill(connection, hub_name, {f"done-{n:03}": 6 for n in range(120)} | {"long": 150})
    counter = df.EntityId("Tally", "counted")
    with DurableHarness(PATTERNS_APP, store=AzureStore(connection, hub_name)) as host:
        host.signal_entity(counter, "add", 1)
        assert host.entity_state(counter) == {"total": 1, "seen": [1]}
        done = host.wait_for(host.run(host.client.start_new("Sequence"))).instance_id
        assert host.http("DELETE", "/_devhost/api/hub")[0] == 200
        assert stored(connection, hub_name) == ({}, set())
        assert host.http("GET", f"{WEBHOOKS}/instances/{done}")[0] == 404
        assert host.entity_state(counter) is None
        host.signal_entity(counter, "add", 5)  # the hub goes on, from nothing
        assert host.entity_state(counter) == {"total": 5, "seen": [5]}
        assert host.wait_for(host.run(host.client.start_new("Sequence"))).runtime_status.value == (
            "Completed"
        )


def test_a_purge_killed_midway_leaves_whole_instances_and_running_it_again_finishes(
    azurite, hub_name, tmp_path
):
    """Instances of 201 rows (three transactions each): the host is SIGKILLed while it purges
    them, which the count of state rows left proves (some gone, some not; a purge that ended
    before the kill landed is tried again with more instances). Every instance still there is
    whole (its state row with all its history); the host started again finishes what was left
    of the others, and the purge run again deletes the rest."""
    connection = azurite.connection_string
    env = dict(os.environ, AzureWebJobsStorage=connection, CRASH_HUB=hub_name,
               CRASH_LOG=str(tmp_path / "activities.log"))  # fmt: skip
    for size in (60, 180, 540):
        instances = {f"big-{size}-{n:03}": 200 for n in range(size)}
        fill(connection, hub_name, instances)
        remaining = purge_killed_midway(CrashHost(env, tmp_path / "host.log"), connection, hub_name)
        assert remaining < size, "the purge deleted nothing"
        if remaining:
            break
    else:
        pytest.skip("each purge ended before the kill landed: nothing was left to check")
    partitions, listed = stored(connection, hub_name)
    for instance_id, keys in partitions.items():
        if "state" in keys:  # an instance that is there is there whole
            assert len(keys) == instances[instance_id] + 1, instance_id
    assert set(partitions) <= listed  # the listing row goes last: a purge run again finds them

    host = CrashHost(env, tmp_path / "host.log")
    host.start()
    try:
        host.request("GET", f"{WEBHOOKS}/instances?top=1")  # answers once recovery is done
        partitions, listed = stored(connection, hub_name)
        assert all("state" in keys for keys in partitions.values())  # recovery cleared the rest
        assert partitions  # the whole instances the kill left (deletes it sent may have landed)
        code, body = host.request("DELETE", PURGE_ALL)
        assert (code, body) == (200, {"instancesDeleted": len(partitions)})
        assert stored(connection, hub_name) == ({}, set())
    finally:
        host.stop()


def purge_killed_midway(host: CrashHost, connection: str, hub_name: str) -> int:
    """Start the host, purge every instance through it, SIGKILL it once the first is gone;
    how many instances (state rows) are left."""
    total = state_rows(connection, hub_name)
    host.start()

    def purge_all() -> None:
        with contextlib.suppress(OSError):  # the host is killed before it answers
            host.request("DELETE", PURGE_ALL)

    purge = threading.Thread(target=purge_all, daemon=True)
    purge.start()
    deadline = time.monotonic() + 120
    while state_rows(connection, hub_name) == total and purge.is_alive():
        assert time.monotonic() < deadline, "the purge deleted nothing"
        time.sleep(0.01)  # Azurite is another process: poll it, gently
    host.kill()
    purge.join()
    return state_rows(connection, hub_name)


def test_a_long_purge_history_on_storage_says_how_far_it_is(
    azurite, hub_name, tmp_path, capsys, monkeypatch
):
    fill(azurite.connection_string, hub_name, {f"done-{n:04}": 1 for n in range(1050)})
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    argv = ["durable", "purge-history", "--app-dir", str(app_folder(tmp_path, port=1)),
            "--task-hub-name", hub_name]  # fmt: skip
    with ThreadPoolExecutor(max_workers=1) as thread:  # as a process would: a loop of its own
        assert thread.submit(main, argv).result() == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "Purged 1050 instances."
    assert captured.err.splitlines() == [
        "Purging: 1,000 of 1,050 matching instances done ...",
        "Purging: 1,050 of 1,050 matching instances done ...",
    ]
    assert stored(azurite.connection_string, hub_name) == ({}, set())
