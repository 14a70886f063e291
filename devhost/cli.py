"""`python -m devhost start`: run a function app locally, as `func start` does."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import sys
from pathlib import Path

from .app_index import AppLoadError, index_app
from .azurite import (
    DEFAULT_PORTS,
    Azurite,
    AzuriteError,
    answers,
    connection_string,
    expand_development_storage,
)
from .clock import Clock
from .host import DevHost, ListenAddress
from .settings import SettingsError, load_settings, parse_cors
from .store.azure import HubInUseError
from .store.base import TaskHubStore

log = logging.getLogger("devhost")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="run a function app")
    start.add_argument("--app-dir", default=".", help="folder of function_app.py (default: .)")
    start.add_argument("--port", type=int, default=None, help="HTTP port (default: 7071)")
    start.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    start.add_argument(
        "--store",
        choices=("memory", "azure"),
        default="azure",
        help="where the task hub lives (default: azure, i.e. AzureWebJobsStorage)",
    )
    start.add_argument(
        "--cors", default=None, help="comma-separated allowed origins; '*' allows any"
    )
    start.add_argument(
        "--cors-credentials", action="store_true", help="allow credentialed cross-origin requests"
    )
    start.add_argument("--web-dir", default=None, help="serve this folder's files at /")
    start.add_argument(
        "--functions",
        nargs="+",
        metavar="NAME",
        default=None,
        help="run only these functions, as `func start --functions`",
    )
    start.add_argument("--verbose", action="store_true", help="log debug detail")
    up = commands.add_parser(
        "up", parents=[], help="start Azurite if needed, then the app with web/ at / (make run)"
    )
    for action in start._actions[1:]:
        up._add_action(action)
    return parser


def make_store(kind: str, settings) -> TaskHubStore:
    if kind == "memory":
        from .store.memory import MemoryStore

        return MemoryStore()
    from .store.azure import AzureStore

    connection = settings.storage_connection
    if not connection:
        raise SettingsError(
            "AzureWebJobsStorage is not set: put a connection string (or "
            "'UseDevelopmentStorage=true' for Azurite) in local.settings.json, "
            "or use --store memory"
        )
    return AzureStore(expand_development_storage(connection), settings.hub_name)


async def serve(host: DevHost) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await host.start()
    print("\n".join(host.describe()), flush=True)
    print("\nHost started. Press Ctrl+C to stop.", flush=True)
    try:
        await stop.wait()
    finally:
        print("Stopping...", flush=True)
        await host.stop()


def up(args: argparse.Namespace) -> int:
    """Everything `make run` needs: settings file, Azurite unless one answers, the host."""
    app_dir = Path(args.app_dir).resolve()
    settings_file = app_dir / "local.settings.json"
    example = app_dir / "local.settings.json.example"
    if not settings_file.exists() and example.exists():
        shutil.copyfile(example, settings_file)
        print(f"Created {settings_file.name} from {example.name}", flush=True)
    if args.web_dir is None and (app_dir / "web").is_dir():
        args.web_dir = str(app_dir / "web")
    azurite = None
    if args.store == "azure":
        settings = load_settings(app_dir)
        if expand_development_storage(
            settings.storage_connection
        ) == connection_string() and not answers("127.0.0.1", DEFAULT_PORTS[2]):
            print("Starting Azurite (data in .azurite/) ...", flush=True)
            azurite = Azurite(app_dir / ".azurite", ports=DEFAULT_PORTS).start()
    try:
        return start(args)
    finally:
        if azurite is not None:
            print("Stopping Azurite", flush=True)
            azurite.stop()


def start(args: argparse.Namespace) -> int:
    app_dir = Path(args.app_dir).resolve()
    settings = load_settings(app_dir)
    if args.port is not None:
        settings.port = args.port
    if args.cors is not None:
        settings.cors_origins = parse_cors(args.cors)
    if args.cors_credentials:
        settings.cors_credentials = True
    index = index_app(app_dir)
    if args.functions:
        index = index.select(args.functions)
    store = make_store(args.store, settings)
    web_dir = Path(args.web_dir).resolve() if args.web_dir else None
    host = DevHost(
        settings,
        store,
        Clock(),
        index=index,
        listen=ListenAddress(args.host, settings.port),
        static_dir=web_dir,
    )
    asyncio.run(serve(host))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        if args.command == "start":
            return start(args)
        if args.command == "up":
            return up(args)
    except (AppLoadError, SettingsError, HubInUseError, AzuriteError) as err:
        print(f"devhost: cannot start: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"devhost: cannot start: {err}", file=sys.stderr)
        return 2
    return 1
