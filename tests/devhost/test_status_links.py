"""Management URLs for ids with spaces, `&` and non-ASCII letters: fetchable as they are."""

import aiohttp

from devhost.app.status_links import encode_status_links

WEBHOOKS = "/runtime/webhooks/durabletask"
ODD_ID = "Zoë x&y"
ENCODED = "Zo%C3%AB%20x%26y"
LINKS = ("statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "rewindPostUri",
         "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri")  # fmt: skip


async def fetch(method: str, url: str, body: bytes | None = None) -> tuple[int, dict]:
    """As curl would: the URL sent exactly as given, not re-encoded by the client; a body is
    sent as JSON."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, aiohttp.client.URL(url, encoded=True), data=body, headers=headers
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


def check_links(answer: dict, base_url: str) -> None:
    assert answer["id"] == ODD_ID
    for key in LINKS:
        assert answer[key].startswith(f"{base_url}{WEBHOOKS}/instances/{ENCODED}"), answer[key]
        assert answer[key].isascii() and " " not in answer[key]


def test_the_start_answer_has_encoded_urls_that_answer(host):
    code, headers, answer = host.http("POST", f"{WEBHOOKS}/orchestrators/Waiter/{ENCODED}")
    assert code == 202
    check_links(answer, host.base_url)
    assert headers["Location"] == answer["statusQueryGetUri"]
    code, status = host.run(fetch("GET", answer["statusQueryGetUri"]))
    assert code == 202 and status["instanceId"] == ODD_ID
    event_url = answer["sendEventPostUri"].replace("{eventName}", "Unawaited")
    assert host.run(fetch("POST", event_url, b"null"))[0] == 202
    terminate_url = answer["terminatePostUri"].replace("{text}", "done")
    assert host.run(fetch("POST", terminate_url))[0] == 202
    assert host.wait_for(ODD_ID).output == "done"
    assert host.run(fetch("DELETE", answer["purgeHistoryDeleteUri"])) == (
        200,
        {"instancesDeleted": 1},
    )


def test_create_check_status_response_gives_encoded_urls_through_the_host(host):
    code, headers, answer = host.http("POST", f"/api/start/Waiter?id={ENCODED}")
    assert code == 202
    check_links(answer, host.base_url)
    assert headers["Location"] == answer["statusQueryGetUri"]
    code, status = host.run(fetch("GET", answer["statusQueryGetUri"]))
    assert code == 202 and status["instanceId"] == ODD_ID
    # the SDK's own client reaches the same instance by its raw id (once its first episode has
    # run, it is Running; until then Pending)
    host.wait_for(ODD_ID, statuses=("Running",))
    assert host.run(host.client.get_status(ODD_ID)).runtime_status.value == "Running"
    host.run(host.client.terminate(ODD_ID, "enough"))
    assert host.wait_for(ODD_ID).output == "enough"


def test_only_the_sdks_check_status_shape_is_touched():
    plain = b'{"id": "a b", "note": "/runtime/webhooks/durabletask/instances/a b"}'
    assert encode_status_links({}, plain) is None
    assert encode_status_links({}, b"not json") is None
    assert encode_status_links({}, b'["id"]') is None
    simple = (
        b'{"id": "abc", "statusQueryGetUri": "http://h/runtime/webhooks/durabletask/instances/abc"}'
    )
    assert encode_status_links({}, simple) is None
