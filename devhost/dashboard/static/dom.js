// DOM building: every text from the hub goes in with textContent, never as HTML.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function json(value) {
  return value === undefined || value === null ? "null" : JSON.stringify(value, null, 2);
}

/** "1 instance", "2 instances". */
export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** A payload to read: text with line breaks (a traceback) as it is, anything else as JSON. */
export function payload(value) {
  return typeof value === "string" && value.includes("\n") ? value : json(value);
}

export function when(text) {
  return text ? new Date(text).toLocaleString() : "–";
}

export function instanceLink(instanceId, label = instanceId) {
  return el("a", { href: `#/instances/${encodeURIComponent(instanceId)}`, text: label });
}

/** Ask before acting: resolves true only when the user says yes. */
export function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}
