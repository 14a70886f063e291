"""Crash safety of the gRPC sidecar on Azure Storage: `devhost sidecar` is killed (SIGKILL) with a
durabletask worker connected, and started again on the same port; the worker reconnects."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from durabletask import client, entities, history, task, worker
from durabletask.grpc_options import GrpcWorkerResiliencyOptions

from devhost.azurite import answers, free_port

pytestmark = [pytest.mark.azure, pytest.mark.slow]  # processes killed and started again
Status = client.OrchestrationStatus


class SidecarProcess:
    """`devhost sidecar --store azure` as a process of its own, started and killed by the test."""

    def __init__(self, connection_string: str, hub: str, log_path: Path) -> None:
        self.env = dict(os.environ, AzureWebJobsStorage=connection_string)
        self.hub = hub
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        command = [sys.executable, "-m", "devhost", "sidecar", "--store", "azure"]
        command += ["--port", str(self.port), "--default-hub", self.hub]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not answers("127.0.0.1", self.port, timeout=0.2):
            assert self.process.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "the sidecar did not listen in time"

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def sidecar(azurite, hub_name, tmp_path) -> Iterator[SidecarProcess]:
    process = SidecarProcess(azurite.connection_string, hub_name, tmp_path / "sidecar.log")
    process.start()
    yield process
    process.stop()


def reconnecting_worker(address: str) -> worker.TaskHubGrpcWorker:
    """A worker that tries again quickly after the sidecar went away."""
    return worker.TaskHubGrpcWorker(
        host_address=address,
        resiliency_options=GrpcWorkerResiliencyOptions(
            reconnect_backoff_base_seconds=0.05, reconnect_backoff_cap_seconds=0.5
        ),
    )


def until(condition, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


def test_a_sidecar_killed_mid_fan_out_loses_nothing_and_records_nothing_twice(sidecar):
    calls: Counter[int] = Counter()
    lock = threading.Lock()
    gate = threading.Event()

    def square(_: task.ActivityContext, value: int) -> int:
        with lock:
            calls[value] += 1
        gate.wait(30)  # held until the sidecar has been killed: their first answers are lost
        return value * value

    def squares(ctx: task.OrchestrationContext, count: int):
        results = yield task.when_all([ctx.call_activity(square, input=i) for i in range(count)])
        return sum(results)

    w = reconnecting_worker(sidecar.address)
    w.add_orchestrator(squares)
    w.add_activity(square)
    w.start()
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    try:
        instance_id = c.schedule_new_orchestration(squares, input=30)
        until(lambda: len(calls) >= 10)
        sidecar.kill()
        gate.set()
        sidecar.start()
        state = c.wait_for_orchestration_completion(instance_id, timeout=60)
        assert state.runtime_status == Status.COMPLETED
        assert state.serialized_output == str(sum(i * i for i in range(30)))
        assert set(calls) == set(range(30))  # every activity ran, some of them twice
        events = c.get_orchestration_history(instance_id)
        scheduled = [e.event_id for e in events if isinstance(e, history.TaskScheduledEvent)]
        completed = [
            e.task_scheduled_id for e in events if isinstance(e, history.TaskCompletedEvent)
        ]
        assert sorted(scheduled) == sorted(set(scheduled)) == list(range(1, 31))
        assert sorted(completed) == list(range(1, 31))  # each result recorded once
    finally:
        gate.set()
        c.close()
        w.stop()


def test_an_acknowledged_event_survives_a_kill(sidecar):
    def waits(ctx: task.OrchestrationContext, _):
        return (yield ctx.wait_for_external_event("go"))

    w = reconnecting_worker(sidecar.address)
    w.add_orchestrator(waits)
    w.start()
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    try:
        instance_id = c.schedule_new_orchestration(waits)
        c.wait_for_orchestration_start(instance_id, timeout=30)
        c.raise_orchestration_event(instance_id, "go", data="kept")
        sidecar.kill()  # at once: the event was acknowledged, so it was stored
        sidecar.start()
        state = c.wait_for_orchestration_completion(instance_id, timeout=60)
        assert state.serialized_output == '"kept"'
    finally:
        c.close()
        w.stop()


def test_a_sidecar_killed_mid_entity_operation_applies_each_signal_once(sidecar):
    started: Counter[int] = Counter()
    lock = threading.Lock()
    gate = threading.Event()

    def collector(ctx: entities.EntityContext, value: int) -> int:
        with lock:
            started[value] += 1
        gate.wait(30)  # held until the sidecar has been killed: this answer is lost
        ctx.set_state([*ctx.get_state(list, []), value])
        return value

    def calls_collector(ctx: task.OrchestrationContext, value: int):
        return (yield ctx.call_entity(entities.EntityInstanceId("collector", "c"), "add", value))

    w = reconnecting_worker(sidecar.address)
    w.add_entity(collector)
    w.add_orchestrator(calls_collector)
    w.start()
    c = client.TaskHubGrpcClient(host_address=sidecar.address)
    target = entities.EntityInstanceId("collector", "c")

    def collected() -> list[int]:
        found = c.get_entity(target)
        return [] if found is None else found.get_typed_state(list)

    try:
        for value in range(20):
            c.signal_entity(target, "add", value)  # acknowledged: stored
        instance_id = c.schedule_new_orchestration(calls_collector, input=100)
        until(lambda: started)  # the first operation is out with the worker
        sidecar.kill()
        gate.set()
        sidecar.start()
        state = c.wait_for_orchestration_completion(instance_id, timeout=60)
        assert state.serialized_output == "100"
        until(lambda: len(collected()) >= 21)
        assert sorted(collected()) == [*range(20), 100]  # each operation applied once
    finally:
        gate.set()
        c.close()
        w.stop()
