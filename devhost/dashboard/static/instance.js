// One instance: its data, what it waits on now, actions, the timeline and the history.
import { dashboard, durable } from "./api.js";
import { confirmAction, el, instanceLink, payload, when } from "./dom.js";
import { duration, timeline } from "./timeline.js";

const ACTIONS = [
  ["terminate", "Terminate", (id, reason) => durable.terminate(id, reason)],
  ["suspend", "Suspend", (id, reason) => durable.suspend(id, reason)],
  ["resume", "Resume", (id, reason) => durable.resume(id, reason)],
  ["rewind", "Rewind", (id, reason) => durable.rewind(id, reason)],
  ["restart", "Restart", (id) => durable.restart(id)],
  ["purge", "Purge", (id) => durable.purge(id)],
];

export class InstanceView {
  constructor(instanceId, navigate) {
    this.instanceId = instanceId;
    this.navigate = navigate;
    this.root = el("div");
    this.lastData = "";
    this.everyEvent = false;
  }

  mount(container) {
    this.summary = el("section", { class: "card", id: "summary" });
    this.waiting = el("section", { class: "card", id: "waiting" });
    this.data = el("section", { class: "card", id: "data" });
    this.timelineCard = el("section", { class: "card", id: "timeline" });
    this.history = el("section", { class: "card", id: "history" });
    this.message = el("p", { id: "action-message", role: "status" });
    this.actions = this.actionsCard();
    this.cards = [this.summary, this.waiting, this.timelineCard, this.actions, this.data, this.history];
    this.root.replaceChildren(...this.cards);
    container.replaceChildren(this.root);
  }

  actionsCard() {
    this.eventName = el("input", { id: "event-name", name: "event-name", list: "awaited-events", autocomplete: "off",
      placeholder: "event name", oninput: () => { this.eventNameTouched = true; } });
    this.awaited = el("datalist", { id: "awaited-events" });
    const eventData = el("textarea", { id: "event-data", name: "event-data", rows: 2, placeholder: "JSON, e.g. true" });
    const reason = el("input", { id: "reason", name: "reason", placeholder: "why (optional)" });
    const raise = el("form", { id: "raise-form", onsubmit: (e) => { e.preventDefault(); this.raise(this.eventName.value, eventData.value); } },
      el("label", { for: "event-name" }, "Event name"), this.eventName, this.awaited,
      el("label", { for: "event-data" }, "Event data (JSON)"), eventData,
      el("button", { type: "submit" }, "Raise event"));
    const buttons = ACTIONS.map(([key, label, run]) => el("button", {
      type: "button", id: `action-${key}`, class: key === "purge" || key === "terminate" ? "danger" : "secondary",
      onclick: () => this.control(label, () => run(this.instanceId, reason.value)),
    }, label));
    return el("section", { class: "card", id: "actions" }, el("h2", { text: "Actions" }), raise,
      el("label", { for: "reason" }, "Reason"), reason, el("div", { class: "actions" }, ...buttons), this.message);
  }

  /** The event field offers the events the instance waits on, the first one filled in. */
  offerEvents(waiting) {
    const names = waiting ? waiting.events : [];
    this.awaited.replaceChildren(...names.map((name) => el("option", { value: name })));
    if (!this.eventNameTouched) this.eventName.value = names[0] || "";
    this.eventName.placeholder = names.length ? names.join(", ") : "event name (the instance waits on none now)";
  }

  async raise(name, text) {
    if (!name.trim()) {
      this.message.textContent = "An event needs a name.";
      return;
    }
    const body = text.trim() || "null";
    try {
      JSON.parse(body);
    } catch {
      this.message.textContent = "The event data is not valid JSON.";
      return;
    }
    await this.control(`Raise event '${name}'`, () => durable.raiseEvent(this.instanceId, name, body));
  }

  async control(label, run) {
    if (!(await confirmAction(`${label} on instance '${this.instanceId}'?`))) return;
    try {
      const result = await run();
      this.message.textContent = `${label}: accepted.`;
      if (label === "Restart" && typeof result === "string") this.navigate(`#/instances/${encodeURIComponent(result)}`);
      if (label === "Purge") this.purged = true;
    } catch (error) {
      this.message.textContent = `${label} refused: ${error.status === 404 && label === "Purge" ? "only finished instances can be purged" : error.message}`;
    }
    await this.refresh();
  }

  async refresh() {
    const asked = (this.asked = (this.asked || 0) + 1);
    let data;
    try {
      data = await dashboard.instance(this.instanceId);
    } catch (error) {
      if (error.status !== 404) throw error;
      if (asked === this.asked) this.gone();
      return;
    }
    if (asked !== this.asked) return; // a newer refresh (after an action) answers instead
    const text = JSON.stringify(data);
    if (text === this.lastData) return;
    if (!this.lastData || this.root.childElementCount !== this.cards.length) this.root.replaceChildren(...this.cards);
    this.lastData = text;
    this.renderSummary(data);
    this.renderWaiting(data.waitingOn);
    this.offerEvents(data.waitingOn);
    this.renderData(data);
    this.timelineCard.replaceChildren(el("h2", { text: "Timeline" }), timeline(data.timeline, data.now),
      ...this.earlierGenerations(data.generations, data.now));
    this.renderHistory(data);
  }

  /** No such instance (any more): one card that says so, and no actions or empty panels. */
  gone() {
    this.lastData = "";
    const text = this.purged
      ? `Instance '${this.instanceId}' was purged: its status and history are gone from this hub.`
      : `No instance '${this.instanceId}' in this hub (never started, or purged).`;
    this.root.replaceChildren(el("section", { class: "card", id: "gone" },
      el("h2", { text: this.purged ? "Purged" : "Not found" }),
      el("p", { id: "not-found", text }),
      el("p", {}, el("a", { href: "#/instances", text: "Back to the instance list" }))));
  }

  earlierGenerations(generations, now) {
    if (!generations.length) return [];
    return [el("h3", { text: "Earlier generations (continued as new; the last five are kept in memory while it runs)" }),
      el("ol", { id: "generations", reversed: true }, ...generations.slice().reverse().map((g) =>
        el("li", { class: "generation" }, el("code", { text: g.executionId || "" }), timeline(g.timeline, now))))];
  }

  renderSummary(data) {
    const s = data.status;
    const facts = [["Instance", el("code", { id: "instance-id", text: s.instanceId })],
      ["Orchestrator", s.name],
      ["Status", el("span", { id: "runtime-status", class: `badge status-${s.runtimeStatus}`, text: s.runtimeStatus })],
      ["Created", when(s.createdTime)], ["Updated", when(s.lastUpdatedTime)]];
    if (data.parentInstanceId) facts.push(["Parent", instanceLink(data.parentInstanceId)]);
    if (data.children.length) {
      facts.push(["Sub-orchestrations", el("ul", { id: "children" },
        ...data.children.map((c) => el("li", {}, instanceLink(c.instanceId), ` (${c.name})`)))]);
    }
    this.summary.replaceChildren(el("h2", { text: "Instance" }), el("dl", { class: "facts" },
      ...facts.flatMap(([term, value]) => [el("dt", { text: term }),
        typeof value === "string" ? el("dd", { text: value }) : el("dd", {}, value)])));
  }

  renderWaiting(waiting) {
    const items = [];
    if (waiting) {
      for (const t of waiting.timers) {
        const what = t.retryOf ? `retry timer before attempt ${t.attempt + 1} of ${t.retryOf}` : "timer";
        items.push(el("li", { class: t.retryOf ? "timer retry" : "timer" }, `${what} (task ${t.task}) due ${when(t.due)} `,
          el("time", { datetime: t.due, text: t.due })));
      }
      for (const name of waiting.events) items.push(el("li", { class: "event", text: `event ${name}` }));
      for (const a of waiting.activities) items.push(el("li", { class: "activity", text: `activity ${a.name} (task ${a.task}) running` }));
      for (const c of waiting.suborchestrations) items.push(el("li", { class: "suborchestration" }, `sub-orchestration ${c.name} `, instanceLink(c.instance_id)));
      for (const e of waiting.entities) items.push(el("li", { class: "entity", text: `entity ${e.entity}: ${e.operation}` }));
      if (waiting.worker) items.push(el("li", { class: "worker", text: waiting.worker }));
    }
    const body = waiting === null ? el("p", { class: "muted", text: "Nothing: the instance is not running." })
      : items.length ? el("ul", { id: "waiting-list" }, ...items) : el("p", { class: "muted", text: "Nothing right now (work is being processed)." });
    this.waiting.replaceChildren(el("h2", { text: "Waiting on now" }), body);
  }

  renderData(data) {
    const block = (title, id, value) => [el("h3", { text: title }), el("pre", { id, text: payload(value) })];
    const parts = [el("h2", { text: "Data" }), ...block("Input", "input", data.status.input),
      ...block("Output", "output", data.status.output), ...block("Custom status", "custom-status", data.status.customStatus)];
    if (data.failure) {
      const f = data.failure;
      parts.push(el("h3", { text: "Failure" }), el("div", { id: "failure" },
        f.reason ? el("p", { text: `Task ${f.task}: ${f.reason}` }) : null,
        el("pre", { class: "traceback", text: payload(f.details || f.message) })));
    }
    this.data.replaceChildren(...parts);
  }

  renderHistory(data) {
    const every = el("input", { type: "checkbox", id: "every-event", checked: this.everyEvent,
      onchange: (e) => { this.everyEvent = e.target.checked; this.renderHistory(data); } });
    const title = this.everyEvent ? `History (${data.history.length} events)` : `History (${data.steps.length} steps)`;
    this.history.replaceChildren(el("h2", { text: title }),
      el("label", { class: "inline" }, every, "Show every event"),
      el("div", { class: "scroll" }, this.everyEvent ? this.eventsTable(data.history) : this.stepsTable(data.steps)));
  }

  /** Temporal's compact view: a task and its result on one row. */
  stepsTable(steps) {
    const rows = steps.map((step) => {
      const took = step.end ? duration(Date.parse(step.end) - Date.parse(step.start)) : step.status === "open" ? "open" : "";
      const what = [el("strong", { text: step.kind }), " ",
        step.instanceId ? instanceLink(step.instanceId, step.name || step.instanceId) : step.name,
        step.kind === "retry timer" ? el("span", { class: "muted", text: ` (before attempt ${step.attempt + 1})` })
          : step.attempt > 1 ? el("span", { class: "muted", text: ` (attempt ${step.attempt})` }) : null];
      const details = [];
      const show = (label, text, cls) => details.push(el("div", { class: `detail ${cls || ""}` },
        el("span", { class: "muted", text: `${label} ` }), el("pre", { text })));
      if ("input" in step && step.input !== null) show("input", payload(step.input));
      if ("reason" in step && step.reason !== null) show("reason", payload(step.reason));
      if ("result" in step) show("result", payload(step.result));
      if (step.due) show("due", when(step.due));
      if (step.failure) {
        if (step.failure.reason !== undefined) {
          show("failed", step.failure.reason, "failure");
          if (step.failure.details) show("traceback", payload(step.failure.details), "traceback");
        } else show("failed", payload(step.failure), "failure");
      }
      return el("tr", { "data-kind": step.kind, "data-status": step.status || "" },
        el("td", {}, when(step.start), took ? el("div", { class: "muted", text: took }) : null),
        el("td", {}, ...what, step.status ? el("span", { class: `badge step-${step.status}`, text: step.status }) : null),
        el("td", {}, ...details));
    });
    return el("table", { id: "steps-table" },
      el("thead", {}, el("tr", {}, ...["Time", "Step", "Details"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows));
  }

  eventsTable(history) {
    const rows = history.map((evt, index) => {
      const { EventType: type, Timestamp: time, EventId: eventId, ...rest } = evt;
      return el("tr", {}, el("td", { text: String(index) }), el("td", { text: when(time) }),
        el("td", { text: type }), el("td", { text: eventId >= 0 ? String(eventId) : "" }),
        el("td", {}, el("code", { text: JSON.stringify(rest) })));
    });
    return el("table", { id: "history-table" },
      el("thead", {}, el("tr", {}, ...["#", "Time", "Event", "Id", "Details"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows));
  }
}
