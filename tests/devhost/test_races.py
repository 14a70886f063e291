"""Requests that race the engine's own work on the same instance lose nothing."""

import time

WEBHOOKS = "/runtime/webhooks/durabletask"


def test_an_event_raised_while_its_sub_orchestration_is_created_is_delivered(host):
    for attempt in range(15):
        parent = host.start("WaitingParent", instance_id=f"parent-{attempt}")
        deadline = time.monotonic() + 10
        while True:  # 404 until the child exists; raise it the moment it does
            code, _, body = host.http(
                "POST", f"{WEBHOOKS}/instances/{parent}-child/raiseEvent/Never", attempt
            )
            if code == 202:
                break
            assert code == 404 and time.monotonic() < deadline, (code, body)
        assert host.wait_for(parent, timeout=15).output == attempt
