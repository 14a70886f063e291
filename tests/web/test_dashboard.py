"""The dashboard at /_devhost/, driven in a real Chromium, on both stores, with the game's hub."""

import os
import re
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
TIMEOUT = 15000


@pytest.fixture(params=["memory", "azure"])
def hub(request, azurite, hub_name):
    """The game on a task hub in memory or in Azure Storage (its tables are always Azurite)."""
    store = AzureStore(azurite.connection_string, hub_name) if request.param == "azure" else None
    env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DUNGEON_SEED": "dash-seed",
        "DUNGEON_CONFIRM_SECONDS": "120",
    }
    with DurableHarness(REPO, store=store or MemoryStore(), env=env) as host:
        yield host


@pytest.fixture
def dashboard(browser, hub):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def new_game(hub, name: str) -> None:
    status, _, body = hub.http("POST", "/api/NewUser", {"name": name})
    assert status == 202, body
    hub.wait_for(f"UserConfirmationWorkflow:{name}", statuses=("Running",))
    hub.idle()


def fresh(name: str) -> str:
    """Player names are unique across the session's game tables; in lower case, as the game
    spells them in instance ids."""
    return f"{name.lower()}{uuid.uuid4().hex[:6]}"


def confirm_yes(page) -> None:
    expect(page.locator("#confirm")).to_be_visible()
    page.locator("#confirm-yes").click()


def test_a_game_is_watched_and_steered_from_the_dashboard(dashboard, hub):
    page = dashboard
    dead, pat = fresh("Dead"), fresh("Pat")
    new_game(hub, dead)
    hub.advance(seconds=121)  # the first confirmation runs out: that game's workflows finish
    hub.wait_for(f"RunUserParallelWorkflow:{dead}")
    new_game(hub, pat)

    page.goto(f"{hub.base_url}/_devhost/")
    rows = page.locator("#instance-rows tr")
    confirmation = rows.filter(has_text=f"UserConfirmationWorkflow:{pat}")
    expect(confirmation).to_have_count(1, timeout=TIMEOUT)
    expect(rows.filter(has_text=f"RunUserParallelWorkflow:{dead}")).to_contain_text("Completed")
    expect(page.locator("#counts")).to_contain_text("Completed")
    expect(page.locator("#counts")).to_contain_text("Running")
    info = hub.http("GET", "/_devhost/api/hub")[2]
    expect(page.locator("#hub")).to_have_text(f"task hub {info['hub']} · {info['store']} store")

    page.get_by_label("Orchestrator").fill("UserConfirmationWorkflow")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"#/instances\?name=UserConfirmationWorkflow$"))
    expect(rows).to_have_count(2)
    page.get_by_label("Status").select_option("Running")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(f"UserConfirmationWorkflow:{pat}")

    rows.get_by_role("link", name=f"UserConfirmationWorkflow:{pat}").click()
    expect(page).to_have_url(re.compile(f"#/instances/UserConfirmationWorkflow%3A{pat}$"))
    due = hub.waiting_on(f"UserConfirmationWorkflow:{pat}")["timers"][0]["due"]
    waiting = page.locator("#waiting-list")
    expect(waiting.locator("li.timer time")).to_have_text(due, timeout=TIMEOUT)
    expect(waiting.locator("li.event")).to_have_text("event ApprovalTask")
    expect(page.locator("#bars li[data-kind=timer][data-status=open]")).to_have_count(1)
    steps = page.locator("#steps-table tbody tr")
    expect(steps.filter(has_text="ConfirmationRecorded")).to_contain_text("completed")
    expect(page.locator("#steps-table tr[data-kind=timer]")).to_contain_text("open")
    page.get_by_label("Show every event").check()
    expect(page.locator("#history-table")).to_contain_text("TimerCreated")
    page.get_by_label("Show every event").uncheck()
    expect(page.locator("#summary")).to_contain_text(f"RunUserParallelWorkflow:{pat}")  # parent
    # the event field offers the event the instance waits on
    expect(page.get_by_label("Event name")).to_have_value("ApprovalTask")
    expect(page.locator("#awaited-events option")).to_have_attribute("value", "ApprovalTask")
    if os.environ.get("UPDATE_SCREENSHOT") and info["store"] == "memory":
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)

    page.get_by_label("Event data (JSON)").fill("true")
    page.get_by_role("button", name="Raise event").click()
    expect(page.locator("#confirm-text")).to_have_text(
        f"Raise event 'ApprovalTask' on instance 'UserConfirmationWorkflow:{pat}'?"
    )
    confirm_yes(page)
    expect(page.locator("#runtime-status")).to_have_text("Completed", timeout=TIMEOUT)
    expect(page.locator("#output")).to_have_text('"confirmed"')
    hub.wait_for(f"RunUserSequentialWorkflow:{pat}")  # the game goes on

    monitor = f"UserMonitorWorkflow:{pat}"
    page.goto(f"{hub.base_url}/_devhost/#/instances/{quote(monitor, safe='')}")
    expect(page.locator("#runtime-status")).to_have_text("Running", timeout=TIMEOUT)
    page.get_by_label("Reason").fill("enough")
    page.get_by_role("button", name="Terminate").click()
    confirm_yes(page)
    expect(page.locator("#runtime-status")).to_have_text("Terminated", timeout=TIMEOUT)
    expect(page.locator("#output")).to_have_text('"enough"')
    page.get_by_role("button", name="Purge").click()
    confirm_yes(page)
    expect(page.locator("#not-found")).to_have_text(
        f"Instance '{monitor}' was purged: its status and history are gone from this hub.",
        timeout=TIMEOUT,
    )
    for gone in ("#summary", "#waiting", "#timeline", "#actions", "#data", "#history"):
        expect(page.locator(gone)).to_have_count(0)  # no actions, no empty panels
    assert hub.http("GET", f"/runtime/webhooks/durabletask/instances/{monitor}")[0] == 404

    page.get_by_role("link", name="Entities").click()
    counter = page.locator("#entity-list article", has_text="@usercounter@")
    expect(counter.locator("pre.state")).to_contain_text('"confirmed": 1', timeout=TIMEOUT)
    expect(counter).to_contain_text("No operations waiting.")


def test_suspend_resume_and_restart_from_the_page(dashboard, hub):
    page = dashboard
    name = fresh("Sue")
    new_game(hub, name)
    instance_id = f"UserConfirmationWorkflow:{name}"
    page.goto(f"{hub.base_url}/_devhost/#/instances/{quote(instance_id, safe='')}")
    status = page.locator("#runtime-status")
    expect(status).to_have_text("Running", timeout=TIMEOUT)
    page.get_by_role("button", name="Suspend").click()
    confirm_yes(page)
    expect(status).to_have_text("Suspended", timeout=TIMEOUT)
    page.get_by_role("button", name="Suspend").click()
    confirm_yes(page)
    expect(page.locator("#action-message")).to_have_text(
        "Suspend refused: Cannot suspend orchestration instance in the Suspended state."
    )
    page.get_by_role("button", name="Resume").click()
    confirm_yes(page)
    expect(status).to_have_text("Running", timeout=TIMEOUT)
    page.get_by_role("button", name="Rewind").click()
    confirm_yes(page)
    expect(page.locator("#action-message")).to_contain_text("Rewind refused: ")
    page.get_by_role("button", name="Restart").click()
    confirm_yes(page)
    expect(page).not_to_have_url(re.compile(quote(instance_id, safe="")), timeout=TIMEOUT)
    expect(page.locator("#instance-id")).not_to_have_text(instance_id, timeout=TIMEOUT)
    expect(page.locator("#summary")).to_contain_text("UserConfirmationWorkflow")


def test_a_selection_is_terminated_and_purged_after_confirming(dashboard, hub):
    page = dashboard
    for name in ("Ann", "Bob"):
        new_game(hub, fresh(name))
    page.goto(f"{hub.base_url}/_devhost/#/instances?name=UserConfirmationWorkflow")
    rows = page.locator("#instance-rows tr")
    expect(rows).to_have_count(2, timeout=TIMEOUT)
    new_game(hub, fresh("Cy"))  # the list updates without a reload
    expect(rows).to_have_count(3, timeout=TIMEOUT)
    page.get_by_label("Select all").check()
    page.get_by_role("button", name="Terminate selected").click()
    page.get_by_role("button", name="Cancel").click()  # nothing happens without a yes
    expect(rows.filter(has_text="Running")).to_have_count(3)
    page.get_by_role("button", name="Terminate selected").click()
    confirm_yes(page)
    expect(rows.filter(has_text="Terminated")).to_have_count(3, timeout=TIMEOUT)
    page.get_by_label("Select all").check()
    page.get_by_role("button", name="Purge selected").click()
    confirm_yes(page)
    expect(page.locator("#list-message")).to_have_text("Purged 3 of 3.")
    expect(rows).to_have_count(1, timeout=TIMEOUT)
    expect(rows).to_have_text("No instances match.")


def test_the_dashboards_actions_pass_the_same_origin_check_when_opened_as_localhost(dashboard, hub):
    """Its page sends its own origin with every action, whichever name it was opened by."""
    page = dashboard
    name = fresh("Lou")
    new_game(hub, name)
    local = hub.base_url.replace("127.0.0.1", "localhost")
    sent = []
    page.on("request", lambda r: sent.append(r) if r.method != "GET" else None)
    confirmation = quote(f"UserConfirmationWorkflow:{name}", safe="")
    page.goto(f"{local}/_devhost/#/instances/{confirmation}")
    status = page.locator("#runtime-status")
    expect(status).to_have_text("Running", timeout=TIMEOUT)
    page.get_by_label("Event name").fill("ApprovalTask")
    page.get_by_label("Event data (JSON)").fill("true")
    page.get_by_role("button", name="Raise event").click()
    confirm_yes(page)
    expect(status).to_have_text("Completed", timeout=TIMEOUT)
    page.goto(f"{local}/_devhost/#/instances/{quote(f'UserMonitorWorkflow:{name}', safe='')}")
    expect(status).to_have_text("Running", timeout=TIMEOUT)
    page.get_by_role("button", name="Terminate").click()
    confirm_yes(page)
    expect(status).to_have_text("Terminated", timeout=TIMEOUT)
    assert len(sent) == 2 and {r.all_headers().get("origin") for r in sent} == {local}


def test_markup_in_an_instance_id_and_input_shows_as_text_only(dashboard, hub):
    page = dashboard
    instance_id = "<img src=x onerror=window.hacked=1>"
    game = {"name": "<script>window.hacked=2</script>", "confirm_seconds": 60}
    status, _, _ = hub.http(
        "POST",
        f"/runtime/webhooks/durabletask/orchestrators/UserConfirmationWorkflow/{quote(instance_id)}",
        game,
    )
    assert status == 202
    page.goto(f"{hub.base_url}/_devhost/")
    expect(page.locator("#instance-rows")).to_contain_text(instance_id, timeout=TIMEOUT)
    page.get_by_role("link", name=instance_id).click()
    expect(page.locator("#instance-id")).to_have_text(instance_id, timeout=TIMEOUT)
    expect(page.locator("#input")).to_contain_text(game["name"])
    assert page.locator("img, #view script").count() == 0
    assert page.evaluate("window.hacked") is None


def test_the_game_page_links_each_workflow_to_its_dashboard_page(page, site):
    name = fresh("Link")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Start a game").click()
    link = page.locator("#workflows").get_by_role("link", name="UserConfirmationWorkflow")
    expect(link).to_be_visible(timeout=TIMEOUT)
    link.click()
    expect(page.locator("#instance-id")).to_have_text(
        f"UserConfirmationWorkflow:{name}", timeout=TIMEOUT
    )
    expect(page.locator("#waiting-list li.event")).to_have_text("event ApprovalTask")


def test_the_list_is_newest_first_sorts_by_column_and_shows_custom_status(dashboard, hub):
    page = dashboard
    names = [fresh(n) for n in ("Ada", "Ben", "Cat")]
    for name in names:
        new_game(hub, name)
        hub.advance(seconds=1)
    first = f"UserConfirmationWorkflow:{names[0]}"
    hub.http("POST", f"/runtime/webhooks/durabletask/instances/{quote(first)}/terminate")
    hub.wait_for(first)
    confirmations = [f"UserConfirmationWorkflow:{n}" for n in names]

    page.goto(f"{hub.base_url}/_devhost/#/instances?name=UserConfirmationWorkflow")
    rows = page.locator("#instance-rows tr")
    expect(rows).to_have_count(3, timeout=TIMEOUT)
    expect(page.locator("#instance-rows tr td:nth-child(2)")).to_have_text(confirmations[::-1])
    custom = rows.filter(has_text=confirmations[2]).locator("td.custom-status")
    expect(custom).to_contain_text('"state"')
    expect(custom).to_contain_text('"waiting"')

    page.get_by_role("link", name="Created ▼").click()  # the other way round: oldest first
    expect(page).to_have_url(re.compile(r"sort=createdTime&order=asc"))
    expect(page.locator("#instance-rows tr td:nth-child(2)")).to_have_text(confirmations)
    page.get_by_role("link", name="Status").click()  # running first, the newest first among them
    expect(page.locator("#instance-rows tr td:nth-child(2)")).to_have_text(
        [confirmations[2], confirmations[1], confirmations[0]]
    )
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Status ▲")
    page.get_by_role("link", name="Updated").click()  # the terminated one changed last
    expect(page.locator("#instance-rows tr td:nth-child(2)").first).to_have_text(first)

    page.goto(f"{hub.base_url}/_devhost/#/instances")
    page.get_by_role("link", name="Orchestrator").click()
    expect(page).to_have_url(re.compile(r"#/instances\?sort=name$"))
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Orchestrator ▲")
    by_name = [
        i["name"] for i in hub.http("GET", "/_devhost/api/instances?sort=name")[2]["instances"]
    ]
    assert by_name == sorted(by_name, key=str.casefold) and len(set(by_name)) > 1
    expect(page.locator("#instance-rows tr td:nth-child(3)")).to_have_text(by_name)
    page.get_by_role("link", name="Orchestrator ▲").click()
    expect(page.locator("th[aria-sort=descending]")).to_have_text("Orchestrator ▼")
    expect(page.locator("#instance-rows tr td:nth-child(3)").first).to_have_text(by_name[-1])


PATTERNS_APP = REPO / "tests" / "devhost" / "apps" / "patterns"


@pytest.fixture(params=["memory", "azure"])
def patterns(request, hub_name):
    """The patterns app (retries, failures, long timers) on each store."""
    store = MemoryStore()
    if request.param == "azure":
        store = AzureStore(request.getfixturevalue("azurite").connection_string, hub_name)
    with DurableHarness(PATTERNS_APP, store=store) as host:
        yield host


@pytest.fixture
def patterns_page(browser, patterns):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def instance_page(page, host, instance_id: str) -> None:
    page.goto(f"{host.base_url}/_devhost/#/instances/{quote(instance_id, safe='')}")
    expect(page.locator("#instance-id")).to_have_text(instance_id, timeout=TIMEOUT)


def test_retry_timers_tracebacks_and_long_waits_read_as_what_they_are(patterns_page, patterns):
    page = patterns_page
    patterns.start("Retry", f"web-{uuid.uuid4().hex[:8]}", instance_id="retrying")
    patterns.idle()
    instance_page(page, patterns, "retrying")
    retry = "retry timer before attempt 2 of Flaky"
    expect(page.locator("#waiting-list li.timer")).to_contain_text(retry)
    expect(page.locator("#bars li[data-kind=timer]")).to_contain_text(retry)
    expect(page.locator("#steps-table tr[data-kind='retry timer']")).to_contain_text("Flaky")
    assert "timer timer" not in page.locator("#view").inner_text()
    # no event awaited: the field is empty and says so
    expect(page.get_by_label("Event name")).to_have_value("")
    expect(page.get_by_label("Event name")).to_have_attribute(
        "placeholder", "event name (the instance waits on none now)"
    )

    patterns.start("CatchActivity", instance_id="caught")
    patterns.wait_for("caught")
    instance_page(page, patterns, "caught")
    failed = page.locator("#steps-table tr[data-kind=activity]")
    expect(failed).to_contain_text("Fail")
    expect(failed).to_contain_text("failed")
    traceback = failed.locator(".traceback pre")
    expect(traceback).to_contain_text("Traceback (most recent call last):")
    text = traceback.inner_text()
    assert "\n  File " in text and "\\n" not in text and '\\"' not in text  # text, not JSON
    expect(failed.locator(".detail", has_text="input")).to_contain_text('"that"')

    patterns.start("Timer", 86_400, instance_id="a-day")
    patterns.idle()
    patterns.advance(seconds=30)
    instance_page(page, patterns, "a-day")
    expect(page.locator(".timeline-span")).to_contain_text("idle 24.0 h drawn short")
    expect(page.locator("#bars li[data-kind=timer] .break")).to_have_count(1)
    timer_bar = page.locator("#bars li[data-kind=timer] .bar")
    generation_bar = page.locator("#bars li[data-kind=generation] .bar")
    # the 30 s that passed take most of the width; the 24 h wait is cut short
    assert generation_bar.bounding_box()["width"] > 0.8 * timer_bar.bounding_box()["width"]

    page.goto(f"{patterns.base_url}/_devhost/#/instances?instanceIdPrefix=a-day")
    page.get_by_label("Select a-day").check()
    page.get_by_role("button", name="Terminate selected").click()
    expect(page.locator("#confirm-text")).to_have_text("Terminate 1 instance?")
    page.get_by_role("button", name="Cancel").click()
