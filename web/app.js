// The Durable Dungeon page: start, confirm, play, and watch the workflows at work.
// Every server or player text is put in the page with textContent, never as HTML.
import { ApiError, GameApi, apiBase } from "./api.js";

const WORKFLOWS = [
  "RunUserParallelWorkflow",
  "UserConfirmationWorkflow",
  "RunUserSequentialWorkflow",
  "UserMonitorWorkflow",
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

function renderWorkflows(statuses) {
  const rows = WORKFLOWS.map((workflow, index) => {
    const status = statuses[index];
    const row = element("tr");
    const dashboard = new URL(`/_devhost/#/instances/${encodeURIComponent(`${workflow}:${player}`)}`, apiBase());
    const name = element("td");
    name.append(element("a", workflow, { href: dashboard.href, title: "this workflow in the devhost dashboard" }));
    row.append(name, element("td", status ? status.status : "not started"),
      element("td", status ? new Date(status.created).toLocaleTimeString() : "–"));
    return row;
  });
  $("workflows").replaceChildren(...rows);
}

function renderCountdown(confirmation) {
  const waiting = confirmation && confirmation.status === "Running" &&
    confirmation.customStatus && confirmation.customStatus.state === "waiting";
  deadline = waiting ? new Date(confirmation.customStatus.deadline) : null;
  $("confirm-card").hidden = !waiting;
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
  if (!user.isAlive || !user.currentRoom) return [];
  const held = user.inventoryItems ? user.inventoryItems.split(",") : [];
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
  $("action-form").hidden = !user.isAlive;
}

function renderStory(lines) {
  const items = (lines || []).map((line) => {
    const item = element("li");
    item.append(element("time", new Date(line.time).toLocaleTimeString(),
      { datetime: line.time }), document.createTextNode(line.text));
    return item;
  });
  $("story").replaceChildren(...items);
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
  const [statuses, game, log] = await Promise.all([
    Promise.all(WORKFLOWS.map((workflow) => fetchOrNull(api.status(name, workflow)))),
    fetchOrNull(api.game(name)),
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
