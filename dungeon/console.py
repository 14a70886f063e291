"""The console monitor: prints the game's narration as it happens.

    python -m dungeon.console               every player's lines, from the `console` queue
    python -m dungeon.console --user NAME   one player's story, from the Log table

The plain console is the queue's one reader: it takes each message once. `--user` reads the
player's Log rows instead (the whole story so far, then each new line), so any number of them
can run beside the plain console without taking anyone's lines.

Storage is the account of AzureWebJobsStorage (from the environment, or local.settings.json
in the current folder). Ctrl-C exits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from azure.core.exceptions import (
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from .names import InvalidNameError, player_key, validate_name
from .narration import QUEUE
from .repository import LOG

UNREACHABLE = (ServiceRequestError, ServiceResponseError)
# A line is stored a moment after the time it carries, so a later-timed line can be stored
# first: each read looks back this far behind the newest line already printed.
LOOK_BACK = timedelta(seconds=60)

COLOURS = ("\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[91m")
RESET = "\033[0m"


def connection_string() -> str:
    value = os.environ.get("AzureWebJobsStorage")
    if value:
        return value
    settings = Path("local.settings.json")
    if settings.exists():
        value = json.loads(settings.read_text()).get("Values", {}).get("AzureWebJobsStorage")
        if value:
            return value
    raise SystemExit("AzureWebJobsStorage is not set (nor in ./local.settings.json).")


def format_line(body: dict, colour: bool) -> str:
    moment = str(body.get("time", ""))[11:19]
    user = str(body.get("user", "?"))
    text = str(body.get("text", ""))
    if colour:
        tint = COLOURS[sum(map(ord, user)) % len(COLOURS)]
        return f"\033[2m{moment}{RESET} {tint}{user:<12}{RESET} {text}"
    return f"{moment} {user:<12} {text}"


def decode(content: str) -> dict:
    try:
        body = json.loads(content)
    except ValueError:
        return {"text": content}  # the original sample wrote bare strings
    return body if isinstance(body, dict) else {"text": str(body)}


def backing_off(read: Callable[[], int]) -> None:
    """Call `read` forever; neither a queue nor a table pushes, so wait longer while idle."""
    idle = 0.05
    while True:
        try:
            found = read()
        except UNREACHABLE as err:
            print(f"Storage is unreachable ({type(err).__name__}); retrying in 2 s", flush=True)
            time.sleep(2)
            continue
        idle = 0.05 if found else min(idle * 2, 1.0)
        if not found:
            time.sleep(idle)


def watch(queue: QueueClient, colour: bool) -> None:
    """Print and delete every message of the queue, as they arrive."""

    def read() -> int:
        messages = list(queue.receive_messages(max_messages=32, visibility_timeout=30))
        for message in messages:
            print(format_line(decode(message.content), colour), flush=True)
            queue.delete_message(message)
        return len(messages)

    backing_off(read)


class StoryFollower:
    """The new Log rows of one player, in order, each once."""

    def __init__(self, table: TableClient, user: str) -> None:
        self.table = table
        self.key = player_key(user)
        self.since = ""
        self.seen: set[str] = set()

    def new_rows(self) -> list[dict]:
        try:
            rows = list(
                self.table.query_entities(
                    "PartitionKey eq @pk and RowKey ge @since",
                    parameters={"pk": self.key, "since": self.since},
                )
            )
        except ResourceNotFoundError:  # no game has been played on this account yet
            return []
        fresh = sorted((r for r in rows if r["RowKey"] not in self.seen), key=lambda r: r["RowKey"])
        if fresh:
            self.seen.update(r["RowKey"] for r in fresh)
            self.since = _earlier(max(self.seen), LOOK_BACK)
            self.seen = {key for key in self.seen if key >= self.since}
        return fresh


def _earlier(row_key: str, delta: timedelta) -> str:
    """A RowKey prefix `delta` before the time that starts `row_key`."""
    moment = row_key.split("|", 1)[0]
    try:
        parsed = datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return ""
    return (parsed - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def follow(table: TableClient, user: str, colour: bool) -> None:
    """Print the player's story so far, then each new line."""
    follower = StoryFollower(table, user)

    def read() -> int:
        rows = follower.new_rows()
        for row in rows:
            body = {"time": row.get("Time"), "user": row.get("User", user), "text": row.get("Text")}
            print(format_line(body, colour), flush=True)
        return len(rows)

    backing_off(read)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dungeon.console",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--user", help="follow this player's story (from the Log table)")
    args = parser.parse_args(argv)
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    try:
        if args.user is not None:
            try:
                user = validate_name(args.user)
            except InvalidNameError as err:
                parser.error(str(err))
            table = TableClient.from_connection_string(connection_string(), LOG)
            print(f"Following the story of {user}. Ctrl-C to stop.", flush=True)
            follow(table, user, colour)
        else:
            queue = QueueClient.from_connection_string(connection_string(), QUEUE)
            print(f"Watching the '{QUEUE}' queue. Ctrl-C to stop.", flush=True)
            create_queue(queue)
            watch(queue, colour)
    except KeyboardInterrupt:
        print("\nStopped.", flush=True)
    return 0


def create_queue(queue: QueueClient) -> None:
    while True:
        try:
            queue.create_queue()
            return
        except ResourceExistsError:
            return
        except UNREACHABLE as err:
            print(f"Storage is unreachable ({type(err).__name__}); retrying in 2 s", flush=True)
            time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
