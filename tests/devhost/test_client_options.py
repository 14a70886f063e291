"""Storage clients skip the environment's proxy lookup for a loopback endpoint only."""

from devhost.azurite import client_options, connection_string

CLOUD = (
    "DefaultEndpointsProtocol=https;AccountName=dungeon;AccountKey=a2V5;"
    "EndpointSuffix=core.windows.net"
)


def test_loopback_endpoints_skip_the_environment_settings():
    assert client_options(connection_string()) == {"use_env_settings": False}
    assert client_options("UseDevelopmentStorage=true") == {"use_env_settings": False}


def test_other_endpoints_keep_the_sdk_default():
    assert client_options(CLOUD) == {}
    mixed = connection_string().replace("127.0.0.1:10001", "queues.example.com")
    assert client_options(mixed) == {}
