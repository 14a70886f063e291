"""`devhost replay`: check code changes against recorded histories before deploying.

    devhost replay history.json --app-dir .     # one history (DurableHarness.history)
    devhost replay --hub --app-dir .            # every unfinished instance of the hub

Exit status: 0 when every history replays as recorded, 1 when the code diverges from one (with
the event and the difference), 2 when the input cannot be checked (not a history, no such
orchestrator, no such hub, storage unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from ..app.app_index import AppLoadError, FunctionIndex, index_app
from ..azurite import expand_development_storage
from ..engine.replay_check import HistoryError, check_history
from ..settings import SettingsError, load_settings
from ..store.azure import AzureStore
from ..taskhub.model import InstanceRecord, RuntimeStatus, is_entity_id

UNFINISHED = {
    RuntimeStatus.Pending,
    RuntimeStatus.Running,
    RuntimeStatus.Suspended,
    RuntimeStatus.ContinuedAsNew,
}


class CannotCheck(Exception):
    """The check cannot run; the message says why (exit status 2)."""


def add_parser(commands: Any) -> None:
    """The `replay` subcommand of `devhost`."""
    replay = commands.add_parser(
        "replay",
        help="replay recorded histories against the current code (0 ok, 1 diverged, 2 bad input)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="a JSON list of history events")
    source.add_argument(
        "--hub",
        action="store_true",
        help="replay every unfinished instance of the task hub in AzureWebJobsStorage",
    )
    replay.add_argument("--app-dir", default=".", help="folder of function_app.py (default: .)")
    replay.add_argument(
        "--name", default=None, help="orchestrator to replay FILE with (default: its own)"
    )
    replay.add_argument(
        "--timeout", type=float, default=30, help="seconds to wait for storage (default: 30)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        app_dir = Path(args.app_dir).resolve()
        settings = load_settings(app_dir)
        index = index_app(app_dir)
        if args.hub:
            connection = expand_development_storage(settings.storage_connection)
            if not connection:
                raise CannotCheck("AzureWebJobsStorage is not set (local.settings.json → Values)")
            return _check_hub(index, connection, settings.hub_name, args.timeout)
        return _check_file(index, Path(args.file), args.name)
    except (CannotCheck, HistoryError, AppLoadError, SettingsError) as err:
        print(f"devhost replay: {err}", file=sys.stderr)
        return 2


def _check_file(index: FunctionIndex, path: Path, name: str | None) -> int:
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CannotCheck(f"{path}: {err.strerror}") from None
    except ValueError as err:
        raise CannotCheck(f"{path}: not valid JSON ({err})") from None
    try:
        result = check_history(history, index, name)
    except HistoryError as err:
        raise CannotCheck(f"{path}: {err}") from None
    print(f"{'ok' if result.ok else 'DIVERGED'}: {path}: {result.message}")
    return 0 if result.ok else 1


def _check_hub(index: FunctionIndex, connection: str, hub: str, timeout: float) -> int:
    try:
        instances = asyncio.run(asyncio.wait_for(_read_hub(connection, hub), timeout))
    except TimeoutError:
        raise CannotCheck(f"storage did not answer within {timeout:g} s") from None
    except ResourceNotFoundError:
        raise CannotCheck(f"no task hub named '{hub}' in this storage account") from None
    diverged = 0
    for record, history in instances:
        if not history:
            print(f"ok: {record.instance_id} ({record.name}): not started yet")
            continue
        try:
            result = check_history(history, index)
        except HistoryError as err:
            print(f"DIVERGED: {record.instance_id} ({record.name}): {err}")
            diverged += 1
            continue
        print(
            f"{'ok' if result.ok else 'DIVERGED'}: {record.instance_id} ({record.name}): "
            f"{result.message}"
        )
        diverged += not result.ok
    print(f"{len(instances)} unfinished instances in hub '{hub}'; {diverged} diverged")
    return 1 if diverged else 0


async def _read_hub(connection: str, hub: str) -> list[tuple[InstanceRecord, list[dict]]]:
    """Unfinished orchestrations and their histories, read beside a running host (no lease)."""
    store = AzureStore(connection, hub, read_only=True)
    await store.open()
    try:
        found = []
        for instance_id in await store.active_instances():  # from the state rows: current
            record = None if is_entity_id(instance_id) else await store.get_instance(instance_id)
            if record is not None and record.runtime_status in UNFINISHED:
                found.append((record, await store.get_history(instance_id)))
        return found
    finally:
        await store.close()
