// The timeline: one bar per activity, timer, sub-orchestration and awaited event, on one time
// axis whose long idle waits are drawn as narrow breaks (the host cuts the axis: `axis`).
import { el, instanceLink, when } from "./dom.js";

/** `drawn` is {bars, axis}; `nowText` is the host's clock (a test host's clock may run ahead of
 * the browser's). */
export function timeline(drawn, nowText) {
  const { bars, axis } = drawn;
  if (!bars.length) return el("p", { class: "muted", text: "No history yet." });
  const now = Date.parse(nowText);
  const time = (text) => (text ? Date.parse(text) : now);
  const segments = axis.map((s) => ({ ...s, from: Date.parse(s.start), to: Date.parse(s.end) }));
  const place = (t) => position(segments, t);
  const breaks = segments.filter((s) => s.break);
  const rows = bars.map((bar) => {
    const from = time(bar.start);
    const to = bar.end ? time(bar.end) : bar.due ? time(bar.due) : now;
    const took = bar.end ? duration(to - from) : "open";
    const name = bar.retry ? `before attempt ${bar.retry + 1} of ${bar.name}` : bar.name;
    const label = el("div", { class: "bar-label" }, `${kindLabel(bar)} `,
      bar.instanceId ? instanceLink(bar.instanceId, name) : el("span", { text: name }),
      el("span", { class: "muted", text: ` · ${took}` }));
    const left = place(from);
    const drawnBar = el("div", {
      class: `bar kind-${bar.kind} bar-${bar.status}`,
      style: `left:${left.toFixed(2)}%;width:max(3px,${(place(to) - left).toFixed(2)}%)`,
      title: `${kindLabel(bar)} ${name}: ${when(bar.start)} → ${bar.end ? when(bar.end) : "open"}${bar.due ? `, due ${when(bar.due)}` : ""}`,
    });
    const track = el("div", { class: "track" }, drawnBar, ...breaks.map((b) => el("div", {
      class: "break", style: `left:${b.left}%;width:${b.width}%`, "aria-hidden": "true" })));
    if (bar.due && !bar.end) track.append(el("div", { class: "due", style: `left:${place(time(bar.due)).toFixed(2)}%`, title: `due ${when(bar.due)}` }));
    return el("li", { class: "bar-row", "data-kind": bar.kind, "data-status": bar.status }, label, track);
  });
  const first = segments.length ? segments[0].start : bars[0].start;
  const last = segments.length ? segments[segments.length - 1].end : bars[0].start;
  const waits = breaks.map((b) => duration(b.to - b.from)).join(", ");
  const note = breaks.length ? ` · idle ${waits} drawn short, as a striped break` : "";
  return el("div", {}, el("p", { class: "muted timeline-span", text: `${when(first)} → ${when(last)}${note}` }),
    el("ol", { class: "bars", id: "bars" }, ...rows));
}

/** What a bar is: "activity", "timer", "retry timer" (the wait before a task's next attempt). */
function kindLabel(bar) {
  if (bar.kind === "timer") return bar.retry ? "retry timer" : "timer";
  return bar.kind === "suborchestration" ? "sub-orchestration" : bar.kind;
}

/** Where a moment falls on the axis, in percent: linear within each segment. */
function position(segments, t) {
  if (!segments.length) return 0;
  for (const s of segments) {
    if (t <= s.to) return s.left + (s.to > s.from ? (Math.max(t, s.from) - s.from) / (s.to - s.from) : 0) * s.width;
  }
  const last = segments[segments.length - 1];
  return last.left + last.width;
}

export function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7200000) return `${(ms / 60000).toFixed(1)} min`;
  return `${(ms / 3600000).toFixed(1)} h`;
}
