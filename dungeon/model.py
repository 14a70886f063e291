"""The game's entities, and their JSON shapes for GameStatus (camelCase, as the contract fixes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def split_items(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item]


def join_items(items: list[str]) -> str:
    return ",".join(items)


@dataclass
class Creature:
    """A user or a monster: alive or not, in a room, holding items."""

    name: str
    is_alive: bool = True
    current_room: str = ""
    inventory_items: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "isAlive": self.is_alive,
            "currentRoom": self.current_room,
            "inventoryItems": join_items(self.inventory_items),
        }


class User(Creature):
    """The player."""


class Monster(Creature):
    """The monster stalking the player."""


@dataclass
class Room:
    name: str
    description: str = ""
    monster: str = ""
    inventory_items: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "monster": self.monster,
            "inventoryItems": join_items(self.inventory_items),
        }


@dataclass
class Item:
    name: str
    room: str = ""
    monster: str = ""
    is_treasure: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "room": self.room,
            "monster": self.monster,
            "isTreasure": self.is_treasure,
        }


@dataclass
class GameState:
    """Everything one user's game is made of."""

    user: User
    room: Room
    monster: Monster
    items: dict[str, Item]

    @property
    def treasure_taken(self) -> bool:
        return any(
            self.items[name].is_treasure for name in self.user.inventory_items if name in self.items
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user.to_json(),
            "room": self.room.to_json(),
            "monster": self.monster.to_json(),
            "inventory": [item.to_json() for item in self.items.values()],
        }
