"""`devhost durable COMMAND`: the twin of Core Tools' `func durable`.

    devhost durable get-instances --runtime-status Running --top 20
    devhost durable raise-event --id ID --event-name Approval --event-data true
    devhost durable get-runtime-status --id ID --url http://localhost:7071

Without --url, when a running host holds the app's task hub, every command goes through that
host (it says so in one line on stderr): the host records its address where it takes the hub,
in the hub's lease row on Azure Storage (any port), or in a record file for a host on the memory
store (`start --store memory`). When no host holds the hub it works on the hub in storage
(AzureWebJobsStorage, hubName), where the next host picks changes up; when the host that holds
it cannot be reached, reads go to the tables and changes are refused, naming that host. With
--url it talks to that running host. Tables by default; --json prints what the
Durable Functions HTTP API answers. Exit status: 0 done, 1 refused by the hub, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from ..app.app_index import AppLoadError, index_app
from ..azurite import expand_development_storage
from ..settings import SettingsError, load_settings
from ..store.azure import HubInUseError
from ..store.base import StorageUnavailableError, storage_deadline
from ..taskhub.model import RuntimeStatus
from .durable_hubs import PAGE, Filters, HttpHub, Hub, HubError, StorageHub
from .running_hosts import memory_host

COMMANDS = {
    "start-new": "start an orchestration (--function-name, --id, --input)",
    "get-instances": "list instances (--runtime-status, --created-after/--created-before, --top)",
    "get-runtime-status": "show an instance's status (--id, --show-input, --show-output)",
    "get-history": "show an instance's history (--id)",
    "raise-event": "send an event (--id, --event-name, --event-data)",
    "terminate": "terminate an instance (--id, --reason)",
    "suspend": "suspend an instance (--id, --reason)",
    "resume": "resume a suspended instance (--id, --reason)",
    "rewind": "rewind a failed instance (--id, --reason)",
    "purge-history": "delete finished instances (--runtime-status, --created-after/-before)",
    "delete-task-hub": "delete every instance of the task hub, running ones too",
}
NEEDS_ID = {"get-runtime-status", "get-history", "raise-event", "terminate", "suspend", "resume",
            "rewind"}  # fmt: skip
PROBE_SECONDS = 2
STORAGE_SECONDS = 30  # how long a command waits for storage that does not answer


class BadInput(Exception):
    """The command line cannot be run; the message says why (exit status 2)."""


def add_parser(commands: Any) -> None:
    """The `durable` subcommand of `devhost`, with Core Tools' option names."""
    durable = commands.add_parser(
        "durable",
        help="manage orchestrations as `func durable` does",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = durable.add_subparsers(dest="durable_command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command = actions.add_parser(name, help=help_text, description=help_text)
        _common(command)
        if name in NEEDS_ID or name == "start-new":
            command.add_argument("--id", required=name != "start-new", help="the instance id")
        if name == "start-new":
            command.add_argument("--function-name", required=True, help="the orchestrator")
            command.add_argument("--input", help="the input: JSON, or @file holding JSON")
        if name == "raise-event":
            command.add_argument("--event-name", required=True)
            command.add_argument("--event-data", help="the event's data: JSON, or @file")
        if name in {"terminate", "suspend", "resume", "rewind"}:
            command.add_argument("--reason", default="", help="why (kept with the instance)")
        if name == "get-runtime-status":
            command.add_argument("--show-input", action="store_true")
            command.add_argument("--show-output", action="store_true")
        if name in {"get-instances", "purge-history"}:
            command.add_argument("--runtime-status", help="comma-separated, e.g. Running,Failed")
            command.add_argument("--created-after", help="ISO 8601 time")
            command.add_argument("--created-before", help="ISO 8601 time")
        if name == "get-instances":
            command.add_argument("--top", type=int, help="at most this many (default: all)")
            command.add_argument("--continuation-token", help="go on from an earlier answer")


def _common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--app-dir", default=".", help="folder of the app (default: .)")
    command.add_argument("--url", help="a running host's address, e.g. http://localhost:7071")
    command.add_argument("--task-hub-name", help="the task hub (default: host.json's hubName)")
    command.add_argument(
        "--connection-string-setting",
        default="AzureWebJobsStorage",
        help="the app setting holding the storage connection (default: AzureWebJobsStorage)",
    )
    command.add_argument("--json", action="store_true", help="print the DF HTTP API's JSON")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except BadInput as err:
        print(f"devhost durable: {err}", file=sys.stderr)
        return 2
    except (HubError, StorageUnavailableError) as err:
        print(f"devhost durable: {err}", file=sys.stderr)
        return 1
    except HubInUseError as err:
        print(
            f"devhost durable: {err}. Pass --url with that host's address to change the hub "
            "through it.",
            file=sys.stderr,
        )
        return 1


async def _run(args: argparse.Namespace) -> int:
    request = _checked(args)
    with storage_deadline(STORAGE_SECONDS):
        hub = await _open(args)
        try:
            await _execute(args, request, hub)
        finally:
            await hub.close()
    return 0


def _checked(args: argparse.Namespace) -> dict[str, Any]:
    """Everything from the command line, checked before any storage is touched."""
    checked: dict[str, Any] = {}
    if getattr(args, "id", None) is not None and not args.id:
        raise BadInput("--id must not be empty")
    if hasattr(args, "input"):
        checked["input"] = _json_argument("--input", args.input)
    if hasattr(args, "event_data"):
        checked["event_data"] = _json_argument("--event-data", args.event_data)
    if hasattr(args, "runtime_status"):
        checked["filters"] = Filters(
            runtime_status=_statuses(args.runtime_status),
            created_after=_time("--created-after", args.created_after),
            created_before=_time("--created-before", args.created_before),
        )
    if getattr(args, "top", None) is not None and args.top < 1:
        raise BadInput("--top must be a positive number")
    return checked


def _json_argument(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    if value.startswith("@"):
        try:
            value = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as err:
            raise BadInput(f"{option}: cannot read {value[1:]}: {err.strerror}") from None
    try:
        json.loads(value)
    except ValueError:
        raise BadInput(f"{option} is not JSON: {value[:100]!r} (a string needs quotes)") from None
    return value


def _statuses(value: str | None) -> list[RuntimeStatus] | None:
    if not value:
        return None
    names = {s.lower(): s for s in RuntimeStatus}
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in wanted if part.lower() not in names]
    if unknown:
        raise BadInput(
            f"unknown --runtime-status {unknown[0]!r}; one of {', '.join(names.values())}"
        )
    return [names[part.lower()] for part in wanted]


def _time(option: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{option} is not an ISO 8601 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _open(args: argparse.Namespace) -> Hub:
    """--url's host; else the running host that holds the hub (found where it recorded its
    address when it took the hub), saying so; else the hub in storage."""
    if args.url:
        return HttpHub(args.url)
    app_dir = Path(args.app_dir).resolve()
    try:
        settings = load_settings(app_dir)
        index = index_app(app_dir)
    except (SettingsError, AppLoadError) as err:
        raise BadInput(str(err)) from None
    hub_name = args.task_hub_name or settings.hub_name
    on_memory = memory_host(app_dir, hub_name)
    if on_memory is not None and await _serves_hub(on_memory, hub_name):
        return _through(on_memory, hub_name)
    connection = expand_development_storage(os.environ.get(args.connection_string_setting, ""))
    if not connection:
        raise BadInput(
            f"{args.connection_string_setting} is not set (local.settings.json → Values); "
            "for a host on the memory store, pass --url"
        )
    try:
        hub = await StorageHub(connection, hub_name, index, str(app_dir)).open()
    except ValueError as err:
        raise BadInput(str(err)) from None
    holder = await hub.reader.lease_holder()
    reachable = holder is not None and holder.live and holder.address
    if reachable and await _serves_hub(holder.address, hub_name):
        await hub.close()
        return _through(holder.address, hub_name)
    # No host holds the hub, or the one that does cannot be reached: reads go to the tables,
    # and a change is refused with who holds the hub when taking its lease fails.
    return hub


def _through(address: str, hub_name: str) -> HttpHub:
    print(f"Through the host at {address}, which holds task hub '{hub_name}'.", file=sys.stderr)
    return HttpHub(address)


async def _serves_hub(origin: str, hub: str) -> bool:
    """Whether a devhost answers at origin for this task hub (on Azure Storage)."""
    timeout = aiohttp.ClientTimeout(total=PROBE_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{origin}/_devhost/api/hub") as response,
        ):
            info = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return isinstance(info, dict) and info.get("hub", "").lower() == hub.lower()


async def _execute(args: argparse.Namespace, request: dict[str, Any], hub: Hub) -> None:
    command = args.durable_command
    if command == "start-new":
        answer = await hub.start_new(args.function_name, args.id, request["input"])
        _print(args, answer, f"Started '{args.function_name}' with id '{answer['id']}'.")
    elif command == "get-instances":
        found, token = await _page_through(
            hub, request["filters"], args.top, args.continuation_token
        )
        _print(args, found, _instances_table(found))
        if token:
            print(f"More instances: --continuation-token {token}", file=sys.stderr)
    elif command == "get-runtime-status":
        status = await hub.status(args.id, args.show_input, args.show_output)
        _print(args, status, _status_lines(status))
    elif command == "get-history":
        history = await hub.history(args.id)
        _print(args, history, _history_table(history))
    elif command == "raise-event":
        await hub.raise_event(args.id, args.event_name, request["event_data"])
        print(f"Raised event '{args.event_name}' to instance '{args.id}'.")
    elif command in {"terminate", "suspend", "resume", "rewind"}:
        await hub.control(args.id, command, args.reason)
        print(f"{command.capitalize()} of instance '{args.id}' accepted.")
    elif command == "purge-history":
        purged = await hub.purge(request["filters"], _purge_progress)
        answer: dict[str, Any] = {"instancesDeleted": purged.deleted}
        text = f"Purged {purged.deleted} instance{'' if purged.deleted == 1 else 's'}."
        if purged.reason:
            answer["Message"] = purged.reason
            text += f" {purged.reason}"
        _print(args, answer, text)
    elif command == "delete-task-hub":
        await hub.delete_hub()
        print("Deleted every instance of the task hub.")


def _purge_progress(done: int, total: int) -> None:
    """A line on stderr for each page of a long purge (one page says nothing)."""
    if total > PAGE:
        print(f"Purging: {done:,} of {total:,} matching instances done ...", file=sys.stderr,
              flush=True)  # fmt: skip


async def _page_through(
    hub: Hub, filters: Filters, top: int | None, token: str | None
) -> tuple[list[dict], str | None]:
    """Up to `top` instances (all without it), a page at a time, and where the next begins."""
    found: list[dict] = []
    while top is None or len(found) < top:
        size = PAGE if top is None else min(PAGE, top - len(found))
        page, token = await hub.instances(filters, size, token)
        found += page
        if not token:
            break
    return found, token


def _print(args: argparse.Namespace, answer: Any, text: str) -> None:
    print(json.dumps(answer, indent=2) if args.json else text)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _instances_table(statuses: list[dict]) -> str:
    rows = [[s["instanceId"], s["name"], s["runtimeStatus"], s["createdTime"],
             s["lastUpdatedTime"]] for s in statuses]  # fmt: skip
    table = _table(["INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED"], rows)
    count = len(statuses)
    return f"{table}\n({count} instance{'' if count == 1 else 's'})"


def _status_lines(status: dict) -> str:
    keys = ["instanceId", "name", "runtimeStatus", "createdTime", "lastUpdatedTime",
            "customStatus", "input", "output"]  # fmt: skip
    return "\n".join(
        f"{key}: {json.dumps(status[key]) if not isinstance(status[key], str) else status[key]}"
        for key in keys
        if key in status and (status[key] is not None or key == "output")
    )


def _history_table(history: list[dict]) -> str:
    rows = []
    for evt in history:
        detail = {k: v for k, v in evt.items() if k not in ("EventType", "Timestamp")}
        rows.append([evt["Timestamp"], evt["EventType"], json.dumps(detail)[:120]])
    return _table(["TIME", "EVENT", "DETAILS"], rows)
