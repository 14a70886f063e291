// The dashboard: hash routes (#/instances?filters, #/instances/<id>, #/entities), each view
// refreshed every POLL_MS without a reload. Hub text only ever goes in as textContent.
import { dashboard } from "./api.js";
import { EntitiesView } from "./entities.js";
import { InstanceView } from "./instance.js";
import { InstancesView } from "./instances.js";

const POLL_MS = 2000;
const view = document.getElementById("view");
const live = document.getElementById("live");
let current = null;
let timer = null;

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function viewFor(hash) {
  const [path, search = ""] = hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(search);
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "entities") return new EntitiesView();
  if (parts[0] === "instances" && parts.length > 1) {
    return new InstanceView(decodeURIComponent(parts.slice(1).join("/")), navigate);
  }
  return new InstancesView(params, navigate);
}

async function refresh(target) {
  try {
    await target.refresh();
    live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    live.textContent = `not updated: ${error.message}`;
  }
}

function route() {
  clearTimeout(timer);
  current = viewFor(window.location.hash || "#/instances");
  document.getElementById("nav-entities").toggleAttribute("aria-current", current instanceof EntitiesView);
  document.getElementById("nav-instances").toggleAttribute("aria-current", !(current instanceof EntitiesView));
  current.mount(view);
  const mine = current;
  const tick = async () => {
    if (mine !== current) return;
    if (!document.getElementById("confirm").open) await refresh(mine);
    if (mine === current) timer = setTimeout(tick, POLL_MS);
  };
  tick();
}

window.addEventListener("hashchange", route);
dashboard.hub().then(
  (hub) => { document.getElementById("hub").textContent = `task hub ${hub.hub} · ${hub.store} store`; },
  () => {},
);
route();
