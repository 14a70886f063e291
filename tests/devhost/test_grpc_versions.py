"""Versions and tags of Durable Task instances on devhost's sidecar, on both stores.

A client's version and tags are kept with the instance (through a restart of the sidecar), shown
in its state, given to the orchestration (`ctx.version`) and to its children; a worker whose
work-item filters list versions receives only work of those versions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from durabletask import client, task, worker

from devhost.grpc.proto import pb, stubs
from devhost.testing.sidecar import SidecarHarness

Status = client.OrchestrationStatus


def raw_state(address: str, instance_id: str) -> pb.OrchestrationState:
    """The instance's state as the protocol has it (the SDK's OrchestrationState drops version
    and tags)."""
    with grpc.insecure_channel(address) as channel:
        answer = stubs.TaskHubSidecarServiceStub(channel).GetInstance(
            pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=True)
        )
    assert answer.exists
    return answer.orchestrationState


@pytest.fixture
def versioned_worker() -> Iterator[Callable[..., worker.TaskHubGrpcWorker]]:
    """Start a worker (with a strict version and the filters it implies, if given); every
    worker started is stopped after the test."""
    started: list[worker.TaskHubGrpcWorker] = []

    def start(address: str, *functions, version: str | None = None) -> worker.TaskHubGrpcWorker:
        w = worker.TaskHubGrpcWorker(host_address=address)
        for fn in functions:
            w.add_orchestrator(fn)
        if version is not None:
            strict = worker.VersionMatchStrategy.STRICT
            w.use_versioning(worker.VersioningOptions(version=version, match_strategy=strict))
            w.use_work_item_filters()
        w.start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def own_version(ctx: task.OrchestrationContext, _):
    return ctx.version


def parent_of_versions(ctx: task.OrchestrationContext, _):
    child = yield ctx.call_sub_orchestrator(own_version, version="3.1")
    return [ctx.version, child]


def waits_for_go(ctx: task.OrchestrationContext, _):
    yield ctx.wait_for_external_event("go")
    return ctx.version


def test_version_and_tags_are_kept_shown_and_seen_by_the_orchestration(sidecar, versioned_worker):
    versioned_worker(sidecar.address, own_version)
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        instance_id = c.schedule_new_orchestration(
            own_version, version="2.5.0", tags={"team": "dungeon", "tier": "gold"}
        )
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == '"2.5.0"'
        raw = raw_state(sidecar.address, instance_id)
        assert raw.version.value == "2.5.0"
        assert dict(raw.tags) == {"team": "dungeon", "tier": "gold"}
        with grpc.insecure_channel(sidecar.address) as channel:
            listed = stubs.TaskHubSidecarServiceStub(channel).QueryInstances(
                pb.QueryInstancesRequest(query=pb.InstanceQuery(maxInstanceCount=10))
            )
        (found,) = [s for s in listed.orchestrationState if s.instanceId == instance_id]
        assert found.version.value == "2.5.0" and dict(found.tags) == raw.tags


def test_an_instance_without_a_version_has_none(sidecar, versioned_worker):
    versioned_worker(sidecar.address, own_version)
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        instance_id = c.schedule_new_orchestration(own_version)
        assert c.wait_for_orchestration_completion(instance_id, timeout=30).serialized_output in (
            "null",
            None,
        )
        raw = raw_state(sidecar.address, instance_id)
        assert not raw.HasField("version") and not raw.tags


def test_a_sub_orchestration_runs_with_the_version_its_parent_gave(sidecar, versioned_worker):
    versioned_worker(sidecar.address, parent_of_versions, own_version)
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        instance_id = c.schedule_new_orchestration(parent_of_versions, version="1.0")
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.serialized_output == '["1.0", "3.1"]'


def test_version_and_tags_survive_a_restart_of_the_sidecar(sidecar_stores, versioned_worker):
    with (
        SidecarHarness(sidecar_stores) as first,
        client.TaskHubGrpcClient(host_address=first.address) as c,
    ):
        instance_id = c.schedule_new_orchestration(
            waits_for_go, version="4.2", tags={"kept": "yes"}
        )
    with SidecarHarness(sidecar_stores) as second:
        raw = raw_state(second.address, instance_id)
        assert raw.version.value == "4.2" and dict(raw.tags) == {"kept": "yes"}
        versioned_worker(second.address, waits_for_go)
        with client.TaskHubGrpcClient(host_address=second.address) as c:
            c.wait_for_orchestration_start(instance_id, timeout=30)
            c.raise_orchestration_event(instance_id, "go")
            state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == '"4.2"'


def test_a_strict_worker_takes_only_its_version_and_the_rest_waits_for_one_that_asks(
    sidecar, versioned_worker
):
    versioned_worker(sidecar.address, own_version, version="2.0")
    with client.TaskHubGrpcClient(host_address=sidecar.address) as c:
        old = c.schedule_new_orchestration(own_version, version="1.0")
        unversioned = c.schedule_new_orchestration(own_version)
        good = c.schedule_new_orchestration(own_version, version="2.0")
        assert c.wait_for_orchestration_completion(good, timeout=30).serialized_output == '"2.0"'
        assert c.get_orchestration_state(old).runtime_status == Status.PENDING
        assert c.get_orchestration_state(unversioned).runtime_status == Status.PENDING
        versioned_worker(sidecar.address, own_version, version="1.0")
        assert c.wait_for_orchestration_completion(old, timeout=30).serialized_output == '"1.0"'
        assert c.get_orchestration_state(unversioned).runtime_status == Status.PENDING
