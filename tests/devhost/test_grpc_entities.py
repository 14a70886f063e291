"""Durable entities of the Durable Task SDK on devhost's sidecar, on both stores.

A real `durabletask` worker runs the entities and orchestrations and a real client signals,
reads, queries and cleans; the sidecar runs on the virtual clock, so a delayed signal waits
until the test advances time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from durabletask import client, entities, task, worker
from google.protobuf import wrappers_pb2

from devhost.grpc import entity_calls
from devhost.grpc.proto import pb, stubs
from devhost.testing.sidecar import SidecarHarness

Status = client.OrchestrationStatus


@pytest.fixture
def connect(sidecar) -> Iterator[Callable[..., client.TaskHubGrpcClient]]:
    """Start a worker with the given entities and orchestrators; hand back a client."""
    opened: list[Any] = []

    def start(*orchestrators: Any, entity_functions: tuple = ()) -> client.TaskHubGrpcClient:
        w = worker.TaskHubGrpcWorker(host_address=sidecar.address)
        for fn in orchestrators:
            w.add_orchestrator(fn)
        for fn in entity_functions:
            w.add_entity(fn)
        w.start()
        c = client.TaskHubGrpcClient(host_address=sidecar.address)
        opened.extend([w, c])
        return c

    yield start
    for item in reversed(opened):
        (item.stop if isinstance(item, worker.TaskHubGrpcWorker) else item.close)()


def until(condition: Callable[[], Any], timeout: float = 30) -> Any:
    """The condition's first true value, checked until the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
    return value


def counter(ctx: entities.EntityContext, amount: Any) -> Any:
    value = ctx.get_state(int, 0)
    if ctx.operation == "add":
        ctx.set_state(value + amount)
    elif ctx.operation == "fail":
        raise ValueError(f"refused {amount}")
    elif ctx.operation == "pass_on":  # signals another counter, starts an orchestration
        ctx.signal_entity(entities.EntityInstanceId("counter", amount), "add", 10)
        ctx.schedule_new_orchestration("reads", input=amount, instance_id=f"reads-{amount}")
    elif ctx.operation == "bad_start":  # an id the runtime refuses
        ctx.schedule_new_orchestration("reads", instance_id="a/b")
    elif ctx.operation == "delete":
        ctx.set_state(None)
    return ctx.get_state(int, 0)


def state_of(c: client.TaskHubGrpcClient, key: str) -> Any:
    found = c.get_entity(entities.EntityInstanceId("counter", key))
    return None if found is None else found.get_state(int)


def adds_and_reads(ctx: task.OrchestrationContext, key: str):
    target = entities.EntityInstanceId("counter", key)
    ctx.signal_entity(target, "add", 2)
    return (yield ctx.call_entity(target, "add", 3))


def reads(ctx: task.OrchestrationContext, key: str):
    return (yield ctx.call_entity(entities.EntityInstanceId("counter", key), "get"))


def calls_a_failing_operation(ctx: task.OrchestrationContext, _):
    try:
        yield ctx.call_entity(entities.EntityInstanceId("counter", "f"), "fail", 7)
    except task.TaskFailedError as failure:
        return str(failure)
    return "no failure"


def calls_a_bad_start_then_adds(ctx: task.OrchestrationContext, key: str):
    target = entities.EntityInstanceId("counter", key)
    try:
        yield ctx.call_entity(target, "bad_start")
        refused = "no failure"
    except task.TaskFailedError as failure:
        refused = str(failure)
    return [refused, (yield ctx.call_entity(target, "add", 1))]


def locks_and_waits(ctx: task.OrchestrationContext, key: str):
    target = entities.EntityInstanceId("counter", key)
    with (yield ctx.lock_entities([target])):
        yield ctx.wait_for_external_event("go")
        total = yield ctx.call_entity(target, "add", 100)
    return total


def test_signals_and_calls_from_an_orchestration_and_a_client(connect):
    c = connect(adds_and_reads, entity_functions=(counter,))
    c.signal_entity(entities.EntityInstanceId("counter", "a"), "add", 1)
    instance_id = c.schedule_new_orchestration(adds_and_reads, input="a")
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.COMPLETED
    assert state.serialized_output == "6"  # the client's 1, the signal's 2, the call's 3
    found = c.get_entity(entities.EntityInstanceId("counter", "a"), include_state=False)
    assert found is not None and found.includes_state is False
    assert state_of(c, "a") == 6


def test_an_entity_never_signalled_is_not_found(connect):
    c = connect(entity_functions=(counter,))
    assert c.get_entity(entities.EntityInstanceId("counter", "nobody")) is None


def test_a_failed_operation_fails_the_call_and_keeps_the_state(connect):
    c = connect(calls_a_failing_operation, entity_functions=(counter,))
    c.signal_entity(entities.EntityInstanceId("counter", "f"), "add", 5)
    instance_id = c.schedule_new_orchestration(calls_a_failing_operation)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert "refused 7" in state.serialized_output
    assert state_of(c, "f") == 5


def test_an_entity_signals_an_entity_and_starts_an_orchestration(connect):
    c = connect(reads, entity_functions=(counter,))
    c.signal_entity(entities.EntityInstanceId("counter", "first"), "pass_on", "second")
    state = until(lambda: c.get_orchestration_state("reads-second"))
    state = c.wait_for_orchestration_completion(state.instance_id, timeout=30)
    assert state.serialized_output == "10"
    assert state_of(c, "second") == 10


def test_a_refused_start_fails_its_operation_and_the_entity_goes_on(connect, caplog):
    c = connect(calls_a_bad_start_then_adds, entity_functions=(counter,))
    c.signal_entity(entities.EntityInstanceId("counter", "b"), "bad_start")
    c.signal_entity(entities.EntityInstanceId("counter", "b"), "add", 5)
    instance_id = c.schedule_new_orchestration(calls_a_bad_start_then_adds, input="b")
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.COMPLETED
    refused, total = json.loads(state.serialized_output)
    assert "must not contain /" in refused and total == 6
    assert not [r for r in caplog.records if r.exc_info]  # no stack trace


def test_an_entity_a_batch_signals_is_not_removed_before_the_signal_is_queued(
    sidecar, connect, monkeypatch
):
    c = connect(reads, entity_functions=(counter,))
    c.signal_entity(entities.EntityInstanceId("counter", "warm"), "add", 1)
    until(lambda: state_of(c, "warm") == 1)
    engine = sidecar.sidecar.hubs.hubs[0].engine
    store = engine.entity_runtime.store
    real_commit = store.commit

    async def hold_first_commit() -> tuple[asyncio.Event, asyncio.Event]:
        committing, committed = asyncio.Event(), asyncio.Event()

        async def held_commit(commit):
            if commit.record.instance_id == "@counter@first":
                committing.set()
                await committed.wait()
            return await real_commit(commit)

        monkeypatch.setattr(store, "commit", held_commit)
        return committing, committed

    committing, committed = sidecar.run(hold_first_commit())

    async def clean_meanwhile() -> bool:
        await committing.wait()  # "second" is in memory, empty, its signal not yet queued
        removed = await engine.remove_empty_entity("@counter@second")
        committed.set()
        return removed

    c.signal_entity(entities.EntityInstanceId("counter", "first"), "pass_on", "second")
    assert sidecar.run(clean_meanwhile()) is False
    assert until(lambda: state_of(c, "second") == 10)


def test_an_operation_applied_again_does_not_run_its_finished_orchestration_again(
    sidecar, connect, monkeypatch
):
    c = connect(reads, entity_functions=(counter,))
    c.signal_entity(entities.EntityInstanceId("counter", "warm"), "add", 1)
    until(lambda: state_of(c, "warm") == 1)
    engine = sidecar.sidecar.hubs.hubs[0].engine
    store = engine.entity_runtime.store
    real_commit = store.commit
    lost: list[str] = []

    async def commit_lost_once(commit):  # as if the host died between the start and the commit
        if commit.record.instance_id == "@counter@again" and not lost:
            lost.append(commit.record.instance_id)
            raise ConnectionError("the host went away before the entity's commit")
        return await real_commit(commit)

    monkeypatch.setattr(store, "commit", commit_lost_once)
    c.signal_entity(entities.EntityInstanceId("counter", "again"), "pass_on", "twice")
    first = c.wait_for_orchestration_completion(
        until(lambda: c.get_orchestration_state("reads-twice")).instance_id, timeout=30
    )
    assert first.runtime_status == Status.COMPLETED and lost
    started = sidecar.run(engine.get_record("reads-twice"))
    c.signal_entity(entities.EntityInstanceId("counter", "again"), "add", 1)  # runs the batch again
    assert until(lambda: state_of(c, "again") == 1)
    sidecar.idle()
    assert sidecar.run(engine.get_record("reads-twice")).execution_id == started.execution_id
    assert state_of(c, "twice") == 10  # the repeated signal was dropped too


def metadata(sidecar: SidecarHarness, key: str) -> pb.EntityMetadata | None:
    """The counter as a query that includes transient entities lists it (the SDK's metadata
    reads `lockedBy` as an entity id, and an orchestration holds the lock: read it raw)."""
    query = pb.EntityQuery(instanceIdStartsWith=pb_text(f"@counter@{key}"), includeTransient=True)
    with grpc.insecure_channel(sidecar.address) as channel:
        found = stubs.TaskHubSidecarServiceStub(channel).QueryEntities(
            pb.QueryEntitiesRequest(query=query)
        )
    matching = [e for e in found.entities if e.instanceId == f"@counter@{key}"]
    return matching[0] if matching else None


def locked_by(sidecar: SidecarHarness, key: str) -> str | None:
    found = metadata(sidecar, key)
    return found.lockedBy.value if found is not None and found.HasField("lockedBy") else None


def pb_text(text: str) -> wrappers_pb2.StringValue:
    return wrappers_pb2.StringValue(value=text)


def test_a_critical_section_holds_other_requests_back_until_it_ends(sidecar, connect):
    c = connect(locks_and_waits, entity_functions=(counter,))
    instance_id = c.schedule_new_orchestration(locks_and_waits, input="l")
    target = entities.EntityInstanceId("counter", "l")
    until(lambda: locked_by(sidecar, "l") == instance_id)
    c.signal_entity(target, "add", 1)
    sidecar.idle()
    assert metadata(sidecar, "l").backlogQueueSize == 1  # held back by the lock
    c.raise_orchestration_event(instance_id, "go")
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.serialized_output == "100"  # the signal came after the section
    assert until(lambda: state_of(c, "l") == 101)
    assert locked_by(sidecar, "l") is None


def test_a_delayed_signal_waits_for_its_time_on_the_virtual_clock(sidecar, connect):
    c = connect(entity_functions=(counter,))
    target = entities.EntityInstanceId("counter", "d")
    c.signal_entity(target, "add", 1)
    later = sidecar.clock.now() + timedelta(hours=2)
    c.signal_entity(target, "add", 5, signal_time=later)
    until(lambda: state_of(c, "d") == 1)
    sidecar.advance(hours=1)
    assert state_of(c, "d") == 1
    sidecar.advance(hours=1)
    assert until(lambda: state_of(c, "d") == 6)


def test_query_filters_pages_and_shows_transient_entities_when_asked(connect):
    c = connect(entity_functions=(counter,))
    for key in ("q1", "q2", "q3"):
        c.signal_entity(entities.EntityInstanceId("counter", key), "add", 1)
    c.signal_entity(entities.EntityInstanceId("counter", "gone"), "delete")
    until(lambda: state_of(c, "q3") == 1)
    until(lambda: len(c.get_all_entities(client.EntityQuery(include_transient=True))) == 4)
    paged = c.get_all_entities(
        client.EntityQuery(instance_id_starts_with="@counter@q", page_size=2)
    )
    assert sorted(str(e.id) for e in paged) == ["@counter@q1", "@counter@q2", "@counter@q3"]
    assert all(e.get_state(int) == 1 for e in paged)
    bare = c.get_all_entities(client.EntityQuery(include_state=False))
    assert len(bare) == 3 and all(not e.includes_state for e in bare)


def test_clean_removes_empty_entities_and_releases_orphaned_locks(sidecar, connect):
    c = connect(locks_and_waits, entity_functions=(counter,))
    c.signal_entity(entities.EntityInstanceId("counter", "empty"), "delete")
    instance_id = c.schedule_new_orchestration(locks_and_waits, input="orphan")
    until(lambda: locked_by(sidecar, "orphan") == instance_id)
    c.terminate_orchestration(instance_id)
    c.wait_for_orchestration_completion(instance_id, timeout=30)
    sidecar.idle()
    result = c.clean_entity_storage()
    assert result.orphaned_locks_released == 1
    assert result.empty_entities_removed == 1  # "empty"; "orphan" still has its unlock waiting
    until(lambda: locked_by(sidecar, "orphan") is None)
    assert c.clean_entity_storage().empty_entities_removed == 1  # now "orphan" too
    found = c.get_all_entities(client.EntityQuery(include_transient=True))
    assert found == []


def test_clean_removes_every_empty_entity_over_more_than_one_page(sidecar, connect, monkeypatch):
    monkeypatch.setattr(entity_calls, "CLEAN_PAGE", 2)
    c = connect(entity_functions=(counter,))
    for n in range(5):
        c.signal_entity(entities.EntityInstanceId("counter", f"e{n}"), "delete")
    until(lambda: len(c.get_all_entities(client.EntityQuery(include_transient=True))) == 5)
    sidecar.idle()
    assert c.clean_entity_storage().empty_entities_removed == 5
    assert c.get_all_entities(client.EntityQuery(include_transient=True)) == []


def test_bad_entity_ids_and_page_sizes_are_refused_with_a_sentence(sidecar):
    """An id the SDK's worker cannot parse (no '@' in name or key) is refused at the door: a
    signal to it would be retried by every worker for good."""
    with grpc.insecure_channel(sidecar.address) as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)
        for bad in ("counter", "@a@b@c", "@@k", "@counter@"):
            with pytest.raises(grpc.RpcError) as refused:
                stub.SignalEntity(pb.SignalEntityRequest(instanceId=bad, name="add"))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
            assert "@name@key" in refused.value.details()
        query = pb.QueryEntitiesRequest(query=pb.EntityQuery(includeTransient=True))
        assert list(stub.QueryEntities(query).entities) == []  # nothing was stored
        with pytest.raises(grpc.RpcError) as refused:
            query = pb.EntityQuery(pageSize=wrappers_pb2.Int32Value(value=-3))
            stub.QueryEntities(pb.QueryEntitiesRequest(query=query))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_operation_whose_worker_disconnects_runs_on_the_next_worker(sidecar):
    stub = stubs.TaskHubSidecarServiceStub(grpc.insecure_channel(sidecar.address))
    raw = stub.GetWorkItems(
        pb.GetWorkItemsRequest(
            workItemFilters=pb.WorkItemFilters(entities=[pb.EntityFilter(name="counter")])
        )
    )
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    w = None
    try:
        c.signal_entity(entities.EntityInstanceId("counter", "moved"), "add", 4)
        item = next(raw)
        assert item.entityRequest.operations[0].operation == "add"
        raw.cancel()  # the worker goes away holding the operation
        w = worker.TaskHubGrpcWorker(host_address=sidecar.address)
        w.add_entity(counter)
        w.start()
        assert until(lambda: state_of(c, "moved") == 4)
    finally:
        c.close()
        if w is not None:
            w.stop()


def test_a_worker_gets_only_the_entities_it_asked_for(sidecar):
    seen: list[str] = []
    lock = threading.Lock()

    def other(ctx: entities.EntityContext, _: Any) -> None:
        with lock:
            seen.append(ctx.entity_id.entity)

    only_other = worker.TaskHubGrpcWorker(host_address=sidecar.address)
    only_other.add_entity(other)
    only_other.use_work_item_filters()
    only_other.start()
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    try:
        c.signal_entity(entities.EntityInstanceId("counter", "x"), "add", 1)
        c.signal_entity(entities.EntityInstanceId("other", "x"), "ping")
        until(lambda: seen == ["other"])
        assert metadata(sidecar, "x").backlogQueueSize == 1  # waits for a worker that runs counters
    finally:
        c.close()
        only_other.stop()


def locks_two(ctx: task.OrchestrationContext, key: str):
    first, second = (entities.EntityInstanceId("counter", f"{key}-{n}") for n in "ab")
    with (yield ctx.lock_entities([first, second])):
        one = yield ctx.call_entity(first, "add", 1)
        two = yield ctx.call_entity(second, "add", 2)
    return [one, two]


def test_a_critical_section_over_two_entities_locks_both_and_runs(connect):
    """The lock request passes from the first entity to the second under the same message id;
    each entity's commit consumes its own copy (on Azure one deleted the other's row key)."""
    c = connect(locks_two, entity_functions=(counter,))
    c.signal_entity(entities.EntityInstanceId("counter", "pair-b"), "add", 10)
    instance_id = c.schedule_new_orchestration(locks_two, input="pair")
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.COMPLETED, state.failure_details
    assert state.serialized_output == "[1, 12]"
    assert state_of(c, "pair-a") == 1 and state_of(c, "pair-b") == 12
