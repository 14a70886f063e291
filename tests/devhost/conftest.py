"""Fixtures for devhost tests: the patterns app on the harness, on each store."""

from pathlib import Path

import pytest

from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness

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
