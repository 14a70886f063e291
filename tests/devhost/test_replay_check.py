"""Replay checks: recorded histories against changed code, on the harness and from the CLI."""

import json
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import pytest

from devhost.azurite import connection_string, free_port
from devhost.commands.cli import main
from devhost.store.azure import AzureStore
from devhost.testing import DurableHarness, HistoryError

PATTERNS_APP = Path(__file__).parent / "apps" / "patterns"
ORDER = {"order": 7}


def shop(checkout) -> df.DFApp:
    """An app with `checkout` as its Checkout orchestrator and a few activities."""
    app = df.DFApp()
    app.orchestration_trigger(context_name="context", orchestration="Checkout")(checkout)
    for name in ("Reserve", "Charge", "Hold", "Audit"):

        def step(order: dict, name: str = name) -> str:
            return f"{name} {order['order']}"

        step.__name__ = name
        app.activity_trigger(input_name="order")(step)
    return app


def recorded(context):
    order = context.get_input()
    yield context.call_activity("Reserve", order)
    yield context.call_activity("Charge", order)
    return (yield context.wait_for_external_event("Shipped"))


def reordered(context):
    order = context.get_input()
    yield context.call_activity("Charge", order)
    yield context.call_activity("Reserve", order)
    return (yield context.wait_for_external_event("Shipped"))


def renamed(context):
    order = context.get_input()
    yield context.call_activity("Hold", order)
    yield context.call_activity("Charge", order)
    return (yield context.wait_for_external_event("Shipped"))


def timer_first(context):
    order = context.get_input()
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    yield context.call_activity("Reserve", order)
    yield context.call_activity("Charge", order)
    return (yield context.wait_for_external_event("Shipped"))


def yield_removed_first(context):
    order = context.get_input()
    context.call_activity("Reserve", order)
    yield context.call_activity("Charge", order)
    return (yield context.wait_for_external_event("Shipped"))


def yield_removed_last(context):
    order = context.get_input()
    yield context.call_activity("Reserve", order)
    context.call_activity("Charge", order)
    return (yield context.wait_for_external_event("Shipped"))


def fails_now(context):
    raise ValueError(f"no longer takes {context.get_input()}")
    yield  # a generator, as orchestrators are


def appended(context):
    order = context.get_input()
    yield context.call_activity("Reserve", order)
    yield context.call_activity("Charge", order)
    yield context.call_activity("Audit", order)
    return (yield context.wait_for_external_event("Shipped"))


@pytest.fixture(scope="module")
def checkout_history():
    """A Checkout that reserved, charged, and waits for Shipped, recorded with the first code."""
    with DurableHarness.from_app(shop(recorded)) as host:
        instance_id = host.start("Checkout", ORDER)
        host.idle()
        history = host.history(instance_id)
        assert host.waiting_on(instance_id)["events"] == ["Shipped"]
    return history


def replay_with(checkout, history, name=None):
    with DurableHarness.from_app(shop(checkout)) as host:
        return host.replay(history, name)


def test_unchanged_code_replays_as_recorded(checkout_history):
    result = replay_with(recorded, checkout_history)
    assert result.ok, result.message
    assert result.event_index is None


def test_steps_added_after_the_recorded_ones_pass(checkout_history):
    assert replay_with(appended, checkout_history).ok


@pytest.mark.parametrize(
    ("checkout", "expected"),
    [
        (
            reordered,
            "event 2: history has activity 'Reserve' (task 0); "
            "the code now schedules activity 'Charge'",
        ),
        (
            renamed,
            "event 2: history has activity 'Reserve' (task 0); "
            "the code now schedules activity 'Hold'",
        ),
        (
            timer_first,
            "event 2: history has activity 'Reserve' (task 0); the code now schedules a timer due ",
        ),
        (
            yield_removed_first,
            "event 2: history has activity 'Reserve' (task 0); "
            "the code now schedules activity 'Charge'",
        ),
        (
            yield_removed_last,
            "event 6: history has activity 'Charge' (task 1); "
            "the code now schedules nothing in its place",
        ),
        (
            fails_now,
            "event 2: history has activity 'Reserve' (task 0); "
            "the code now fails: no longer takes {'order': 7}",
        ),
    ],
    ids=[
        "reordered",
        "renamed",
        "timer-added-first",
        "yield-removed",
        "last-yield-removed",
        "now-fails",
    ],
)
def test_changes_that_break_running_instances_are_caught(checkout_history, checkout, expected):
    result = replay_with(checkout, checkout_history)
    assert not result.ok
    assert result.message.startswith(expected), result.message
    assert checkout_history[result.event_index]["EventType"] == 4  # the recorded TaskScheduled


def test_code_that_now_finishes_before_recorded_episodes_is_caught():
    def waits_for_go(context):
        go = yield context.wait_for_external_event("Go")
        return (yield context.call_activity("Reserve", go))

    def returns_at_once(context):
        return "done"
        yield  # a generator, as orchestrators are

    with DurableHarness.from_app(shop(waits_for_go)) as host:
        instance_id = host.start("Checkout")
        host.raise_event(instance_id, "Go", ORDER)
        host.wait_for(instance_id)
        history = host.history(instance_id)
    result = replay_with(returns_at_once, history)
    assert not result.ok
    assert result.message == "event 3: the history goes on here; the code now completes before it"


def test_every_pattern_replays_as_recorded_on_unchanged_code():
    """Retries, timers, sub-orchestrations, held events, entities, continue-as-new."""
    runs = [
        ("Sequence", "Lima"),
        ("FanOut", 5),
        ("Timer", 3),
        ("Approval", None),
        ("Collect", None),
        ("BothEvents", None),
        ("Parent", None),
        ("ParentOfFailing", None),
        ("CatchActivity", None),
        ("Retry", "replay-retry"),
        ("ParallelRetry", "replay-par"),
        ("SubRetry", "replay-sub"),
        ("Counter", None),
        ("TallyUser", "replay"),
    ]
    with DurableHarness(PATTERNS_APP) as host:
        ids = [host.start(name, value) for name, value in runs]
        for instance_id, (name, _) in zip(ids, runs, strict=True):
            if name in ("Collect", "Counter"):
                for item in ("a", "b", "c"):
                    host.raise_event(instance_id, {"Collect": "Item"}.get(name, "Ping"), item)
            if name == "BothEvents":
                host.raise_event(instance_id, "B", 2)
                host.raise_event(instance_id, "A", 1)
        host.advance(minutes=3)
        for instance_id, (name, _) in zip(ids, runs, strict=True):
            assert host.wait_for(instance_id).runtime_status.value == "Completed", name
            history = host.history(instance_id)
            result = host.replay(history)
            assert result.ok, f"{name}: {result.message}"


def test_a_history_that_is_not_one_is_refused_with_the_reason(checkout_history):
    with DurableHarness.from_app(shop(recorded)) as host:
        with pytest.raises(HistoryError, match="a history is a JSON list of events"):
            host.replay({"EventType": 0})
        with pytest.raises(HistoryError, match="event 1: not a history event"):
            host.replay([checkout_history[0], {"Name": "x"}])
        with pytest.raises(HistoryError, match="no ExecutionStarted event"):
            host.replay(checkout_history[:1])
        with pytest.raises(HistoryError, match="no orchestrator named 'Nope'.*Checkout"):
            host.replay(checkout_history, "Nope")


# -- the command line ----------------------------------------------------------------------------

APP_FILE = """
import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="order")
def Reserve(order):
    return "reserved"


@app.activity_trigger(input_name="order")
def Charge(order):
    return "charged"


@app.orchestration_trigger(context_name="context")
def Checkout(context):
    yield context.call_activity("{first}", 1)
    yield context.call_activity("{second}", 1)
    return (yield context.wait_for_external_event("Shipped"))
"""


def app_folder(path: Path, first: str, second: str) -> Path:
    path.mkdir()
    (path / "function_app.py").write_text(APP_FILE.format(first=first, second=second))
    return path


def test_the_command_exits_0_when_the_history_matches_and_1_with_the_diff(
    tmp_path, checkout_history, capsys
):
    history_file = tmp_path / "checkout.json"
    history_file.write_text(json.dumps(checkout_history))
    same = app_folder(tmp_path / "same", "Reserve", "Charge")
    swapped = app_folder(tmp_path / "swapped", "Charge", "Reserve")
    assert main(["replay", str(history_file), "--app-dir", str(same)]) == 0
    assert "events replay as recorded" in capsys.readouterr().out
    assert main(["replay", str(history_file), "--app-dir", str(swapped)]) == 1
    assert (
        "event 2: history has activity 'Reserve' (task 0); the code now schedules activity 'Charge'"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"EventType": 0}', "a history is a JSON list of events"),
        ("[]", "no ExecutionStarted event"),
    ],
)
def test_the_command_exits_2_on_input_it_cannot_check(tmp_path, capsys, content, expected):
    history_file = tmp_path / "history.json"
    history_file.write_text(content)
    app = app_folder(tmp_path / "app", "Reserve", "Charge")
    assert main(["replay", str(history_file), "--app-dir", str(app)]) == 2
    assert expected in capsys.readouterr().err


def test_the_command_names_an_unknown_orchestrator(tmp_path, checkout_history, capsys):
    history_file = tmp_path / "history.json"
    history_file.write_text(json.dumps(checkout_history))
    app = app_folder(tmp_path / "app", "Reserve", "Charge")
    assert main(["replay", str(history_file), "--app-dir", str(app), "--name", "Gone"]) == 2
    assert "no orchestrator named 'Gone'" in capsys.readouterr().err


def hub_app(path: Path, hub: str, first: str, second: str) -> Path:
    app_folder(path, first, second)
    host_json = {"version": "2.0", "extensions": {"durableTask": {"hubName": hub}}}
    (path / "host.json").write_text(json.dumps(host_json))
    return path


def test_the_hub_is_checked_beside_its_running_host(
    tmp_path, azurite, hub_name, monkeypatch, capsys
):
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    running = hub_app(tmp_path / "running", hub_name, "Reserve", "Charge")
    swapped = hub_app(tmp_path / "swapped", hub_name, "Charge", "Reserve")
    store = AzureStore(azurite.connection_string, hub_name)
    with DurableHarness(running, store=store) as host:
        waiting = [host.start("Checkout", instance_id=f"order-{n}") for n in (1, 2)]
        done = host.start("Checkout", instance_id="order-3")
        host.raise_event(done, "Shipped", "today")
        host.wait_for(done)
        assert all(host.waiting_on(i)["events"] == ["Shipped"] for i in waiting)
        assert main(["replay", "--hub", "--app-dir", str(running)]) == 0
        out = capsys.readouterr().out
        assert "2 unfinished instances" in out and "0 diverged" in out
        assert main(["replay", "--hub", "--app-dir", str(swapped)]) == 1
        out = capsys.readouterr().out
        for instance_id in waiting:
            assert (
                f"DIVERGED: {instance_id} (Checkout): event 2: history has activity 'Reserve'"
                in out
            )
        assert "order-3" not in out, "finished instances are not replayed"


def test_the_command_names_a_hub_that_does_not_exist(tmp_path, azurite, monkeypatch, capsys):
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    app = hub_app(tmp_path / "app", "NoSuchHub", "Reserve", "Charge")
    assert main(["replay", "--hub", "--app-dir", str(app)]) == 2
    assert "no task hub named 'NoSuchHub'" in capsys.readouterr().err


@pytest.mark.azure
def test_the_command_gives_up_on_storage_that_does_not_answer(tmp_path, monkeypatch, capsys):
    nothing = free_port()
    monkeypatch.setenv("AzureWebJobsStorage", connection_string(ports=(nothing,) * 3))
    app = hub_app(tmp_path / "app", "SomeHub", "Reserve", "Charge")
    assert main(["replay", "--hub", "--app-dir", str(app), "--timeout", "0.5"]) == 2
    assert "storage did not answer within 0.5 s" in capsys.readouterr().err


# -- golden histories ------------------------------------------------------------------------------

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize(
    ("name", "kind", "at_least"),
    [
        ("ParallelRetry", "retry timers", 4),
        ("SubRetry", "sub-orchestrations", 3),
        ("TallyUser", "entity requests", 6),
        ("Approval", "raised events", 1),
    ],
)
def test_recorded_histories_of_the_patterns_app_still_replay(name, kind, at_least, capsys):
    """Histories recorded once and kept: the planner's numbering and the app must stay in step."""
    history_file = HISTORIES / f"{name}.json"
    history = json.loads(history_file.read_text())
    count = {
        "retry timers": sum(1 for e in history if e["EventType"] == 10 and "Retry" in e),
        "sub-orchestrations": sum(1 for e in history if e["EventType"] == 7),
        "entity requests": sum(1 for e in history if e["EventType"] == 14),
        "raised events": sum(1 for e in history if e["EventType"] == 15),
    }[kind]
    assert count >= at_least, f"the {name} history holds {count} {kind}"
    assert main(["replay", str(history_file), "--app-dir", str(PATTERNS_APP)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {history_file}")
