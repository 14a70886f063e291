"""Microsoft's v1 samples run unchanged: started over HTTP, they finish as documented."""

import json
import re
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness

from .storage_checks import listing

SAMPLES = Path(__file__).parent / "apps" / "samples"


@pytest.fixture
def storage(azurite, monkeypatch):
    """The samples' `AzureWebJobsStorage`, pointed at the test Azurite."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    return azurite.connection_string


def start_over_http(host, orchestrator, body=None, method="POST"):
    """As the READMEs say: call the HTTP starter, then follow statusQueryGetUri."""
    code, _, started = host.http(method, f"/api/orchestrators/{orchestrator}", body)
    assert code == 202, started
    assert started["statusQueryGetUri"].startswith(host.base_url)
    return started


def finished(host, started):
    host.wait_for(started["id"])
    path = started["statusQueryGetUri"][len(host.base_url) :]
    code, _, status = host.http("GET", path)
    assert code == 200
    assert status["runtimeStatus"] == "Completed", status
    return status


@pytest.mark.parametrize(
    ("sample", "orchestrator", "output", "custom_status"),
    [
        (
            "function_chaining",
            "E1_HelloSequence",
            ["Hello Tokyo!", "Hello Seattle!", "Hello London!"],
            None,
        ),
        ("function_chaining_custom_status", "DurableOrchestration", 3, "1 -> 2 -> 3"),
        ("simple_sub_orchestration", "DurableOrchestrator", "Hello Seattle!", None),
        ("counter_entity", "DurableOrchestration", 3, None),
        ("serialize_arguments", "DurableOrchestration", 5, None),
    ],
)
@pytest.mark.parametrize("store", ["memory", "azure"])
def test_sample_completes_with_the_documented_output(
    storage, hub_name, store, sample, orchestrator, output, custom_status
):
    task_hub = AzureStore(storage, hub_name) if store == "azure" else MemoryStore()
    with DurableHarness(SAMPLES / sample, store=task_hub) as host:
        # The entity, custom-status, sub-orchestration and serialization READMEs say GET.
        method = "POST" if sample == "function_chaining" else "GET"
        status = finished(host, start_over_http(host, orchestrator, method=method))
        assert status["output"] == output
        assert status["customStatus"] == custom_status


def test_fan_in_fan_out_backs_up_its_own_files_to_blobs(storage):
    """E2_BackupSiteContent copies every E2_ file to the `backups` container and sums the bytes."""
    app = SAMPLES / "fan_in_fan_out"
    files = [p for p in app.glob("E2_*/*") if p.name in ("__init__.py", "function.json")]
    with DurableHarness(app) as host:
        status = finished(host, start_over_http(host, "E2_BackupSiteContent", str(app)))
    assert status["output"] == sum(p.stat().st_size for p in files)
    backups = BlobServiceClient.from_connection_string(storage).get_container_client("backups")
    names = {b.name for b in backups.list_blobs()}
    assert {f"{p.parent.name}_{p.name}" for p in files} <= names


def sent_challenge(caplog) -> str:
    """The code SendSMSChallenge would have texted: devhost logs what a twilioSms binding sends."""
    for record in caplog.records:
        found = re.search(r"would have sent: (\{.*\})", record.getMessage())
        if found:
            return json.loads(found.group(1))["body"].rsplit(" ", 1)[1]
    raise AssertionError("no twilioSms message was logged")


def test_human_interaction_accepts_the_texted_code(caplog):
    assert "Warning: SendSMSChallenge: binding 'message' (twilioSms)" in listing(
        SAMPLES / "human_interaction"
    )
    with DurableHarness(SAMPLES / "human_interaction") as host:
        started = start_over_http(host, "E4_SMSPhoneVerification", "+14255550123")
        host.idle()
        code = sent_challenge(caplog)
        wrong = str(int(code) + 1)
        host.run(host.client.raise_event(started["id"], "SmsChallengeResponse", wrong))
        host.run(host.client.raise_event(started["id"], "SmsChallengeResponse", code))
        assert finished(host, started)["output"] is True


def test_human_interaction_times_out_after_three_minutes_of_virtual_time():
    with DurableHarness(SAMPLES / "human_interaction") as host:
        started = start_over_http(host, "E4_SMSPhoneVerification", "+14255550123")
        host.advance(seconds=179)
        assert host.status(started["id"]).runtime_status.value == "Running"
        host.advance(seconds=1)
        assert finished(host, started)["output"] is False
