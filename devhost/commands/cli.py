"""`devhost` (or `python -m devhost`): run a function app locally, as `func start` does, and
steer and check its durable work."""

from __future__ import annotations

import argparse
import asyncio
import binascii
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from ..app.app_index import AppLoadError, index_app
from ..azurite import (
    DEFAULT_PORTS,
    Azurite,
    AzuriteError,
    answers,
    connection_string,
    expand_development_storage,
)
from ..clock import Clock
from ..host import DevHost, ListenAddress
from ..http.guard import network_warning
from ..settings import (
    MAX_WORKER_PROCESSES,
    SettingsError,
    load_settings,
    parse_allowed_hosts,
    parse_cors,
)
from ..store.azure import AzureStore, HubInUseError
from ..store.base import StorageRequestError, TaskHubStore
from ..store.memory import MemoryStore
from ..store.table_batch import Account
from . import check_command, durable_command, replay_command, sidecar_command
from .running_hosts import forget_memory_host, record_memory_host

log = logging.getLogger("devhost")


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (0 picks a free one)."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devhost", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="run a function app")
    start.add_argument("--app-dir", default=".", help="folder of function_app.py (default: .)")
    start.add_argument("--port", type=port_number, default=None, help="HTTP port (default: 7071)")
    start.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1); another opens the Durable Functions HTTP API "
        "and the dashboard to the network",
    )
    start.add_argument(
        "--store",
        choices=("memory", "azure"),
        default="azure",
        help="where the task hub lives (default: azure, i.e. AzureWebJobsStorage)",
    )
    start.add_argument(
        "--cors",
        default=None,
        help="comma-separated origins allowed to call the app's functions (never the Durable "
        "Functions HTTP API or the dashboard); '*' allows any",
    )
    start.add_argument(
        "--cors-credentials", action="store_true", help="allow credentialed cross-origin requests"
    )
    start.add_argument(
        "--allowed-hosts",
        default=None,
        metavar="NAMES",
        help="comma-separated Host names to answer besides localhost, loopback addresses and "
        "--host (a dev container's or a tunnel's): name, name:port, .domain, or * for any "
        "(default: Host.AllowedHosts, DEVHOST_ALLOWED_HOSTS)",
    )
    start.add_argument("--web-dir", default=None, help="serve this folder's files at /")
    start.add_argument(
        "--functions",
        nargs="+",
        metavar="NAME",
        default=None,
        help="run only these functions, as `func start --functions`",
    )
    start.add_argument(
        "--in-process",
        action="store_true",
        help="run functions in the host's own process (for a debugger), not in worker processes "
        "(default: FUNCTIONS_WORKER_PROCESS_COUNT, else one per core, at most 10)",
    )
    start.add_argument(
        "--grpc-port",
        type=port_number,
        default=None,
        help="also serve Durable Task's gRPC protocol here, for durabletask workers and clients "
        "(same engine and task hub)",
    )
    start.add_argument("--verbose", action="store_true", help="log debug detail")
    up = commands.add_parser(
        "up", parents=[], help="start Azurite if needed, then the app with web/ at / (make run)"
    )
    for action in start._actions[1:]:
        up._add_action(action)
    replay_command.add_parser(commands)
    check_command.add_parser(commands)
    durable_command.add_parser(commands)
    sidecar_command.add_parser(commands, port_number)
    return parser


def make_store(kind: str, settings) -> TaskHubStore:
    if kind == "memory":
        return MemoryStore()
    connection = settings.storage_connection
    if not connection:
        raise SettingsError(
            "AzureWebJobsStorage is not set: put a connection string (or "
            "'UseDevelopmentStorage=true' for Azurite) in local.settings.json, "
            "or use --store memory"
        )
    connection = expand_development_storage(connection)
    try:
        Account.from_connection_string(connection)
    except (KeyError, ValueError, binascii.Error):
        raise SettingsError(
            "AzureWebJobsStorage is not a storage connection string (it needs AccountName and "
            "AccountKey, or 'UseDevelopmentStorage=true' for Azurite)"
        ) from None
    return AzureStore(connection, settings.hub_name)


STOP_TIMEOUT = 10  # seconds a clean stop may take before the process just ends
# Called before a second signal ends the process at once (`up` lets its Azurite save and stop).
before_hard_exit: list[Callable[[], None]] = []


async def serve(host: DevHost) -> None:
    """Run until Ctrl-C, SIGTERM or SIGHUP (a closed terminal), which also interrupt a start
    still waiting for storage.

    A second signal ends the process at once.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            print("Stopping now.", flush=True)
            for hook in before_hard_exit:
                hook()
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal)
    if isinstance(host.engine.store, AzureStore):
        host.engine.store.on_unreachable = _storage_hint
        host.engine.store.on_lease_lost = lambda reason: stop.set()
    starting = asyncio.create_task(host.start())
    stopping = asyncio.create_task(stop.wait())
    record: Path | None = None
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            if isinstance(host.engine.store, MemoryStore):  # the durable CLI finds us by it
                settings = host.settings
                record = record_memory_host(settings.app_dir, settings.hub_name, host.base_url)
            print("\n".join(host.describe()), flush=True)
            print("\nHost started. Press Ctrl+C to stop.", flush=True)
            await stopping
    finally:
        starting.cancel()
        stopping.cancel()
        if record is not None:
            forget_memory_host(record)
        print("Stopping...", flush=True)
        try:
            await asyncio.wait_for(host.stop(), STOP_TIMEOUT)
        except TimeoutError:
            print(f"devhost: the host did not stop within {STOP_TIMEOUT}s", file=sys.stderr)


def _storage_hint(endpoint: str, error: BaseException) -> None:
    """What a user can do when the task hub's storage does not answer."""
    print(
        f"devhost: waiting for storage at {endpoint} ({type(error).__name__}). "
        "Is Azurite running? `devhost up` starts it for you (as `make run` does); "
        "check AzureWebJobsStorage in local.settings.json, or use `--store memory`. "
        "Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )


def table_endpoint(connection: str) -> str:
    """Where a connection string's tables are, for a person to read (no key in it)."""
    parts = dict(p.split("=", 1) for p in connection.split(";") if "=" in p)
    return parts.get("TableEndpoint") or f"the account {parts.get('AccountName', '?')}"


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
        connection = expand_development_storage(settings.storage_connection)
        running = [port for port in DEFAULT_PORTS if answers("127.0.0.1", port)]
        if connection == connection_string() and not running:
            # Until the host listens for signals, SIGTERM and SIGHUP interrupt as Ctrl-C does,
            # so the `finally` below (or a failed start) stops the Azurite started here.
            for sig in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.default_int_handler)
            print("Starting Azurite (data in .azurite/) ...", flush=True)
            azurite = Azurite(app_dir / ".azurite", ports=DEFAULT_PORTS).start()
            before_hard_exit.append(azurite.interrupt)
        elif connection == connection_string() and len(running) < len(DEFAULT_PORTS):
            raise AzuriteError(
                f"Only part of Azurite answers (ports {running} of {list(DEFAULT_PORTS)}): stop "
                "what is left of an earlier run (`pkill -INT -f azurite-`), then start again."
            )
        else:
            # Say so: an Azurite left over from a killed host keeps its own data and options.
            print(f"Using the storage already running at {table_endpoint(connection)}", flush=True)
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
    if args.allowed_hosts is not None:
        settings.allowed_hosts = parse_allowed_hosts(args.allowed_hosts, "--allowed-hosts")
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
        workers=worker_count(args.in_process, settings.worker_processes),
        grpc_port=args.grpc_port,
    )
    warning = network_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    asyncio.run(serve(host))
    return 0


def worker_count(in_process: bool, configured: int | None) -> int:
    """Worker processes for `start`: none with --in-process; else the setting, else the cores."""
    if in_process:
        return 0
    return configured or min(os.cpu_count() or 1, MAX_WORKER_PROCESSES)


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
        if args.command == "replay":
            return replay_command.run(args)
        if args.command == "check":
            return check_command.run(args)
        if args.command == "durable":
            return durable_command.run(args)
        if args.command == "sidecar":
            return sidecar_command.run(args)
    except (AppLoadError, SettingsError, HubInUseError, AzuriteError) as err:
        print(f"devhost: cannot start: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the host listened for signals (it stops quietly after)
        print("Stopped.", flush=True)
        return 130
    except StorageRequestError as err:
        print(
            f"devhost: cannot start: {err}. Is AzureWebJobsStorage an Azure Storage account "
            "(or Azurite)? `--store memory` needs none.",
            file=sys.stderr,
        )
        return 2
    except OSError as err:
        print(f"devhost: cannot start: {err}", file=sys.stderr)
        return 2
    return 1
