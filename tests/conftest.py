"""Shared fixtures: one Azurite for the whole session, on free ports in a temporary folder.

Tests that use Azure Storage (the `azurite` fixture, or the `azure` variant of a store
parameter) are marked `azure`, and those that start processes or wait on the real clock `slow`,
so `pytest -m "not azure and not slow"` runs the memory-store part alone, in seconds.

Every host of the suite, in-process or a subprocess (which inherits the environment), runs each
warm orchestration episode a second time as a full replay and fails on any difference.
"""

import logging
import os
import uuid

import pytest

from devhost.azurite import Azurite
from devhost.engine.determinism import NONDETERMINISM
from devhost.settings import VERIFY_WARM_VARIABLE

os.environ[VERIFY_WARM_VARIABLE] = "1"


@pytest.fixture(autouse=True)
def warm_episodes_equal_full_replays(request, caplog):
    """Fail the test that saw a warm episode differ from its full replay (verify mode), or an
    instance fail as non-deterministic, unless it makes them on purpose."""
    yield
    records = [
        record
        for phase in ("setup", "call")
        for record in caplog.get_records(phase)
        if record.levelno >= logging.ERROR
    ]
    mismatches = []
    if not request.node.get_closest_marker("warm_mismatch_expected"):
        mismatches += [r.getMessage() for r in records if r.name == "devhost.warm"]
    if not request.node.get_closest_marker("nondeterminism_expected"):
        mismatches += [
            r.getMessage()
            for r in records
            if r.name == "devhost.engine" and NONDETERMINISM in r.getMessage()
        ]
    if mismatches:
        pytest.fail("\n".join(mismatches))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "azurite" in item.fixturenames or "azure" in params.values():
            item.add_marker("azure")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "azure: uses Azure Storage (Azurite)")
    config.addinivalue_line("markers", "slow: starts processes, or waits on the real clock")
    config.addinivalue_line(
        "markers", "warm_mismatch_expected: the test makes a warm episode differ on purpose"
    )
    config.addinivalue_line(
        "markers", "nondeterminism_expected: the test makes an instance diverge on purpose"
    )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def hub_name():
    """A task hub of its own for each test."""
    return f"T{uuid.uuid4().hex[:20]}"


@pytest.fixture
def storage_proxy(azurite):
    """A counting proxy in front of the session's Azurite tables (tests/storage_proxy.py)."""
    from tests.storage_proxy import StorageProxy

    with StorageProxy(azurite) as proxy:
        yield proxy
