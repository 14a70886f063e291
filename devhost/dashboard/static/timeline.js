// The timeline: one bar per activity, timer, sub-orchestration and awaited event, on one time axis.
import { el, instanceLink, when } from "./dom.js";

/** `nowText` is the host's clock (a test host's clock may run ahead of the browser's). */
export function timeline(bars, nowText) {
  if (!bars.length) return el("p", { class: "muted", text: "No history yet." });
  const now = Date.parse(nowText);
  const time = (text) => (text ? Date.parse(text) : now);
  const start = Math.min(...bars.map((b) => time(b.start)));
  const end = Math.max(now, ...bars.map((b) => time(b.end)), ...bars.map((b) => (b.due ? time(b.due) : 0)));
  const span = Math.max(end - start, 1);
  const percent = (t) => `${(((t - start) / span) * 100).toFixed(2)}%`;
  const rows = bars.map((bar) => {
    const from = time(bar.start);
    const to = bar.end ? time(bar.end) : bar.due ? time(bar.due) : now;
    const took = bar.end ? duration(to - from) : "open";
    const label = el("div", { class: "bar-label" }, `${bar.kind} `,
      bar.instanceId ? instanceLink(bar.instanceId, bar.name) : el("span", { text: bar.name }),
      el("span", { class: "muted", text: ` · ${took}` }));
    const drawn = el("div", {
      class: `bar kind-${bar.kind} bar-${bar.status}`,
      style: `left:${percent(from)};width:max(3px,${percent(to - from + start)})`,
      title: `${bar.kind} ${bar.name}: ${when(bar.start)} → ${bar.end ? when(bar.end) : "open"}${bar.due ? `, due ${when(bar.due)}` : ""}`,
    });
    const track = el("div", { class: "track" }, drawn);
    if (bar.due && !bar.end) track.append(el("div", { class: "due", style: `left:${percent(time(bar.due))}`, title: `due ${when(bar.due)}` }));
    return el("li", { class: "bar-row", "data-kind": bar.kind, "data-status": bar.status }, label, track);
  });
  return el("div", {}, el("p", { class: "muted", text: `${when(new Date(start).toISOString())} → ${when(new Date(end).toISOString())}` }),
    el("ol", { class: "bars", id: "bars" }, ...rows));
}

function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}
