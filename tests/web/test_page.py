"""The page, played by clicks in a real Chromium."""

import os
import uuid
from pathlib import Path

from playwright.sync_api import expect

DOCS = Path(__file__).resolve().parents[2] / "docs"


def fresh_name() -> str:
    return f"W{uuid.uuid4().hex[:8]}"


def start(page, name: str) -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Start a game").click()


def test_a_whole_game_is_won_by_clicks(page, site):
    name = fresh_name()
    start(page, name)
    confirm = page.get_by_role("button", name="Confirm")
    expect(confirm).to_be_visible()
    expect(page.locator("#countdown")).to_contain_text("must confirm within")
    confirm.click()
    get_weapon = page.locator("#suggested-actions button", has_text="Get the")
    expect(get_weapon).to_be_visible(timeout=15000)
    expect(page.locator("#workflows")).to_contain_text("RunUserSequentialWorkflow")
    if os.environ.get("UPDATE_SCREENSHOT"):
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "screenshot.png"), full_page=True)
    get_weapon.click()
    kill = page.locator("#suggested-actions button", has_text="Kill the")
    expect(kill).to_be_visible(timeout=15000)
    kill.click()
    expect(page.locator("#action-message")).to_contain_text("killed the")
    get_treasure = page.locator("#suggested-actions button", has_text="Get the")
    expect(get_treasure).to_be_visible(timeout=15000)
    get_treasure.click()
    expect(page.locator("#player-state")).to_contain_text("has won the game!", timeout=15000)
    expect(page.locator("#story")).to_contain_text(f"{name} has won the game!")
    expect(page.locator("#stat-winners")).not_to_have_text("–")
    origin = site.base_url
    assert all(url.startswith(origin) for url in page.requests), page.requests


def test_a_confirmation_window_that_runs_out_shows_the_death(page, site):
    name = fresh_name()
    start(page, name)
    expect(page.get_by_role("button", name="Confirm")).to_be_visible()
    site.advance(seconds=121)
    page.get_by_role("button", name="Watch this name").click()
    expect(page.locator("#player-state")).to_have_text(f"{name} is dead.", timeout=15000)
    expect(page.locator("#confirm-card")).to_be_hidden()


def test_a_bad_name_shows_the_apis_sentence(page):
    start(page, "x" * 40)
    expect(page.locator("#start-error")).to_have_text(
        "The name must be at most 32 characters long."
    )


def test_markup_in_a_name_comes_back_only_as_text(page):
    markup = "<img src=x onerror=hacked=1>"
    start(page, markup)
    error = page.locator("#start-error")
    expect(error).to_contain_text(markup)
    assert page.locator("img").count() == 0
    assert page.evaluate("window.hacked") is None
