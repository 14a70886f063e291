"""Chaos run: whole games on the Azure store while the host is SIGKILLed and Azurite restarted.

    python -m bench.chaos                      # 12 players, 20 kills, 3 Azurite restarts
    python -m bench.chaos --players 4 --kills 4 --azurite-restarts 1

Starts its own Azurite (loopback, a temporary folder) and `python -m devhost start` on the game.
Players play as people do, through the HTTP API, retrying a request the host dropped; one in
four never confirms and must die when the window closes. Meanwhile the host is killed (SIGKILL)
at random moments and started again, and Azurite is stopped and started (gracefully: Azurite
itself loses recent writes on a SIGKILL). Then, once the hub has settled, it prints and fails
(exit 1) on any non-zero count:

- acknowledged NewUsers whose game did not end won or dead;
- narration lines written twice in a player's story;
- Stats counters that differ from the truth counted from the tables and the task hub;
- instances still running past their deadline;
- requests that never answered.

Players honour a 503's Retry-After, and retry a request answered with another 5xx (the game's
own functions answer 500 while Azurite restarts); those are counted, for the reader.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from azure.data.tables import TableServiceClient

from bench.hosting import HostProcess
from devhost.azurite import Azurite
from devhost.store.azure_listing import LISTING_PARTITION

# Seconds a request may take before it counts as "never answered": far past the host's own
# request deadline (10 s, then 503), so a busy machine slows requests without failing the run.
REQUEST_TIMEOUT = 120
# Seconds a wait goes on with nothing changing (no answer, game state or instance moving)
# before it gives up: waits follow progress, so a slow machine takes longer, not fails.
QUIET_SECONDS = 120
CONFIRM_SECONDS = 20
AZURITE_STOP_SECONDS = 120
MONITOR_INTERVAL_SECONDS = 2
MONITOR_LIFETIME_MINUTES = 1
DROPPED = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


@dataclass
class ChaosReport:
    """What went wrong; a clean run is all zeros."""

    unfinished_games: list[str] = field(default_factory=list)
    repeated_lines: list[str] = field(default_factory=list)
    stats_differences: list[str] = field(default_factory=list)
    stuck_instances: list[str] = field(default_factory=list)
    unanswered_requests: int = 0
    server_errors: list[str] = field(default_factory=list)
    player_notes: list[str] = field(default_factory=list)
    kills: int = 0
    azurite_restarts: int = 0
    won: int = 0
    dead: int = 0

    @property
    def clean(self) -> bool:
        return not (
            self.unfinished_games
            or self.repeated_lines
            or self.stats_differences
            or self.stuck_instances
            or self.unanswered_requests
        )

    def lines(self) -> list[str]:
        details = (
            self.unfinished_games
            + self.repeated_lines
            + self.stats_differences
            + self.stuck_instances
        )
        return [
            f"kills {self.kills}, Azurite restarts {self.azurite_restarts}, "
            f"games won {self.won}, players dead {self.dead}",
            f"acknowledged NewUsers not ended won or dead: {len(self.unfinished_games)}",
            f"narration lines written twice: {len(self.repeated_lines)}",
            f"Stats counters that differ from the truth: {len(self.stats_differences)}",
            f"instances stuck past their deadlines: {len(self.stuck_instances)}",
            f"requests that never answered: {self.unanswered_requests}",
            f"requests answered with a server error, then retried: {len(self.server_errors)} "
            "(the game's functions answer 500 while their own storage is away)",
            *(f"  {detail}" for detail in details[:40]),
            *(f"  (player) {note}" for note in self.player_notes[:10]),
        ]


class Api:
    """The game's HTTP API as a player uses it: a dropped request is sent again."""

    def __init__(self, session: aiohttp.ClientSession, base: str, report: ChaosReport) -> None:
        self.session = session
        self.base = base
        self.report = report

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        """The answer to the request; a dropped one is retried, as a player would."""
        pause = 0.1
        while True:
            try:
                async with self.session.request(
                    method,
                    self.base + path,
                    json=body,
                    timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                ) as response:
                    answer = await response.json(content_type=None)
                    if response.status == 503:  # storage is away: come back as told
                        await asyncio.sleep(float(response.headers.get("Retry-After", 1)))
                        continue
                    if response.status >= 500:  # the app's own storage is away: try again
                        self.report.server_errors.append(f"{method} {path}: {response.status}")
                        await asyncio.sleep(1)
                        continue
                    return response.status, answer
            except TimeoutError:
                self.report.unanswered_requests += 1
            except DROPPED:
                pass
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def wait_for(self, check, what: str, progress=None) -> object:
        """Until `check()` answers something true. It gives up only after QUIET_SECONDS in
        which `progress()` (the game's state, say) answered nothing new."""
        seen: object = None
        quiet_since = time.monotonic()
        while True:
            result = await check()
            if result:
                return result
            marker = await progress() if progress is not None else None
            if marker != seen:
                seen, quiet_since = marker, time.monotonic()
            if time.monotonic() - quiet_since > QUIET_SECONDS:
                raise TimeoutError(f"timed out waiting for {what} (nothing changed meanwhile)")
            await asyncio.sleep(0.3)


class WindowClosed(Exception):
    """The game closed the confirmation window, or the player died: the rules decided."""


class Player:
    def __init__(self, api: Api, name: str, confirms: bool) -> None:
        self.api = api
        self.name = name
        self.confirms = confirms
        self.acknowledged = False

    async def play(self) -> None:
        code, body = await self.api.call("POST", "/api/NewUser", {"name": self.name})
        # A 409 after a dropped first try means the first one was taken.
        self.acknowledged = code == 202 or code == 409
        if not self.acknowledged:
            raise RuntimeError(f"NewUser {code}: {body}")
        if self.confirms:
            await self.confirm()
            await self.win()

    async def confirm(self) -> None:
        """Until the game takes the confirmation or says the window has closed: the window is
        the game's timer, so a slow machine decides it, not a clock of the player's."""

        async def confirmed() -> bool:
            code, body = await self.api.call("POST", "/api/ConfirmUser", {"name": self.name})
            if code == 409 and ("closed" in str(body) or "dead" in str(body)):
                raise WindowClosed(str(body))
            return code == 202 or (code == 409 and "already confirmed" in str(body))

        await self.api.wait_for(confirmed, f"{self.name}'s confirmation", self.state)

    async def state(self) -> dict | None:
        code, body = await self.api.call("GET", f"/api/GameStatus/{self.name}")
        return body if code == 200 and isinstance(body, dict) else None

    async def win(self) -> None:
        async def ready() -> dict | None:
            state = await self.state()
            if state and not state["user"]["isAlive"]:
                raise WindowClosed(f"{self.name} died before the dungeon was ready")
            arranged = state and state["monster"]["inventoryItems"] and state["user"]["currentRoom"]
            return state if arranged else None

        state = await self.api.wait_for(ready, f"{self.name}'s dungeon", self.state)
        weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
        treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
        monster = state["monster"]["name"]
        await self.act({"action": "get", "target": weapon}, lambda s: _holds(s, weapon))
        await self.act(
            {"action": "kill", "target": monster, "with": weapon},
            lambda s: not s["monster"]["isAlive"],
        )
        await self.act({"action": "get", "target": treasure}, lambda s: _holds(s, treasure))

    async def act(self, action: dict, done) -> None:
        """An action, checked against the game's state: a retried one may find it done."""
        code, body = await self.api.call("POST", "/api/Action", {"name": self.name, **action})
        if code == 200:
            return
        state = await self.state()
        if not (state and done(state)):
            raise RuntimeError(f"{self.name}: {action['action']} answered {code}: {body}")


def _holds(state: dict, item: str) -> bool:
    held = (state["user"].get("inventoryItems") or "").lower().split(",")
    return item.lower() in [h.strip() for h in held]


async def chaos(
    host: HostProcess, storage: Azurite, kills: int, restarts: int, rng: random.Random
) -> tuple[int, int]:
    """Kill the host at random moments, `kills` times, restarting Azurite before some kills."""
    restart_at = set(rng.sample(range(kills), min(restarts, kills)))
    report_kills = report_restarts = 0
    for number in range(kills):
        await asyncio.sleep(rng.uniform(0.3, 3.0))
        if number in restart_at:
            # Gracefully, however long a busy machine takes: a stop past its timeout is a
            # SIGKILL, and Azurite killed loses its recent writes (a table, say).
            await asyncio.to_thread(storage.stop, AZURITE_STOP_SECONDS)
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await asyncio.to_thread(storage.start)
            report_restarts += 1
        await asyncio.to_thread(host.kill)
        await asyncio.to_thread(host.start)
        report_kills += 1
    return report_kills, report_restarts


async def settle(api: Api, quiet_seconds: float) -> list[str]:
    """Until no instance is live, or until none of the live ones has moved (a new status or
    last update) for `quiet_seconds`; the ids still live then."""
    seen: object = None
    quiet_since = time.monotonic()
    while True:
        code, body = await api.call(
            "GET",
            "/runtime/webhooks/durabletask/instances?runtimeStatus=Pending,Running,Suspended",
        )
        live = [i["instanceId"] for i in body] if code == 200 else ["(no answer)"]
        marker = (
            sorted((i["instanceId"], i["lastUpdatedTime"]) for i in body) if code == 200 else None
        )
        if marker != seen:
            seen, quiet_since = marker, time.monotonic()
        if not live or time.monotonic() - quiet_since > quiet_seconds:
            return [f"still {i}" for i in live]
        await asyncio.sleep(1)


async def check(api: Api, connection: str, players: list[Player], report: ChaosReport) -> None:
    acknowledged = [p for p in players if p.acknowledged]
    for player in acknowledged:
        state = await player.state()
        code, monitor = await api.call("GET", f"/api/CheckStatus/{player.name}/GameMonitorWorkflow")
        won = code == 200 and monitor["status"] == "Completed"
        dead = bool(state) and not state["user"]["isAlive"]
        report.won += won
        report.dead += dead
        if not (won or dead):
            report.unfinished_games.append(f"{player.name} ended neither won nor dead")
        code, log = await api.call("GET", f"/api/GameLog/{player.name}")
        lines = Counter(line["text"] for line in log) if code == 200 else Counter()
        report.repeated_lines += [
            f"{player.name}: {count}x {text!r}" for text, count in lines.items() if count > 1
        ]
    _, stats = await api.call("GET", "/api/Stats")
    truth = await asyncio.to_thread(_truth, connection)
    truth["winners"] = report.won
    report.stats_differences += [
        f"Stats {key} is {stats.get(key)}, the truth is {value}"
        for key, value in truth.items()
        if stats.get(key) != value
    ]


def _truth(connection: str) -> dict[str, int]:
    """Users created, confirmed and dead, counted from the User table and the task hub."""
    service = TableServiceClient.from_connection_string(connection)
    users = list(service.get_table_client("User").list_entities())
    hub = [t.name for t in service.list_tables() if t.name.endswith("Instances")]
    confirmed = 0
    for table in hub:
        confirmed += sum(
            1
            for row in service.get_table_client(table).query_entities(
                "PartitionKey eq @listing and RowKey ge 'RunUserSequentialWorkflow:' "
                "and RowKey lt 'RunUserSequentialWorkflow;'",
                parameters={"listing": LISTING_PARTITION},
            )
        )
    return {
        "created": len(users),
        "confirmed": confirmed,
        "dead": sum(1 for u in users if not u.get("IsAlive", True)),
    }


async def run(players: int, kills: int, restarts: int, seed: int, folder: Path) -> ChaosReport:
    rng = random.Random(seed)
    report = ChaosReport()
    with Azurite(folder / "azurite") as storage:
        env = {
            "AzureWebJobsStorage": storage.connection_string,
            "DUNGEON_CONFIRM_SECONDS": str(CONFIRM_SECONDS),
            "DUNGEON_MONITOR_INTERVAL_SECONDS": str(MONITOR_INTERVAL_SECONDS),
            "DUNGEON_MONITOR_LIFETIME_MINUTES": str(MONITOR_LIFETIME_MINUTES),
        }
        host = HostProcess(env, folder / "host.log")
        host.start()
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(session, host.base, report)
                cast = [
                    Player(api, f"Chaos{seed}x{i}", confirms=i % 4 != 3) for i in range(players)
                ]
                storm = asyncio.create_task(chaos(host, storage, kills, restarts, rng))
                outcomes = await asyncio.gather(*(p.play() for p in cast), return_exceptions=True)
                report.kills, report.azurite_restarts = await storm
                # A player the storm kept from confirming in time dies, as the rules say; what
                # counts is how each game ended, checked below. These are for the reader.
                report.player_notes += [
                    f"{p.name}: {type(o).__name__}: {o}"
                    for p, o in zip(cast, outcomes, strict=True)
                    if isinstance(o, Exception)
                ]
                # The longest a live instance waits unmoved is a timer of the game's.
                quiet = max(MONITOR_INTERVAL_SECONDS, CONFIRM_SECONDS) + QUIET_SECONDS
                report.stuck_instances += await settle(api, quiet)
                await check(api, storage.connection_string, cast, report)
        finally:
            host.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--players", type=int, default=12)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--azurite-restarts", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        report = asyncio.run(
            run(args.players, args.kills, args.azurite_restarts, args.seed, Path(folder))
        )
    print("\n".join(report.lines()))
    print(f"chaos run took {time.monotonic() - started:.0f} s")
    sys.exit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
