"""A v2 app: a timer on the virtual clock feeds a queue; its trigger starts an orchestration
that writes a blob through an output binding. On both stores."""

import sys
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness

from .storage_checks import Account, eventually

APP = Path(__file__).parent / "apps" / "timer_pipeline"


@pytest.fixture
def account(azurite, monkeypatch):
    account = Account(azurite.connection_string)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("AzureFunctionsWebHost__hostid", account.name("host"))
    monkeypatch.setenv("WORK_QUEUE", account.name("work"))
    monkeypatch.setenv("REPORTS", account.name("reports"))
    return account


@pytest.fixture(params=["memory", "azure"])
def host(request, account, hub_name):
    store = AzureStore(account.connection, hub_name) if request.param == "azure" else MemoryStore()
    with DurableHarness(APP, store=store) as harness:
        yield harness


def fired() -> list[str]:
    """The occurrences the app's timer ran for, in the module the host loaded."""
    return sys.modules["function_app"].fired


def test_the_hourly_timer_feeds_the_queue_that_starts_a_report_written_to_a_blob(host, account):
    top_of_hour = (host.clock.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    container = account.name("reports")
    fired().clear()  # the module outlives one test

    host.advance(seconds=(top_of_hour - host.clock.now()).total_seconds() - 1)
    assert fired() == []
    host.advance(seconds=1)
    assert fired() == [top_of_hour.isoformat()]  # ran, and wrote its message, within advance()

    report = f"report-{top_of_hour:%Y-%m-%d-%H}"
    text = eventually(lambda: account.blob(container, f"{report}.txt"), what="report blob")
    assert text == f"{report}: 3 rooms".encode()
    status = host.wait_for(report)
    assert status.output == f"{report}: 3 rooms"

    host.advance(hours=1)
    assert len(fired()) == 2
    second = f"report-{top_of_hour + timedelta(hours=1):%Y-%m-%d-%H}"
    eventually(lambda: account.blob(container, f"{second}.txt"), what="second report")
