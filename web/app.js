// The Durable Dungeon page: start, confirm, play, and watch the workflows at work.
// Every server or player text is put in the page with textContent, never as HTML.
import { ApiError, GameApi, apiBase } from "./api.js";

const WORKFLOWS = [
  "RunUserParallelWorkflow",
  "UserConfirmationWorkflow",
  "UserMonitorWorkflow",
  "RunUserSequentialWorkflow",
  "GameMonitorWorkflow",
];
const FASTEST_POLL_MS = 1000;
const SLOWEST_POLL_MS = 8000;

const api = new GameApi(apiBase());
const $ = (id) => document.getElementById(id);
let player = null;
let pollDelay = FASTEST_POLL_MS;
let pollTimer = null;
let lastSnapshot = "";
let deadline = null;

function showError(id, error) {
  const element = $(id);
  element.textContent = error ? error.message || String(error) : "";
  element.hidden = !error;
}

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function itemsText(value) {
  return value ? value.split(",").join(", ") : "nothing";
}

async function fetchOrNull(promise) {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

// The workflow's name links to its page in the devhost dashboard; "RunUserParallelWorkflow"
// may break before each capital on a narrow screen.
function workflowName(workflow, status) {
  const id = status ? status.instanceId : `${workflow}:${player.toLowerCase()}`;
  const dashboard = new URL(`/_devhost/#/instances/${encodeURIComponent(id)}`, apiBase());
  const link = element("a", undefined,
    { href: dashboard.href, title: "this workflow in the devhost dashboard" });
  for (const [index, part] of workflow.split(/(?=[A-Z])/).entries()) {
    if (index) link.append(element("wbr"));
    link.append(document.createTextNode(part));
  }
  const cell = element("td");
  cell.append(link);
  return cell;
}

const STATUS_WORDS = { Pending: "about to start", ContinuedAsNew: "Running" };

function renderWorkflows(statuses) {
  const rows = WORKFLOWS.map((workflow, index) => {
    const status = statuses[index];
    const word = status ? STATUS_WORDS[status.status] || status.status : "will not start";
    const started = status && status.status !== "Pending"
      ? new Date(status.created).toLocaleTimeString() : "–";
    const row = element("tr");
    row.append(workflowName(workflow, status),
      element("td", word, { class: `status status-${word.replace(/ /g, "-").toLowerCase()}` }),
      element("td", started));
    return row;
  });
  $("workflows").replaceChildren(...rows);
}

// The window opens with NewUser's 202; its countdown starts with the confirmation workflow.
function renderCountdown(confirmation) {
  const pending = confirmation && confirmation.status === "Pending";
  const waiting = confirmation && confirmation.status === "Running" &&
    confirmation.customStatus && confirmation.customStatus.state === "waiting";
  deadline = waiting ? new Date(confirmation.customStatus.deadline) : null;
  $("confirm-card").hidden = !(waiting || pending);
  if (pending) {
    $("countdown").textContent =
      `${player} may confirm now; the countdown starts when the dungeon is ready.`;
  }
  tickCountdown();
}

function tickCountdown() {
  if (!deadline) return;
  const seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000));
  $("countdown").textContent =
    `${player} must confirm within ${seconds} second${seconds === 1 ? "" : "s"}, or die.`;
}

function suggestedActions(game) {
  const { user, room, monster, inventory } = game;
  const held = user.inventoryItems ? user.inventoryItems.split(",") : [];
  // As the rules say: nothing to do until the dungeon is arranged.
  const arranged = user.currentRoom && monster.currentRoom === user.currentRoom &&
    inventory.every((item) => item.room || item.monster || held.includes(item.name));
  if (!user.isAlive || !arranged) return [];
  const onFloor = inventory.filter((item) => item.room === user.currentRoom && !item.monster);
  const actions = onFloor.map((item) => ({
    label: `Get the ${item.name}`, body: { action: "get", target: item.name },
  }));
  const weapon = inventory.find((item) => !item.isTreasure && held.includes(item.name));
  if (monster.isAlive && monster.currentRoom === user.currentRoom && weapon) {
    actions.push({
      label: `Kill the ${monster.name} with the ${weapon.name}`,
      body: { action: "kill", target: monster.name, with: weapon.name },
    });
  }
  return actions;
}

function renderGame(game, monitor) {
  $("game-card").hidden = !game;
  if (!game) return;
  const { user, room, monster } = game;
  $("room-name").textContent = room.name;
  $("room-description").textContent = room.description;
  $("monster-name").textContent = `${monster.name} (${monster.isAlive ? "alive" : "dead"})`;
  $("room-items").textContent = itemsText(room.inventoryItems);
  $("user-items").textContent = itemsText(user.inventoryItems);
  const state = $("player-state");
  const won = monitor && monitor.status === "Completed";
  renderEnding(!user.isAlive ? "dead" : won ? "won" : null, user.name);
  state.className = !user.isAlive ? "dead" : won ? "won" : "";
  state.textContent = !user.isAlive ? `${user.name} is dead.`
    : won ? `${user.name} has won the game!`
      : user.currentRoom ? `${user.name} is in the ${user.currentRoom}.`
        : `${user.name} waits at the dungeon's door.`;
  const buttons = suggestedActions(game).map((action) => {
    const button = element("button", action.label, { type: "button" });
    button.addEventListener("click", () => act(action.body));
    return button;
  });
  $("suggested-actions").replaceChildren(...buttons);
  $("action-form").hidden = !user.isAlive || won;
}

// Winning and dying are moments: a banner, brought into view once when it first appears.
function renderEnding(ending, name) {
  const banner = $("ending");
  const text = ending === "won" ? `${name} has won the game!`
    : ending === "dead" ? `${name} is dead. The dungeon claims another.` : "";
  if (banner.textContent === text && !banner.hidden === Boolean(ending)) return;
  banner.hidden = !ending;
  banner.className = ending ? `ending ending-${ending}` : "ending";
  banner.textContent = text;
  if (ending) banner.scrollIntoView({ block: "center" });
}

let storyShown = "";

// The story follows its newest line, unless the reader has scrolled back to read.
function renderStory(lines) {
  const story = $("story");
  const shown = JSON.stringify(lines || []);
  if (shown === storyShown) return;
  const following = !storyShown ||
    story.scrollHeight - story.scrollTop - story.clientHeight < 24;
  storyShown = shown;
  const items = (lines || []).map((line) => {
    const item = element("li");
    item.append(element("time", new Date(line.time).toLocaleTimeString(),
      { datetime: line.time }), document.createTextNode(line.text));
    return item;
  });
  story.replaceChildren(...items);
  if (following) story.scrollTop = story.scrollHeight;
}

function renderStats(stats) {
  for (const key of ["created", "confirmed", "dead", "winners"]) {
    $(`stat-${key}`).textContent = String(stats[key]);
  }
}

async function refresh() {
  const stats = await fetchOrNull(api.stats());
  if (stats) renderStats(stats);
  if (!player) return JSON.stringify(stats);
  const name = player;
  const statuses = await workflowStatuses(name);
  // The universe exists once the confirmation workflow has started: ask no sooner (no 404s).
  const confirmation = statuses[1];
  const made = confirmation && confirmation.status !== "Pending";
  const [game, log] = await Promise.all([
    made ? fetchOrNull(api.game(name)) : null,
    fetchOrNull(api.log(name)),
  ]);
  if (name !== player) return "";
  for (const id of ["workflows-card", "story-card"]) $(id).hidden = false;
  renderWorkflows(statuses);
  renderCountdown(statuses[1]);
  renderGame(game, statuses[4]);
  renderStory(log);
  return JSON.stringify([stats, statuses.map((s) => s && [s.status, s.customStatus]), game, log]);
}

// The first three workflows start with the game; the last two only for a player who confirmed,
// after the confirmation workflow has decided: until it completes they have not started (about
// to, or never if the window closes), so the page asks for them only once it has completed
// alive. Asking sooner races the player's death and gets a 404.
async function workflowStatuses(name) {
  const first = await Promise.all(
    WORKFLOWS.slice(0, 3).map((workflow) => fetchOrNull(api.status(name, workflow))));
  const confirmation = first[1];
  const deciding = confirmation && ["Pending", "Running"].includes(confirmation.status);
  const confirmed = confirmation && confirmation.status === "Completed"
    && confirmation.output !== "dead";
  const later = confirmed
    ? await Promise.all(WORKFLOWS.slice(3).map((workflow) => fetchOrNull(api.status(name, workflow))))
    : [deciding ? { status: "Pending" } : null, deciding ? { status: "Pending" } : null];
  return [...first, ...later];
}

async function poll() {
  clearTimeout(pollTimer);
  if (document.hidden) return;
  try {
    const snapshot = await refresh();
    pollDelay = snapshot === lastSnapshot ? Math.min(pollDelay * 2, SLOWEST_POLL_MS)
      : FASTEST_POLL_MS;
    lastSnapshot = snapshot;
  } catch {
    pollDelay = Math.min(pollDelay * 2, SLOWEST_POLL_MS);
  }
  pollTimer = setTimeout(poll, pollDelay);
}

function pollSoon() {
  pollDelay = FASTEST_POLL_MS;
  poll();
}

function watch(name) {
  player = name;
  lastSnapshot = "";
  storyShown = "";
  renderEnding(null, name);
  const url = new URL(window.location.href);
  url.searchParams.set("name", name);
  window.history.replaceState(null, "", url);
  pollSoon();
}

async function act(body) {
  showError("action-error", null);
  try {
    const result = await api.act({ name: player, ...body });
    $("action-message").textContent = result.message;
  } catch (error) {
    $("action-message").textContent = "";
    showError("action-error", error);
  }
  pollSoon();
}

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("start-error", null);
  const name = $("player-name").value;
  try {
    const result = await api.newUser(name);
    watch(result.name);
  } catch (error) {
    showError("start-error", error);
  }
});

$("resume-button").addEventListener("click", () => {
  showError("start-error", null);
  const name = $("player-name").value.trim();
  if (name) watch(name);
  else showError("start-error", new Error("Type the name to watch."));
});

$("confirm-button").addEventListener("click", async () => {
  showError("confirm-error", null);
  try {
    await api.confirm(player);
  } catch (error) {
    showError("confirm-error", error);
  }
  pollSoon();
});

$("action-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const body = { action: $("action-verb").value, target: $("action-target").value };
  if ($("action-with").value) body.with = $("action-with").value;
  act(body);
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) pollSoon();
});
setInterval(tickCountdown, 1000);

const initial = new URLSearchParams(window.location.search).get("name");
if (initial) {
  $("player-name").value = initial;
  watch(initial);
} else {
  pollSoon();
}
