"""host.json's functionTimeout: an invocation past it fails with the Functions host's message.

In-process on both stores (the harness), then with worker processes (which the host replaces).
The timeouts_http app sets a 2-second limit and two activities at once; its `Hang` functions
hold on until the test creates `release` in their folder, which every test does at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from devhost.clock import Clock
from devhost.function_timeout import FunctionTimeout, parse_timespan
from devhost.host import DevHost, ListenAddress
from devhost.settings import SettingsError, load_settings
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.taskhub.model import RuntimeStatus
from devhost.testing import DurableHarness
from devhost.workers.pool import WorkerPool

APPS = Path(__file__).parent / "apps"
APP = APPS / "timeouts_http"
UNLIMITED_APP = APPS / "timeouts_unlimited"
HANG_MESSAGE = "Timeout value of 00:00:02 was exceeded by function: Functions.Hang"
DEADLINE = 30  # seconds any condition below may take
FINISHED = {RuntimeStatus.Completed, RuntimeStatus.Failed}


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """Where Hang functions leave their marks; released at the end so no thread stays held."""
    yield tmp_path
    (tmp_path / "release").touch()


@pytest.fixture(params=["memory", "azure"])
def host(request, hub_name) -> Iterator[DurableHarness]:
    if request.param == "azure":
        store = AzureStore(request.getfixturevalue("azurite").connection_string, hub_name)
    else:
        store = MemoryStore()
    with DurableHarness(APP, store=store) as harness:
        yield harness


def runs(folder: Path, kind: str = "hung") -> int:
    return len(list(folder.glob(f"{kind}-*")))


def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        time.sleep(0.01)


# -- the setting ----------------------------------------------------------------------------------


def test_timespans_parse_as_the_host_reads_them():
    assert parse_timespan("00:00:05") == 5
    assert parse_timespan("01:02:03") == 3723
    assert parse_timespan("1.00:00:00") == 86400
    assert parse_timespan("00:00:01.5") == 1.5
    assert parse_timespan("-1") is None


@pytest.mark.parametrize("text", ["5", "00:00:00", "24:00:00", "00:60:00", "1:2", "-2", "soon"])
def test_a_timespan_the_host_would_refuse_is_refused_with_the_forms_it_takes(text):
    with pytest.raises(ValueError, match=r"hh:mm:ss.*'-1' for no limit"):
        parse_timespan(text)


def test_a_bad_function_timeout_in_host_json_names_the_file(tmp_path):
    (tmp_path / "host.json").write_text(json.dumps({"functionTimeout": 300}))
    with pytest.raises(SettingsError, match=r"host.json: functionTimeout must be a string"):
        load_settings(tmp_path, apply_environment=False)
    (tmp_path / "host.json").write_text(json.dumps({"functionTimeout": "5 minutes"}))
    with pytest.raises(SettingsError, match=r"host.json: functionTimeout must be a timespan"):
        load_settings(tmp_path, apply_environment=False)


def test_the_settings_carry_the_limit_and_its_text():
    timeout = load_settings(APP, apply_environment=False).function_timeout
    assert timeout == FunctionTimeout(2.0, "00:00:02")
    assert load_settings(UNLIMITED_APP, apply_environment=False).function_timeout.limit is None


# -- in-process, both stores ----------------------------------------------------------------------


def test_an_activity_past_the_limit_fails_its_task_with_the_hosts_message(host, folder, caplog):
    instance_id = host.start("CallOne", ["Hang", str(folder), 1])
    status = host.wait_for(instance_id)
    assert status.runtime_status.name == "Failed"
    assert HANG_MESSAGE in status.output
    assert any(
        "its thread cannot be stopped in-process and is left running" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )


def test_a_retry_policy_runs_the_timed_out_activity_again(host, folder):
    instance_id = host.start("CallOne", ["Hang", str(folder), 2])
    host.idle()  # the first run timed out; the retry waits on its timer
    assert runs(folder) == 1
    host.advance(seconds=2)
    status = host.wait_for(instance_id)
    assert status.runtime_status.name == "Failed"
    assert HANG_MESSAGE in status.output
    assert runs(folder) == 2


def test_hung_activities_give_their_slots_back_to_the_others(host, folder):
    """Two activities run at once (host.json): three hung ones do not keep a fourth waiting."""
    hung = [host.start("CallOne", ["Hang", str(folder), 1]) for _ in range(3)]
    until(lambda: runs(folder) == 2, "two activities hang")
    quick = host.start("CallOne", ["Echo", "still runs", 1])
    status = host.wait_for(quick)
    assert (status.runtime_status.name, status.output) == ("Completed", "still runs")
    for instance_id in hung:
        assert host.wait_for(instance_id).runtime_status.name == "Failed"


def test_an_async_activity_past_the_limit_is_cancelled(host, folder, caplog):
    status = host.wait_for(host.start("CallOne", ["HangAsync", str(folder), 1]))
    assert status.runtime_status.name == "Failed"
    assert "exceeded by function: Functions.HangAsync" in status.output
    assert not any("left running" in r.getMessage() for r in caplog.records)


def test_an_http_function_past_the_limit_answers_500_with_the_message(host, folder):
    code, _, body = host.http("GET", f"/api/hang?folder={folder}")
    assert code == 500
    assert body == {"error": "Timeout value of 00:00:02 was exceeded by function: Functions.hang"}


def test_an_episode_that_took_longer_than_the_limit_fails_the_instance(host):
    status = host.wait_for(host.start("SlowEpisode"))
    assert status.runtime_status.name == "Failed"
    assert "Timeout value of 00:00:02 was exceeded by function: Functions.SlowEpisode" in (
        status.output
    )


def test_without_a_limit_a_hung_activity_is_named_once(folder, caplog, monkeypatch):
    monkeypatch.setenv("DEVHOST_HUNG_WARNING_SECONDS", "0.2")
    caplog.set_level(logging.WARNING, "devhost.timeout")
    with DurableHarness(UNLIMITED_APP) as host:
        instance_id = host.start("CallHang", str(folder))

        def warnings() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "devhost.timeout"]

        until(warnings, "the warning")
        time.sleep(0.5)  # the check: no second warning comes for the same invocation
        (line,) = warnings()
        assert line.startswith("Function 'Functions.Hang' is still running after 0.2 seconds")
        (folder / "release").touch()
        assert host.wait_for(instance_id).output == "released"


# -- worker processes -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def workers_host(count: int = 1) -> AsyncIterator[DevHost]:
    host = DevHost(
        load_settings(APP, apply_environment=False),
        MemoryStore(),
        Clock(),
        listen=ListenAddress("127.0.0.1", 0),
        workers=count,
    )
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def finished(host: DevHost, instance_id: str) -> tuple[str, object]:
    record = await host.engine.wait_for_status(instance_id, FINISHED, DEADLINE)
    assert record is not None and record.runtime_status in FINISHED, record
    return record.runtime_status.value, json.loads(record.output or "null")


async def start(host: DevHost, name: str, value: object) -> str:
    return await host.engine.start_new(name, None, json.dumps(value))


async def until_async(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        await asyncio.sleep(0.01)


@pytest.mark.slow
def test_a_worker_whose_activity_timed_out_is_replaced_and_its_other_work_is_not_lost(
    folder, caplog
):
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        async with workers_host() as host:
            assert isinstance(host.runner, WorkerPool)
            (before,) = host.runner.pids
            hung = await start(host, "CallOne", ["Hang", str(folder), 2])
            chain = await start(host, "Chain", 40)
            assert await finished(host, chain) == ("Completed", 40)
            status, output = await finished(host, hung)
            assert status == "Failed" and HANG_MESSAGE in str(output)
            assert runs(folder) == 2  # the retry policy ran it again, in the replacement
            await until_async(lambda: host.runner.pids, "a replacement worker")
            assert before not in host.runner.pids

    asyncio.run(scenario())
    replaced = [r.getMessage() for r in caplog.records if "is replaced" in r.getMessage()]
    assert replaced and replaced[0].startswith(HANG_MESSAGE + "; worker 1 (pid ")
    exits = [r.getMessage() for r in caplog.records if "exited with code" in r.getMessage()]
    assert exits == [], "a worker the host replaced is logged once, not again as an exit"


@pytest.mark.slow
def test_with_workers_an_episode_past_the_limit_fails_its_instance_and_replaces_the_worker():
    async def scenario() -> None:
        async with workers_host() as host:
            assert isinstance(host.runner, WorkerPool)
            (before,) = host.runner.pids
            status, output = await finished(host, await start(host, "SlowEpisode", None))
            assert status == "Failed"
            assert "exceeded by function: Functions.SlowEpisode" in str(output)
            await until_async(lambda: host.runner.pids, "a replacement worker")
            assert before not in host.runner.pids

    asyncio.run(scenario())


@pytest.mark.slow
def test_with_workers_hung_activities_give_their_slots_back(folder):
    async def scenario() -> None:
        async with workers_host(count=2) as host:
            hung = [await start(host, "CallOne", ["Hang", str(folder), 1]) for _ in range(3)]
            await until_async(lambda: runs(folder) == 2, "two activities hang")
            quick = await start(host, "CallOne", ["Echo", "still runs", 1])
            assert await finished(host, quick) == ("Completed", "still runs")
            for instance_id in hung:
                assert (await finished(host, instance_id))[0] == "Failed"

    asyncio.run(scenario())


@pytest.mark.slow
def test_with_workers_an_http_function_past_the_limit_answers_500(folder):
    async def scenario() -> None:
        async with workers_host() as host, aiohttp.ClientSession() as session:
            url = f"{host.base_url}/api/hang?folder={folder}"
            async with session.get(url) as response:
                assert response.status == 500
                body = await response.json()
            assert body == {
                "error": "Timeout value of 00:00:02 was exceeded by function: Functions.hang"
            }
            async with session.get(f"{host.base_url}/api/pid") as response:
                assert response.status == 200  # a replacement answers

    asyncio.run(scenario())
