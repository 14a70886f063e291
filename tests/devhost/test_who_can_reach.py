"""Who can reach the host: pages of other origins, DNS rebinding and CORS are refused before any
handler runs, and nothing changes; curl, the SDK's client, the durable CLI and the host's own
origin are served as before. On both stores, with `Host.CORS` set to `*`, as `make run` had it."""

import http.client
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import azure.durable_functions as df
import pytest

from devhost.commands.cli import main
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness

from .conftest import PATTERNS_APP

WEBHOOKS = "/runtime/webhooks/durabletask"
EVIL = "http://evil.example"


@pytest.fixture(params=["memory", "azure"])
def host(request, hub_name):
    """The patterns app with CORS open to any origin: it must not open the host's own surfaces."""
    if request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        store = AzureStore(azurite.connection_string, hub_name)
    else:
        store = MemoryStore()
    with DurableHarness(PATTERNS_APP, store=store, cors_origins=["*"]) as harness:
        yield harness


def port_of(host) -> int:
    return int(host.base_url.rsplit(":", 1)[1])


def send(
    host,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str | None] | None = None,
) -> tuple[int, dict[str, str], object]:
    """A raw request whose Host is `127.0.0.1:port` unless `headers` give another (None: none)."""
    port = port_of(host)
    wanted = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in wanted.items():
            if value is not None:
                conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        raw = response.read()
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode("utf-8", "replace")
        return response.status, dict(response.getheaders()), decoded
    finally:
        conn.close()


def snapshot(host) -> tuple[object, object]:
    """Every instance and entity with its state, read as curl would (no Origin)."""
    _, _, instances = send(host, "GET", f"{WEBHOOKS}/instances?showInput=true")
    _, _, entities = send(host, "GET", f"{WEBHOOKS}/entities?fetchState=true")
    return sorted(instances, key=lambda s: s["instanceId"]), entities


# -- the requests that change state, each with an instance to work on ----------------------------


def waiting(host) -> str:
    instance_id = host.run(host.client.start_new("Waiter"))
    host.idle()
    return instance_id


def suspended(host) -> str:
    instance_id = waiting(host)
    host.run(host.client.suspend(instance_id, "held"))
    host.idle()
    return instance_id


def completed(host) -> str:
    instance_id = host.run(host.client.start_new("Sequence", None, "Oslo"))
    host.wait_for(instance_id)
    return instance_id


def failed(host) -> str:
    instance_id = host.run(host.client.start_new("Failing"))
    host.wait_for(instance_id, statuses=("Failed",))
    return instance_id


def counted(host) -> str:
    key = "counted"
    host.run(host.client.signal_entity(df_entity(key), "add", 1))
    host.idle()
    return key


def df_entity(key: str) -> df.EntityId:
    return df.EntityId("Tally", key)


def runtime(host, instance_id: str) -> str | None:
    found = host.run(host.client.get_status(instance_id)).runtime_status
    return found.value if found is not None else None


@dataclass
class Change:
    """A request that changes the task hub, the instance it needs, and its effect once served."""

    name: str
    method: str
    path: Callable[[str], str]
    prepare: Callable[[object], str]
    served: Callable[[object, str, object], bool]
    body: bytes | None = None


CHANGES = [
    Change(
        "terminate",
        "POST",
        lambda i: f"{WEBHOOKS}/instances/{quote(i)}/terminate?reason=bye",
        waiting,
        lambda h, i, _: runtime(h, i) == "Terminated",
    ),
    Change(
        "suspend",
        "POST",
        lambda i: f"{WEBHOOKS}/instances/{quote(i)}/suspend?reason=hold",
        waiting,
        lambda h, i, _: runtime(h, i) == "Suspended",
    ),
    Change(
        "resume",
        "POST",
        lambda i: f"{WEBHOOKS}/instances/{quote(i)}/resume?reason=go",
        suspended,
        lambda h, i, _: runtime(h, i) == "Running",
    ),
    Change(
        "rewind",
        "POST",
        lambda i: f"{WEBHOOKS}/instances/{quote(i)}/rewind?reason=again",
        failed,
        lambda h, i, _: True,  # what a rewind does is test_management_api's business
    ),
    Change(
        "restart",
        "POST",
        lambda i: f"{WEBHOOKS}/instances/{quote(i)}/restart",
        completed,
        lambda h, i, new_id: new_id != i and runtime(h, new_id) is not None,
    ),
    Change(
        "start",
        "POST",
        lambda i: f"{WEBHOOKS}/orchestrators/Sequence/{quote(i)}",
        lambda h: "started-here",
        lambda h, i, _: runtime(h, i) is not None,
        b'"Lima"',
    ),
    Change(
        "raiseEvent",
        "POST",
        lambda i: f"{WEBHOOKS}/instances/{quote(i)}/raiseEvent/Never",
        waiting,
        lambda h, i, _: h.wait_for(i).output is False,
        b"false",
    ),
    Change(
        "purge",
        "DELETE",
        lambda i: f"{WEBHOOKS}/instances/{quote(i)}",
        completed,
        lambda h, i, _: runtime(h, i) is None,
    ),
    Change(
        "purge by time",
        "DELETE",
        lambda i: f"{WEBHOOKS}/instances?createdTimeFrom=2000-01-01T00:00:00Z",
        completed,
        lambda h, i, _: runtime(h, i) is None,
    ),
    Change(
        "signal entity",
        "POST",
        lambda key: f"{WEBHOOKS}/entities/Tally/{key}?op=add",
        counted,
        lambda h, key, _: (
            h.idle() is None and send(h, "GET", f"{WEBHOOKS}/entities/Tally/{key}")[2]["total"] == 3
        ),
        b"2",
    ),
]


def refused_variants(host, change: Change, target: str):
    """The same request as a page of another origin, or through DNS rebinding, would send it."""
    port = port_of(host)
    text = {"Content-Type": "text/plain"}
    as_json = {"Content-Type": "application/json"}
    method, path, body = change.method, change.path(target), change.body or b""
    yield "simple cross-origin", method, path, body, {"Origin": EVIL, **text}
    yield "cross-origin JSON", method, path, body, {"Origin": EVIL, **as_json}
    yield "Origin null", method, path, body, {"Origin": "null", **text}
    yield "another port", method, path, body, {"Origin": "http://127.0.0.1:1", **as_json}
    yield "Referer only", method, path, body, {"Referer": f"{EVIL}/page", **text}
    yield "Sec-Fetch-Site only", method, path, body, {"Sec-Fetch-Site": "cross-site", **text}
    rebinding = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    yield "DNS rebinding", method, path, body, {**rebinding, **as_json}
    yield "DNS rebinding without Origin", method, path, body, {"Host": f"evil.example:{port}"}
    preflight = {
        "Origin": EVIL,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type",
    }
    yield "preflight", "OPTIONS", path, None, preflight


@pytest.mark.parametrize("change", CHANGES, ids=[c.name for c in CHANGES])
def test_a_change_from_another_origin_is_refused_and_changes_nothing(host, change):
    target = change.prepare(host)
    before = snapshot(host)
    for variant, method, path, body, headers in refused_variants(host, change, target):
        code, answer_headers, answer = send(host, method, path, body, headers)
        assert code == 403, (variant, answer)
        assert "Access-Control-Allow-Origin" not in answer_headers, variant
        assert answer["Message"], variant
    host.idle()
    assert snapshot(host) == before


@pytest.mark.parametrize("change", CHANGES, ids=[c.name for c in CHANGES])
@pytest.mark.parametrize("sender", ["same origin", "same origin as localhost", "curl"])
def test_a_change_from_the_hosts_own_origin_or_from_no_page_is_served(host, change, sender):
    target = change.prepare(host)
    port = port_of(host)
    headers: dict[str, str | None] = {"Content-Type": "application/json"}
    if sender == "same origin":
        headers["Origin"] = f"http://127.0.0.1:{port}"
    elif sender == "same origin as localhost":
        headers.update(Host=f"localhost:{port}", Origin=f"http://localhost:{port}")
        headers["Referer"] = f"http://localhost:{port}/_devhost/"
    code, _, answer = send(host, change.method, change.path(target), change.body, headers)
    assert 200 <= code < 300, answer
    host.idle()  # a control operation is a message the instance's next episode takes
    assert change.served(host, target, answer)


def test_the_sdks_client_still_does_everything(host):
    client = host.client
    waiter = waiting(host)
    host.run(client.suspend(waiter, "hold"))
    host.idle()
    assert runtime(host, waiter) == "Suspended"
    host.run(client.resume(waiter, "go"))
    host.run(client.raise_event(waiter, "Never", {"ok": True}))
    assert host.wait_for(waiter).output == {"ok": True}
    other = waiting(host)
    host.run(client.terminate(other, "bye"))
    host.idle()
    assert runtime(host, other) == "Terminated"
    done = completed(host)
    restarted = host.run(client.restart(done))
    assert host.wait_for(restarted).output == host.wait_for(done).output
    broken = failed(host)
    host.run(client.rewind(broken, "again"))
    host.idle()
    key = counted(host)
    host.run(client.signal_entity(df_entity(key), "add", 4))
    host.idle()
    assert host.run(client.read_entity_state(df_entity(key))).entity_state["total"] == 5
    assert host.run(client.purge_instance_history(done)).instances_deleted == 1


def test_the_durable_cli_still_works_through_localhost(host):
    target = waiting(host)
    url = f"http://localhost:{port_of(host)}"
    argv = ["--app-dir", str(PATTERNS_APP), "--url", url]
    assert main(["durable", "raise-event", "--id", target, "--event-name", "Never",
                 "--event-data", '"from the cli"', *argv]) == 0  # fmt: skip
    assert host.wait_for(target).output == "from the cli"
    other = waiting(host)
    assert main(["durable", "terminate", "--id", other, "--reason", "bye", *argv]) == 0
    host.idle()
    assert runtime(host, other) == "Terminated"


# -- the Host header, on every route --------------------------------------------------------------

READS = [
    f"{WEBHOOKS}/instances",
    "/_devhost/",
    "/_devhost/api/instances",
    "/_devhost/api/hub",
    "/_devhost/static/app.js",
    "/api/echo/1",
    "/",
    "/nothing/here",
]


@pytest.mark.parametrize("path", READS)
def test_a_rebinding_host_reads_nothing_on_any_route(host, path):
    instance_id = completed(host)
    port = port_of(host)
    code, headers, answer = send(host, "GET", path, headers={"Host": f"evil.example:{port}"})
    assert code == 403
    assert "Host.AllowedHosts" in answer["Message"] and "--allowed-hosts" in answer["Message"]
    assert instance_id not in json.dumps(answer)
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize(
    ("spelling", "answered"),
    [
        ("127.0.0.1:{port}", True),
        ("localhost:{port}", True),
        ("LocalHost:{port}", True),
        ("[::1]:{port}", True),
        ("[0:0:0:0:0:0:0:1]:{port}", True),
        ("[::ffff:127.0.0.1]:{port}", True),
        ("localhost", False),  # no port: port 80, where this host does not listen
        ("localhost:{other}", False),
        ("::1:{port}", False),
        ("[::1]", False),
        ("[fe80::1%25eth0]:{port}", False),
        ("user@127.0.0.1:{port}", False),
        ("127.0.0.1:{port}@evil.example", False),
        ("127.0.0.1.nip.io:{port}", False),
        ("localhost.:{port}", False),
        ("127.1:{port}", False),
        ("127.0.0.1:{port}/path", False),
        ("127.0.0.1:99999", False),
        ("192.168.1.5:{port}", False),  # the machine's address only when it listens on it
        ("", False),
        ("h" * 8000, False),
    ],
)
def test_host_spellings(host, spelling, answered):
    port = port_of(host)
    value = spelling.format(port=port, other=port + 1)
    code, _, answer = send(host, "GET", f"{WEBHOOKS}/instances", headers={"Host": value})
    if answered:
        assert code == 200, answer
    else:
        assert code == 403, answer
        assert len(answer["Message"]) < 800  # the Host is quoted, not echoed whole


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def raw_exchange(host, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port_of(host)), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_request_without_a_host_header_is_refused(host):
    request = f"GET {WEBHOOKS}/instances HTTP/1.0\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(host, request.encode())
    assert answer.startswith(b"HTTP/1.0 403") and b"no Host header" in answer
    # HTTP/1.1 requires one: the server's parser refuses the request before the host sees it
    answer = raw_exchange(host, request.replace("HTTP/1.0", "HTTP/1.1").encode())
    assert status_of(answer) == 400


def test_two_host_headers_are_refused(host):
    port = port_of(host)
    request = (
        f"GET {WEBHOOKS}/instances HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Host: evil.example:{port}\r\nConnection: close\r\n\r\n"
    )
    assert status_of(raw_exchange(host, request.encode())) in (400, 403)


def test_a_host_header_past_the_servers_limit_is_refused_and_the_host_serves_on(host):
    request = f"GET / HTTP/1.1\r\nHost: {'h' * 100_000}\r\nConnection: close\r\n\r\n"
    assert status_of(raw_exchange(host, request.encode())) in (400, 431)
    assert send(host, "GET", f"{WEBHOOKS}/instances")[0] == 200


def test_an_allowed_name_is_answered(monkeypatch):
    monkeypatch.setenv("DEVHOST_ALLOWED_HOSTS", "box.test, .tunnel.test")
    with DurableHarness(PATTERNS_APP) as harness:
        port = port_of(harness)
        for name in (f"box.test:{port}", "box.test", "app.tunnel.test", "tunnel.test:443"):
            assert send(harness, "GET", "/_devhost/api/hub", headers={"Host": name})[0] == 200
        assert send(harness, "GET", "/_devhost/api/hub", headers={"Host": "evil.test"})[0] == 403
        # an allowed name is still only its own origin for changes
        code, _, _ = send(
            harness,
            "POST",
            f"{WEBHOOKS}/orchestrators/Waiter/via-tunnel",
            b'"x"',
            {"Host": "app.tunnel.test", "Origin": EVIL, "Content-Type": "text/plain"},
        )
        assert code == 403
        code, _, answer = send(
            harness,
            "POST",
            f"{WEBHOOKS}/orchestrators/Waiter/via-tunnel",
            b'"x"',
            {"Host": "app.tunnel.test", "Origin": "http://app.tunnel.test"},
        )
        assert code == 202
        assert answer["statusQueryGetUri"].startswith("http://app.tunnel.test/")
        # behind a tunnel's TLS, the page is https and devhost sees plain http
        tunnel = {"Host": "app.tunnel.test", "Origin": "https://app.tunnel.test"}
        path = f"{WEBHOOKS}/instances/via-tunnel/terminate"
        assert send(harness, "POST", path, None, tunnel)[0] == 202
        tunnel["Origin"] = "https://app.tunnel.test:8443"
        assert send(harness, "POST", path, None, tunnel)[0] == 403


# -- CORS is the app's, never the host's ----------------------------------------------------------


@pytest.mark.parametrize("path", [f"{WEBHOOKS}/instances", "/_devhost/api/instances"])
def test_cors_never_opens_the_hosts_own_surfaces(host, path):
    completed(host)
    code, headers, _ = send(host, "GET", path, headers={"Origin": EVIL})
    assert code == 200 and "Access-Control-Allow-Origin" not in headers
    code, headers, answer = send(
        host, "OPTIONS", path, headers={"Origin": EVIL, "Access-Control-Request-Method": "DELETE"}
    )
    assert code == 403 and "Access-Control-Allow-Origin" not in headers
    assert "Host.CORS" in answer["Message"]


def test_cors_still_serves_the_apps_own_functions(host):
    code, headers, _ = send(host, "GET", "/api/echo/1", headers={"Origin": EVIL})
    assert code == 201 and headers["Access-Control-Allow-Origin"] == "*"
    code, headers, _ = send(
        host,
        "OPTIONS",
        "/api/echo/1",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
    )
    assert code == 204 and headers["Access-Control-Allow-Origin"] == "*"


def test_the_dashboard_may_not_be_framed_by_another_page(host):
    code, headers, _ = send(host, "GET", "/_devhost/")
    assert code == 200
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


# -- the extension's content rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_an_event_that_is_not_application_json_answers_400_and_changes_nothing(host, content_type):
    target = waiting(host)
    before = snapshot(host)
    code, _, answer = send(
        host,
        "POST",
        f"{WEBHOOKS}/instances/{target}/raiseEvent/Never",
        b"false",
        {"Content-Type": content_type},
    )
    assert code == 400
    assert answer["Message"] == "Only application/json request content is supported"
    host.idle()
    assert snapshot(host) == before


def test_an_event_in_json_with_a_charset_is_taken(host):
    target = waiting(host)
    code, _, _ = send(
        host,
        "POST",
        f"{WEBHOOKS}/instances/{target}/raiseEvent/Never",
        b'{"n": 1}',
        {"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert code == 202
    assert host.wait_for(target).output == {"n": 1}


def test_a_start_reads_its_body_as_json_whatever_its_type_as_the_extension_does(host):
    code, _, _ = send(
        host,
        "POST",
        f"{WEBHOOKS}/orchestrators/Sequence/from-curl",
        b'"Bern"',
        {"Content-Type": "application/x-www-form-urlencoded"},  # what `curl -d` sends
    )
    assert code == 202
    assert host.wait_for("from-curl").input_ == "Bern"


def test_an_entity_operations_text_body_is_its_input_as_a_string(host):
    key = "text"
    code, _, _ = send(
        host,
        "POST",
        f"{WEBHOOKS}/entities/Tally/{key}?op=add",
        b"oops",
        {"Content-Type": "text/plain"},
    )
    assert code == 202
    host.idle()
    # taken as the string "oops" (not refused as bad JSON): adding it to a number fails the
    # operation, which leaves no state behind
    state = host.run(host.client.read_entity_state(df_entity(key)))
    assert not state.entity_exists or state.entity_state["seen"] == []
