"""Work items: filters, per-worker limits, turns, and re-dispatch when a worker leaves or abandons.

The dispatcher's rules are checked on their own first (no I/O), then with real workers and raw
`GetWorkItems` streams against a sidecar.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from durabletask import client, task, worker
from google.protobuf import wrappers_pb2

from devhost.engine.user_code import ActivityTask
from devhost.grpc.names import STAND_INS_KEPT, stand_in, worker_index
from devhost.grpc.proto import pb, stubs
from devhost.grpc.runner import GrpcRunner
from devhost.grpc.wait_notices import DEFAULT_LIMIT, WaitNotices
from devhost.grpc.work_items import Kind, WorkDispatcher, WorkerStream, WorkItem
from devhost.testing.sidecar import SidecarHarness

Status = client.OrchestrationStatus


def request(
    orchestrations: list[str] | None = None,
    activities: list[str] | None = None,
    max_activities: int = 0,
) -> pb.GetWorkItemsRequest:
    message = pb.GetWorkItemsRequest(maxConcurrentActivityWorkItems=max_activities)
    if orchestrations is not None or activities is not None:
        message.workItemFilters.CopyFrom(
            pb.WorkItemFilters(
                orchestrations=[pb.OrchestrationFilter(name=n) for n in orchestrations or []],
                activities=[pb.ActivityFilter(name=n) for n in activities or []],
            )
        )
    return message


def activity_item(name: str, answers: list) -> WorkItem:
    message = pb.WorkItem(activityRequest=pb.ActivityRequest(name=name))
    return WorkItem(Kind.ACTIVITY, name, message, answers.append)


# -- the dispatcher's rules ---------------------------------------------------------------------


def test_an_item_waits_for_a_worker_whose_filters_accept_it():
    dispatcher = WorkDispatcher()
    picky = WorkerStream.from_request(request(activities=["a"]))
    dispatcher.connect(picky)
    dispatcher.submit(activity_item("b", []))
    assert not picky.outbox
    willing = WorkerStream.from_request(request())
    dispatcher.connect(willing)
    assert [i.name for i in willing.outbox] == ["b"]


def test_a_worker_gets_no_more_than_its_declared_limit_and_workers_take_turns():
    dispatcher = WorkDispatcher()
    first = WorkerStream.from_request(request(max_activities=2))
    second = WorkerStream.from_request(request(max_activities=2))
    dispatcher.connect(first)
    dispatcher.connect(second)
    for n in range(5):
        dispatcher.submit(activity_item(f"a{n}", []))
    assert [i.name for i in first.outbox] == ["a0", "a2"]
    assert [i.name for i in second.outbox] == ["a1", "a3"]
    answers: list = []
    first.outbox[0].done = answers.append
    assert dispatcher.complete(first.outbox[0].token, "result")
    assert answers == ["result"]
    assert [i.name for i in first.outbox][-1] == "a4"  # room again: the waiting item goes


def test_what_a_leaving_worker_held_goes_to_the_next_and_its_old_token_is_stale():
    dispatcher = WorkDispatcher()
    leaving = WorkerStream.from_request(request())
    dispatcher.connect(leaving)
    answers: list = []
    item = activity_item("a", answers)
    dispatcher.submit(item)
    old_token = item.token
    dispatcher.disconnect(leaving)
    staying = WorkerStream.from_request(request())
    dispatcher.connect(staying)
    assert staying.outbox[0] is item and item.token != old_token
    assert not dispatcher.complete(old_token, "late answer")
    assert dispatcher.complete(item.token, "answer")
    assert answers == ["answer"]


def test_an_abandoned_item_is_handed_out_again():
    dispatcher = WorkDispatcher()
    only = WorkerStream.from_request(request())
    dispatcher.connect(only)
    item = activity_item("a", [])
    dispatcher.submit(item)
    first_token = only.outbox.popleft().token
    assert dispatcher.abandon(first_token)
    assert only.outbox[0] is item and item.token != first_token


# -- with real workers -------------------------------------------------------------------------


@pytest.fixture
def sidecar() -> Iterator[SidecarHarness]:
    with SidecarHarness() as harness:
        yield harness


def double(_: task.ActivityContext, value: int) -> int:
    return value * 2


def doubles(ctx: task.OrchestrationContext, value: int):
    return (yield ctx.call_activity(double, input=value))


def other(ctx: task.OrchestrationContext, _):
    return "other"


def started_worker(address: str, *functions, activities=(), filtered: bool = False):
    w = worker.TaskHubGrpcWorker(host_address=address)
    for fn in functions:
        w.add_orchestrator(fn)
    for fn in activities:
        w.add_activity(fn)
    if filtered:
        w.use_work_item_filters()  # only what it registered
    w.start()
    return w


def test_work_a_worker_did_not_ask_for_waits_for_one_that_did(sidecar):
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    first = started_worker(sidecar.address, other, filtered=True)
    second = None
    try:
        instance_id = c.schedule_new_orchestration(doubles, input=4)
        done = c.schedule_new_orchestration(other)
        assert c.wait_for_orchestration_completion(done, timeout=30).serialized_output == '"other"'
        assert c.get_orchestration_state(instance_id).runtime_status == Status.PENDING
        second = started_worker(sidecar.address, doubles, activities=(double,), filtered=True)
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == "8"
    finally:
        c.close()
        first.stop()
        if second is not None:
            second.stop()


def test_an_activity_whose_worker_disconnects_runs_on_the_next_worker(sidecar):
    stub = stubs.TaskHubSidecarServiceStub(grpc.insecure_channel(sidecar.address))
    raw = stub.GetWorkItems(request(orchestrations=[], activities=["double"]))
    orchestrator = started_worker(sidecar.address, doubles, filtered=True)
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    runner = None
    try:
        instance_id = c.schedule_new_orchestration(doubles, input=21)
        item = next(raw)
        assert item.activityRequest.name == "double"
        raw.cancel()  # the worker goes away holding the activity
        runner = started_worker(sidecar.address, activities=(double,), filtered=True)
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == "42"
    finally:
        c.close()
        orchestrator.stop()
        if runner is not None:
            runner.stop()


def test_an_abandoned_activity_runs_again(sidecar):
    stub = stubs.TaskHubSidecarServiceStub(grpc.insecure_channel(sidecar.address))
    raw = stub.GetWorkItems(request(orchestrations=[], activities=["double"]))
    orchestrator = started_worker(sidecar.address, doubles, filtered=True)
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    try:
        instance_id = c.schedule_new_orchestration(doubles, input=5)
        item = next(raw)
        stub.AbandonTaskActivityWorkItem(
            pb.AbandonActivityTaskRequest(completionToken=item.completionToken)
        )
        again = next(raw)  # the only worker that takes it: the same one, under a new token
        assert again.completionToken != item.completionToken
        stub.CompleteActivityTask(
            pb.ActivityResponse(
                instanceId=instance_id,
                taskId=again.activityRequest.taskId,
                result=wrappers_pb2.StringValue(value="10"),
                completionToken=again.completionToken,
            )
        )
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == "10"
    finally:
        raw.cancel()
        c.close()
        orchestrator.stop()


def test_several_workers_share_a_fan_out(sidecar):
    ran: dict[str, int] = {"first": 0, "second": 0}
    lock = threading.Lock()

    def counted(name: str):
        def square(_: task.ActivityContext, value: int) -> int:
            with lock:
                ran[name] += 1
            return value * value

        return square

    def squares(ctx: task.OrchestrationContext, count: int):
        results = yield task.when_all([ctx.call_activity("square", input=i) for i in range(count)])
        return sum(results)

    workers = []
    for name in ran:
        w = worker.TaskHubGrpcWorker(
            host_address=sidecar.address,
            concurrency_options=worker.ConcurrencyOptions(maximum_concurrent_activity_work_items=2),
        )
        w.add_orchestrator(squares)
        w.add_activity(counted(name))  # each worker's own function, named "square"
        w.start()
        workers.append(w)
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    try:
        instance_id = c.schedule_new_orchestration(squares, input=20)
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == str(sum(i * i for i in range(20)))
        assert ran["first"] > 0 and ran["second"] > 0
        assert ran["first"] + ran["second"] >= 20
    finally:
        c.close()
        for w in workers:
            w.stop()


# -- the runner's notices of waiting work -----------------------------------------------------


def runner_with(dispatcher: WorkDispatcher) -> GrpcRunner:
    return GrpcRunner(worker_index(), dispatcher)


def start(runner: GrpcRunner, name: str, instance_id: str = "i") -> None:
    task_of = ActivityTask(instance_id, "e", 1)
    runner.start_activity(name, None, lambda _: None, datetime.now(UTC), task_of)


def test_the_log_tells_of_a_wait_once_and_again_after_a_worker_took_such_work(caplog):
    dispatcher = WorkDispatcher()
    runner = runner_with(dispatcher)
    told = "waits for a Durable Task worker that registers the activity 'late'"

    def times_told() -> int:
        return sum(told in r.getMessage() for r in caplog.records)

    start(runner, "late")
    start(runner, "late")
    assert times_told() == 1
    taker = WorkerStream.from_request(request(activities=["late"]))
    dispatcher.connect(taker)
    start(runner, "late")  # taken: the wait is over
    dispatcher.disconnect(taker)
    start(runner, "late")
    assert times_told() == 2


def test_the_waits_the_log_remembers_are_bounded():
    notices = WaitNotices(limit=3)
    assert [notices.first(name) for name in "abcd"] == [True] * 4
    assert len(notices) == 3
    assert notices.first("a")  # the oldest was forgotten: told again
    assert not notices.first("d")
    runner = runner_with(WorkDispatcher())
    for n in range(DEFAULT_LIMIT + 50):  # names a client chose, none of them served
        start(runner, f"name-{n}")
    assert len(runner.wait_notices) == DEFAULT_LIMIT


def test_stand_ins_for_worker_names_are_kept_for_a_bounded_number_of_names():
    index = worker_index()
    for n in range(STAND_INS_KEPT + 50):
        info = index.activities[f"name-{n}"]
        assert info.name == f"name-{n}" and info.trigger_type == "activityTrigger"
    assert stand_in.cache_info().currsize == STAND_INS_KEPT


def test_work_waiting_for_a_busy_worker_says_it_waits_for_a_free_one():
    dispatcher = WorkDispatcher()
    runner = runner_with(dispatcher)
    start(runner, "slow", instance_id="first")
    wanted = "Durable Task worker that registers the activity 'slow'"
    assert runner.waiting_for("first") == f"waits for a {wanted}"
    dispatcher.connect(WorkerStream.from_request(request(activities=["slow"], max_activities=1)))
    assert runner.waiting_for("first") is None  # taken
    start(runner, "slow", instance_id="second")
    assert runner.waiting_for("second") == f"waits for a free worker: every {wanted} is busy"
