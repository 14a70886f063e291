"""Warm orchestrations, episode by episode from hand-built histories, checked against full replays.

Each `Instance` runs its episodes as the engine does (the planner turns actions into history),
with verify mode on: every episode also runs as a full replay and must return the same state.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.durable_functions as df
import pytest

from devhost.clock import Clock
from devhost.engine import warm as warm_module
from devhost.engine.planner import Planner
from devhost.engine.replay import HistoryCache, ReplayResult
from devhost.engine.warm import WarmOrchestrations, WarmStats
from devhost.host import DevHost, ListenAddress
from devhost.settings import SettingsError, load_settings
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.taskhub.history import EventType, event, execution_started
from devhost.taskhub.model import RuntimeStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PATTERNS_APP = Path(__file__).parent / "apps" / "patterns"


class Instance:
    """One orchestration instance driven by hand: episodes in, state and scheduled work out."""

    def __init__(self, warm: WarmOrchestrations, function, input_=None, instance_id="i1"):
        self.warm = warm
        self.handle = df.Orchestrator.create(function)
        self.instance_id = instance_id
        self.input = None if input_ is None else json.dumps(input_)
        self.history = HistoryCache()
        self.planner = Planner(instance_id, "e1")
        self.now = T0

    def episode(self, *delivered: dict) -> ReplayResult:
        self.now += timedelta(seconds=1)
        new_events = [event(EventType.OrchestratorStarted, self.now), *delivered]
        result = self.warm.run(
            self.handle, self.instance_id, self.history, new_events, None, self.input
        )
        plan = self.planner.plan(result, self.now, list(delivered))
        new_events.extend(plan.new_events)
        new_events.append(event(EventType.OrchestratorCompleted, self.now))
        self.history.extend(new_events)
        return result

    def start(self) -> ReplayResult:
        return self.episode(execution_started(self.now, "Test", self.instance_id, "e1", self.input))

    def completed(self, task_id: int, value) -> dict:
        return event(
            EventType.TaskCompleted, self.now, TaskScheduledId=task_id, Result=json.dumps(value)
        )

    def failed(self, task_id: int, reason: str) -> dict:
        return event(EventType.TaskFailed, self.now, TaskScheduledId=task_id, Reason=reason)

    def raised(self, name: str, value) -> dict:
        return event(EventType.EventRaised, self.now, Name=name, Input=json.dumps(value))

    def fired(self, timer_id: int) -> dict:
        return event(EventType.TimerFired, self.now, TimerId=timer_id, FireAt=self.now.isoformat())


def verified(limit: int = 100) -> WarmOrchestrations:
    warm = WarmOrchestrations(limit, verify=True)
    assert warm.enabled, warm.describe()
    return warm


def chain(context: df.DurableOrchestrationContext):
    total = 0
    for step in range(int(context.get_input())):
        context.set_custom_status({"step": step, "at": context.current_utc_datetime.isoformat()})
        total += yield context.call_activity("Add", [total, context.new_uuid()])
    return total


def test_a_chain_runs_warm_after_its_first_episode_and_equals_full_replays():
    warm = verified()
    instance = Instance(warm, chain, 5)
    result = instance.start()
    for task_id in range(5):
        result = instance.episode(instance.completed(task_id, task_id + 1))
    assert result.is_done and result.output == 15
    assert (warm.stats.replayed, warm.stats.warm) == (1, 5)
    assert len(warm) == 0, "a finished instance is not kept"


def fan_out(context: df.DurableOrchestrationContext):
    results = yield context.task_all([context.call_activity("Add", i) for i in range(4)])
    return sum(results)


def test_results_of_a_fan_out_arriving_over_several_episodes_equal_full_replays():
    warm = verified()
    instance = Instance(warm, fan_out)
    instance.start()
    instance.episode(instance.completed(2, 20))
    instance.episode(instance.completed(0, 1), instance.completed(3, 30))
    result = instance.episode(instance.completed(1, 10))
    assert result.output == 61
    assert warm.stats.warm == 3


def approval(context: df.DurableOrchestrationContext):
    deadline = context.current_utc_datetime + timedelta(minutes=5)
    timer = context.create_timer(deadline)
    answer = context.wait_for_external_event("Answer")
    winner = yield context.task_any([answer, timer])
    if winner == answer:
        timer.cancel()
        context.set_custom_status("answered")
        yield context.call_activity("Record", answer.result)
        return answer.result
    return "timed out"


def test_a_timer_canceled_in_a_warm_episode_shows_as_canceled_in_the_state():
    warm = verified()
    instance = Instance(warm, approval)
    first = instance.start()
    assert first.actions[0]["compoundActions"][1]["isCanceled"] is False
    result = instance.episode(instance.raised("Answer", "yes"))
    assert result.actions[0]["compoundActions"][1]["isCanceled"] is True
    assert result.custom_status == "answered"
    result = instance.episode(instance.completed(1, None))
    assert result.output == "yes"
    assert warm.stats.warm == 2


@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")
def test_an_event_raised_before_it_is_awaited_is_kept_for_the_wait():
    def early(context: df.DurableOrchestrationContext):
        first = yield context.call_activity("Work", 1)
        second = yield context.wait_for_external_event("Later")
        return [first, second]

    warm = verified()
    instance = Instance(warm, early)
    instance.start()
    instance.episode(instance.raised("Later", "b"))
    result = instance.episode(instance.completed(0, "a"))
    assert result.output == ["a", "b"]


def retried(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    value = yield context.call_activity_with_retry("Flaky", options, "x")
    return value


def test_a_retry_after_a_failure_runs_warm():
    warm = verified()
    instance = Instance(warm, retried)
    instance.start()
    instance.episode(instance.failed(0, "attempt 1 failed"))
    instance.episode(instance.fired(1))
    result = instance.episode(instance.completed(2, "done"))
    assert result.output == "done"
    assert warm.stats.warm == 3


def test_an_exception_in_user_code_falls_back_to_the_full_replay():
    def failing(context: df.DurableOrchestrationContext):
        value = yield context.call_activity("Work", 1)
        raise ValueError(f"cannot use {value}")

    warm = verified()
    instance = Instance(warm, failing)
    instance.start()
    result = instance.episode(instance.completed(0, 7))
    assert result.is_done and "cannot use 7" in result.error
    assert (warm.stats.fell_back, warm.stats.replayed) == (1, 2)


def test_code_that_reads_is_replaying_is_never_kept_warm():
    def curious(context: df.DurableOrchestrationContext):
        before = context.is_replaying
        yield context.call_activity("Work", 1)
        return before

    warm = verified()
    instance = Instance(warm, curious)
    instance.start()
    assert len(warm) == 0
    assert instance.episode(instance.completed(0, 1)).output is True
    assert warm.stats.warm == 0


def test_code_that_reads_the_history_in_a_warm_episode_falls_back_to_a_full_replay():
    def late_reader(context: df.DurableOrchestrationContext):
        yield context.call_activity("Work", 1)
        yield context.call_activity("Work", 2)
        return len(context.histories)

    warm = verified()
    instance = Instance(warm, late_reader)
    instance.start()
    instance.episode(instance.completed(0, 1))
    result = instance.episode(instance.completed(1, 2))
    assert result.output == len(instance.history.events) - 1  # all but the closing event
    assert (warm.stats.warm, warm.stats.fell_back) == (1, 1)


def test_the_least_recently_used_instance_is_evicted_and_replayed_next_time():
    warm = verified(limit=2)
    instances = [Instance(warm, chain, 3, instance_id=f"i{n}") for n in range(3)]
    for instance in instances:
        instance.start()
    assert len(warm) == 2 and warm.stats.evicted == 1
    for instance in reversed(instances):
        assert not instance.episode(instance.completed(0, 1)).is_done
    assert warm.stats.warm == 2, "the two most recent ran warm"
    assert warm.stats.replayed == 3 + 1, "the evicted first instance was replayed in full"


def test_a_history_that_changed_under_the_warm_state_is_replayed():
    warm = verified()
    instance = Instance(warm, chain, 3)
    instance.start()
    reloaded = HistoryCache()  # the same events, read again (after a restart or a rewind)
    reloaded.extend([dict(e) for e in instance.history.events])
    instance.history = reloaded
    instance.episode(instance.completed(0, 1))
    assert warm.stats.replayed == 2 and warm.stats.warm == 0


@pytest.mark.warm_mismatch_expected
def test_verify_mode_keeps_the_replays_answer_and_logs_an_error_when_only_values_differ(caplog):
    calls = []

    def counts_its_runs(context: df.DurableOrchestrationContext):
        calls.append(1)
        return (yield context.call_activity("Work", len(calls)))

    instance = Instance(verified(), counts_its_runs)
    result = instance.start()
    assert result.actions[0]["input"] == "2"  # the full replay's, as Azure would send it
    assert "answers otherwise when its episode is replayed" in caplog.text
    assert "not deterministic" in caplog.text


def coin(context: df.DurableOrchestrationContext):
    """Heads or tails from outside the history: the episode's replays draw again."""
    names = []
    for _ in range(3):
        name = DRAWS.pop(0)
        names.append((yield context.call_activity(name)))
    return names


DRAWS: list[str] = []


def test_a_warm_instance_is_replayed_at_its_end_and_fails_when_it_diverges():
    warm = WarmOrchestrations(100)  # the host's default: no check of each episode
    instance = Instance(warm, coin)
    DRAWS[:] = ["Heads", "Heads", "Heads", "Tails"]  # the replay at the end draws Tails
    instance.start()
    instance.episode(instance.completed(0, "h"))
    result = instance.episode(instance.completed(1, "h"))
    assert result.error is None and warm.stats.warm == 2
    final = instance.episode(instance.completed(2, "h"))
    assert final.is_done
    assert final.error.startswith("Non-Deterministic workflow detected: event 2: ")
    assert "history has activity 'Heads' (task 0); the code now schedules activity 'Tails'" in (
        final.error
    )


def test_a_full_replay_that_no_longer_matches_its_history_fails_the_instance():
    warm = WarmOrchestrations(0)  # full replay every episode
    instance = Instance(warm, coin)
    DRAWS[:] = ["Heads", "Tails", "Tails"]
    instance.start()
    result = instance.episode(instance.completed(0, "h"))
    assert result.is_done and result.actions == []
    assert (
        "event 2: history has activity 'Heads' (task 0); the code now schedules activity "
        "'Tails'" in result.error
    )


def test_each_episode_is_checked_in_verify_mode():
    instance = Instance(verified(), coin)
    DRAWS[:] = ["Heads", "Tails"]  # the episode's own replay draws Tails for new work
    result = instance.start()
    assert (
        "event 2: the code scheduled activity 'Heads' when it ran; replayed, it now "
        "schedules activity 'Tails'" in result.error
    )


def test_a_replay_that_asks_for_less_than_its_history_says_what_it_does_instead():
    def shrinking(context: df.DurableOrchestrationContext):
        yield context.task_all([context.call_activity("Step") for _ in range(DRAWS.pop(0))])
        return "done"

    instance = Instance(WarmOrchestrations(0), shrinking)
    DRAWS[:] = [2, 1]
    instance.start()
    result = instance.episode(instance.completed(0, 1))
    assert "history has activity 'Step' (task 1); the code now completes" in result.error


def test_a_warm_end_that_a_replay_does_not_reach_is_a_divergence():
    def polls_until(context: df.DurableOrchestrationContext):
        while DRAWS.pop(0) == "more":
            yield context.call_activity("Poll")
        return "done"

    warm = WarmOrchestrations(100)
    instance = Instance(warm, polls_until)
    DRAWS[:] = ["more", "stop", "more", "more"]  # the replay at the end wants another poll
    instance.start()
    result = instance.episode(instance.completed(0, None))
    assert "the code completed when it ran; replayed, it now schedules activity 'Poll'" in (
        result.error
    )


def test_an_sdk_other_than_the_verified_one_runs_full_replays(monkeypatch):
    monkeypatch.setattr(warm_module, "VERIFIED_SDK_DIGEST", "0" * 64)
    warm = WarmOrchestrations(100)
    assert not warm.enabled
    assert "full replay every episode" in warm.describe()
    instance = Instance(warm, chain, 1)
    instance.start()
    assert instance.episode(instance.completed(0, 4)).output == 4
    assert warm.stats.warm == warm.stats.replayed == 0


def test_the_cache_size_comes_from_the_environment_and_bad_values_are_refused(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DEVHOST_WARM_INSTANCES", "25")
    assert load_settings(tmp_path, apply_environment=False).warm_instances == 25
    monkeypatch.setenv("DEVHOST_WARM_INSTANCES", "0")
    settings = load_settings(tmp_path, apply_environment=False)
    assert "full replay" in WarmOrchestrations(settings.warm_instances).describe()
    monkeypatch.setenv("DEVHOST_WARM_INSTANCES", "lots")
    with pytest.raises(SettingsError, match="DEVHOST_WARM_INSTANCES must be a whole number"):
        load_settings(tmp_path, apply_environment=False)


@pytest.fixture(params=["memory", "azure"])
def store(request, hub_name):
    if request.param == "azure":
        return AzureStore(request.getfixturevalue("azurite").connection_string, hub_name)
    return MemoryStore()


def test_the_host_runs_the_patterns_warm_and_checks_each_episode(store):
    """The suite's verify mode is on, so the episodes below ran both ways and matched."""

    async def scenario() -> tuple[object, WarmStats, str]:
        host = DevHost(
            load_settings(PATTERNS_APP), store, Clock(), listen=ListenAddress("127.0.0.1", 0)
        )
        await host.start()
        try:
            instance_id = await host.engine.start_new("Sequence", None, json.dumps("Warm"))
            record = await host.engine.wait_for_status(instance_id, {RuntimeStatus.Completed}, 30)
            return record, await host.runner.warm_stats(), host.runner.describe()
        finally:
            await host.stop()

    record, stats, described = asyncio.run(scenario())
    assert json.loads(record.output)[0] == "Hello Warm!"
    assert "each episode checked against a full replay" in described
    assert stats.warm >= 2


def test_events_built_for_the_check_equal_the_sdks_own():
    from azure.durable_functions.models.history.HistoryEvent import HistoryEvent

    fields = {
        "EventType": 5,
        "EventId": -1,
        "IsPlayed": True,
        "Timestamp": "2026-03-01T10:20:30.123456Z",
        "TaskScheduledId": 3,
        "Result": '"x"',
    }
    ours, theirs = warm_module._history_event(fields), HistoryEvent(**fields)
    assert vars(ours) == vars(theirs)
    assert type(ours.timestamp.tzinfo) is type(theirs.timestamp.tzinfo)
    other = {**fields, "Timestamp": "2026-03-01T10:20:30Z"}  # not devhost's format: the SDK's
    assert vars(warm_module._history_event(other)) == vars(HistoryEvent(**other))


def test_the_checks_replay_equals_the_sdks_handle_over_the_same_history():
    instance = Instance(WarmOrchestrations(100), chain, 3)
    instance.start()
    instance.episode(instance.completed(0, 1))
    instance.episode(instance.completed(1, 2))
    new_events = [event(EventType.OrchestratorStarted, instance.now), instance.completed(2, 3)]
    args = (instance.handle, "i1", instance.history, new_events, None, instance.input)
    parsed, sdk = warm_module._replay_parsed(*args), warm_module._full_replay(*args)
    assert parsed == sdk and parsed.is_done and parsed.output == 6
