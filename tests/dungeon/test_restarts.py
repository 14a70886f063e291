"""The game survives its host: killed (or stopped with Ctrl-C) at the worst moments, it goes on
after a restart; and a short chaos run loses nothing."""

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request

import pytest

from bench import chaos
from bench.hosting import HostProcess

pytestmark = pytest.mark.azure  # every test here runs on Azure Storage


def request(host: HostProcess, method: str, path: str, body=None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(host.base + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait_until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("stop", ["SIGKILL", "Ctrl-C"])
def test_a_game_goes_on_after_the_host_stops_right_after_confirm_user(
    azurite, player, tmp_path, stop
):
    env = {"AzureWebJobsStorage": azurite.connection_string, "DUNGEON_SEED": "restart"}
    host = HostProcess(env, tmp_path / "host.log")
    host.start()
    try:
        assert request(host, "POST", "/api/NewUser", {"name": player})[0] == 202
        wait_until(
            lambda: request(host, "GET", f"/api/CheckStatus/{player}/UserConfirmationWorkflow")[1]
            .get("status")
            == "Running",
            "the confirmation",
        )
        assert request(host, "POST", "/api/ConfirmUser", {"name": player})[0] == 202
        if stop == "SIGKILL":
            host.kill()
        else:
            host.process.send_signal(signal.SIGINT)
            host.process.wait(timeout=30)
        host.start()
        monitor = f"/api/CheckStatus/{player}/GameMonitorWorkflow"
        wait_until(lambda: request(host, "GET", monitor)[0] == 200, "the game monitor")
        state = request(host, "GET", f"/api/GameStatus/{player}")[1]
        assert state["user"]["currentRoom"] and state["monster"]["inventoryItems"]
        sequence = request(host, "GET", f"/api/CheckStatus/{player}/RunUserSequentialWorkflow")
        assert sequence[1]["status"] == "Completed", sequence
    finally:
        host.stop()


def test_a_short_chaos_run_loses_nothing(tmp_path):
    report = asyncio.run(chaos.run(players=4, kills=4, restarts=1, seed=3, folder=tmp_path))
    assert report.kills == 4 and report.won + report.dead == 4
    assert report.clean, "\n".join(report.lines())
