"""The pytest plugin (entry point `pytest11`): fixtures that run your Functions app in a test.

    def test_hello(durable_host):
        instance_id = durable_host.start("Hello", "Tokyo")
        assert durable_host.wait_for(instance_id).output == "Hello Tokyo!"

For apps written with the Durable Task SDK (`durabletask`), `durable_sidecar` hands a test
devhost's gRPC sidecar on the virtual clock: point a worker and a client at its `address`.

Options: `--durable-app DIR` (or the ini option `durable_app`; default: the rootdir) names the
folder of the app (`function_app.py`, or function folders with `function.json` in the v1 model);
`--durable-store memory|azure` picks the task hub's store (memory by default; azure starts an
Azurite of its own for the session, on free ports).

Every episode a test runs is checked against a full replay of its history; a test that leaves an
instance failed as non-deterministic fails, quoting the instance's error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import azure.durable_functions as df
import pytest

from ..app.v1_index import is_v1_app
from ..azurite import Azurite
from ..store.azure import AzureStore
from ..store.base import TaskHubStore
from .harness import DurableHarness
from .sidecar import SidecarHarness


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("durable", "Durable Functions apps (devhost)")
    group.addoption(
        "--durable-app",
        metavar="DIR",
        default=None,
        help="folder of the app's function_app.py (default: ini durable_app, else the rootdir)",
    )
    group.addoption(
        "--durable-store",
        choices=("memory", "azure"),
        default="memory",
        help="task hub store of durable_host: memory (default) or azure (starts Azurite)",
    )
    parser.addini("durable_app", "folder of the app's function_app.py, relative to the ini file")


def durable_app_dir(config: pytest.Config) -> Path:
    """The app folder: --durable-app, else the ini option durable_app, else the rootdir."""
    given = config.getoption("--durable-app")
    if given:
        return Path(given).resolve()
    ini = config.getini("durable_app")
    base = config.inipath.parent if config.inipath else config.rootpath
    return (base / ini).resolve() if ini else config.rootpath


def pytest_configure(config: pytest.Config) -> None:
    # The host decodes activity inputs with the worker's converter, which warns on every call
    # that it was given no expected type; that is the host's business, not the test's.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:azure.functions")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test whose instances diverged from their history, with their errors: a test that
    expected a Failed status, or never waited, would pass otherwise."""
    try:
        result = yield
    except BaseException:
        _fail_on_divergence(item)
        raise
    _fail_on_divergence(item)
    return result


def _fail_on_divergence(item: pytest.Item) -> None:
    host = getattr(item, "funcargs", {}).get("durable_host")
    if not isinstance(host, DurableHarness):
        return
    found = host.divergences()
    if found:
        pytest.fail("orchestrator code is not deterministic:\n" + "\n".join(found), pytrace=False)


@pytest.fixture(scope="session")
def durable_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """An Azurite of the session's own, on free ports in a temporary folder."""
    with Azurite(tmp_path_factory.mktemp("durable-azurite")) as server:
        yield server


@pytest.fixture
def durable_host(request: pytest.FixtureRequest) -> Iterator[DurableHarness]:
    """A started DurableHarness for the app, on a task hub of its own, on the virtual clock."""
    store: TaskHubStore | None = None
    if request.config.getoption("--durable-store") == "azure":
        azurite = request.getfixturevalue("durable_azurite")
        store = AzureStore(azurite.connection_string, f"T{uuid.uuid4().hex[:20]}")
    app_dir = durable_app_dir(request.config)
    if not (app_dir / "function_app.py").is_file() and not is_v1_app(app_dir):
        pytest.fail(
            f"{app_dir} has no function_app.py: name the app's folder with --durable-app DIR "
            "or the ini option durable_app (a v1-model app's folder holds function folders "
            "with function.json)",
            pytrace=False,
        )
    with DurableHarness(app_dir, store=store) as host:
        yield host


@pytest.fixture
def durable_client(durable_host: DurableHarness) -> df.DurableOrchestrationClient:
    """The SDK's own DurableOrchestrationClient, bound to `durable_host` (call it with
    `durable_host.run(...)`)."""
    return durable_host.client


@pytest.fixture
def durable_sidecar(request: pytest.FixtureRequest) -> Iterator[SidecarHarness]:
    """devhost's Durable Task sidecar for `durabletask` workers and clients (`.address`), on the
    virtual clock (`.advance(hours=72)` fires a 72-hour timer at once), its hubs on the store of
    `--durable-store`."""
    make_store = None
    if request.config.getoption("--durable-store") == "azure":
        connection = request.getfixturevalue("durable_azurite").connection_string
        prefix = f"T{uuid.uuid4().hex[:20]}"

        def make_store(hub: str) -> TaskHubStore:
            return AzureStore(connection, f"{prefix}{hub}"[:45])

    with SidecarHarness(make_store) as sidecar:
        yield sidecar
