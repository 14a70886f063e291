"""HTTP functions over a real socket: routes, methods, query, headers, body, errors, CORS."""

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.testing import DurableHarness

PATTERNS = Path(__file__).parent / "apps" / "patterns"


def test_request_is_mapped_to_the_function_and_back(host):
    code, headers, body = host.http(
        "POST", "/api/echo/42/extra?color=red", {"hello": "world"}, {"x-test": "yes"}
    )
    assert code == 201
    assert headers["X-Echo"] == "yes"
    assert headers["Content-Type"].startswith("application/json")
    assert body["method"] == "POST"
    assert body["route"] == {"id": "42", "rest": "extra"}
    assert body["query"] == {"color": "red"}
    assert body["header"] == "yes"
    assert json.loads(body["body"]) == {"hello": "world"}
    assert body["url"].startswith(host.base_url)


def test_routes_are_case_insensitive_and_optional_parameters_optional(host):
    code, _, body = host.http("GET", "/API/Echo/7")
    assert code == 201 and body["route"] == {"id": "7"}


def test_route_constraints_methods_and_unknown_routes(host):
    assert host.http("GET", "/api/echo/not-a-number")[0] == 404
    assert host.http("DELETE", "/api/echo/1")[0] == 405
    assert host.http("GET", "/api/nothing/here")[0] == 404


def test_a_failing_function_is_a_500_and_the_server_lives_on(host):
    code, _, body = host.http("GET", "/api/boom")
    assert code == 500 and "error" in body
    assert host.http("GET", "/api/echo/1")[0] == 201


@pytest.fixture
def cors_host():
    with DurableHarness(PATTERNS, cors_origins=["http://game.example"]) as harness:
        yield harness


def test_cors_allows_configured_origins_only(cors_host):
    code, headers, _ = cors_host.http(
        "OPTIONS",
        "/api/echo/1",
        headers={"Origin": "http://game.example", "Access-Control-Request-Method": "POST"},
    )
    assert code == 204
    assert headers["Access-Control-Allow-Origin"] == "http://game.example"
    assert headers["Access-Control-Allow-Methods"] == "POST"
    _, headers, _ = cors_host.http("GET", "/api/echo/1", headers={"Origin": "http://game.example"})
    assert headers["Access-Control-Allow-Origin"] == "http://game.example"
    _, headers, _ = cors_host.http("GET", "/api/echo/1", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def started_host(*options: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`devhost start` on the patterns app, as a user runs it: the process and what it printed
    up to "Host started"; Ctrl-C at the end, and it must stop cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(PATTERNS), "--store", "memory"]
        + list(options),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Host started" in line or not line:
                break
        yield process, "".join(lines)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


@pytest.mark.slow
def test_cli_start_prints_functions_and_serves_them():
    port = _free_port()
    with started_host("--port", str(port), "--cors", "*") as (_, output):
        assert f"echo: [GET,POST] http://127.0.0.1:{port}/api/echo/{{id:int}}/{{rest?}}" in output
        assert "Sequence: orchestrationTrigger" in output
        assert "Hello: activityTrigger" in output
        with urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{port}/api/echo/3", headers={"Origin": "http://x"}
            ),
            timeout=10,
        ) as response:
            assert response.status == 201
            assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.slow
def test_a_host_on_ipv6_loopback_gives_the_app_urls_that_work():
    """`--host ::1`: the app's client and the printed links put the address in brackets (the
    SDK's client failed on `http://::1:port`), and the status URL it hands out answers."""
    port = _free_port()
    with started_host("--host", "::1", "--port", str(port)) as (_, output):
        assert f"Dashboard: http://[::1]:{port}/_devhost/" in output
        start = urllib.request.Request(
            f"http://[::1]:{port}/api/start/Sequence", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(start, timeout=30) as response:
            assert response.status == 202
            status_url = json.load(response)["statusQueryGetUri"]
        assert status_url.startswith(f"http://[::1]:{port}/runtime/webhooks/durabletask/")
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(status_url, timeout=10) as response:
                if json.load(response)["runtimeStatus"] == "Completed":
                    break
            assert time.monotonic() < deadline, "the orchestration did not complete"
            time.sleep(0.05)  # polling the status URL is the client's way to wait
