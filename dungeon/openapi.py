"""The OpenAPI 3 description of the game's routes (served at GET /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from .workflows import ALL

ERROR = {
    "description": "A clear error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _json(schema: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _path_param(name: str, description: str, enum: tuple[str, ...] | None = None) -> dict:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = list(enum)
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


USER = _path_param("username", "The player's name")
SCHEMAS = {
    "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
    "Name": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9 ._-]{1,32}$"}},
    },
    "Started": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "workflows": {"type": "object"}},
    },
    "Message": {"type": "object", "properties": {"message": {"type": "string"}}},
    "Action": {
        "type": "object",
        "required": ["name", "action", "target"],
        "properties": {
            "name": {"type": "string"},
            "action": {"type": "string", "enum": ["get", "kill"]},
            "target": {"type": "string"},
            "with": {"type": "string"},
        },
    },
    "WorkflowStatus": {
        "type": "object",
        "properties": {
            "created": {"type": "string", "format": "date-time"},
            "status": {
                "type": "string",
                "enum": ["Running", "Completed", "Failed", "Terminated", "Pending"],
            },
            "customStatus": {},
            "output": {},
        },
    },
    "GameStatus": {
        "type": "object",
        "properties": {
            "user": {"type": "object"},
            "room": {"type": "object"},
            "monster": {"type": "object"},
            "inventory": {"type": "array", "items": {"type": "object"}},
        },
    },
    "LogLine": {
        "type": "object",
        "properties": {"time": {"type": "string"}, "text": {"type": "string"}},
    },
    "Stats": {
        "type": "object",
        "properties": {k: {"type": "integer"} for k in ("created", "confirmed", "dead", "winners")},
    },
}


def document(server: str = "/api") -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "The Durable Dungeon",
            "version": "1.0.0",
            "description": "A turn-based adventure played by durable workflows.",
        },
        "servers": [{"url": server}],
        "paths": {
            "/NewUser": {
                "post": {
                    "summary": "Create a player and their universe",
                    "requestBody": _body("Name"),
                    "responses": {
                        "202": _json("Started", "Workflows started"),
                        "400": ERROR,
                        "409": ERROR,
                    },
                }
            },
            "/ConfirmUser": {
                "post": {
                    "summary": "Confirm within the window, or die",
                    "requestBody": _body("Name"),
                    "responses": {
                        "202": _json("Message", "Confirmed"),
                        "400": ERROR,
                        "404": ERROR,
                        "409": ERROR,
                    },
                }
            },
            "/CheckStatus/{username}/{workflow}": {
                "get": {
                    "summary": "The status of one of the player's workflows",
                    "parameters": [USER, _path_param("workflow", "The workflow", ALL)],
                    "responses": {"200": _json("WorkflowStatus"), "400": ERROR, "404": ERROR},
                }
            },
            "/GameStatus/{username}": {
                "get": {
                    "summary": "The player, their room, the monster and the items",
                    "parameters": [USER],
                    "responses": {"200": _json("GameStatus"), "404": ERROR},
                }
            },
            "/GameLog/{username}": {
                "get": {
                    "summary": "The player's story, in order",
                    "parameters": [USER],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/LogLine"},
                                    }
                                }
                            },
                        },
                        "404": ERROR,
                    },
                }
            },
            "/Action": {
                "post": {
                    "summary": "get an item, or kill the monster with one",
                    "requestBody": _body("Action"),
                    "responses": {
                        "200": _json("Message"),
                        "400": ERROR,
                        "404": ERROR,
                        "409": ERROR,
                    },
                }
            },
            "/Stats": {
                "get": {
                    "summary": "Users created, confirmed, dead and winners",
                    "responses": {"200": _json("Stats")},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This description",
                    "responses": {"200": {"description": "OpenAPI 3"}},
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }
