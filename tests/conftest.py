"""Shared fixtures: one Azurite for the whole session, on free ports in a temporary folder.

Tests that use Azure Storage (the `azurite` fixture, or the `azure` variant of a store
parameter) are marked `azure`, so `pytest -m "not azure"` runs the memory-store part alone.
"""

import uuid

import pytest

from devhost.azurite import Azurite


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "azurite" in item.fixturenames or "azure" in params.values():
            item.add_marker("azure")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "azure: uses Azure Storage (Azurite)")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def hub_name():
    """A task hub of its own for each test."""
    return f"T{uuid.uuid4().hex[:20]}"
