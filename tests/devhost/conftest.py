"""Fixtures for devhost tests: the patterns app on the harness and the gRPC sidecar, on each
store."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devhost.store.azure import AzureStore
from devhost.store.base import TaskHubStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness
from devhost.testing.sidecar import SidecarHarness

PATTERNS_APP = Path(__file__).parent / "apps" / "patterns"


@pytest.fixture(params=["memory", "azure"])
def host(request, hub_name):
    if request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        store = AzureStore(azurite.connection_string, hub_name)
    else:
        store = MemoryStore()
    with DurableHarness(PATTERNS_APP, store=store) as harness:
        yield harness


@pytest.fixture(params=["memory", "azure"])
def sidecar_stores(request, hub_name) -> Callable[[str], TaskHubStore]:
    """A gRPC hub's store, on each store; the same store again when a second sidecar opens the
    hub (a restart)."""
    if request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        return lambda hub: AzureStore(azurite.connection_string, f"{hub_name}{hub}"[:45])
    stores: dict[str, MemoryStore] = {}
    return lambda hub: stores.setdefault(hub, MemoryStore())


@pytest.fixture
def sidecar(sidecar_stores) -> Iterator[SidecarHarness]:
    """devhost's gRPC sidecar on the virtual clock, on each store."""
    with SidecarHarness(sidecar_stores) as harness:
        yield harness
