"""Run tests written for the Durable Task SDK's in-memory backend on devhost's sidecar instead.

    pytest -p devhost.testing.sdk_backend path/to/durabletask-python/tests/durabletask

Loaded with `-p`, this plugin replaces `durabletask.testing.create_test_backend(port)`, which the
SDK's own end-to-end tests call in their `backend` fixture, by devhost's sidecar on that port (on
the real clock, as those tests wait in real time); their files stay as they are. The environment
variable DEVHOST_SDK_BACKEND_STORE=azure puts each backend's hubs on Azure Storage:
AzureWebJobsStorage, else an Azurite of the session's own.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import durabletask.testing
import pytest

from ..azurite import Azurite
from ..store.azure import AzureStore
from ..store.base import TaskHubStore
from ..store.memory import MemoryStore
from .sidecar import SidecarHarness

STORE_VARIABLE = "DEVHOST_SDK_BACKEND_STORE"
_azurite: Azurite | None = None


def _store_factory() -> Callable[[str], TaskHubStore]:
    global _azurite
    if os.environ.get(STORE_VARIABLE, "memory") != "azure":
        return lambda _hub: MemoryStore()
    connection = os.environ.get("AzureWebJobsStorage")
    if not connection:
        if _azurite is None:
            _azurite = Azurite(Path(tempfile.mkdtemp(prefix="devhost-sdk-backend-"))).start()
        connection = _azurite.connection_string
    prefix = f"S{uuid.uuid4().hex[:16]}"  # a backend's hubs are its own, as a fresh backend's
    return lambda hub: AzureStore(connection, f"{prefix}{hub}"[:45])


class SidecarBackend:
    """What `create_test_backend` returns, with the methods the SDK's fixtures call."""

    def __init__(self, port: int) -> None:
        self.harness = SidecarHarness(_store_factory(), virtual_clock=False, port=port)
        self.harness.__enter__()

    def stop(self, grace: float | None = None) -> None:
        self.harness.__exit__(None, None, None)

    def reset(self) -> None:
        """Nothing to forget: the next backend is a new sidecar with new hubs."""


def create_test_backend(port: int = 50051, max_history_size: int = 10000) -> SidecarBackend:
    return SidecarBackend(port)


def pytest_configure(config: pytest.Config) -> None:
    durabletask.testing.create_test_backend = create_test_backend


def pytest_unconfigure(config: pytest.Config) -> None:
    if _azurite is not None:
        _azurite.stop()
