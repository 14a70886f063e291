"""Input the runtime refuses gets a 400 (or 404, 405, 413) with one JSON sentence, on both stores,
at once, and changes nothing."""

import http.client
import json

import pytest

from devhost.taskhub.rules import MAX_PAYLOAD_CHARS

WEBHOOKS = "/runtime/webhooks/durabletask"
BAD_ID = "Orchestration instance ids must not contain /, \\, #, ?, or control characters."


def send(
    host, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict, object]:
    """A raw request (urllib would refuse some of these paths before sending them)."""
    conn = http.client.HTTPConnection("127.0.0.1", int(host.base_url.rsplit(":", 1)[1]), timeout=10)
    try:
        conn.request(
            method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/instances/..%2f..%2fx", BAD_ID),
        ("GET", "/instances/a%5Cb", BAD_ID),
        ("GET", "/instances/tab%09here", BAD_ID),
        ("DELETE", "/instances/a%2Fb", BAD_ID),
        ("POST", "/orchestrators/Sequence/" + "x" * 3000, "must not exceed 256 characters"),
        ("POST", "/orchestrators/Sequence/a%5Cb", BAD_ID),
        ("POST", "/orchestrators/Sequence/line%0Abreak", BAD_ID),
        ("POST", "/orchestrators/Sequence/a/b", BAD_ID),
        ("POST", "/orchestrators/Sequence/@entity@like", "must not start with @"),
        ("POST", "/instances/a%2Fb/raiseEvent/Go", BAD_ID),
        ("POST", "/instances/a%2Fb/terminate", BAD_ID),
        ("POST", "/instances/a%2Fb/suspend", BAD_ID),
        ("POST", "/instances/a%2Fb/rewind", BAD_ID),
        ("POST", "/instances/ok/raiseEvent/" + "e" * 300, "Event names must be at most 256"),
        ("POST", "/instances/ok/raiseEvent/a%2Fb", "Event names must be at most 256"),
        ("POST", "/entities/Tally/a%2Fb?op=add", "Entity keys must not contain"),
        ("POST", "/entities/Ta@lly/key?op=add", "Entity names must not contain @"),
        ("GET", "/entities/Tally/" + "k" * 300, "Entity keys must not exceed 256"),
        ("GET", "/instances?createdTimeFrom=yesterday", "not an ISO-8601 time"),
        ("GET", "/instances?runtimeStatus=Sleeping", "Unknown runtimeStatus"),
    ],
)
def test_ids_and_names_the_runtime_refuses_answer_400_at_once(host, method, path, message):
    code, _, body = send(host, method, WEBHOOKS + path)
    assert code == 400
    assert message in body["Message"]
    assert body["ExceptionMessage"] == body["Message"]
    assert host.run(host.client.get_status_all()) == []


@pytest.mark.parametrize("body", [b"[" * 100_000, b"{not json", b'{"a": }'])
def test_a_body_that_is_not_json_answers_400(host, body):
    code, _, answer = send(host, "POST", f"{WEBHOOKS}/orchestrators/Sequence", body)
    assert code == 400
    assert "not valid JSON" in answer["Message"]
    assert host.run(host.client.get_status_all()) == []


def test_a_body_past_the_payload_limit_answers_413(host):
    body = json.dumps("x" * (MAX_PAYLOAD_CHARS + 1)).encode()
    code, _, answer = send(host, "POST", f"{WEBHOOKS}/orchestrators/Sequence/big", body)
    assert code == 413
    assert "devhost keeps at most" in answer["Message"]
    assert host.run(host.client.get_status("big")).runtime_status is None


def test_the_sdk_client_gets_the_runtimes_sentence_for_a_bad_id(host):
    with pytest.raises(Exception, match="must not contain"):
        host.run(host.client.start_new("Sequence", "a\\b", "Rome"))
    with pytest.raises(Exception, match="must not start with @"):
        host.run(host.client.start_new("Sequence", "@x@y", "Rome"))
    with pytest.raises(Exception):  # noqa: B017 - the SDK words every 400 of raise_event alike
        host.run(host.client.raise_event("ok", "a/b", 1))
    assert host.run(host.client.get_status_all()) == []


def test_a_wrong_method_is_a_json_405_with_the_allow_header(host):
    code, headers, body = send(host, "PUT", f"{WEBHOOKS}/instances/someone")
    assert code == 405
    assert set(headers["Allow"].split(",")) >= {"GET", "DELETE"}
    assert "PUT is not allowed" in body["Message"]
    code, headers, body = send(host, "DELETE", "/api/start/Sequence")
    assert code == 405 and headers["Allow"] == "POST"
    assert "use POST" in body["Message"]


def test_unknown_routes_are_json_404s(host):
    code, _, body = send(host, "GET", "/no/such/thing")
    assert code == 404 and body["Message"] == "Nothing here answers GET /no/such/thing."
    code, _, body = send(host, "GET", f"{WEBHOOKS}/nothing")
    assert code == 404 and "No Durable Functions HTTP API route" in body["Message"]


@pytest.mark.parametrize("path", ["/instances", "/entities"])
def test_a_continuation_token_this_host_never_gave_answers_400(host, path):
    token = {"x-ms-continuation-token": "%%% not mine"}
    code, _, body = send(host, "GET", WEBHOOKS + path, headers=token)
    assert code == 400
    assert body["Message"] == "The continuation token is not one this host gave out."
