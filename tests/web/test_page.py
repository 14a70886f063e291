"""The page, played by clicks in a real Chromium."""

import os
import uuid
from pathlib import Path

from playwright.sync_api import expect

from dungeon.narration import Narrator

DOCS = Path(__file__).resolve().parents[2] / "docs"


def fresh_name() -> str:
    return f"W{uuid.uuid4().hex[:8]}"


def start(page, name: str) -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Start a game").click()


def test_a_whole_game_is_won_by_clicks_and_the_ending_is_in_view(any_page, real_time_site):
    page = any_page
    name = fresh_name()
    start(page, name)
    confirm = page.get_by_role("button", name="Confirm")
    expect(confirm).to_be_visible()
    # the countdown starts once the universe is built: seconds on a loaded machine
    expect(page.locator("#countdown")).to_contain_text("must confirm within", timeout=15000)
    confirm.click()
    get_weapon = page.locator("#suggested-actions button", has_text="Get the")
    expect(get_weapon).to_be_visible(timeout=15000)
    expect(page.locator("#workflows")).to_contain_text("RunUserSequentialWorkflow")
    get_weapon.click()
    kill = page.locator("#suggested-actions button", has_text="Kill the")
    expect(kill).to_be_visible(timeout=15000)
    kill.click()
    expect(page.locator("#action-message")).to_contain_text("killed the")
    get_treasure = page.locator("#suggested-actions button", has_text="Get the")
    expect(get_treasure).to_be_visible(timeout=15000)
    get_treasure.click()
    ending = page.locator("#ending")
    expect(ending).to_have_text(f"{name} has won the game!", timeout=15000)
    expect(ending).to_be_in_viewport()
    expect(page.locator("#player-state")).to_contain_text("has won the game!")
    story = page.locator("#story")
    expect(story).to_contain_text(f"{name} has won the game!")
    last_line = page.locator("#story li").last
    expect(last_line).to_contain_text(f"{name} has won the game!", timeout=15000)
    assert story.evaluate("s => s.scrollHeight - s.scrollTop - s.clientHeight") < 2
    expect(page.locator("#stat-winners")).not_to_have_text("–")
    assert_numbers_are_whole(page)
    assert_nothing_wider_than_the_screen(page)
    if os.environ.get("UPDATE_SCREENSHOT") and page.width_name == "desktop":
        DOCS.mkdir(exist_ok=True)
        ending.scroll_into_view_if_needed()
        page.screenshot(path=str(DOCS / "screenshot.png"), full_page=True)
    origin = real_time_site.base_url
    assert all(url.startswith(origin) for url in page.requests), page.requests
    assert page.errors == [], "no red lines in the browser's console"


def assert_numbers_are_whole(page) -> None:
    """The story's list leaves room for a three-digit number and its dot."""
    room, needed = page.locator("#story").evaluate(
        """s => {
            const style = getComputedStyle(s);
            const canvas = document.createElement("canvas").getContext("2d");
            canvas.font = `${style.fontSize} ${style.fontFamily}`;
            return [parseFloat(style.paddingLeft), canvas.measureText("100. ").width];
        }"""
    )
    assert room >= needed, (room, needed)


def assert_nothing_wider_than_the_screen(page) -> None:
    widths = page.evaluate(
        """() => [document.documentElement.scrollWidth, window.innerWidth,
                  document.querySelector("#workflows-card table").scrollWidth,
                  document.querySelector("#workflows-card").clientWidth]"""
    )
    page_width, screen, table, card = widths
    assert page_width <= screen and table <= card, widths


def narrate(site, name: str, text: str) -> None:
    site.run(Narrator.shared(os.environ["AzureWebJobsStorage"]).say(name, text))


def test_the_story_follows_its_newest_line_and_lets_the_reader_scroll_back(page, site):
    name = fresh_name()
    start(page, name)
    expect(page.locator("#story li")).not_to_have_count(0, timeout=15000)
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#suggested-actions button").first).to_be_visible(timeout=15000)
    for number in range(12):
        narrate(site, name, f"line {number}")
    story = page.locator("#story")
    expect(page.locator("#story li").last).to_contain_text("line 11", timeout=15000)
    assert story.evaluate("s => s.scrollHeight > s.clientHeight"), "the story box scrolls"
    assert story.evaluate("s => s.scrollHeight - s.scrollTop - s.clientHeight") < 2
    story.evaluate("s => { s.scrollTop = 0; }")  # the reader goes back to the beginning
    narrate(site, name, "a line written while the reader reads")
    expect(story).to_contain_text("a line written while the reader reads", timeout=15000)
    assert story.evaluate("s => s.scrollTop") == 0, "the reader's place is kept"


def test_a_confirmation_window_that_runs_out_shows_the_death(page, site):
    name = fresh_name()
    start(page, name)
    expect(page.get_by_role("button", name="Confirm")).to_be_visible()
    site.advance(seconds=121)
    page.get_by_role("button", name="Watch this name").click()
    expect(page.locator("#player-state")).to_have_text(f"{name} is dead.", timeout=15000)
    expect(page.locator("#confirm-card")).to_be_hidden()
    expect(page.locator("#ending")).to_contain_text(f"{name} is dead.")
    expect(page.locator("#ending")).to_be_in_viewport()
    expect(page.locator("#workflows")).to_contain_text("will not start")
    assert page.errors == [], "no red lines for workflows that will not start"


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
