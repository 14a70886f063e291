"""Game entities in Azure Table Storage (tables and keys as the game contract fixes them).

Every query is a point read or a partition query with the key passed as a parameter: a name
is never pasted into a filter string. Updates are ETag-checked; all of a player's actions go
through their User row first, so two racing actions are serialized there and none is lost.

Keys use the player's case-free key (`names.player_key`): "Pat" and "PAT" are one row, and the
User row keeps the name as first typed in `Name`. Every method takes a name in any case.

`Confirmation` (PartitionKey = player key, RowKey "window") decides the confirmation window: its
one row is inserted once, as `State` "confirmed" by ConfirmUser or "expired" by the workflow
when its timer fires, and never changes. Whichever insert lands first wins, so a confirmation
answered with 202 is never overruled by the timer, and none is lost while no workflow listens.

An action changes rows of four tables, which no transaction spans. So the User row's update
(the one under the ETag) also carries `LastAction`: the room, monster and item rows the action
leaves. Reads take those rows from there, so a host killed halfway through writing the tables
leaves the game as the action made it, never half of it; the tables catch up on the next save,
which writes every row that differs from what the tables hold. (After a game's last action
there is no next save: its rows may then lag in the tables for good, while every read is right.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .clients import client_options, per_loop
from .model import Creature, GameState, Item, Monster, Room, User, join_items, split_items
from .names import player_key

USER, MONSTER, ROOM, INVENTORY, LOG = "User", "Monster", "Room", "Inventory", "Log"
CONFIRMATION = "Confirmation"
TABLES = (USER, MONSTER, ROOM, INVENTORY, LOG, CONFIRMATION)
WINDOW_ROW = "window"
CONFIRMED, EXPIRED = "confirmed", "expired"
LAST_ACTION = "LastAction"  # property of the User row: the rows the last action left (JSON)
PARTITION_QUERY = "PartitionKey eq @pk"
C = TypeVar("C", bound=Creature)


class ConflictError(Exception):
    """Someone else changed the row first; read again and retry."""


class UniverseNotReadyError(Exception):
    """The user exists but their monster, room or items do not yet."""


def user_partition(name: str) -> str:
    return player_key(name)[0].upper()


def _creature(entity: dict[str, Any], kind: type[C]) -> C:
    return kind(
        entity["RowKey"],
        bool(entity.get("IsAlive", True)),
        entity.get("CurrentRoom", ""),
        split_items(entity.get("InventoryItems")),
    )


def _creature_entity(partition: str, creature: Creature) -> dict[str, Any]:
    return {
        "PartitionKey": partition,
        "RowKey": creature.name,
        "IsAlive": creature.is_alive,
        "CurrentRoom": creature.current_room,
        "InventoryItems": join_items(creature.inventory_items),
    }


def _user(entity: dict[str, Any]) -> User:
    user = _creature(entity, User)
    user.name = entity.get("Name") or user.name
    return user


def _user_entity(user: User) -> dict[str, Any]:
    return {
        **_creature_entity(user_partition(user.name), user),
        "RowKey": player_key(user.name),
        "Name": user.name,
    }


def _monster(entity: dict[str, Any]) -> Monster:
    return _creature(entity, Monster)


def _monster_entity(user: str, monster: Monster) -> dict[str, Any]:
    """A monster's row lives in its user's partition."""
    return _creature_entity(player_key(user), monster)


def _room(entity: dict[str, Any]) -> Room:
    return Room(
        entity["RowKey"],
        entity.get("Description", ""),
        entity.get("Monster", ""),
        split_items(entity.get("InventoryItems")),
    )


def _room_entity(user: str, room: Room) -> dict[str, Any]:
    return {
        "PartitionKey": player_key(user),
        "RowKey": room.name,
        "Description": room.description,
        "Monster": room.monster,
        "InventoryItems": join_items(room.inventory_items),
    }


def _item(entity: dict[str, Any]) -> Item:
    return Item(
        entity["RowKey"],
        entity.get("Room", ""),
        entity.get("Monster", ""),
        bool(entity.get("IsTreasure", False)),
    )


def _item_entity(user: str, item: Item) -> dict[str, Any]:
    return {
        "PartitionKey": player_key(user),
        "RowKey": item.name,
        "Room": item.room,
        "Monster": item.monster,
        "IsTreasure": item.is_treasure,
    }


def _action_rows(state: GameState) -> str:
    """The room, monster and item rows an action leaves, as JSON for the User row."""
    user = state.user.name
    return json.dumps(
        {
            "room": _room_entity(user, state.room),
            "monster": _monster_entity(user, state.monster),
            "items": [_item_entity(user, item) for item in state.items.values()],
        }
    )


def _holds(stored: dict[str, Any] | None, entity: dict[str, Any]) -> bool:
    """Whether a stored row already says what `entity` says (a missing property is None)."""
    return stored is not None and all(stored.get(k) == v for k, v in entity.items())


def _with_last_action(
    user_entity: dict[str, Any], rooms: list, monsters: list, items: list
) -> tuple[list, list, list]:
    """The rows as the last action left them: its copy in the User row wins over the tables,
    which a crash may have left half written."""
    text = user_entity.get(LAST_ACTION)
    if not text:
        return rooms, monsters, items
    rows = json.loads(text)
    return [rows["room"]], [rows["monster"]], rows["items"]


@dataclass
class LoadedGame:
    state: GameState
    user_etag: str
    stored: dict[tuple[str, str], dict[str, Any]]  # (table, RowKey): the row as the table holds it


class GameRepository:
    """One per event loop (the async clients belong to the loop that made them)."""

    def __init__(self, connection: str) -> None:
        self.service = TableServiceClient.from_connection_string(
            connection, **client_options(connection)
        )
        self.tables = {name: self.service.get_table_client(name) for name in TABLES}
        self._ready = False
        self._creating = asyncio.Lock()

    @classmethod
    def shared(cls, connection: str) -> GameRepository:
        return per_loop(cls, connection)

    async def _table(self, name: str) -> TableClient:
        if not self._ready:
            async with self._creating:
                if not self._ready:
                    for table in TABLES:
                        await self.service.create_table_if_not_exists(table)
                    self._ready = True
        return self.tables[name]

    async def _insert(self, table: str, entity: dict[str, Any]) -> bool:
        """Insert a row; False if it was already there (which activities count as success)."""
        try:
            await (await self._table(table)).create_entity(entity)
            return True
        except ResourceExistsError:
            return False

    async def _partition(self, table: str, partition: str) -> list[dict[str, Any]]:
        client = await self._table(table)
        return [
            e async for e in client.query_entities(PARTITION_QUERY, parameters={"pk": partition})
        ]

    async def _get(self, table: str, partition: str, row: str) -> dict[str, Any] | None:
        try:
            return await (await self._table(table)).get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    # -- creating a universe ------------------------------------------------------------------

    async def claim_user(self, name: str) -> bool:
        """Create the user's row; False if the name is taken (racing claims: one wins)."""
        return await self._insert(USER, _user_entity(User(name)))

    async def release_user(self, name: str) -> None:
        await (await self._table(USER)).delete_entity(user_partition(name), player_key(name))
        await (await self._table(CONFIRMATION)).delete_entity(player_key(name), WINDOW_ROW)

    async def create_user(self, name: str) -> None:
        await self._insert(USER, _user_entity(User(name)))

    async def create_monster(self, user: str, name: str) -> None:
        await self._insert(MONSTER, _monster_entity(user, Monster(name)))

    async def create_room(self, user: str, name: str, description: str) -> None:
        await self._insert(ROOM, _room_entity(user, Room(name, description)))

    async def create_item(self, user: str, name: str, is_treasure: bool) -> None:
        await self._insert(INVENTORY, _item_entity(user, Item(name, is_treasure=is_treasure)))

    # -- reading -------------------------------------------------------------------------------

    async def get_user(self, name: str) -> User | None:
        entity = await self._get(USER, user_partition(name), player_key(name))
        return _user(entity) if entity else None

    async def load_game(self, name: str) -> LoadedGame | None:
        """The whole game of a user; None if unknown; UniverseNotReadyError if half made.

        The four tables are read at once: a GameStatus costs one round trip, not four."""
        user_entity, rooms, monsters, items = await asyncio.gather(
            self._get(USER, user_partition(name), player_key(name)),
            self._partition(ROOM, player_key(name)),
            self._partition(MONSTER, player_key(name)),
            self._partition(INVENTORY, player_key(name)),
        )
        if user_entity is None:
            return None
        stored = {
            (table, entity["RowKey"]): entity
            for table, entities in ((ROOM, rooms), (MONSTER, monsters), (INVENTORY, items))
            for entity in entities
        }
        rooms, monsters, items = _with_last_action(user_entity, rooms, monsters, items)
        if not rooms or not monsters or len(items) < 2:
            raise UniverseNotReadyError(name)
        state = GameState(
            user=_user(user_entity),
            room=_room(rooms[0]),
            monster=_monster(monsters[0]),
            items={e["RowKey"]: _item(e) for e in items},
        )
        return LoadedGame(state, user_entity.metadata["etag"], stored)

    # -- writing -------------------------------------------------------------------------------

    async def commit_action(self, loaded: LoadedGame) -> None:
        """The User row under its ETag (the per-player lock), holding the rows the action leaves
        (see LAST_ACTION): once this returns, the action has happened."""
        user = loaded.state.user
        try:
            await (await self._table(USER)).update_entity(
                {**_user_entity(user), LAST_ACTION: _action_rows(loaded.state)},
                mode=UpdateMode.REPLACE,
                etag=loaded.user_etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as err:
            raise ConflictError(user.name) from err

    async def write_rows(self, loaded: LoadedGame) -> None:
        """The room, monster and item rows of a committed action, where the tables differ."""
        state, user = loaded.state, loaded.state.user.name
        rows = [
            (ROOM, _room_entity(user, state.room)),
            (MONSTER, _monster_entity(user, state.monster)),
            *[(INVENTORY, _item_entity(user, item)) for item in state.items.values()],
        ]
        await asyncio.gather(
            *[
                (await self._table(table)).upsert_entity(entity, mode=UpdateMode.REPLACE)
                for table, entity in rows
                if not _holds(loaded.stored.get((table, entity["RowKey"])), entity)
            ]
        )

    async def _modify(
        self, table: str, partition: str, row: str, change: Callable[[dict[str, Any]], None]
    ) -> None:
        """Read-modify-write under the row's ETag, again while someone else wins."""
        client = await self._table(table)
        while True:
            entity = await client.get_entity(partition, row)
            change(entity)
            try:
                await client.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return
            except ResourceModifiedError:
                continue

    async def place_user(self, user: str, room: str) -> None:
        key = player_key(user)
        await self._modify(USER, user_partition(user), key, lambda e: e.update(CurrentRoom=room))

    async def kill_user(self, user: str) -> None:
        key = player_key(user)
        await self._modify(USER, user_partition(user), key, lambda e: e.update(IsAlive=False))

    async def place_item_in_room(self, user: str, item: str, room: str) -> None:
        key = player_key(user)
        await self._modify(INVENTORY, key, item, lambda e: e.update(Room=room, Monster=""))
        await self._modify(ROOM, key, room, lambda e: _add_item(e, item))

    async def place_monster_in_room(self, user: str, monster: str, room: str) -> None:
        key = player_key(user)
        await self._modify(MONSTER, key, monster, lambda e: e.update(CurrentRoom=room))
        await self._modify(ROOM, key, room, lambda e: e.update(Monster=monster))

    async def place_item_on_monster(self, user: str, item: str, monster: str) -> None:
        key = player_key(user)
        await self._modify(INVENTORY, key, item, lambda e: e.update(Monster=monster, Room=""))
        await self._modify(MONSTER, key, monster, lambda e: _add_item(e, item))

    # -- the confirmation window ---------------------------------------------------------------

    async def _decide_window(self, user: str, state: str) -> tuple[bool, str]:
        """Insert the window's one row as `state` unless it is there: (inserted, its state)."""
        entity = {"PartitionKey": player_key(user), "RowKey": WINDOW_ROW, "State": state}
        if await self._insert(CONFIRMATION, entity):
            return True, state
        existing = await self._get(CONFIRMATION, player_key(user), WINDOW_ROW)
        return False, existing["State"] if existing else state

    async def record_confirmation(self, user: str) -> str | None:
        """Record that the player confirmed; None if now recorded, else the earlier state."""
        inserted, state = await self._decide_window(user, CONFIRMED)
        return None if inserted else state

    async def close_confirmation(self, user: str) -> bool:
        """Close the window (the timer fired); True if the player had confirmed before."""
        _, state = await self._decide_window(user, EXPIRED)
        return state == CONFIRMED

    async def confirmation_state(self, user: str) -> str | None:
        """The window's state: "confirmed", "expired", or None while it is open."""
        entity = await self._get(CONFIRMATION, player_key(user), WINDOW_ROW)
        return entity["State"] if entity else None

    # -- the log -------------------------------------------------------------------------------

    async def append_log(self, user: str, at: str, key: str, text: str) -> None:
        """One narration line; the same key written twice is the same row."""
        entity = {
            "PartitionKey": player_key(user),
            "RowKey": f"{at}|{key}",
            "Time": at,
            "User": user,
            "Text": text,
        }
        await (await self._table(LOG)).upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def read_log(self, user: str) -> list[dict[str, str]]:
        rows = await self._partition(LOG, player_key(user))
        rows.sort(key=lambda e: e["RowKey"])
        return [{"time": e["Time"], "text": e["Text"]} for e in rows]


def _add_item(entity: dict[str, Any], item: str) -> None:
    items = split_items(entity.get("InventoryItems"))
    if item not in items:
        items.append(item)
    entity["InventoryItems"] = join_items(items)
