"""Triggers that start functions from outside HTTP and the task hub: timer, queue and blob."""
