"""Browser tests: Debian's Chromium driven by Playwright, against the game on the harness."""

import os
from pathlib import Path

import pytest

from devhost.testing import DurableHarness

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            "Chromium is not installed at /usr/bin/chromium: run `make setup`, "
            "which installs Debian's chromium package."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def web_env(azurite) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "DUNGEON_SEED": "web-seed",
        "DUNGEON_CONFIRM_SECONDS": "120",
    }


@pytest.fixture
def site(azurite):
    """The game and its page on the virtual clock, for tests that move time."""
    with DurableHarness(REPO, env=web_env(azurite), static_dir=REPO / "web") as host:
        yield host


@pytest.fixture
def real_time_site(azurite):
    """The game and its page on the real clock, so the story's times read as a player's."""
    with DurableHarness(
        REPO, env=web_env(azurite), static_dir=REPO / "web", virtual_clock=False
    ) as host:
        yield host


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def open_page(browser, site, viewport: dict):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.requests = []
    page.errors = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on(
        "response",
        lambda r: page.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.goto(site.base_url + "/")
    return context, page


@pytest.fixture
def page(browser, site):
    """The page on a phone's width."""
    context, page = open_page(browser, site, PHONE)
    yield page
    context.close()


@pytest.fixture(params=["desktop", "phone"])
def any_page(request, browser, real_time_site):
    """The page on a desktop's width, then on a phone's (real clock)."""
    viewport = DESKTOP if request.param == "desktop" else PHONE
    context, page = open_page(browser, real_time_site, viewport)
    page.width_name = request.param
    yield page
    context.close()
