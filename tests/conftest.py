"""Shared fixtures: one Azurite for the whole session, on free ports in a temporary folder."""

import uuid

import pytest

from devhost.azurite import Azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def hub_name():
    """A task hub of its own for each test."""
    return f"T{uuid.uuid4().hex[:20]}"
