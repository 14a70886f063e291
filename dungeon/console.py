"""The console monitor: prints the game's narration as it arrives on the `console` queue.

    python -m dungeon.console [--user NAME]

Storage is the account of AzureWebJobsStorage (from the environment, or local.settings.json
in the current folder). Ctrl-C exits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from azure.core.exceptions import ResourceExistsError, ServiceRequestError, ServiceResponseError
from azure.storage.queue import QueueClient

from .narration import QUEUE

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


def watch(queue: QueueClient, user: str | None, colour: bool) -> None:
    idle = 0.05
    while True:
        try:
            messages = list(queue.receive_messages(max_messages=32, visibility_timeout=30))
        except (ServiceRequestError, ServiceResponseError) as err:
            print(f"Storage is unreachable ({type(err).__name__}); retrying in 2 s", flush=True)
            time.sleep(2)
            continue
        for message in messages:
            body = decode(message.content)
            if user is not None and body.get("user") != user:
                continue
            print(format_line(body, colour), flush=True)
            queue.delete_message(message)
        idle = 0.05 if messages else min(idle * 2, 1.0)
        if not messages:
            time.sleep(idle)  # a queue has no push: back off while it is empty


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dungeon.console",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--user", help="show only this player's lines")
    args = parser.parse_args(argv)
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    queue = QueueClient.from_connection_string(connection_string(), QUEUE)
    print(
        f"Watching the '{QUEUE}' queue"
        + (f" for {args.user}" if args.user else "")
        + ". Ctrl-C to stop.",
        flush=True,
    )
    while True:
        try:
            queue.create_queue()
            break
        except ResourceExistsError:
            break
        except (ServiceRequestError, ServiceResponseError) as err:
            print(f"Storage is unreachable ({type(err).__name__}); retrying in 2 s", flush=True)
            time.sleep(2)
    try:
        watch(queue, args.user, colour)
    except KeyboardInterrupt:
        print("\nStopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
