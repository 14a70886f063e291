"""Durable HTTP: `context.call_http` is carried out by the host, as the Durable extension does.

The orchestrators of the timeouts_http app call routes of the same app: `echo` (any status),
`job` (202 with a Location a few times), `slow` (held until the test lets it go).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.hosting import HostProcess
from devhost.app.durable_http import DurableHttpError, HttpRequest, response_shape
from devhost.azurite import free_port
from devhost.clock import Clock
from devhost.host import DevHost, ListenAddress
from devhost.settings import load_settings
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.taskhub.model import RuntimeStatus
from devhost.testing import DurableHarness

APP = Path(__file__).parent / "apps" / "timeouts_http"
WEBHOOKS = "/runtime/webhooks/durabletask"
DEADLINE = 30


@pytest.fixture(params=["memory", "azure"])
def host(request, hub_name) -> Iterator[DurableHarness]:
    if request.param == "azure":
        store = AzureStore(request.getfixturevalue("azurite").connection_string, hub_name)
    else:
        store = MemoryStore()
    with DurableHarness(APP, store=store) as harness:
        yield harness


def call(host: DurableHarness, **request: object):
    """Run CallHttp with the request; its finished status."""
    return host.wait_for(host.start("CallHttp", request))


# -- the request and the response, as the extension reads and writes them ------------------------


def test_the_request_is_read_as_the_sdk_writes_it():
    request = HttpRequest.from_input(
        json.dumps(
            {
                "method": "post",
                "uri": "http://example.test/a?b=1",
                "content": "{}",
                "headers": {"X-One": "1", "X-Two": ["2", "3"]},
            }
        )
    )
    assert (request.method, str(request.uri), request.content) == (
        "POST",
        "http://example.test/a?b=1",
        "{}",
    )
    assert request.headers.getall("x-two") == ["2", "3"]
    assert request.poll is False  # the Python SDK 1.x never asks for the asynchronous pattern


@pytest.mark.parametrize(
    ("request_json", "reason"),
    [
        ("[]", "not a JSON object"),
        ('{"method": "GET", "uri": "/relative"}', r"not an absolute http\(s\) URL"),
        ('{"method": "GET", "uri": "ftp://x/y"}', r"not an absolute http\(s\) URL"),
        ('{"uri": "http://x/"}', "has no method"),
        ('{"method": "GET", "uri": "http://x/", "headers": {"A": 1}}', "must be a string"),
        ('{"method": "GET", "uri": "http://x/", "content": {"a": 1}}', "must be a string"),
    ],
)
def test_a_malformed_request_fails_with_what_is_wrong(request_json, reason):
    with pytest.raises(DurableHttpError, match=reason):
        HttpRequest.from_input(request_json)


def test_the_response_keeps_content_headers_out_as_dotnet_does():
    from multidict import CIMultiDict

    headers = CIMultiDict(
        [("Content-Type", "text/plain"), ("Set-Cookie", "a"), ("Set-Cookie", "b")]
    )
    headers.add("X-One", "1")
    assert response_shape(201, headers, "hi") == {
        "statusCode": 201,
        "headers": {"Set-Cookie": ["a", "b"], "X-One": "1"},
        "content": "hi",
    }


# -- in-process, both stores ----------------------------------------------------------------------


def test_the_orchestrator_gets_status_headers_and_content(host):
    status = call(
        host,
        method="POST",
        uri=f"{host.base_url}/api/echo",
        content={"a": 1},
        headers={"X-Test": "yes"},
    )
    assert status.runtime_status.name == "Completed"
    response = status.output
    assert response["statusCode"] == 200
    assert response["headers"]["X-Answer"] == "yes"
    assert "Content-Type" not in response["headers"]
    assert json.loads(response["content"]) == {
        "method": "POST",
        "body": '{"a": 1}',
        "x-test": "yes",
        "content-type": "text/plain; charset=utf-8",
    }


def test_a_status_that_is_not_2xx_is_returned_not_raised(host):
    status = call(host, method="GET", uri=f"{host.base_url}/api/echo?status=404")
    assert status.runtime_status.name == "Completed"
    assert status.output["statusCode"] == 404


def test_a_202_is_returned_as_is_when_the_request_does_not_ask_for_polling(host):
    status = call(host, method="GET", uri=f"{host.base_url}/api/job?left=2")
    assert status.output["statusCode"] == 202
    assert status.output["headers"]["Location"].endswith("/api/job?left=1")


def test_a_202_with_a_location_is_polled_after_its_retry_after_on_the_virtual_clock(host):
    instance_id = host.start("PollHttp", f"{host.base_url}/api/job?left=3")
    host.idle()  # the first answer was a 202: the poll waits a (virtual) second
    assert host.status(instance_id).runtime_status.name == "Running"
    started = time.monotonic()
    host.advance(seconds=3)
    status = host.wait_for(instance_id)
    assert time.monotonic() - started < 3  # no real second was waited
    assert status.runtime_status.name == "Completed"
    assert (status.output["statusCode"], json.loads(status.output["content"])) == (
        200,
        {"done": True},
    )


def test_a_refused_connection_fails_the_task_with_the_reason(host):
    uri = f"http://127.0.0.1:{free_port()}/nothing"
    status = call(host, method="GET", uri=uri)
    assert status.runtime_status.name == "Failed"
    assert f"The durable HTTP request GET {uri} failed: ClientConnectorError" in status.output


def test_an_unknown_host_fails_the_task_with_the_reason(host):
    status = call(host, method="GET", uri="http://devhost-nowhere.invalid/")
    assert status.runtime_status.name == "Failed"
    assert "Cannot connect to host devhost-nowhere.invalid:80" in status.output


def test_a_managed_identity_fails_the_task_saying_none_exists_locally(host):
    status = call(
        host,
        method="GET",
        uri=f"{host.base_url}/api/echo",
        token="https://management.core.windows.net/",
    )
    assert status.runtime_status.name == "Failed"
    assert "no managed identity endpoint exists locally" in status.output
    assert "'https://management.core.windows.net/'" in status.output


# -- worker processes -----------------------------------------------------------------------------


@pytest.mark.slow
def test_with_workers_call_http_reaches_a_route_that_a_worker_serves():
    async def scenario() -> None:
        host = DevHost(
            load_settings(APP, apply_environment=False),
            MemoryStore(),
            Clock(),
            listen=ListenAddress("127.0.0.1", 0),
            workers=2,
        )
        await host.start()
        try:
            request = {"method": "GET", "uri": f"{host.base_url}/api/echo?status=201"}
            instance_id = await host.engine.start_new("CallHttp", None, json.dumps(request))
            finished = {RuntimeStatus.Completed, RuntimeStatus.Failed}
            record = await host.engine.wait_for_status(instance_id, finished, DEADLINE)
            assert record is not None and record.runtime_status == RuntimeStatus.Completed
            assert json.loads(record.output or "null")["statusCode"] == 201
        finally:
            await host.stop()

    asyncio.run(scenario())


# -- crashes ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_request_in_flight_when_the_host_is_killed_is_sent_again(azurite, hub_name, tmp_path):
    env = dict(os.environ, AzureWebJobsStorage=azurite.connection_string, TIMEOUTS_HUB=hub_name)
    host = HostProcess(env, tmp_path / "host.log", app_dir=APP)
    folder = tmp_path / "hits"
    folder.mkdir()
    host.start()
    try:
        request = {"method": "GET", "uri": f"{host.base}/api/slow?folder={folder}"}
        code, _ = host.request("POST", f"{WEBHOOKS}/orchestrators/CallHttp/kill-me", request)
        assert code == 202
        deadline = time.monotonic() + DEADLINE
        while not list(folder.glob("hit-*")):
            assert time.monotonic() < deadline, "the request never arrived"
            time.sleep(0.01)
        host.kill()  # the request is in flight: its task is scheduled, not completed
        (folder / "release").touch()
        host.start()
        deadline = time.monotonic() + DEADLINE
        while (status := host.request("GET", f"{WEBHOOKS}/instances/kill-me"))[0] != 200:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        body = status[1]
        assert body["runtimeStatus"] == "Completed", body
        assert (body["output"]["statusCode"], body["output"]["content"]) == (200, "slow done")
        assert len(list(folder.glob("hit-*"))) == 2  # sent again by the next host
    finally:
        with contextlib.suppress(Exception):
            host.stop()
