"""Timer triggers on the virtual clock: runOnStartup, and the TimerRequest the function gets."""

import json
import sys
from datetime import datetime, timedelta

import pytest

from devhost.testing import DurableHarness

from .storage_checks import eventually

TICK = """
import azure.functions as func

runs = []


def main(timer: func.TimerRequest) -> None:
    runs.append((timer.past_due, timer.schedule_status["Next"]))
"""


def timer_app(root, **trigger):
    binding = {"name": "timer", "type": "timerTrigger", "direction": "in", **trigger}
    (root / "host.json").write_text('{"version": "2.0"}')
    (root / "Tick").mkdir()
    (root / "Tick" / "function.json").write_text(json.dumps({"bindings": [binding]}))
    (root / "Tick" / "__init__.py").write_text(TICK)
    return root


def runs() -> list:
    return sys.modules["__app__.Tick"].runs


def test_run_on_startup_runs_once_at_start_and_keeps_the_coming_occurrence(tmp_path, monkeypatch):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    app = timer_app(tmp_path, schedule="0 */10 * * * *", runOnStartup=True)
    with DurableHarness(app) as host:
        start = host.clock.now()
        coming = (start + timedelta(minutes=10 - start.minute % 10)).replace(
            second=0, microsecond=0
        )
        assert runs() == [(False, coming.isoformat())]
        host.advance(seconds=(coming - start).total_seconds())
        assert runs()[1:] == [(False, coming.isoformat())]
        host.advance(minutes=30)
        assert len(runs()) == 5


def test_a_timespan_schedule_fires_at_its_interval(tmp_path, monkeypatch):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    with DurableHarness(timer_app(tmp_path, schedule="00:00:30")) as host:
        host.advance(minutes=2)
        assert len(runs()) == 4


@pytest.mark.slow
def test_on_the_real_clock_a_timer_fires_on_its_seconds(tmp_path, monkeypatch):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    with DurableHarness(timer_app(tmp_path, schedule="* * * * * *"), virtual_clock=False):
        eventually(lambda: len(runs()) >= 2, timeout=10, what="two ticks, a second apart")
    first, second = (datetime.fromisoformat(next_) for _, next_ in runs()[:2])
    assert second - first == timedelta(seconds=1)
