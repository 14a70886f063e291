"""Non-deterministic orchestrators fail as on Azure, only earlier: on both stores, in-process and
in worker processes, at the end of a warm instance (the host) and at every episode (tests).

The app (apps/nondeterministic) has three orchestrators that decide what to schedule from outside
their history (a `random` branch, a `datetime.now()` deadline, a set's order) and a clean one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bench.hosting import HostProcess
from devhost.clock import Clock
from devhost.host import DevHost, ListenAddress
from devhost.settings import load_settings
from devhost.store.azure import AzureStore
from devhost.store.base import TaskHubStore
from devhost.store.memory import MemoryStore
from devhost.taskhub.model import InstanceRecord, RuntimeStatus
from devhost.testing import DurableHarness
from devhost.workers.pool import WorkerPool

pytestmark = pytest.mark.nondeterminism_expected
APP = Path(__file__).parent / "apps" / "nondeterministic"
FINISHED = {RuntimeStatus.Completed, RuntimeStatus.Failed}
DEADLINE = 60  # seconds any condition below may take
DIRECTIONS = '{"North", "South", "East", "West"}'  # as the app writes the set
WEBHOOKS = "/runtime/webhooks/durabletask"
ERROR = re.compile(
    r"Non-Deterministic workflow detected: event (\d+): "
    r"history has activity '(\w+)' \(task (\d+)\); the code now schedules activity '(\w+)'"
)
# In tests, each episode is replayed: a draw can also differ in the episode that makes it.
ANY_FLIP = re.compile(
    r"Non-Deterministic workflow detected: event \d+: (history has|the code scheduled) "
    r"activity '(Heads|Tails)'.*schedules activity '(Heads|Tails)'"
)
LATE_POLL = (
    "Non-Deterministic workflow detected: event {}: the code completed when it ran; "
    "replayed, it now schedules activity 'Poll'"
)


def make_store(kind: str, request: pytest.FixtureRequest, hub_name: str) -> TaskHubStore:
    if kind == "azure":
        return AzureStore(request.getfixturevalue("azurite").connection_string, hub_name)
    return MemoryStore()


@contextlib.asynccontextmanager
async def running(store: TaskHubStore, workers: int) -> AsyncIterator[DevHost]:
    """The app on a host as `start` runs it: warm instances, each checked at its end."""
    settings = load_settings(APP)
    settings.verify_warm = False  # the suite turns it on; the host's default is off
    host = DevHost(settings, store, Clock(), listen=ListenAddress("127.0.0.1", 0), workers=workers)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def run(host: DevHost, name: str) -> InstanceRecord:
    instance_id = await host.engine.start_new(name, None, None)
    record = await host.engine.wait_for_status(instance_id, FINISHED, DEADLINE)
    assert record is not None and record.runtime_status in FINISHED, record
    return record


async def until(condition: Callable[[], object], what: str) -> None:
    """Wait for a condition (a function, or a coroutine function), up to DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        await asyncio.sleep(0.02)


def failure_lines(caplog: pytest.LogCaptureFixture, instance_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "devhost.engine"
        and r.levelno == logging.ERROR
        and r.getMessage().startswith(f"{instance_id}: Function ")
    ]


@pytest.mark.parametrize(
    "workers", [0, pytest.param(1, marks=pytest.mark.slow)], ids=["in-process", "workers"]
)
@pytest.mark.parametrize("store_kind", ["memory", "azure"])
def test_a_warm_instance_that_diverges_fails_at_its_end_with_the_extensions_error(
    store_kind, workers, request, hub_name, caplog
):
    async def scenario() -> tuple[InstanceRecord, InstanceRecord, InstanceRecord, str]:
        async with running(make_store(store_kind, request, hub_name), workers) as host:
            flips = await run(host, "CoinFlips")
            polls = await run(host, "PollUntilDeadline")
            clean = await run(host, "Deterministic")
            return flips, polls, clean, host.runner.describe()

    flips, polls, clean, described = asyncio.run(scenario())
    assert "each instance at its end checked against a full replay" in described
    assert clean.runtime_status == RuntimeStatus.Completed, clean.output

    assert flips.runtime_status == RuntimeStatus.Failed
    output = json.loads(flips.output)
    assert output.startswith("Orchestrator function 'CoinFlips' failed: Non-Deterministic")
    found = ERROR.search(output)
    assert found, output
    assert {found[2], found[4]} == {"Heads", "Tails"}
    assert "(the Durable Functions code constraints; `python -m devhost check` finds them)" in (
        output
    )
    (line,) = failure_lines(caplog, flips.instance_id)
    assert line.startswith(
        f"{flips.instance_id}: Function 'CoinFlips (Orchestrator)' failed with an error. "
        f"Reason: {found[0]}"
    )
    assert line.endswith("IsReplay: False. State: Failed.")

    assert polls.runtime_status == RuntimeStatus.Failed
    output = json.loads(polls.output)
    at = re.search(r"event (\d+): the code completed", output)
    assert at and LATE_POLL.format(at[1]) in output, output
    (line,) = failure_lines(caplog, polls.instance_id)
    assert LATE_POLL.format(at[1]) in line


def hash_seeds_with_other_orders() -> tuple[tuple[str, list[str]], tuple[str, list[str]]]:
    """Two PYTHONHASHSEED values under which the app's set iterates in different orders."""
    orders: dict[str, list[str]] = {}
    for seed in range(40):
        probe = subprocess.run(
            [sys.executable, "-c", f"print(list({DIRECTIONS}))"],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        )
        order = eval(probe.stdout)  # noqa: S307 - a list literal printed by the probe above
        for other, seen in orders.items():
            if seen[0] != order[0]:
                return (other, seen), (str(seed), order)
        orders[str(seed)] = order
    raise AssertionError("no two hash seeds order the set differently")


def expected_set_error(first: list[str], then: list[str]) -> str:
    """The divergence of a history recorded in order `first`, replayed in order `then`."""
    return (
        f"history has activity '{first[0]}' (task 0); the code now schedules activity '{then[0]}'"
    )


@pytest.mark.slow
@pytest.mark.parametrize("store_kind", ["memory", "azure"])
def test_a_set_walked_in_another_order_by_a_new_worker_fails_the_instance(
    store_kind, request, hub_name, monkeypatch
):
    """Inside one process a set's order holds still; a worker started after a crash (as the
    Functions host recycles them, and Azure scales out) hashes strings with another seed."""
    (seed, order), (other_seed, other_order) = hash_seeds_with_other_orders()
    monkeypatch.setenv("PYTHONHASHSEED", seed)

    async def scenario() -> InstanceRecord:
        async with running(make_store(store_kind, request, hub_name), workers=1) as host:
            pool = host.runner
            assert isinstance(pool, WorkerPool)
            instance_id = await host.engine.start_new("WalkDirections", None, None)

            async def waiting() -> bool:
                view = await host.engine.waiting_on(instance_id)
                return view is not None and view.events == ["Continue"]

            await until(waiting, "the walk waits for Continue")
            (worker,) = pool.pids
            os.environ["PYTHONHASHSEED"] = other_seed  # its replacement's
            os.kill(worker, signal.SIGKILL)
            await until(lambda: pool.pids and pool.pids != [worker], "a new worker")
            await host.engine.raise_event(instance_id, "Continue", None)
            record = await host.engine.wait_for_status(instance_id, FINISHED, DEADLINE)
            assert record is not None
            return record

    record = asyncio.run(scenario())
    assert record.runtime_status == RuntimeStatus.Failed
    assert expected_set_error(order, other_order) in json.loads(record.output)


class InProcessHost(HostProcess):
    """`python -m devhost start --in-process` on the app, on Azure Storage."""

    def command(self) -> list[str]:
        return [*super().command(), "--in-process"]


@pytest.mark.slow
def test_a_set_walked_in_another_order_after_the_host_is_killed_fails_the_instance(
    azurite, hub_name, tmp_path
):
    (seed, order), (other_seed, other_order) = hash_seeds_with_other_orders()
    app = tmp_path / "app"
    app.mkdir()
    (app / "function_app.py").write_text((APP / "function_app.py").read_text())
    (app / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"durableTask": {"hubName": hub_name}}})
    )
    env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DEVHOST_VERIFY_WARM": "0",
        "PYTHONHASHSEED": seed,
    }
    log = tmp_path / "host.log"
    host = InProcessHost(env, log, app_dir=app)
    deadline = time.monotonic() + DEADLINE

    def status(history: bool = False) -> dict:
        query = "?showHistory=true" if history else ""
        code, body = host.request("GET", f"{WEBHOOKS}/instances/walk{query}")
        assert code in (200, 202), body
        return body

    host.start()
    try:
        code, _ = host.request("POST", f"{WEBHOOKS}/orchestrators/WalkDirections/walk")
        assert code == 202
        while sum(e["EventType"] == "TaskCompleted" for e in status(True)["historyEvents"]) < 4:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        host.kill()
        host.env["PYTHONHASHSEED"] = other_seed
        host.start()
        code, _ = host.request("POST", f"{WEBHOOKS}/instances/walk/raiseEvent/Continue", "go")
        assert code == 202
        while (final := status())["runtimeStatus"] not in ("Completed", "Failed"):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
    finally:
        host.stop()
    assert final["runtimeStatus"] == "Failed"
    assert expected_set_error(order, other_order) in final["output"]
    text = log.read_text()
    assert "walk: Function 'WalkDirections (Orchestrator)' failed with an error. Reason: " in text
    assert "iterates over a set" in text, "the start-up check warned about it"


@pytest.mark.parametrize("store_kind", ["memory", "azure"])
def test_tests_check_every_episode_and_name_the_divergence(store_kind, request, hub_name):
    """The harness replays each episode in full: a `random` branch is caught where it happens,
    not only at the end; and the clean orchestrator passes."""
    with DurableHarness(APP, store=make_store(store_kind, request, hub_name)) as host:
        flips = host.start("CoinFlips")
        polls = host.start("PollUntilDeadline")
        clean = host.start("Deterministic")
        host.advance(seconds=1)
        assert host.wait_for(clean).runtime_status.value == "Completed"
        for instance_id in (flips, polls):
            assert host.wait_for(instance_id).runtime_status.value == "Failed"
        flipped = host.status(flips).output
        assert ANY_FLIP.search(flipped), flipped
        found = host.divergences()
        assert len(found) == 2
        assert any(f.startswith(f"{flips} (CoinFlips): Orchestrator function") for f in found)
        assert any(f.startswith(f"{polls} (PollUntilDeadline): ") for f in found)


def test_turning_the_check_of_each_episode_off_in_tests_leaves_the_end_of_instance_check(
    monkeypatch,
):
    monkeypatch.setenv("DEVHOST_VERIFY_WARM", "0")
    with DurableHarness(APP) as host:
        instance_id = host.start("CoinFlips")
        assert ERROR.search(host.wait_for(instance_id).output)


def test_wait_for_on_the_virtual_clock_says_what_the_instance_waits_on():
    with DurableHarness(APP) as host:
        clean = host.start("Deterministic", instance_id="clean")
        started = time.monotonic()
        with pytest.raises(AssertionError) as failed:
            host.wait_for(clean, timeout=20)
        assert time.monotonic() - started < 10, "it failed at once, not at the deadline"
        assert str(failed.value) == (
            "clean is Running, not Canceled, Completed, Failed, Terminated: "
            "waiting on the timer due in 1 s: call advance()"
        )
        walk = host.start("WalkDirections", instance_id="walk")
        with pytest.raises(AssertionError, match="waiting on the external event 'Continue': "):
            host.wait_for(walk)
        with pytest.raises(AssertionError, match="no-such is unknown"):
            host.wait_for("no-such")
