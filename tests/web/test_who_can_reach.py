"""Pages of other origins in a real Chromium: one that Host.CORS names plays the game through
the app's functions; one that attacks changes and reads nothing of the task hub, even with
Host.CORS at `*`."""

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import expect

from devhost.testing import DurableHarness

from .conftest import REPO, web_env

TIMEOUT = 15000
WEBHOOKS = "/runtime/webhooks/durabletask"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def static_server(folder: Path) -> Iterator[int]:
    """A folder on a port of its own, as `python3 -m http.server --bind 127.0.0.1` serves it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_of_an_origin_host_cors_names_plays_through_the_apps_functions(browser, azurite):
    """As the original test harness does, from the origin local.settings.json.example names
    (on a free port here): its calls to the app's functions pass CORS, preflights included."""
    with static_server(REPO / "web") as port:
        origin = f"http://localhost:{port}"
        with DurableHarness(REPO, env=web_env(azurite), cors_origins=[origin]) as site:
            context = browser.new_context()
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda r: errors.append(f"{r.url} {r.failure}"))
            page.goto(f"{origin}/index.html?api={site.base_url}/api")
            page.get_by_label("Your name").fill(f"H{uuid.uuid4().hex[:8]}")
            page.get_by_role("button", name="Start a game").click()
            page.get_by_role("button", name="Confirm").click(timeout=TIMEOUT)
            get_weapon = page.locator("#suggested-actions button", has_text="Get the")
            expect(get_weapon).to_be_visible(timeout=TIMEOUT)
            context.close()
    assert errors == []


ATTACK = """
<!doctype html>
<form method="post" enctype="text/plain"><input name="x" value="y"></form>
<script>
async function attack(devhost, id) {
  const instance = `${devhost}%(webhooks)s/instances/${encodeURIComponent(id)}`;
  const simple = { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" } };
  // Simple requests go without a preflight and their answers stay unread: devhost must refuse.
  await fetch(`${instance}/terminate?reason=evil`, { ...simple, body: "x" });
  await fetch(`${instance}/raiseEvent/ApprovalTask`, { ...simple, body: "false" });
  await fetch(`${instance}/suspend`, { ...simple, body: "" });
  await fetch(`${devhost}%(webhooks)s/orchestrators/UserConfirmationWorkflow/evil`, simple);
  const outcome = {};
  const tries = {
    raiseJson: [`${instance}/raiseEvent/ApprovalTask`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: "false" }],
    purge: [instance, { method: "DELETE" }],
    list: [`${devhost}%(webhooks)s/instances`, {}],
    dashboard: [`${devhost}/_devhost/api/instances`, {}],
    stats: [`${devhost}/api/Stats`, {}],
  };
  for (const [name, [url, init]] of Object.entries(tries)) {
    try {
      const response = await fetch(url, init);
      outcome[name] = `read ${response.status}`;
    } catch {
      outcome[name] = "blocked";
    }
  }
  return outcome;
}
</script>
"""


def test_a_page_of_another_origin_changes_and_reads_nothing_even_with_cors_open(
    browser, azurite, tmp_path
):
    (tmp_path / "attack.html").write_text(ATTACK % {"webhooks": WEBHOOKS})
    with DurableHarness(REPO, env=web_env(azurite), cors_origins=["*"]) as site:
        name = f"v{uuid.uuid4().hex[:8]}"
        assert site.http("POST", "/api/NewUser", {"name": name})[0] == 202
        victim = f"UserConfirmationWorkflow:{name}"
        site.wait_for(victim, statuses=("Running",))
        site.idle()
        before = site.http("GET", f"{WEBHOOKS}/instances/{quote(victim)}")[2]
        with static_server(tmp_path) as port:
            context = browser.new_context()
            page = context.new_page()
            answered = []
            page.on(
                "response",
                lambda r: (
                    answered.append((r.request.method, r.url, r.status))
                    if r.url.startswith(site.base_url)
                    else None
                ),
            )
            page.goto(f"http://127.0.0.1:{port}/attack.html")
            outcome = page.evaluate("([d, i]) => attack(d, i)", [site.base_url, victim])
            form = page.locator("form")
            form.evaluate("(f, url) => { f.action = url; }", f"{site.base_url}{WEBHOOKS}"
                          f"/instances/{quote(victim, safe='')}/terminate")  # fmt: skip
            with page.expect_navigation():
                form.evaluate("f => f.submit()")
            refusal = page.content()
            context.close()
        site.idle()
        after = site.http("GET", f"{WEBHOOKS}/instances/{quote(victim)}")[2]
        evil = site.http("GET", f"{WEBHOOKS}/instances/evil")[0]
    assert after == before and after["runtimeStatus"] == "Running"
    assert evil == 404
    assert outcome == {
        "raiseJson": "blocked",
        "purge": "blocked",
        "list": "blocked",
        "dashboard": "blocked",
        "stats": "read 200",  # the app's own function: Host.CORS is the app's business
    }
    # devhost itself refused them (the browser did not just keep them from leaving)
    refused = {(method, url.split("?")[0].rsplit("/", 1)[-1]) for method, url, status in answered
               if status == 403}  # fmt: skip
    assert {("POST", "terminate"), ("POST", "ApprovalTask"), ("POST", "suspend")} <= refused
    assert ("POST", "evil") in refused
    assert "may not change the task hub" in refusal
