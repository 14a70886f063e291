"""The game survives its host: killed (or stopped with Ctrl-C) at the worst moments, it goes on
after a restart; and a short chaos run loses nothing."""

import asyncio
import signal
import time
from pathlib import Path

import pytest

from bench import chaos
from bench.hosting import HostProcess
from devhost.azurite import Azurite
from devhost.testing import DurableHarness

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.azure  # every test here runs on Azure Storage


QUIET_SECONDS = 120


def wait_until(host: HostProcess, observe, done, what: str):
    """Until `done(observe())`. It gives up only after QUIET_SECONDS in which neither what it
    observes nor the host's log changed: a busy machine makes the wait longer, not a failure.
    A request the host is too busy to answer in time is an answer not yet given."""
    seen: object = None
    quiet_since = time.monotonic()
    while True:
        try:
            value = observe()
        except OSError:  # refused while it restarts, or timed out while it is busy
            value = None
        if done(value):
            return value
        marker = (value, host.log_path.stat().st_size if host.log_path.exists() else 0)
        if marker != seen:
            seen, quiet_since = marker, time.monotonic()
        assert time.monotonic() - quiet_since < QUIET_SECONDS, f"timed out waiting for {what}"
        time.sleep(0.1)


def accepted(host: HostProcess, path: str, body: object) -> int:
    """POST until the game answers other than 503 (its storage was too slow to answer in time,
    and nothing was done: the game says so with Retry-After)."""
    while True:
        code, _ = host.request("POST", path, body)
        if code != 503:
            return code
        time.sleep(1)


def status_of(host: HostProcess, path: str) -> str | None:
    return host.request("GET", path)[1].get("status")


@pytest.mark.parametrize("stop", ["SIGKILL", "Ctrl-C"])
def test_a_game_goes_on_after_the_host_stops_right_after_confirm_user(
    azurite, player, tmp_path, stop
):
    env = {"AzureWebJobsStorage": azurite.connection_string, "DUNGEON_SEED": "restart"}
    host = HostProcess(env, tmp_path / "host.log")
    host.start()
    try:
        assert accepted(host, "/api/NewUser", {"name": player}) == 202
        confirmation = f"/api/CheckStatus/{player}/UserConfirmationWorkflow"
        wait_until(
            host,
            lambda: status_of(host, confirmation),
            lambda s: s == "Running",
            "the confirmation",
        )
        assert accepted(host, "/api/ConfirmUser", {"name": player}) == 202
        if stop == "SIGKILL":
            host.kill()
        else:
            host.process.send_signal(signal.SIGINT)
            host.process.wait(timeout=120)
        host.start()
        monitor = f"/api/CheckStatus/{player}/GameMonitorWorkflow"
        wait_until(  # a game monitor yet to start answers 200 "Pending"
            host,
            lambda: status_of(host, monitor),
            lambda s: s in ("Running", "Completed"),
            "the game monitor",
        )
        sequence = f"/api/CheckStatus/{player}/RunUserSequentialWorkflow"
        wait_until(
            host, lambda: status_of(host, sequence), lambda s: s == "Completed", "the sequence"
        )
        state = host.request("GET", f"/api/GameStatus/{player}")[1]
        assert state["user"]["currentRoom"] and state["monster"]["inventoryItems"]
    finally:
        host.stop()


def test_a_short_chaos_run_loses_nothing(tmp_path):
    report = asyncio.run(chaos.run(players=4, kills=4, restarts=1, seed=3, folder=tmp_path))
    assert report.kills == 4 and report.won + report.dead == 4
    assert report.clean, "\n".join(report.lines())


def test_the_game_answers_503_while_its_storage_is_away(tmp_path):
    storage = Azurite(tmp_path / "azurite").start()
    env = {"AzureWebJobsStorage": storage.connection_string, "DUNGEON_SEED": "away"}
    try:
        with DurableHarness(REPO, env=env) as host:
            assert host.http("POST", "/api/NewUser", {"name": "Early"})[0] == 202
            storage.stop()
            for method, path, body in [
                ("POST", "/api/NewUser", {"name": "Away"}),
                ("GET", "/api/GameStatus/Early", None),
                ("POST", "/api/Action", {"name": "Early", "action": "get", "target": "x"}),
            ]:
                code, headers, answer = host.http(method, path, body)
                assert code == 503 and headers["Retry-After"] == "5", (path, code, answer)
                assert "storage is not answering" in answer["error"]
    finally:
        storage.stop()
