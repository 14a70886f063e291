"""Players benchmark: N simulated players play whole games at once against the real host.

    python -m bench.players --players 200

Starts its own Azurite and `python -m devhost start --store azure` (short monitor timings),
then each player: NewUser, waits for the confirmation, ConfirmUser, waits for the dungeon,
gets the weapon, kills the monster, gets the treasure, and waits for the win. Prints games
completed per second and the latency of the Action calls (p50, p99), and every error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.hosting import HostProcess
from devhost.azurite import Azurite

FIRST_POLL, LAST_POLL = 0.25, 2.0  # a waiting player asks again with backoff, as the page does


class GameError(Exception):
    pass


async def call(session: aiohttp.ClientSession, method: str, url: str, body=None):
    async with session.request(method, url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def wait_until(check, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    pause = FIRST_POLL
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(pause)  # players poll the HTTP API: it has no push
        pause = min(pause * 1.5, LAST_POLL)
    raise GameError(f"timed out waiting for {what}")


async def play(session: aiohttp.ClientSession, base: str, name: str, latencies: list[float]):
    status, body = await call(session, "POST", f"{base}/NewUser", {"name": name})
    if status != 202:
        raise GameError(f"NewUser {status}: {body}")

    async def confirmation_waiting():
        code, body = await call(
            session, "GET", f"{base}/CheckStatus/{name}/UserConfirmationWorkflow"
        )
        return code == 200 and body["status"] == "Running"

    await wait_until(confirmation_waiting, "the confirmation")
    status, body = await call(session, "POST", f"{base}/ConfirmUser", {"name": name})
    if status != 202:
        raise GameError(f"ConfirmUser {status}: {body}")

    async def dungeon_ready():
        code, body = await call(session, "GET", f"{base}/GameStatus/{name}")
        if code == 200 and body["monster"]["inventoryItems"] and body["user"]["currentRoom"]:
            return body
        return None

    state = await wait_until(dungeon_ready, "the dungeon")
    weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
    treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
    for action in (
        {"action": "get", "target": weapon},
        {"action": "kill", "target": state["monster"]["name"], "with": weapon},
        {"action": "get", "target": treasure},
    ):
        started = time.perf_counter()
        status, body = await call(session, "POST", f"{base}/Action", {"name": name, **action})
        latencies.append(time.perf_counter() - started)
        if status != 200:
            raise GameError(f"Action {action['action']} {status}: {body}")

    async def won():
        code, body = await call(session, "GET", f"{base}/CheckStatus/{name}/GameMonitorWorkflow")
        return code == 200 and body["status"] == "Completed"

    await wait_until(won, "the win")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def run_players(base: str, players: int) -> None:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=players)
    async with aiohttp.ClientSession(connector=connector) as session:
        prefix = f"B{int(time.time()) % 100000}"
        started = time.perf_counter()
        results = await asyncio.gather(
            *(play(session, base, f"{prefix}-{i}", latencies) for i in range(players)),
            return_exceptions=True,
        )
        elapsed = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, Exception)]
    done = players - len(errors)
    print(
        f"players {players}: {done} games won in {elapsed:.1f} s, "
        f"{done / elapsed:.2f} games/s, {len(errors)} errors"
    )
    if latencies:
        print(
            f"action latency p50 {percentile(latencies, 0.5) * 1000:.1f} ms  "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms  "
            f"median of {len(latencies)} actions {statistics.median(latencies) * 1000:.1f} ms "
            "(goal: p99 < 250 ms, no errors)"
        )
    for error in errors[:10]:
        print(f"  error: {type(error).__name__}: {error}")


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU a process has used (Linux), or None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.players",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--players", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder) / "azurite") as azurite:
        env = {
            "AzureWebJobsStorage": azurite.connection_string,
            "DUNGEON_CONFIRM_SECONDS": "300",
            "DUNGEON_MONITOR_INTERVAL_SECONDS": "20",
            "DUNGEON_MONITOR_LIFETIME_MINUTES": "5",
        }
        host = HostProcess(env, Path(folder) / "host.log")
        host.start()
        try:
            print(f"host on port {host.port}, Azurite on {azurite.ports}", file=sys.stderr)
            assert host.process is not None
            idle = cpu_seconds(host.process.pid)
            asyncio.run(run_players(f"{host.base}/api", args.players))
            if idle is not None:
                used = cpu_seconds(host.process.pid) - idle
                print(
                    f"host CPU {used:.1f} s, {used / args.players * 1000:.0f} ms a game "
                    "(steadier than latency on a busy machine)"
                )
        finally:
            host.stop()

if __name__ == "__main__":
    main()
