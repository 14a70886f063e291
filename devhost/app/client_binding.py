"""The JSON the SDK's DurableOrchestrationClient is built from (the `durableClient` binding)."""

from __future__ import annotations

import json
from urllib.parse import quote

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
INSTANCE_PLACEHOLDER = "INSTANCEID"


def management_urls(base_url: str, hub: str, instance_id: str) -> dict[str, str]:
    """Status and control URLs of one instance, as create_check_status_response hands them out;
    the id percent-encoded, as the Functions host encodes it (the placeholder has nothing to
    encode)."""
    root = f"{base_url}{WEBHOOK_PATH}/instances/{quote(instance_id, safe='')}"
    query = f"?taskHub={hub}&connection=Storage"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{root}{query}",
        "sendEventPostUri": f"{root}/raiseEvent/{{eventName}}{query}",
        "terminatePostUri": f"{root}/terminate?reason={{text}}&taskHub={hub}&connection=Storage",
        "rewindPostUri": f"{root}/rewind?reason={{text}}&taskHub={hub}&connection=Storage",
        "purgeHistoryDeleteUri": f"{root}{query}",
        "restartPostUri": f"{root}/restart{query}",
        "suspendPostUri": f"{root}/suspend?reason={{text}}&taskHub={hub}&connection=Storage",
        "resumePostUri": f"{root}/resume?reason={{text}}&taskHub={hub}&connection=Storage",
    }


def client_binding_json(base_url: str, hub: str) -> str:
    """`base_url` is the host's own origin, e.g. http://127.0.0.1:7071."""
    webhooks = f"{base_url}{WEBHOOK_PATH}"
    return json.dumps(
        {
            "taskHubName": hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{webhooks}/orchestrators/{{functionName}}"
                f"[/{{instanceId}}]?taskHub={hub}&connection=Storage",
                "createAndWaitOnNewInstancePostUri": f"{webhooks}/orchestrators/{{functionName}}"
                "[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}",
            },
            "managementUrls": management_urls(base_url, hub, INSTANCE_PLACEHOLDER),
            "rpcBaseUrl": f"{webhooks}/",
            "requiredQueryStringParameters": "",
        }
    )
