"""Fixtures for devhost tests: the patterns app on the harness (memory store, virtual clock)."""

from pathlib import Path

import pytest

from devhost.testing import DurableHarness

PATTERNS_APP = Path(__file__).parent / "apps" / "patterns"


@pytest.fixture
def host():
    with DurableHarness(PATTERNS_APP) as harness:
        yield harness
