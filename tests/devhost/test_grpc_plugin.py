"""The pytest plugin's `durable_sidecar`: a durabletask app's 72-hour timer in a test, at once."""

from datetime import timedelta

from durabletask import client, task, worker


def reminder(ctx: task.OrchestrationContext, text: str):
    yield ctx.create_timer(timedelta(hours=72))
    return f"remember: {text}"


def test_durable_sidecar_runs_a_72_hour_timer_without_waiting(durable_sidecar):
    w = worker.TaskHubGrpcWorker(host_address=durable_sidecar.address)
    w.add_orchestrator(reminder)
    w.start()
    c = client.TaskHubGrpcClient(host_address=durable_sidecar.address)
    try:
        instance_id = c.schedule_new_orchestration(reminder, input="milk")
        c.wait_for_orchestration_start(instance_id, timeout=30)
        durable_sidecar.advance(hours=72)
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == '"remember: milk"'
    finally:
        c.close()
        w.stop()
