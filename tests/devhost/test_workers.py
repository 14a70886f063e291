"""Language worker processes: functions run in processes of their own, which may die.

Each test runs a host with worker processes (two unless it says) on the memory store, on the
workers app, whose functions leave files in a folder the test gives them.
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

import aiohttp
import pytest

from devhost.azurite import free_port
from devhost.clock import Clock
from devhost.host import DevHost, ListenAddress
from devhost.settings import SettingsError, load_settings
from devhost.store.memory import MemoryStore
from devhost.taskhub.model import RuntimeStatus
from devhost.workers.calls import Call
from devhost.workers.pool import WorkerPool
from devhost.workers.protocol import RunActivity
from devhost.workers.waiting import MAX_PASSED_OVER, WaitingActivities

pytestmark = pytest.mark.slow
APP = Path(__file__).parent / "apps" / "workers"
FINISHED = {RuntimeStatus.Completed, RuntimeStatus.Failed}
DEADLINE = 30  # seconds any condition below may take


@contextlib.asynccontextmanager
async def workers_host(count: int = 2, app: Path = APP) -> AsyncIterator[DevHost]:
    host = DevHost(
        load_settings(app),
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


def pool(host: DevHost) -> WorkerPool:
    assert isinstance(host.runner, WorkerPool)
    return host.runner


async def until(condition: Callable[[], object], what: str) -> None:
    """Wait for a condition, up to DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        await asyncio.sleep(0.01)


async def run(host: DevHost, name: str, value: object) -> tuple[RuntimeStatus, object]:
    instance_id = await host.engine.start_new(name, None, json.dumps(value))
    record = await host.engine.wait_for_status(instance_id, FINISHED, DEADLINE)
    assert record is not None and record.runtime_status in FINISHED, record
    return record.runtime_status, json.loads(record.output or "null")


async def get_pid(host: DevHost) -> int:
    """The process that answered the app's HTTP function `pid`."""
    url = f"{host.base_url}/api/pid"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return int(await response.text())


def thread_nice(pid: int) -> set[int]:
    """The nice values of a process's threads (Linux sets them per thread)."""
    stats = (task / "stat" for task in Path(f"/proc/{pid}/task").iterdir())
    return {int(stat.read_text().rpartition(")")[2].split()[16]) for stat in stats}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its parent to reap it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


# -- crashes --------------------------------------------------------------------------------------


def test_a_worker_killed_mid_activity_is_replaced_and_the_activity_runs_again(tmp_path, caplog):
    async def scenario() -> None:
        async with workers_host() as host:
            before = set(pool(host).pids)
            instance_id = await host.engine.start_new(
                "HeldThenRecorded", None, json.dumps(str(tmp_path))
            )
            await until(lambda: list(tmp_path.glob("holding-*")), "the activity runs")
            (holder,) = [int(p.name.split("-")[1]) for p in tmp_path.glob("holding-*")]
            os.kill(holder, signal.SIGKILL)
            await until(lambda: len(list(tmp_path.glob("holding-*"))) == 2, "it runs again")
            (tmp_path / "release").touch()
            record = await host.engine.wait_for_status(instance_id, FINISHED, DEADLINE)
            assert record is not None and json.loads(record.output) == ["released", "after"]
            after = set(pool(host).pids)
            assert holder not in after and len(after) == 2 and after != before

    caplog.set_level(logging.INFO)
    asyncio.run(scenario())
    assert lines(tmp_path / "effects") == ["held", "after"], "each effect once, none lost"
    deaths = messages(caplog, "devhost.workers")
    assert any(re.search(r"exited with code -9 while running 'Hold'", m) for m in deaths), deaths


def test_an_activity_that_ends_its_process_runs_again_on_a_live_worker(tmp_path):
    async def scenario() -> tuple[RuntimeStatus, object]:
        async with workers_host() as host:
            return await run(host, "CallOne", ["ExitOnce", str(tmp_path)])

    assert asyncio.run(scenario()) == (RuntimeStatus.Completed, "survived")


def test_a_poison_activity_fails_with_the_reason_after_three_runs(tmp_path):
    async def scenario() -> tuple[RuntimeStatus, object]:
        async with workers_host() as host:
            return await run(host, "CallOne", ["Poison", str(tmp_path)])

    status, output = asyncio.run(scenario())
    assert status == RuntimeStatus.Failed
    assert "worker process exited with code 7 while running 'Poison'" in output
    assert len(lines(tmp_path / "poison-runs")) == 3


# -- logs and output ------------------------------------------------------------------------------


def test_logs_reach_the_host_with_the_function_name_and_prints_do_not_break_the_channel(caplog):
    async def scenario() -> tuple[RuntimeStatus, object]:
        async with workers_host() as host:
            outcome = await run(host, "CallOne", ["Chatty", "hi"])
            await until(
                lambda: any("printed hi" in m for m in messages(caplog, "devhost.workers")),
                "the printed line reaches the host's log",
            )
            return outcome

    caplog.set_level(logging.INFO)
    assert asyncio.run(scenario()) == (RuntimeStatus.Completed, "HI")
    user = [r for r in caplog.records if r.name == "Function.Chatty.User"]
    assert [(r.levelno, r.getMessage()) for r in user] == [(logging.WARNING, "logged hi")]
    printed = [m for m in messages(caplog, "devhost.workers") if "printed hi" in m]
    assert re.fullmatch(r"worker [12]: printed hi", printed[0])


# -- routing --------------------------------------------------------------------------------------


def test_an_instances_episodes_all_run_in_the_worker_that_holds_it(tmp_path, caplog):
    async def scenario() -> tuple[list[str], set[str]]:
        async with workers_host(4) as host:
            ids = await asyncio.gather(
                *(host.engine.start_new("Steps", None, json.dumps(str(tmp_path))) for _ in range(4))
            )
            for instance_id in ids:
                record = await host.engine.wait_for_status(instance_id, FINISHED, DEADLINE)
                assert record is not None and json.loads(record.output) == [0, 1, 2, 3, 4]
            stats = await host.runner.warm_stats()
            assert stats.warm >= 4 * 4, "after its first episode, each instance ran warm"
            background = {str(w.pid) for w in pool(host).workers if w.lane == "background"}
            return ids, background

    caplog.set_level(logging.INFO)
    ids, background = asyncio.run(scenario())
    episodes = [
        re.fullmatch(r"episode of (\w+) in pid (\d+)", m)
        for m in messages(caplog, "Function.Steps.User")
    ]
    pids = {i: {m[2] for m in episodes if m and m[1] == i} for i in ids}
    assert all(len(p) == 1 for p in pids.values()), pids
    assert set().union(*pids.values()) == background, "the least loaded background worker"


def test_http_functions_and_background_work_run_in_workers_of_their_own(tmp_path):
    async def scenario() -> None:
        async with workers_host(2) as host:
            http, background = pool(host).workers
            assert (http.lane, background.lane) == ("http", "background")
            assert os.getpriority(os.PRIO_PROCESS, http.pid) == os.getpriority(os.PRIO_PROCESS, 0)
            assert thread_nice(background.pid) == {19}, "a core goes to requests first"
            status, output = await run(host, "CallOne", ["WhichProcess", None])
            assert (status, output) == (RuntimeStatus.Completed, background.pid)
            instance_id = await host.engine.start_new("Spin", None, json.dumps(str(tmp_path)))
            await until(lambda: list(tmp_path.glob("spinning-*")), "the background worker spins")
            assert await get_pid(host) == http.pid
            (tmp_path / "release").touch()
            record = await host.engine.wait_for_status(instance_id, FINISHED, DEADLINE)
            assert record is not None and json.loads(record.output) == "spun"

    asyncio.run(scenario())


def test_an_http_worker_killed_mid_request_answers_500_and_another_worker_the_next(tmp_path):
    async def scenario() -> None:
        async with workers_host(2) as host:
            http = pool(host).workers[0]
            url = f"{host.base_url}/api/hold?folder={tmp_path}"
            async with aiohttp.ClientSession() as session:
                held = asyncio.ensure_future(session.get(url))
                await until(lambda: list(tmp_path.glob("http-*")), "the request is held")
                os.kill(http.pid, signal.SIGKILL)
                response = await held
                assert response.status == 500
                reason = (await response.json())["error"]
                assert reason == "worker process exited with code -9 while running 'hold'"
            replacement, background = pool(host).workers
            assert replacement.lane == "http" and replacement.process.pid != http.pid
            # Until the replacement has loaded the app, the background worker answers.
            assert not replacement.loaded and pool(host).routing.serving("http") == [background]
            assert await get_pid(host) in {background.pid, replacement.process.pid}
            await replacement.ready
            assert await get_pid(host) == replacement.pid == replacement.process.pid

    asyncio.run(scenario())


def test_the_workers_of_an_app_without_http_functions_all_run_background_work():
    async def scenario() -> None:
        async with workers_host(2, app=APP.parent / "crash") as host:
            assert [w.lane for w in pool(host).workers] == ["all", "all"]
            assert all(thread_nice(w.pid) == {os.nice(0)} for w in pool(host).workers)
            assert pool(host).lanes() == "each runs every function"

    asyncio.run(scenario())


def test_a_lone_worker_answers_http_beside_a_long_episode(tmp_path):
    async def scenario() -> None:
        async with workers_host(1) as host:
            (worker,) = pool(host).workers
            instance_id = await host.engine.start_new("Spin", None, json.dumps(str(tmp_path)))
            await until(lambda: list(tmp_path.glob("spinning-*")), "the worker spins")
            assert await get_pid(host) == worker.pid
            record = await host.engine.get_record(instance_id)  # its first episode still runs
            assert record is not None and record.runtime_status == RuntimeStatus.Pending
            (tmp_path / "release").touch()
            record = await host.engine.wait_for_status(instance_id, FINISHED, DEADLINE)
            assert record is not None and json.loads(record.output) == "spun"

    asyncio.run(scenario())


# -- lifetime -------------------------------------------------------------------------------------


def test_stopping_the_host_ends_its_workers():
    async def scenario() -> list[int]:
        async with workers_host() as host:
            pids = pool(host).pids
            assert len(pids) == 2 and all(alive(p) for p in pids)
        return pids

    assert not any(alive(p) for p in asyncio.run(scenario()))


def host_process(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(APP)]
        + ["--store", "memory", "--port", str(port)],
        env=dict(os.environ, FUNCTIONS_WORKER_PROCESS_COUNT="2"),
        stdout=open(tmp_path / "host.log", "w"),  # noqa: SIM115 - the child holds it
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + DEADLINE
    while "Host started." not in (tmp_path / "host.log").read_text():
        assert process.poll() is None, (tmp_path / "host.log").read_text()
        assert time.monotonic() < deadline, "the host did not start"
        time.sleep(0.05)
    assert len(children(process.pid)) == 2
    return process, port


def wait_gone(pids: list[int], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_host_stopped_by_a_signal_leaves_no_worker(tmp_path, sig):
    process, _ = host_process(tmp_path)
    workers = children(process.pid)
    process.send_signal(sig)
    assert process.wait(DEADLINE) == 0
    wait_gone(workers, "a worker outlived its host")
    banner = "Functions run in 2 worker processes (FUNCTIONS_WORKER_PROCESS_COUNT): 1 for HTTP"
    assert banner in (tmp_path / "host.log").read_text()


def test_the_workers_of_a_killed_host_end_on_their_own(tmp_path):
    process, _ = host_process(tmp_path)
    workers = children(process.pid)
    process.kill()
    process.wait()
    wait_gone(workers, "a worker outlived its killed host")


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "11", "two", "-1"])
def test_a_worker_count_out_of_range_is_refused_with_a_sentence(monkeypatch, value):
    monkeypatch.setenv("FUNCTIONS_WORKER_PROCESS_COUNT", value)
    with pytest.raises(SettingsError, match="must be a whole number from 1 to 10"):
        load_settings(APP)


# -- activities waiting for a slot ----------------------------------------------------------------


def activity(name: str) -> Call:
    return Call("activity", name, RunActivity(0, name, None))


def test_waiting_activities_go_newest_orchestration_first_unless_one_waited_too_long():
    now = [0.0]
    waiting = WaitingActivities(clock=lambda: now[0])
    waiting.add(activity("old"), created=100.0)
    waiting.add(activity("new"), created=200.0)
    waiting.add(activity("newer"), created=300.0)
    waiting.add(activity("newer, called later"), created=300.0)
    assert [waiting.take().name for _ in range(2)] == ["newer", "newer, called later"]
    now[0] = MAX_PASSED_OVER  # "old" has been passed over long enough
    assert [waiting.take().name for _ in range(2)] == ["old", "new"]
    assert len(waiting) == 0


def test_activities_past_max_concurrent_wait_in_the_host_and_all_run(tmp_path):
    async def scenario() -> tuple[RuntimeStatus, object]:
        async with workers_host(2) as host:
            pool(host).settings.max_concurrent_activities = 2
            return await run(host, "FanOut", [str(tmp_path), 12])

    assert asyncio.run(scenario()) == (RuntimeStatus.Completed, list(range(12)))
    assert max(int(n) for n in lines(tmp_path / "running-at-once")) <= 2


def test_waiting_activities_forget_what_was_taken():
    waiting = WaitingActivities(clock=lambda: 0.0)
    for number in range(3):
        waiting.add(activity(f"a{number}"), created=float(number))
    assert [waiting.take().name for _ in range(3)] == ["a2", "a1", "a0"]
    waiting.add(activity("later"), created=0.0)
    assert (len(waiting), waiting.take().name, len(waiting)) == (1, "later", 0)
