"""Crash safety on Azure Storage: the host process is really killed (SIGKILL) and started again."""

import os
import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.hosting import HostProcess
from devhost.azurite import Azurite
from devhost.store.azure import AzureStore
from devhost.testing import DurableHarness

CRASH_APP = Path(__file__).parent / "apps" / "crash"
pytestmark = pytest.mark.azure  # every test here runs on Azure Storage
WEBHOOKS = "/runtime/webhooks/durabletask"


class CrashHost(HostProcess):
    """`python -m devhost start` on the crash app, started and killed by the test."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path, app_dir=CRASH_APP)

    def finished(self, instance_id: str, timeout: float = 60) -> dict:
        """The status of the instance once it has finished (the API answers 200)."""
        deadline = time.monotonic() + timeout
        while True:
            code, status = self.request("GET", f"{WEBHOOKS}/instances/{instance_id}")
            if code == 200:
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.05)


@pytest.fixture
def crash_env(azurite, hub_name, tmp_path):
    env = dict(os.environ)
    env.update(
        AzureWebJobsStorage=azurite.connection_string,
        CRASH_HUB=hub_name,
        CRASH_LOG=str(tmp_path / "activities.log"),
        DEVHOST_VERIFY_WARM="1",
    )
    yield env
    host_logs = "".join(path.read_text(errors="ignore") for path in tmp_path.glob("*.log"))
    assert "Non-Deterministic workflow detected" not in host_logs
    assert "answers otherwise when its episode is replayed" not in host_logs
    assert "each episode checked against a full replay" in host_logs


def test_killed_host_loses_nothing_and_records_nothing_twice(crash_env, tmp_path):
    rng = random.Random(7)
    host = CrashHost(crash_env, tmp_path / "host.log")
    host.start()
    instances = [f"quest-{i}" for i in range(6)]
    accepted_events = set()
    try:
        for instance_id in instances:
            code, _ = host.request("POST", f"{WEBHOOKS}/orchestrators/Quest/{instance_id}", 120)
            assert code == 202
        loopers = ["looper-1", "looper-2"]
        for instance_id in loopers:
            code, _ = host.request("POST", f"{WEBHOOKS}/orchestrators/Looper/{instance_id}", 150)
            assert code == 202
        for round_number in range(8):
            time.sleep(rng.uniform(0.05, 0.6))  # let work get under way, then kill mid-flight
            if round_number >= 3:
                for instance_id in instances:
                    if instance_id not in accepted_events and rng.random() < 0.5:
                        code, _ = host.request(
                            "POST", f"{WEBHOOKS}/instances/{instance_id}/raiseEvent/Go", "go"
                        )
                        if code == 202:
                            accepted_events.add(instance_id)
            host.kill()
            host.start()
        for instance_id in instances:
            if instance_id not in accepted_events:
                code, _ = host.request(
                    "POST", f"{WEBHOOKS}/instances/{instance_id}/raiseEvent/Go", "go"
                )
                assert code == 202
        deadline = time.monotonic() + 60
        pending = set(instances) | set(loopers)
        while pending and time.monotonic() < deadline:
            for instance_id in list(pending):
                code, body = host.request("GET", f"{WEBHOOKS}/instances/{instance_id}")
                if code == 200:
                    pending.discard(instance_id)
            time.sleep(0.1)
        assert not pending, f"not finished: {pending}"

        for instance_id in loopers:
            code, status = host.request("GET", f"{WEBHOOKS}/instances/{instance_id}")
            assert status["output"] == "looped", status
        for instance_id in instances:
            code, status = host.request(
                "GET", f"{WEBHOOKS}/instances/{instance_id}?showHistory=true&showHistoryOutput=true"
            )
            assert status["runtimeStatus"] == "Completed", status
            assert status["output"] == {
                "a": f"{instance_id}:a",
                "fan": 120,
                "child": f"{instance_id}:side",
                "event": "go",
                "b": f"{instance_id}:b",
            }
            kinds = Counter(e["EventType"] for e in status["historyEvents"])
            assert kinds["ExecutionStarted"] == 1
            assert kinds["EventRaised"] == 1, "the event was recorded more or less than once"
            assert kinds["TaskCompleted"] == 122, "an activity result was recorded twice"
            assert kinds["SubOrchestrationInstanceCompleted"] == 1
            assert kinds["TimerFired"] == 1
    finally:
        host.stop()

    runs = Counter(Path(crash_env["CRASH_LOG"]).read_text().split())
    for instance_id in loopers:
        assert all(runs[f"{instance_id}:{n}"] >= 1 for n in range(1, 151))
    for instance_id in instances:
        for key in ["a", "b", "side", *(f"f{i}" for i in range(120))]:
            assert runs[f"{instance_id}:{key}"] >= 1, f"{instance_id}:{key} never ran"


def test_starts_killed_before_they_were_listed_are_listed_after_the_restart(crash_env, tmp_path):
    """The listing is written behind the commits: a kill right after the 202s comes before it
    has their rows. The next host finds the starts in their state rows and lists them."""
    host = CrashHost(crash_env, tmp_path / "host.log")
    host.start()
    ids = [f"listed-{n}" for n in range(5)]
    try:
        for instance_id in ids:
            code, _ = host.request("POST", f"{WEBHOOKS}/orchestrators/Quest/{instance_id}", 2)
            assert code == 202
        host.kill()
        host.start()
        code, listed = host.request("GET", f"{WEBHOOKS}/instances?instanceIdPrefix=listed-")
        assert code == 200 and set(ids) <= {s["instanceId"] for s in listed}  # and children
    finally:
        host.stop()


def test_timers_that_came_due_while_the_host_was_down_fire_on_restart(crash_env, tmp_path):
    host = CrashHost(crash_env, tmp_path / "host.log")
    host.start()
    try:
        code, _ = host.request("POST", f"{WEBHOOKS}/orchestrators/Side/sleeper", "nap")
        assert code == 202
        deadline = time.monotonic() + 30
        while (
            "nap:side" not in Path(crash_env["CRASH_LOG"]).read_text(errors="ignore")
            if Path(crash_env["CRASH_LOG"]).exists()
            else True
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        host.kill()
        time.sleep(1.5)  # the host is down while the 1 s timer comes due
        host.start()
        status = host.finished("sleeper")
        assert status["output"] == "nap:side"
    finally:
        host.stop()


def test_a_second_host_on_the_same_hub_is_refused(crash_env, tmp_path):
    first = CrashHost(crash_env, tmp_path / "first.log")
    first.start()
    try:
        second = subprocess.run(
            CrashHost(crash_env, tmp_path / "second.log").command(),
            env=crash_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert "is in use by another host" in second.stderr
        code, _ = first.request("GET", f"{WEBHOOKS}/instances/anything")
        assert code == 404  # the first host still serves
    finally:
        first.stop()


def test_storage_outage_makes_the_host_wait_and_retry(tmp_path, hub_name, caplog):
    patterns = Path(__file__).parent / "apps" / "patterns"
    storage = Azurite(tmp_path / "azurite").start()
    try:
        store = AzureStore(storage.connection_string, hub_name)
        with DurableHarness(patterns, store=store, virtual_clock=False) as host:
            instance_id = host.run(host.client.start_new("Timer", None, 1))
            host.wait_for(instance_id, statuses=("Running",))
            storage.stop()  # Azurite saves its data when stopped; a SIGKILL would lose it
            with caplog.at_level("WARNING", logger="devhost.store"):
                deadline = time.monotonic() + 30
                while not any("unreachable" in r.getMessage() for r in caplog.records):
                    assert time.monotonic() < deadline, "no outage was logged"
                    time.sleep(0.05)
                storage.start()
                status = host.wait_for(instance_id, timeout=60)
            assert status.runtime_status.value == "Completed" and status.output >= 1.0
            assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        storage.stop()


def test_entity_signals_answered_202_are_applied_exactly_once(crash_env, tmp_path):
    host = CrashHost(crash_env, tmp_path / "host.log")
    host.start()
    acked = ambiguous = 0
    path = f"{WEBHOOKS}/entities/Tally/kills?op=add"
    try:
        rng = random.Random(11)
        for _ in range(5):
            # Signal as fast as we can, then kill mid-stream: after a random time, and after
            # 5 acknowledgements at least, so a busy machine slows the round rather than
            # emptying it.
            deadline = time.monotonic() + rng.uniform(0.2, 0.8)
            round_acked = 0
            while round_acked < 5 or time.monotonic() < deadline:
                try:
                    code, _ = host.request("POST", path, 1)
                    round_acked += code == 202
                except ConnectionRefusedError:
                    pass
                except OSError:
                    ambiguous += 1  # the host died with this request in flight
            acked += round_acked
            host.kill()
            host.start()
        deadline = time.monotonic() + 30
        while True:
            code, state = host.request("GET", f"{WEBHOOKS}/entities/Tally/kills")
            if code == 200 and state >= acked:
                break
            assert time.monotonic() < deadline, (code, state, acked)
            time.sleep(0.05)
        assert acked >= 25
        assert acked <= state <= acked + ambiguous, (state, acked, ambiguous)
    finally:
        host.stop()


def test_work_resumed_after_a_restart_can_call_the_host(crash_env, tmp_path):
    """The host listens before it resumes work: an activity re-run during recovery that starts
    a workflow through the durable client reaches it, rather than failing its orchestration."""
    host = CrashHost(crash_env, tmp_path / "host.log")
    host.start()
    try:
        code, _ = host.request("POST", f"{WEBHOOKS}/orchestrators/Relay/relay")
        assert code == 202
        deadline = time.monotonic() + 30
        while not (tmp_path / "waiting").exists():
            assert time.monotonic() < deadline, "the activity never started"
            time.sleep(0.02)
        host.kill()
        (tmp_path / "go").touch()
        host.start()
        body = host.finished("relay")
        assert body["runtimeStatus"] == "Completed", body
        assert body["output"] == "relay-started"
        code, started = host.request("GET", f"{WEBHOOKS}/instances/relay-started")
        assert code in (200, 202) and started["name"] == "Looper"
    finally:
        host.stop()
