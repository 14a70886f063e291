"""When and in what order Durable Task work runs on devhost's sidecar, on both stores.

A start scheduled for later waits Pending until its time (on the virtual clock, through a
restart); events carried over into a continue-as-new come before events raised meanwhile; an
activity knows the orchestration and the task it runs for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from durabletask import client, task, worker

from devhost.grpc.proto import pb
from devhost.grpc.runner import event_id
from devhost.grpc.sidecar import deliver_event
from devhost.store.base import TaskHubStore
from devhost.taskhub.model import EpisodeCommit
from devhost.testing.sidecar import SidecarHarness

Status = client.OrchestrationStatus


@pytest.fixture
def started_worker() -> Iterator[Callable[..., worker.TaskHubGrpcWorker]]:
    """Start a worker on an address; every worker started is stopped after the test."""
    started: list[worker.TaskHubGrpcWorker] = []

    def start(address: str, *functions, activities=()) -> worker.TaskHubGrpcWorker:
        w = worker.TaskHubGrpcWorker(host_address=address)
        for fn in functions:
            w.add_orchestrator(fn)
        for fn in activities:
            w.add_activity(fn)
        w.start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def hello(ctx: task.OrchestrationContext, name: str):
    return f"hello {name}"


# -- a scheduled start ------------------------------------------------------------------------


def test_a_scheduled_start_waits_pending_until_its_time(sidecar, started_worker):
    started_worker(sidecar.address, hello)
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        start_at = sidecar.clock.now() + timedelta(hours=2)
        instance_id = c.schedule_new_orchestration(hello, input="later", start_at=start_at)
        sidecar.advance(hours=1, minutes=59)
        assert c.get_orchestration_state(instance_id).runtime_status == Status.PENDING
        sidecar.advance(minutes=1)
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == '"hello later"'
        assert state.last_updated_at.replace(tzinfo=start_at.tzinfo) >= start_at


def test_a_start_time_already_past_runs_at_once(sidecar, started_worker):
    started_worker(sidecar.address, hello)
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        start_at = sidecar.clock.now() - timedelta(minutes=5)
        instance_id = c.schedule_new_orchestration(hello, input="now", start_at=start_at)
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == '"hello now"'


def test_a_scheduled_start_can_be_terminated_before_its_time(sidecar, started_worker):
    started_worker(sidecar.address, hello)
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        start_at = sidecar.clock.now() + timedelta(days=1)
        instance_id = c.schedule_new_orchestration(hello, input="never", start_at=start_at)
        c.terminate_orchestration(instance_id, output="changed my mind")
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.runtime_status == Status.TERMINATED
        sidecar.idle()
        assert sidecar.clock.next_wakeup() is None  # its wake-up went with it
        sidecar.advance(days=2)
        assert c.get_orchestration_state(instance_id).runtime_status == Status.TERMINATED


def test_a_scheduled_start_terminated_and_started_again_at_the_same_time_runs_then(
    sidecar, started_worker
):
    """A fixed id at a fixed time (a daily report at 09:00), terminated and started again:
    the new instance gets its own wake-up, and the first one's is gone with it."""
    started_worker(sidecar.address, hello)
    again = pb.OrchestrationIdReusePolicy(replaceableStatus=[pb.ORCHESTRATION_STATUS_TERMINATED])
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        start_at = sidecar.clock.now() + timedelta(hours=9)
        first = c.schedule_new_orchestration(
            hello, input="first", instance_id="daily-report", start_at=start_at
        )
        c.terminate_orchestration(first, output="replaced")
        c.wait_for_orchestration_completion(first, timeout=30)
        c.schedule_new_orchestration(
            hello,
            input="second",
            instance_id="daily-report",
            start_at=start_at,
            reuse_id_policy=again,
        )
        sidecar.advance(hours=8, minutes=59)
        assert c.get_orchestration_state("daily-report").runtime_status == Status.PENDING
        sidecar.advance(minutes=1)
        state = c.wait_for_orchestration_completion("daily-report", timeout=30)
        assert state.serialized_output == '"hello second"'


def test_a_scheduled_start_survives_a_restart_of_the_sidecar(sidecar_stores, started_worker):
    with SidecarHarness(sidecar_stores) as first:
        start_at = first.clock.now() + timedelta(hours=3)
        with client.TaskHubGrpcClient(host_address=first.address) as c:
            instance_id = c.schedule_new_orchestration(hello, input="kept", start_at=start_at)
    with SidecarHarness(sidecar_stores) as second:
        started_worker(second.address, hello)
        with client.TaskHubGrpcClient(host_address=second.address) as c:
            second.idle()
            assert c.get_orchestration_state(instance_id).runtime_status == Status.PENDING
            second.advance(hours=3)  # this clock started after the first one: past start_at
            state = c.wait_for_orchestration_completion(instance_id, timeout=30)
            assert state.serialized_output == '"hello kept"'


# -- continue-as-new with carried-over events -----------------------------------------------


def collects(ctx: task.OrchestrationContext, seen: list):
    value = yield ctx.wait_for_external_event("item")
    seen = [*seen, value]
    if len(seen) < 5:
        ctx.continue_as_new(seen, save_events=True)
        return None
    return seen


def test_carried_over_events_come_before_events_raised_meanwhile(sidecar, started_worker):
    started_worker(sidecar.address, collects)
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        instance_id = c.schedule_new_orchestration(collects, input=[])
        for value in range(1, 6):
            c.raise_orchestration_event(instance_id, "item", data=value)
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.runtime_status == Status.COMPLETED
        assert state.serialized_output == "[1, 2, 3, 4, 5]"


def test_events_carried_over_before_a_crash_reach_the_next_execution_once_in_order(sidecar_stores):
    """The carried events are raised before the continue-as-new is stored. A crash in between
    (here: that commit never ends, and the sidecar goes) runs the last episode again on the
    next start, with the carried copies in the inbox: that execution must not take them, and
    carrying them again under the same ids must not double them."""
    reached = threading.Event()

    def first_store(hub: str) -> TaskHubStore:
        store = sidecar_stores(hub)
        commit = store.commit

        async def stalls_once_at_the_continue_as_new(episode: EpisodeCommit) -> None:
            if episode.new_execution and not reached.is_set():
                reached.set()
                await asyncio.Event().wait()  # the host dies before this commit
            await commit(episode)

        store.commit = stalls_once_at_the_continue_as_new  # type: ignore[method-assign]
        return store

    with SidecarHarness(first_store) as first:
        w = worker.TaskHubGrpcWorker(host_address=first.address)
        w.add_orchestrator(collects)
        w.start()
        try:
            with client.TaskHubGrpcClient(host_address=first.address) as c:
                instance_id = c.schedule_new_orchestration(collects, input=[])
                c.wait_for_orchestration_start(instance_id, timeout=30)
                c.suspend_orchestration(instance_id)  # so that one episode gets all five
                for value in range(1, 6):
                    c.raise_orchestration_event(instance_id, "item", data=value)
                c.resume_orchestration(instance_id)
                assert reached.wait(30)
        finally:
            w.stop()
    with SidecarHarness(sidecar_stores) as second:
        w = worker.TaskHubGrpcWorker(host_address=second.address)
        w.add_orchestrator(collects)
        w.start()
        try:
            with client.TaskHubGrpcClient(host_address=second.address) as c:
                state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        finally:
            w.stop()
    assert state.runtime_status == Status.COMPLETED
    assert state.serialized_output == "[1, 2, 3, 4, 5]"


def two_items(ctx: task.OrchestrationContext, _):
    first = yield ctx.wait_for_external_event("item")
    second = yield ctx.wait_for_external_event("item")
    return [first, second]


def test_a_carried_over_event_delivered_again_after_a_crash_is_seen_once(sidecar, started_worker):
    """An episode that ran again after a crash carries its events over again, under the ids
    the runner derives from it: the next execution (here: the events are carried from an
    earlier one) drops the repeat, waiting in its inbox (here: while suspended) or consumed."""
    started_worker(sidecar.address, two_items)
    carried = event_id("i", "e", "carried", 0)
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        waiting = c.schedule_new_orchestration(two_items, instance_id="waiting")
        consumed = c.schedule_new_orchestration(two_items, instance_id="consumed")
        sidecar.idle()
        [hub] = sidecar.sidecar.hubs.hubs

        def deliver(instance_id: str, value: str, message_id: str) -> None:
            sidecar.run(
                deliver_event(hub.engine, instance_id, "item", value, "earlier", message_id)
            )

        c.suspend_orchestration(waiting)
        sidecar.idle()
        deliver(waiting, '"A"', carried)
        deliver(waiting, '"A"', carried)
        c.resume_orchestration(waiting)
        deliver(consumed, '"A"', carried)
        sidecar.idle()
        deliver(consumed, '"A"', carried)
        for instance_id in (waiting, consumed):
            deliver(instance_id, '"B"', event_id("i", "e", "carried", 1))
            state = c.wait_for_orchestration_completion(instance_id, timeout=30)
            assert state.serialized_output == '["A", "B"]', instance_id


# -- an activity's context ------------------------------------------------------------------


def whereabouts(ctx: task.ActivityContext, _) -> list:
    return [ctx.orchestration_id, ctx.task_id]


def asks_where(ctx: task.OrchestrationContext, _):
    first = yield ctx.call_activity(whereabouts)
    second = yield ctx.call_activity(whereabouts)
    return [first, second]


def test_an_activity_knows_its_orchestration_and_task_id(sidecar, started_worker):
    started_worker(sidecar.address, asks_where, activities=(whereabouts,))
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        instance_id = c.schedule_new_orchestration(asks_where, instance_id="where-1")
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.serialized_output == '[["where-1", 1], ["where-1", 2]]'
