"""The game on the devhost harness: memory task hub, virtual clock, game tables in Azurite."""

import json
import uuid
from pathlib import Path

import pytest

from devhost.store.azure import AzureStore
from devhost.testing import DurableHarness

REPO = Path(__file__).resolve().parents[2]


class Game:
    """A harness with the game's routes as methods."""

    def __init__(self, host: DurableHarness) -> None:
        self.host = host

    def post(self, route: str, body: object):
        return self.host.http("POST", f"/api/{route}", body)

    def get(self, route: str):
        return self.host.http("GET", f"/api/{route}")

    def new_user(self, name: str):
        return self.post("NewUser", {"name": name})

    def confirm(self, name: str):
        return self.post("ConfirmUser", {"name": name})

    def act(self, name: str, action: str, target: str | None = None, weapon: str | None = None):
        body = {"name": name, "action": action}
        if target is not None:
            body["target"] = target
        if weapon is not None:
            body["with"] = weapon
        return self.post("Action", body)

    def status(self, name: str) -> dict:
        code, _, body = self.get(f"GameStatus/{name}")
        assert code == 200, body
        return body

    def workflow(self, name: str, workflow: str) -> dict:
        code, _, body = self.get(f"CheckStatus/{name}/{workflow}")
        assert code == 200, body
        return body

    def log(self, name: str) -> list[str]:
        code, _, body = self.get(f"GameLog/{name}")
        assert code == 200, body
        return [line["text"] for line in body]

    def start_and_confirm(self, name: str) -> dict:
        code, _, body = self.new_user(name)
        assert code == 202, body
        self.host.idle()
        code, _, body = self.confirm(name)
        assert code == 202, body
        self.host.idle()
        return self.status(name)

    def win(self, name: str) -> None:
        state = self.start_and_confirm(name)
        weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
        treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
        monster = state["monster"]["name"]
        assert self.act(name, "get", weapon)[0] == 200
        assert self.act(name, "kill", monster, weapon)[0] == 200
        assert self.act(name, "get", treasure)[0] == 200
        self.host.idle()


def game_env(azurite) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "DUNGEON_SEED": "test-seed",
        "DUNGEON_CONFIRM_SECONDS": "120",
        "DUNGEON_MONITOR_INTERVAL_SECONDS": "20",
        "DUNGEON_MONITOR_LIFETIME_MINUTES": "60",
    }


@pytest.fixture
def game(azurite):
    """The game with its task hub in memory (the game tables are always in Azurite)."""
    with DurableHarness(REPO, env=game_env(azurite)) as host:
        yield Game(host)


@pytest.fixture(params=["memory", "azure"])
def game_on_each_store(request, azurite, hub_name):
    """The game with its task hub on each store in turn."""
    store = AzureStore(azurite.connection_string, hub_name) if request.param == "azure" else None
    with DurableHarness(REPO, env=game_env(azurite), store=store) as host:
        yield Game(host)


@pytest.fixture
def player():
    """A name no other test uses (the game tables are shared by the session's Azurite)."""
    return f"P{uuid.uuid4().hex[:10]}"


def decode(message: str) -> dict:
    return json.loads(message)
