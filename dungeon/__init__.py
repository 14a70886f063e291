"""The Durable Dungeon's domain: names, model, rules, universe generation, storage, narration."""
