"""Starting and stopping Azurite (npm package `azurite`) for `make run`, tests and benchmarks."""

from __future__ import annotations

import shutil
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
    pairs = (part.partition("=") for part in expand_development_storage(connection).split(";"))
    hosts = {urlsplit(value).hostname for key, _, value in pairs if key.endswith("Endpoint")}
    local = bool(hosts) and hosts <= {"127.0.0.1", "localhost", "::1"}
    return {"use_env_settings": False} if local else {}


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


def find_binary() -> str:
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise AzuriteError("Azurite is not installed: run `make setup` (npm ci) first.")


@dataclass
class Azurite:
    """An Azurite process with its data in `location`, on the given (or free) ports."""

    location: Path
    host: str = "127.0.0.1"
    ports: tuple[int, int, int] = field(
        default_factory=lambda: (free_port(), free_port(), free_port())
    )
    process: subprocess.Popen | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.ports)

    def start(self, timeout: float = 60) -> Azurite:
        self.location.mkdir(parents=True, exist_ok=True)
        blob, queue, table = self.ports
        self.process = subprocess.Popen(
            [
                find_binary(),
                "--silent",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
                "--location",
                str(self.location),
                "--blobHost",
                self.host,
                "--blobPort",
                str(blob),
                "--queueHost",
                self.host,
                "--queuePort",
                str(queue),
                "--tableHost",
                self.host,
                "--tablePort",
                str(table),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while not all(answers(self.host, p) for p in self.ports):
            if self.process.poll() is not None:
                error = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise AzuriteError(f"Azurite exited with code {self.process.returncode}: {error}")
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite did not answer on {self.ports} within {timeout}s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Stop it abruptly (for outage tests); start() brings it back on the same ports."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
