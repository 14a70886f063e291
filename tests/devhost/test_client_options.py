"""Storage clients skip the environment's proxy lookup for a loopback endpoint only: devhost's
own clients, and the game's (its own copy, since the game deploys to Azure without devhost)."""

import pytest

from devhost import azurite
from devhost.azurite import connection_string
from dungeon import clients

CLOUD = (
    "DefaultEndpointsProtocol=https;AccountName=dungeon;AccountKey=a2V5;"
    "EndpointSuffix=core.windows.net"
)
BOTH = pytest.mark.parametrize(
    "client_options", [azurite.client_options, clients.client_options], ids=["devhost", "game"]
)


@BOTH
def test_loopback_endpoints_skip_the_environment_settings(client_options):
    assert client_options(connection_string()) == {"use_env_settings": False}
    assert client_options("UseDevelopmentStorage=true") == {"use_env_settings": False}


@BOTH
def test_other_endpoints_keep_the_sdk_default(client_options):
    assert client_options(CLOUD) == {}
    mixed = connection_string().replace("127.0.0.1:10001", "queues.example.com")
    assert client_options(mixed) == {}
