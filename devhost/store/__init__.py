"""Task-hub stores: memory (tests, virtual clock) and Azure Storage."""

from .base import InstanceExistsError, TaskHubStore
from .memory import MemoryStore

__all__ = ["InstanceExistsError", "MemoryStore", "TaskHubStore"]
