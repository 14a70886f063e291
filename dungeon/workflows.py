"""Workflow (orchestrator) names and the instance ids derived from a user name."""

from __future__ import annotations

from .names import player_key

PARALLEL = "RunUserParallelWorkflow"
CONFIRMATION = "UserConfirmationWorkflow"
SEQUENTIAL = "RunUserSequentialWorkflow"
USER_MONITOR = "UserMonitorWorkflow"
GAME_MONITOR = "GameMonitorWorkflow"
ALL = (PARALLEL, CONFIRMATION, SEQUENTIAL, USER_MONITOR, GAME_MONITOR)

APPROVAL_EVENT = "ApprovalTask"
KILL_MONSTER_EVENT = "KillMonster"
GOT_TREASURE_EVENT = "GotTreasure"


def instance_id(workflow: str, user: str) -> str:
    """One instance per user and workflow, so every lookup is a direct read (any case)."""
    return f"{workflow}:{player_key(user)}"
