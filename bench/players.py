"""Players benchmark: N simulated players play whole games at once against the real host.

    python -m bench.players --players 100 --runs 3
    python -m bench.players --players 25 50 100 150      # the largest count with p99 < 250 ms
    python -m bench.players --env DEVHOST_WARM_INSTANCES=0  # a host setting, for A/B runs
    python -m bench.players --players 100 --ramp 10   # players arrive over 10 s, not at once

Each run starts its own Azurite and `python -m devhost start --store azure` (short monitor
timings), then each player: NewUser, waits for the confirmation, ConfirmUser, waits for the
dungeon, gets the weapon, kills the monster, gets the treasure, and waits for the win. Prints
games completed, the latency of the Action calls (p50, p99), how long a dungeon took to be ready
after NewUser (p50), every error, and the CPU the host and its worker processes used a game.
Runs are independent (a fresh Azurite each: Azurite scans a table on most requests, so a store
that earlier runs filled is slower), and a median line closes each player count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.hosting import HostProcess
from devhost.azurite import Azurite

GOAL_P99 = 0.25  # seconds: the goal for a player's click
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


@dataclass
class Timings:
    """What the players waited for: each Action call, and each dungeon from NewUser (the
    background work, which yields the CPU to requests, shows here)."""

    actions: list[float] = field(default_factory=list)
    ready: list[float] = field(default_factory=list)


async def play(session: aiohttp.ClientSession, base: str, name: str, timings: Timings):
    joined = time.perf_counter()
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
    timings.ready.append(time.perf_counter() - joined)
    weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
    treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
    for action in (
        {"action": "get", "target": weapon},
        {"action": "kill", "target": state["monster"]["name"], "with": weapon},
        {"action": "get", "target": treasure},
    ):
        started = time.perf_counter()
        status, body = await call(session, "POST", f"{base}/Action", {"name": name, **action})
        timings.actions.append(time.perf_counter() - started)
        if status != 200:
            raise GameError(f"Action {action['action']} {status}: {body}")

    async def won():
        code, body = await call(session, "GET", f"{base}/CheckStatus/{name}/GameMonitorWorkflow")
        return code == 200 and body["status"] == "Completed"

    await wait_until(won, "the win")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


@dataclass
class RunResult:
    """One run of N players: what the reader compares between runs."""

    players: int
    won: int
    elapsed: float
    timings: Timings
    errors: list[Exception]
    cpu: float | None  # seconds of the host and its worker processes

    @property
    def p50(self) -> float:
        return percentile(self.timings.actions, 0.5) if self.timings.actions else float("nan")

    @property
    def p99(self) -> float:
        return percentile(self.timings.actions, 0.99) if self.timings.actions else float("nan")

    @property
    def ready_p50(self) -> float:
        return percentile(self.timings.ready, 0.5) if self.timings.ready else float("nan")

    def line(self) -> str:
        cpu = (
            f", CPU {self.cpu / self.players * 1000:.0f} ms a game" if self.cpu is not None else ""
        )
        return (
            f"players {self.players}: {self.won} won in {self.elapsed:.1f} s, "
            f"{len(self.errors)} errors, action p50 {self.p50 * 1000:.1f} ms "
            f"p99 {self.p99 * 1000:.1f} ms, dungeon ready p50 {self.ready_p50:.1f} s{cpu}"
        )


async def run_players(
    base: str, players: int, prefix: str, ramp: float = 0
) -> tuple[float, Timings, list[Exception]]:
    """N players at once, or the i-th `i * ramp / N` seconds after the first."""
    timings = Timings()
    connector = aiohttp.TCPConnector(limit=players)

    async def arrive(i: int) -> None:
        await asyncio.sleep(i * ramp / players)  # arrivals are the load's shape, not a wait
        await play(session, base, f"{prefix}-{i}", timings)

    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        results = await asyncio.gather(*(arrive(i) for i in range(players)), return_exceptions=True)
        elapsed = time.perf_counter() - started
    return elapsed, timings, [r for r in results if isinstance(r, Exception)]


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU a process has used (Linux), or None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """A process and every live process under it (the host's language workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def tree_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process still alive (readable) among `pids`."""
    used = {pid: cpu_seconds(pid) for pid in pids}
    return {pid: u for pid, u in used.items() if u is not None}


def settled_cpu(pids: list[int], deadline: float = 60) -> dict[int, float]:
    """CPU used so far, once the processes are idle: workers may still be loading the app
    when the port answers, and that start is not a game's cost."""
    give_up = time.monotonic() + deadline
    last = tree_cpu(pids)
    while time.monotonic() < give_up:
        time.sleep(0.25)  # sampling /proc: nothing to wait on but the clock
        now = tree_cpu(pids)
        if sum(now.values()) - sum(last.values()) < 0.02:
            return now
        last = now
    return last


def one_run(folder: Path, players: int, env: dict[str, str], number: int, ramp: float) -> RunResult:
    """A fresh Azurite and host, N players, and the CPU the host's process tree used."""
    with Azurite(folder / f"azurite-{number}") as azurite:
        return run_on(azurite, folder, players, env, number, ramp)


def run_on(
    azurite: Azurite, folder: Path, players: int, env: dict[str, str], number: int, ramp: float
) -> RunResult:
    host_env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DUNGEON_CONFIRM_SECONDS": "300",
        "DUNGEON_MONITOR_INTERVAL_SECONDS": "20",
        "DUNGEON_MONITOR_LIFETIME_MINUTES": "5",
        **env,
    }
    host = HostProcess(host_env, folder / "host.log")
    host.start()
    try:
        assert host.process is not None
        pids = descendants(host.process.pid)  # the workers have started once the port answers
        idle = settled_cpu(pids)
        elapsed, timings, errors = asyncio.run(
            run_players(f"{host.base}/api", players, f"B{number}x{players}", ramp)
        )
        used = tree_cpu(pids)
        both = idle.keys() & used.keys()
        cpu = sum(used[pid] - idle[pid] for pid in both) if host.process.pid in both else None
    finally:
        host.stop()
    return RunResult(players, players - len(errors), elapsed, timings, errors, cpu)


def median_line(results: list[RunResult]) -> str:
    cpus = [r.cpu / r.players for r in results if r.cpu is not None]
    cpu = f", CPU {statistics.median(cpus) * 1000:.0f} ms a game" if cpus else ""
    return (
        f"players {results[0].players}, median of {len(results)} runs: "
        f"{sum(len(r.errors) for r in results)} errors, "
        f"action p50 {statistics.median(r.p50 for r in results) * 1000:.1f} ms "
        f"p99 {statistics.median(r.p99 for r in results) * 1000:.1f} ms, "
        f"dungeon ready p50 {statistics.median(r.ready_p50 for r in results):.1f} s{cpu} "
        f"(goal: p99 < {GOAL_P99 * 1000:.0f} ms, no errors)"
    )


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env takes NAME=VALUE, not {pair!r}")
        env[key] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.players",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--players", type=int, nargs="+", default=[50], metavar="N")
    parser.add_argument("--runs", type=int, default=1, help="runs of each player count")
    parser.add_argument(
        "--ramp",
        type=float,
        default=0,
        metavar="SECONDS",
        help="players arrive evenly over this time (default: all at once)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a host setting"
    )
    args = parser.parse_args()
    env = parse_env(args.env)
    kept: list[int] = []
    with tempfile.TemporaryDirectory() as folder:
        print(f"host settings {env or 'default'}", file=sys.stderr)
        number = 0
        for players in args.players:
            results = []
            for _ in range(args.runs):
                number += 1
                result = one_run(Path(folder), players, env, number, args.ramp)
                print(result.line(), flush=True)
                for error in result.errors[:5]:
                    print(f"  error: {type(error).__name__}: {error}", flush=True)
                results.append(result)
            print(median_line(results), flush=True)
            if (
                all(not r.errors for r in results)
                and statistics.median(r.p99 for r in results) < GOAL_P99
            ):
                kept.append(players)
    if len(args.players) > 1:
        best = max(kept) if kept else "none"
        print(f"largest player count with no errors and action p99 < 250 ms: {best}")


if __name__ == "__main__":
    main()
