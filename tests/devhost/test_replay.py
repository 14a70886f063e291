"""One orchestrator call through the SDK's own handle, from hand-built histories."""

import json
from datetime import UTC, datetime

import azure.durable_functions as df

from devhost.engine.replay import HistoryCache, build_context, run_orchestrator
from devhost.taskhub.history import EventType, event, execution_started

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def order(context: df.DurableOrchestrationContext):
    reserved = yield context.call_activity("Reserve", context.get_input())
    if reserved != "reserved":
        raise ValueError(f"cannot go on after {reserved!r}")
    return (yield context.call_activity("Charge", reserved))


HANDLE = df.Orchestrator.create(order)
FIRST_EPISODE = [
    event(EventType.OrchestratorStarted, T0),
    execution_started(T0, "order", "inst", "exec", json.dumps({"id": 7})),
]


def scheduled_names(result) -> list[str]:
    return [action["functionName"] for action in result.actions]


def test_the_first_episode_is_not_a_replay_and_asks_for_the_first_activity():
    context = build_context(HistoryCache(), FIRST_EPISODE, "inst", None, '{"id": 7}')
    body = json.loads(context)
    assert body["isReplaying"] is False
    assert [e["IsPlayed"] for e in body["history"]] == [False, False]
    result = run_orchestrator(HANDLE, context)
    assert scheduled_names(result) == ["Reserve"] and not result.is_done


def test_played_events_are_marked_and_actions_are_cumulative():
    cache = HistoryCache()
    cache.extend(
        [*FIRST_EPISODE, event(EventType.TaskScheduled, T0, 0, Name="Reserve", Input=None)]
    )
    new = [
        event(EventType.OrchestratorStarted, T0),
        event(EventType.TaskCompleted, T0, TaskScheduledId=0, Result='"reserved"'),
    ]
    context = build_context(cache, new, "inst", None, '{"id": 7}')
    body = json.loads(context)
    assert body["isReplaying"] is True
    assert [e["IsPlayed"] for e in body["history"]] == [True, True, True, False, False]
    assert scheduled_names(run_orchestrator(HANDLE, context)) == ["Reserve", "Charge"]


def test_an_orchestrator_that_raises_fails_with_its_message_and_the_actions_so_far():
    cache = HistoryCache()
    cache.extend(
        [*FIRST_EPISODE, event(EventType.TaskScheduled, T0, 0, Name="Reserve", Input=None)]
    )
    new = [
        event(EventType.OrchestratorStarted, T0),
        event(EventType.TaskCompleted, T0, TaskScheduledId=0, Result='"sold out"'),
    ]
    result = run_orchestrator(HANDLE, build_context(cache, new, "inst", None, None))
    assert result.is_done and "cannot go on after 'sold out'" in result.error
    assert scheduled_names(result) == ["Reserve"]


def test_an_event_offered_as_new_is_serialized_once_and_kept_when_it_joins_history():
    cache = HistoryCache()
    new = list(FIRST_EPISODE)
    build_context(cache, new, "inst", None, None)
    cache.extend(new)
    assert [json.loads(text)["IsPlayed"] for text in cache.played_json] == [True, True]
    assert json.loads(cache.played_json[1])["Name"] == "order"
