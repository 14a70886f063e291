"""Universe generation: pure, and reproducible from a seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

MONSTER_ADJECTIVES = (
    "grumpy",
    "ancient",
    "slimy",
    "ravenous",
    "sneaky",
    "towering",
    "feral",
    "cursed",
    "gloomy",
    "wretched",
)
COLOURS = (
    "crimson",
    "emerald",
    "ashen",
    "violet",
    "golden",
    "obsidian",
    "azure",
    "amber",
    "ivory",
    "rust-red",
)
BEASTS = (
    "troll",
    "basilisk",
    "ogre",
    "wyvern",
    "goblin",
    "minotaur",
    "ghoul",
    "kraken",
    "gorgon",
    "manticore",
)
ROOM_NAMES = (
    "Hall of Echoes",
    "Dripping Cellar",
    "Forgotten Vault",
    "Crooked Chapel",
    "Bone Pantry",
    "Mirror Gallery",
    "Sunken Library",
    "Ember Forge",
    "Moss Garden",
    "Rattling Armoury",
)
WALLS = (
    "damp stone walls",
    "walls of black basalt",
    "crumbling brick walls",
    "walls covered in faded murals",
    "walls lined with rusted chains",
    "walls slick with green moss",
    "walls of polished bone",
    "walls hung with torn banners",
)
CONTENTS = (
    "a broken table",
    "piles of old straw",
    "a cold fireplace",
    "shelves of dusty jars",
    "a toppled statue",
    "a pool of still water",
    "heaps of rotten barrels",
    "a circle of burnt candles",
)
WEAPON_ADJECTIVES = (
    "rusty",
    "gleaming",
    "notched",
    "enchanted",
    "heavy",
    "whispering",
    "balanced",
    "jagged",
)
WEAPONS = ("sword", "axe", "mace", "spear", "dagger", "warhammer", "halberd", "crossbow")
TREASURE_ADJECTIVES = (
    "glittering",
    "priceless",
    "forgotten",
    "jewelled",
    "radiant",
    "royal",
    "mysterious",
    "golden",
)
TREASURES = ("crown", "chalice", "amulet", "orb", "sceptre", "ring", "idol", "tiara")


@dataclass(frozen=True)
class Universe:
    monster: str
    room: str
    description: str
    weapon: str
    treasure: str


def _rng(seed: str, user: str, part: str) -> random.Random:
    return random.Random(f"{seed}|{user}|{part}")


def generate_monster(seed: str, user: str) -> str:
    rng = _rng(seed, user, "monster")
    return f"{rng.choice(MONSTER_ADJECTIVES)} {rng.choice(COLOURS)} {rng.choice(BEASTS)}"


def generate_room(seed: str, user: str) -> tuple[str, str]:
    rng = _rng(seed, user, "room")
    name = rng.choice(ROOM_NAMES)
    description = f"A room with {rng.choice(WALLS)} and {rng.choice(CONTENTS)}."
    return name, description


def generate_items(seed: str, user: str) -> tuple[str, str]:
    rng = _rng(seed, user, "items")
    weapon = f"{rng.choice(WEAPON_ADJECTIVES)} {rng.choice(WEAPONS)}"
    treasure = f"{rng.choice(TREASURE_ADJECTIVES)} {rng.choice(TREASURES)}"
    return weapon, treasure


def generate(seed: str, user: str) -> Universe:
    room, description = generate_room(seed, user)
    weapon, treasure = generate_items(seed, user)
    return Universe(generate_monster(seed, user), room, description, weapon, treasure)
