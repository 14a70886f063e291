"""`devhost sidecar`: Durable Task's gRPC service (`TaskHubSidecarService`) on devhost's engine,
with no function app, for `durabletask` clients and workers.

    devhost sidecar --port 4001 --store memory
    devhost sidecar --port 4001 --store azure      # AzureWebJobsStorage, else Azurite's default

A client or worker connects to `localhost:4001` over plain gRPC. The plain SDK sends no task hub
name and gets the default hub; `durabletask-azuremanaged` names its hub in the `taskhub`
metadata, and each hub opens on first use with its own instances.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from ..azurite import expand_development_storage
from ..grpc.hubs import DEFAULT_HUB, HubRefused
from ..grpc.sidecar import Sidecar
from ..store.azure import AzureStore
from ..store.base import TaskHubStore
from ..store.memory import MemoryStore
from ..store.table_batch import Account

DEFAULT_PORT = 4001
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
STOP_TIMEOUT = 10


class SidecarError(Exception):
    """The sidecar cannot start; the message says what to change."""


def add_parser(commands: Any, port_number: Callable[[str], int]) -> None:
    """The `sidecar` subcommand of `devhost` (`port_number`: the main parser's port type)."""
    sidecar = commands.add_parser(
        "sidecar",
        help="serve Durable Task's gRPC protocol for durabletask apps (no function app)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sidecar.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="gRPC port (default: 4001)"
    )
    sidecar.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    sidecar.add_argument(
        "--store",
        choices=("memory", "azure"),
        default="memory",
        help="where task hubs live (default: memory; azure uses AzureWebJobsStorage)",
    )
    sidecar.add_argument(
        "--default-hub",
        default=DEFAULT_HUB,
        help=f"the hub of calls that name none (default: {DEFAULT_HUB})",
    )


def store_factory(kind: str, environ: dict[str, str]) -> Any:
    """How each hub's store is made: memory, or Azure Storage from AzureWebJobsStorage (Azurite's
    well-known account when unset)."""
    if kind == "memory":
        return lambda _hub: MemoryStore()
    connection = expand_development_storage(
        environ.get("AzureWebJobsStorage") or DEVELOPMENT_STORAGE
    )
    try:
        Account.from_connection_string(connection)
    except (KeyError, ValueError, binascii.Error):
        raise SidecarError(
            "AzureWebJobsStorage is not a storage connection string (it needs AccountName and "
            "AccountKey, or 'UseDevelopmentStorage=true' for Azurite)"
        ) from None

    def make_store(hub: str) -> TaskHubStore:
        store = AzureStore(connection, hub)
        store.on_unreachable = _storage_hint
        return store

    return make_store


def _storage_hint(endpoint: str, error: BaseException) -> None:
    print(
        f"devhost: waiting for storage at {endpoint} ({type(error).__name__}). Is Azurite "
        "running (`npx azurite --skipApiVersionCheck`)? Or set AzureWebJobsStorage, or use "
        "`--store memory`. Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    try:
        make_store = store_factory(args.store, dict(os.environ))
        sidecar = Sidecar(make_store, host=args.host, port=args.port, default_hub=args.default_hub)
        asyncio.run(_serve(sidecar, args.store))
    except (SidecarError, HubRefused) as err:
        print(f"devhost: cannot start the sidecar: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"devhost: cannot start the sidecar: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
        return 130
    return 0


async def _serve(sidecar: Sidecar, store: str) -> None:
    """Until Ctrl-C, SIGTERM or SIGHUP; a second signal ends the process at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal)
    starting = asyncio.create_task(sidecar.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            print(
                f"Durable Task sidecar on {sidecar.address} (store: {store}, default hub: "
                f"{sidecar.hubs.default}). Press Ctrl+C to stop.",
                flush=True,
            )
            await stopping
    finally:
        starting.cancel()
        stopping.cancel()
        print("Stopping...", flush=True)
        try:
            await asyncio.wait_for(sidecar.stop(), STOP_TIMEOUT)
        except TimeoutError:
            print(f"devhost: the sidecar did not stop within {STOP_TIMEOUT}s", file=sys.stderr)
