"""Starting and stopping Azurite (npm package `azurite`) for `make run`, tests and benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEFAULT_PORTS = (10000, 10001, 10002)
REPO_ROOT = Path(__file__).resolve().parent.parent


class AzuriteError(Exception):
    """Azurite cannot be found or did not start; the message says what to do."""


def connection_string(host: str = "127.0.0.1", ports: tuple[int, int, int] = DEFAULT_PORTS) -> str:
    blob, queue, table = ports
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{ACCOUNT};"
    )


def expand_development_storage(connection: str) -> str:
    """`UseDevelopmentStorage=true` names Azurite on its default ports."""
    if connection.replace(" ", "").lower().startswith("usedevelopmentstorage=true"):
        return connection_string()
    return connection


def client_options(connection: str) -> dict[str, bool]:
    """Options for the async storage clients: a loopback endpoint never goes through a proxy.

    With environment settings on (the SDK's default), aiohttp looks for a proxy and a netrc
    entry on a thread at every request: two thread hand-offs a storage call, which the host's
    busy loop pays for in latency and CPU. Other endpoints keep the SDK's default.
    """
    return {"use_env_settings": False} if is_emulator(connection) else {}


def is_emulator(connection: str) -> bool:
    """Whether the connection names storage on this machine (Azurite), not an Azure account."""
    pairs = (part.partition("=") for part in expand_development_storage(connection).split(";"))
    hosts = {urlsplit(value).hostname for key, _, value in pairs if key.endswith("Endpoint")}
    return bool(hosts) and hosts <= {"127.0.0.1", "localhost", "::1"}


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVICES = ("blob", "queue", "table")  # in the order of `ports`


def find_binary(service: str) -> str:
    """The npm package's command for one service (`azurite-table`, ...)."""
    local = REPO_ROOT / "node_modules" / ".bin" / f"azurite-{service}"
    if local.exists():
        return str(local)
    found = shutil.which(f"azurite-{service}")
    if found:
        return found
    raise AzuriteError("Azurite is not installed: run `make setup` (npm ci) first.")


@dataclass
class Azurite:
    """Azurite with its data in `location`, on the given (or free) ports: blob, queue, table.

    Each service runs in a process of its own (`azurite-blob`, `azurite-queue`,
    `azurite-table`), with the same data files as the all-in-one `azurite`. In one process the
    three share an event loop and a core: under load a queue message, whose append takes
    several turns of the loop, waited behind every table request (1.4 s at 100 players).
    """

    location: Path
    host: str = "127.0.0.1"
    ports: tuple[int, int, int] = field(
        default_factory=lambda: (free_port(), free_port(), free_port())
    )
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.ports)

    def start(self, timeout: float = 240) -> Azurite:
        """Start the three services and wait until they answer. The timeout is generous: Node
        starts slowly on a busy machine, and a service that fails exits, which ends the wait
        at once."""
        self.location.mkdir(parents=True, exist_ok=True)
        binaries = [find_binary(service) for service in SERVICES]
        try:
            for service, binary, port in zip(SERVICES, binaries, self.ports, strict=True):
                self.processes[service] = self._spawn(service, binary, port)
            self._wait_until_answering(timeout)
        except BaseException:  # a failed start, or a Ctrl-C meanwhile, leaves no service behind
            self.stop()
            raise
        return self

    def _spawn(self, service: str, binary: str, port: int) -> subprocess.Popen:
        return subprocess.Popen(
            [
                binary,
                "--silent",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
                "--location",
                str(self.location),
                f"--{service}Host",
                self.host,
                f"--{service}Port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # A terminal's Ctrl-C reaches the host alone, whose stop() sends one SIGINT: a second
            # one would end the table service before it has saved its data. The price: a host
            # killed with SIGKILL leaves the services running (the next `up` uses them).
            process_group=0,
        )

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(answers(self.host, p) for p in self.ports):
            for service, process in self.processes.items():
                if process.poll() is not None:
                    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    raise AzuriteError(
                        f"Azurite's {service} service exited with code {process.returncode}: "
                        f"{error}"
                    )
            if time.monotonic() > deadline:
                raise AzuriteError(f"Azurite did not answer on {self.ports} within {timeout}s")
            time.sleep(0.05)

    def interrupt(self) -> None:
        """Ask each service to save its data and stop, without waiting for it."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    def stop(self, timeout: float = 10) -> None:
        """SIGINT, on which each service saves its data and exits (the table service has no
        handler for SIGTERM, which would end it at once); SIGKILL after `timeout` seconds."""
        self.interrupt()
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        self.kill()  # those that did not stop in time

    def kill(self) -> None:
        """Stop it abruptly (for outage tests), and close the pipes; start() brings it back on
        the same ports."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stderr:
                process.stderr.close()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
