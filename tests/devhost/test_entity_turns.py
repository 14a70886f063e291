"""Which waiting requests an entity takes now (`engine/entity_turns.py`), from hand-built inboxes,
and the gRPC entity messages the codec refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devhost.engine.entities import EntityRequest, request_message
from devhost.engine.entity_turns import take_turn
from devhost.grpc.codec import episode_answer
from devhost.grpc.entity_codec import entity_action, operation_outcome
from devhost.grpc.proto import pb
from devhost.taskhub.history import format_time
from devhost.taskhub.rules import MAX_PAYLOAD_CHARS

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ENTITY = "@counter@a"


def inbox(*requests: EntityRequest):
    return [request_message(ENTITY, r, NOW) for r in requests]


def op(request_id: str, parent: str | None = None, due: datetime | None = None) -> EntityRequest:
    request = EntityRequest(request_id, "add", True, "1", parent=parent)
    request.due = None if due is None else format_time(due)
    return request


def lock(request_id: str, parent: str) -> EntityRequest:
    return EntityRequest(request_id, "", False, None, parent=parent, lock_set=[ENTITY])


def unlock(request_id: str, parent: str) -> EntityRequest:
    return EntityRequest(request_id, "", True, None, parent=parent, unlock=True)


def ids(turn) -> list[str]:
    return [step.id for step in turn.steps]


def test_requests_are_taken_in_order_and_repeats_only_consumed():
    turn = take_turn(inbox(op("1"), op("2"), op("1")), None, {"0"}, NOW)
    assert ids(turn) == ["1", "2"] and len(turn.consumed) == 3


def test_a_deferred_signal_waits_for_its_moment():
    later = NOW + timedelta(hours=1)
    waiting = inbox(op("late", due=later), op("now"))
    turn = take_turn(waiting, None, set(), NOW)
    assert ids(turn) == ["now"] and turn.next_due == later
    assert ids(take_turn(waiting, None, set(), later)) == ["late", "now"]


def test_a_lock_holds_back_everyone_but_its_orchestration_until_the_unlock():
    waiting = inbox(lock("cs", "orch"), op("other"), op("mine", parent="orch"), unlock("u", "orch"))
    first = take_turn(waiting, None, set(), NOW)
    assert ids(first) == ["cs", "mine", "u"] and first.lock is None
    rest = [m for m in waiting if m.message_id not in first.consumed]
    assert ids(take_turn(rest, first.lock, {"cs", "mine", "u"}, NOW)) == ["other"]


def test_a_second_lock_waits_and_a_strangers_unlock_is_dropped():
    turn = take_turn(inbox(lock("cs2", "two"), unlock("u", "stranger")), "one", set(), NOW)
    assert ids(turn) == [] and turn.lock == "one" and len(turn.consumed) == 1


def entity_message(**fields) -> pb.OrchestratorResponse:
    action = pb.OrchestratorAction(id=1, sendEntityMessage=pb.SendEntityMessageAction(**fields))
    return pb.OrchestratorResponse(actions=[action])


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        (
            {"entityOperationSignaled": pb.EntityOperationSignaledEvent(operation="add")},
            "'' is not an entity id (@name@key)",
        ),
        (
            {
                "entityOperationCalled": pb.EntityOperationCalledEvent(
                    operation="add", targetInstanceId={"value": "an-orchestration"}
                )
            },
            "'an-orchestration' is not an entity id (@name@key)",
        ),
        (
            {
                "entityLockRequested": pb.EntityLockRequestedEvent(
                    criticalSectionId="cs", lockSet=[ENTITY], position=3
                )
            },
            "a lock request starts at the first of a non-empty lock set",
        ),
        (
            {"entityLockRequested": pb.EntityLockRequestedEvent(criticalSectionId="cs")},
            "a lock request starts at the first of a non-empty lock set",
        ),
    ],
)
def test_an_entity_message_to_no_entity_fails_the_orchestration(fields, sentence):
    answer = episode_answer(entity_message(**fields))
    assert answer.is_done and answer.actions == []
    assert sentence in (answer.error or "")


@pytest.mark.parametrize(
    ("start", "sentence"),
    [
        (pb.StartNewOrchestrationAction(name="o", instanceId="a/b"), "must not contain /"),
        (
            pb.StartNewOrchestrationAction(
                name="o", instanceId="big", input={"value": "x" * (MAX_PAYLOAD_CHARS + 1)}
            ),
            "devhost keeps at most",
        ),
    ],
)
def test_an_operation_that_starts_a_refused_orchestration_fails(start, sentence):
    result = pb.EntityBatchResult(
        results=[pb.OperationResult(success=pb.OperationResultSuccess())],
        actions=[pb.OperationAction(id=0, startNewOrchestration=start)],
    )
    _, outcome = operation_outcome(ENTITY, op("1"), result)
    assert outcome.is_error and outcome.starts == []
    assert sentence in outcome.failure["ErrorMessage"]


def test_a_lock_set_is_sorted_and_deduplicated_after_its_names_are_lower_cased():
    lock = pb.EntityLockRequestedEvent(
        criticalSectionId="cs", lockSet=["@Counter@b", "@counter@a", "@counter@b"]
    )
    action = entity_action(pb.SendEntityMessageAction(entityLockRequested=lock))
    assert action["lockSet"] == ["@counter@a", "@counter@b"]
    assert action["instanceId"] == "@counter@a"
