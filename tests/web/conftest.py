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


@pytest.fixture
def site(azurite):
    env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DUNGEON_SEED": "web-seed",
        "DUNGEON_CONFIRM_SECONDS": "120",
    }
    with DurableHarness(REPO, env=env, static_dir=REPO / "web") as host:
        yield host


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 375, "height": 900})
    page = context.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(site.base_url + "/")
    yield page
    context.close()
