"""The Durable Task SDK's own client and worker on devhost's gRPC sidecar, on both stores.

Every test drives a real `durabletask` worker and client against a real sidecar (a gRPC server on
a local port), on the virtual clock: durable timers fire when the test advances time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from durabletask import client, history, task, worker
from google.protobuf import wrappers_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from devhost.grpc.proto import pb, stubs
from devhost.store.base import BAD_TOKEN

Status = client.OrchestrationStatus


@pytest.fixture
def connect(
    sidecar,
) -> Iterator[Callable[..., tuple[worker.TaskHubGrpcWorker, client.TaskHubGrpcClient]]]:
    """Start a worker with the given orchestrators and activities, and hand back a client."""
    opened: list[Any] = []

    def start(*functions: Any, activities: tuple = ()) -> tuple:
        w = worker.TaskHubGrpcWorker(host_address=sidecar.address)
        for fn in functions:
            w.add_orchestrator(fn)
        for fn in activities:
            w.add_activity(fn)
        w.start()
        c = client.TaskHubGrpcClient(host_address=sidecar.address)
        opened.extend([w, c])
        return w, c

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


# -- orchestrations -------------------------------------------------------------------------


def plus_one(_: task.ActivityContext, value: int) -> int:
    return value + 1


def chain(ctx: task.OrchestrationContext, start: int):
    value = start
    for _ in range(5):
        value = yield ctx.call_activity(plus_one, input=value)
    return value


def fan_out(ctx: task.OrchestrationContext, count: int):
    results = yield task.when_all([ctx.call_activity(plus_one, input=i) for i in range(count)])
    return sum(results)


def test_a_chain_of_activities_returns_its_output(connect):
    _, c = connect(chain, activities=(plus_one,))
    instance_id = c.schedule_new_orchestration(chain, input=10)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.COMPLETED
    assert state.serialized_input == "10"
    assert state.serialized_output == "15"
    assert state.failure_details is None


def test_a_fan_out_sums_every_result(connect):
    _, c = connect(fan_out, activities=(plus_one,))
    instance_id = c.schedule_new_orchestration(fan_out, input=50)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.COMPLETED
    assert json.loads(state.serialized_output) == sum(range(1, 51))


def sleeper(ctx: task.OrchestrationContext, _):
    yield ctx.create_timer(timedelta(hours=72))
    return "woke"


def test_a_72_hour_timer_fires_when_the_virtual_clock_passes_it(sidecar, connect):
    _, c = connect(sleeper)
    instance_id = c.schedule_new_orchestration(sleeper)
    c.wait_for_orchestration_start(instance_id, timeout=30)
    sidecar.advance(hours=71)
    assert c.get_orchestration_state(instance_id).runtime_status == Status.RUNNING
    sidecar.advance(hours=1)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.serialized_output == '"woke"'


def approval(ctx: task.OrchestrationContext, _):
    first = yield ctx.wait_for_external_event("first")
    second = yield ctx.wait_for_external_event("second")
    return [first, second]


def test_events_are_delivered_whether_raised_before_or_after_the_wait(sidecar, connect):
    _, c = connect(approval)
    instance_id = c.schedule_new_orchestration(approval)
    c.wait_for_orchestration_start(instance_id, timeout=30)
    c.raise_orchestration_event(instance_id, "second", data="b")  # nobody waits for it yet
    sidecar.idle()
    c.raise_orchestration_event(instance_id, "first", data="a")
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert json.loads(state.serialized_output) == ["a", "b"]


def timeout_or_event(ctx: task.OrchestrationContext, _):
    winner = yield task.when_any(
        [ctx.wait_for_external_event("go"), ctx.create_timer(timedelta(minutes=5))]
    )
    return "event" if isinstance(winner, task.CompletableTask) and winner.get_result() else "timer"


def test_a_timer_wins_a_race_with_an_event_nobody_raises(sidecar, connect):
    _, c = connect(timeout_or_event)
    instance_id = c.schedule_new_orchestration(timeout_or_event)
    c.wait_for_orchestration_start(instance_id, timeout=30)
    sidecar.advance(minutes=5)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.serialized_output == '"timer"'


def child(ctx: task.OrchestrationContext, value: int):
    result = yield ctx.call_activity(plus_one, input=value)
    return result


def parent(ctx: task.OrchestrationContext, count: int):
    results = yield task.when_all([ctx.call_sub_orchestrator(child, input=i) for i in range(count)])
    return results


def test_sub_orchestrations_return_to_their_parent(connect):
    _, c = connect(parent, child, activities=(plus_one,))
    instance_id = c.schedule_new_orchestration(parent, input=4)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.COMPLETED
    assert json.loads(state.serialized_output) == [1, 2, 3, 4]


def boom(_: task.ActivityContext, _input: Any) -> None:
    raise ValueError("Kah-BOOOOM!!!")


def calls_boom(ctx: task.OrchestrationContext, _):
    yield ctx.call_activity(boom)


def calls_failing_child(ctx: task.OrchestrationContext, _):
    yield ctx.call_sub_orchestrator(calls_boom)


def test_failure_details_travel_from_activity_to_child_to_parent(connect):
    _, c = connect(calls_failing_child, calls_boom, activities=(boom,))
    instance_id = c.schedule_new_orchestration(calls_failing_child)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.FAILED
    details = state.failure_details
    assert details.error_type == "durabletask.task.TaskFailedError"
    assert details.message.startswith("Sub-orchestration task #1 failed:")
    assert details.message.endswith("Activity task #1 failed: Kah-BOOOOM!!!")
    assert details.stack_trace


def retries(ctx: task.OrchestrationContext, _):
    policy = task.RetryPolicy(first_retry_interval=timedelta(seconds=10), max_number_of_attempts=3)
    yield ctx.call_activity(boom, retry_policy=policy)


def test_a_retry_policy_retries_on_durable_timers_then_fails(sidecar, connect):
    _, c = connect(retries, activities=(boom,))
    instance_id = c.schedule_new_orchestration(retries)
    c.wait_for_orchestration_start(instance_id, timeout=30)
    sidecar.advance(minutes=1)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.FAILED
    assert state.failure_details.message.endswith("Kah-BOOOOM!!!")
    events = c.get_orchestration_history(instance_id)
    assert sum(isinstance(e, history.TaskScheduledEvent) for e in events) == 3


def retries_child(ctx: task.OrchestrationContext, _):
    policy = task.RetryPolicy(first_retry_interval=timedelta(seconds=10), max_number_of_attempts=3)
    yield ctx.call_sub_orchestrator(
        calls_boom, instance_id=f"{ctx.instance_id}-c", retry_policy=policy
    )


def test_a_retried_sub_orchestration_runs_again_under_the_same_id(sidecar, connect):
    _, c = connect(retries_child, calls_boom, activities=(boom,))
    instance_id = c.schedule_new_orchestration(retries_child)
    c.wait_for_orchestration_start(instance_id, timeout=30)
    sidecar.advance(minutes=1)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.FAILED
    events = c.get_orchestration_history(instance_id)
    created = [e for e in events if isinstance(e, history.SubOrchestrationInstanceCreatedEvent)]
    failed = [e for e in events if isinstance(e, history.SubOrchestrationInstanceFailedEvent)]
    assert len(created) == len(failed) == 3


def counter(ctx: task.OrchestrationContext, count: int):
    increment = yield ctx.wait_for_external_event("add")
    if count + increment >= 3:
        return count + increment
    ctx.continue_as_new(count + increment, save_events=True)


def test_continue_as_new_keeps_the_events_it_carries_over(sidecar, connect):
    _, c = connect(counter)
    instance_id = c.schedule_new_orchestration(counter, input=0)
    c.wait_for_orchestration_start(instance_id, timeout=30)
    for _ in range(3):
        c.raise_orchestration_event(instance_id, "add", data=1)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.COMPLETED
    assert state.serialized_output == "3"


def reports(ctx: task.OrchestrationContext, _):
    ctx.set_custom_status({"step": "waiting"})
    yield ctx.wait_for_external_event("done")
    ctx.set_custom_status({"step": "done"})
    return "ok"


def test_custom_status_is_seen_while_running_and_after(connect):
    _, c = connect(reports)
    instance_id = c.schedule_new_orchestration(reports)
    until(lambda: c.get_orchestration_state(instance_id).serialized_custom_status)
    assert json.loads(c.get_orchestration_state(instance_id).serialized_custom_status) == {
        "step": "waiting"
    }
    c.raise_orchestration_event(instance_id, "done")
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert json.loads(state.serialized_custom_status) == {"step": "done"}


def sender(ctx: task.OrchestrationContext, target: str):
    ctx.send_event(target, "ping", data="from sender")
    ctx.send_event("nobody-home", "ping", data="dropped")  # undeliverable: dropped
    return "sent"


def pinged(ctx: task.OrchestrationContext, _):
    return (yield ctx.wait_for_external_event("ping"))


def test_send_event_reaches_another_orchestration_and_an_undeliverable_one_is_dropped(connect):
    _, c = connect(sender, pinged)
    receiver = c.schedule_new_orchestration(pinged)
    c.wait_for_orchestration_start(receiver, timeout=30)
    sent = c.schedule_new_orchestration(sender, input=receiver)
    assert c.wait_for_orchestration_completion(sent, timeout=30).serialized_output == '"sent"'
    state = c.wait_for_orchestration_completion(receiver, timeout=30)
    assert state.serialized_output == '"from sender"'
    events = list(c.get_orchestration_history(sent))
    assert sum(isinstance(e, history.EventSentEvent) for e in events) == 2


# -- control ----------------------------------------------------------------------------------


def waits_forever(ctx: task.OrchestrationContext, _):
    yield ctx.wait_for_external_event("never")


def parent_of_waiter(ctx: task.OrchestrationContext, _):
    yield ctx.call_sub_orchestrator(waits_forever, instance_id=f"{ctx.instance_id}-child")


def test_terminate_recursive_ends_the_children_too(connect):
    _, c = connect(parent_of_waiter, waits_forever)
    instance_id = c.schedule_new_orchestration(parent_of_waiter)
    c.wait_for_orchestration_start(f"{instance_id}-child", timeout=30)
    c.terminate_orchestration(instance_id, output="enough", recursive=True)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == Status.TERMINATED
    assert state.serialized_output == '"enough"'
    child_state = c.wait_for_orchestration_completion(f"{instance_id}-child", timeout=30)
    assert child_state.runtime_status == Status.TERMINATED


def test_a_suspended_instance_keeps_events_until_it_resumes(sidecar, connect):
    _, c = connect(approval)
    instance_id = c.schedule_new_orchestration(approval)
    c.wait_for_orchestration_start(instance_id, timeout=30)
    c.suspend_orchestration(instance_id)
    until(lambda: c.get_orchestration_state(instance_id).runtime_status == Status.SUSPENDED)
    c.suspend_orchestration(instance_id)  # twice is fine, as on the SDK's backends
    c.raise_orchestration_event(instance_id, "first", data=1)
    c.raise_orchestration_event(instance_id, "second", data=2)
    sidecar.idle()
    assert c.get_orchestration_state(instance_id).runtime_status == Status.SUSPENDED
    c.resume_orchestration(instance_id)
    state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert json.loads(state.serialized_output) == [1, 2]


def test_restart_runs_the_same_input_again_under_the_same_or_a_new_id(connect):
    _, c = connect(chain, activities=(plus_one,))
    instance_id = c.schedule_new_orchestration(chain, input=1)
    c.wait_for_orchestration_completion(instance_id, timeout=30)
    again = c.restart_orchestration(instance_id)
    assert again == instance_id
    assert c.wait_for_orchestration_completion(again, timeout=30).serialized_output == "6"
    fresh = c.restart_orchestration(instance_id, restart_with_new_instance_id=True)
    assert fresh != instance_id
    assert c.wait_for_orchestration_completion(fresh, timeout=30).serialized_output == "6"


def test_starting_an_existing_id_is_refused(connect):
    _, c = connect(waits_forever)
    c.schedule_new_orchestration(waits_forever, instance_id="taken")
    with pytest.raises(grpc.RpcError) as refused:
        c.schedule_new_orchestration(waits_forever, instance_id="taken")
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS


# -- queries, history, purge --------------------------------------------------------------------


def test_queries_page_with_continuation_tokens_and_purge_removes(connect):
    _, c = connect(chain, activities=(plus_one,))
    ids = [c.schedule_new_orchestration(chain, input=i, instance_id=f"q-{i}") for i in range(7)]
    for instance_id in ids:
        c.wait_for_orchestration_completion(instance_id, timeout=30)
    query = client.OrchestrationQuery(max_instance_count=3, fetch_inputs_and_outputs=True)
    states = c.get_all_orchestration_states(query)
    assert sorted(s.instance_id for s in states) == sorted(ids)
    page = c.list_instance_ids(runtime_status=[Status.COMPLETED], page_size=3)
    assert len(page.items) <= 3
    result = c.purge_orchestrations_by(created_time_from=None, runtime_status=[Status.COMPLETED])
    assert result.deleted_instance_count == 7
    assert c.get_orchestration_state(ids[0]) is None


def test_history_streams_in_the_sdk_shape(connect):
    _, c = connect(chain, activities=(plus_one,))
    instance_id = c.schedule_new_orchestration(chain, input=0)
    c.wait_for_orchestration_completion(instance_id, timeout=30)
    events = list(c.get_orchestration_history(instance_id))
    assert isinstance(events[0], history.OrchestratorStartedEvent)
    assert isinstance(events[1], history.ExecutionStartedEvent)
    assert events[1].name == "chain"
    scheduled = [e.event_id for e in events if isinstance(e, history.TaskScheduledEvent)]
    completed = [e.task_scheduled_id for e in events if isinstance(e, history.TaskCompletedEvent)]
    assert scheduled == completed == [1, 2, 3, 4, 5]
    assert any(isinstance(e, history.ExecutionCompletedEvent) for e in events[-2:])


def test_what_the_sidecar_does_not_serve_answers_unimplemented(sidecar):
    with grpc.insecure_channel(sidecar.address) as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateTaskHub(pb.CreateTaskHubRequest())
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "does not serve CreateTaskHub" in refused.value.details()


@pytest.mark.parametrize("token", ["not-a-token", "99999x"])
def test_a_continuation_token_the_sidecar_never_gave_is_an_invalid_argument(sidecar, token):
    """Refused with the sentence, on both stores (storage is not 'unavailable' for it)."""
    with grpc.insecure_channel(sidecar.address) as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.QueryInstances(
                pb.QueryInstancesRequest(
                    query=pb.InstanceQuery(continuationToken=wrappers_pb2.StringValue(value=token))
                )
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == BAD_TOKEN


def _refusal(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value


def test_times_statuses_page_sizes_and_tokens_out_of_range_are_invalid_arguments(sidecar):
    """Each is refused with a sentence (it was UNKNOWN "Unexpected ValueError"), and nothing is
    stored; a time before 1970 is a time already past, not an error."""
    with grpc.insecure_channel(sidecar.address) as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)
        too_late = Timestamp(seconds=10**12)
        refused = [
            _refusal(
                lambda: stub.StartInstance(
                    pb.CreateInstanceRequest(
                        instanceId="late", name="chain", scheduledStartTimestamp=too_late
                    )
                )
            ),
            _refusal(
                lambda: stub.QueryInstances(
                    pb.QueryInstancesRequest(query=pb.InstanceQuery(runtimeStatus=[999]))
                )
            ),
            _refusal(
                lambda: stub.QueryInstances(
                    pb.QueryInstancesRequest(query=pb.InstanceQuery(maxInstanceCount=-1))
                )
            ),
            _refusal(lambda: stub.ListInstanceIds(pb.ListInstanceIdsRequest(pageSize=-1))),
            _refusal(
                lambda: stub.ListInstanceIds(
                    pb.ListInstanceIdsRequest(
                        lastInstanceKey=wrappers_pb2.StringValue(value="9" * 5000)
                    )
                )
            ),
        ]
        assert [r.code() for r in refused] == [grpc.StatusCode.INVALID_ARGUMENT] * len(refused)
        assert all(r.details() for r in refused)
        assert "'scheduledStartTimestamp' is not a valid time" in refused[0].details()
        assert stub.GetInstance(pb.GetInstanceRequest(instanceId="late")).exists is False
        long_ago = Timestamp(seconds=-62135596800)  # 0001-01-01: past, so it starts at once
        stub.StartInstance(
            pb.CreateInstanceRequest(
                instanceId="early", name="chain", scheduledStartTimestamp=long_ago
            )
        )
        assert stub.GetInstance(pb.GetInstanceRequest(instanceId="early")).exists is True
