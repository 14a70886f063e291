// The instance list: server-side pages, filters and order in the URL, counts by status, a
// selection. Newest first unless a column header says otherwise.
import { dashboard, durable } from "./api.js";
import { confirmAction, el, instanceLink, plural, when } from "./dom.js";

const PAGE = 50;
const STATUSES = ["Pending", "Running", "Suspended", "Completed", "Failed", "Terminated",
  "ContinuedAsNew", "Canceled"];
const FILTERS = ["name", "runtimeStatus", "createdTimeFrom", "createdTimeTo", "instanceIdPrefix"];
// Sortable columns (sort keys of the list API), each with the order it first sorts in.
const SORTABLE = { name: "asc", runtimeStatus: "asc", createdTime: "desc", lastUpdatedTime: "desc" };

export class InstancesView {
  constructor(params, navigate) {
    this.filters = Object.fromEntries(FILTERS.map((key) => [key, params.get(key) || ""]));
    const sort = Object.hasOwn(SORTABLE, params.get("sort") || "") ? params.get("sort") : "createdTime";
    const order = ["asc", "desc"].includes(params.get("order")) ? params.get("order") : SORTABLE[sort];
    this.sorting = { sort, order };
    this.navigate = navigate;
    this.tokens = [null]; // the continuation token of each page seen, for Previous
    this.selected = new Set();
    this.root = el("section", { class: "card", "aria-labelledby": "instances-title" });
  }

  mount(container) {
    this.form = this.filterForm();
    this.countsBar = el("p", { id: "counts", class: "counts" });
    this.table = el("tbody", { id: "instance-rows" });
    this.pageInfo = el("span", { id: "page-info", class: "muted" });
    this.message = el("p", { id: "list-message", role: "status" });
    this.allBox = el("input", { type: "checkbox", "aria-label": "Select all", onchange: (e) => this.selectAll(e.target.checked) });
    this.previous = el("button", { class: "secondary", type: "button", onclick: () => this.page(-1) }, "Previous");
    this.next = el("button", { class: "secondary", type: "button", onclick: () => this.page(1) }, "Next");
    this.root.append(
      el("h2", { id: "instances-title", text: "Orchestration instances" }),
      this.form, this.countsBar,
      el("div", { class: "actions" },
        el("button", { type: "button", id: "terminate-selected", onclick: () => this.act("terminate") }, "Terminate selected"),
        el("button", { type: "button", id: "purge-selected", class: "danger", onclick: () => this.act("purge") }, "Purge selected")),
      this.message,
      el("div", { class: "scroll" }, el("table", {},
        el("thead", {}, el("tr", {},
          el("th", {}, this.allBox),
          el("th", { text: "Instance" }), this.sortHeader("name", "Orchestrator"),
          this.sortHeader("runtimeStatus", "Status"), el("th", { text: "Custom status" }),
          this.sortHeader("createdTime", "Created"), this.sortHeader("lastUpdatedTime", "Updated"))),
        this.table)),
      el("div", { class: "actions" }, this.previous, this.next, this.pageInfo),
    );
    container.replaceChildren(this.root);
  }

  /** A header that sorts by its column; chosen again, it turns the order round. */
  sortHeader(key, label) {
    const current = this.sorting.sort === key;
    const order = current ? (this.sorting.order === "asc" ? "desc" : "asc") : SORTABLE[key];
    const arrow = current ? (this.sorting.order === "asc" ? " ▲" : " ▼") : "";
    return el("th", { "aria-sort": current ? (this.sorting.order === "asc" ? "ascending" : "descending") : "none" },
      el("a", { href: this.href({ sort: key, order }), class: "sort", "data-sort": key,
        title: `Sort by ${label.toLowerCase()}` }, `${label}${arrow}`));
  }

  /** The list's address with these filters and this order (the defaults left out). */
  href({ sort = this.sorting.sort, order = this.sorting.order, filters = this.filters } = {}) {
    const params = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    if (sort !== "createdTime" || order !== "desc") {
      params.set("sort", sort);
      if (order !== SORTABLE[sort]) params.set("order", order);
    }
    return `#/instances${params.size ? `?${params}` : ""}`;
  }

  filterForm() {
    const input = (key, label, attributes = {}) => el("label", {}, label,
      el("input", { name: key, value: this.filters[key], ...attributes }));
    const status = el("select", { name: "runtimeStatus" },
      el("option", { value: "", text: "any" }),
      ...STATUSES.map((s) => el("option", { value: s, text: s, selected: this.filters.runtimeStatus === s })));
    return el("form", { id: "filters", class: "filters", onsubmit: (e) => { e.preventDefault(); this.apply(); } },
      input("name", "Orchestrator"), el("label", {}, "Status", status),
      input("createdTimeFrom", "Created from", { type: "datetime-local", step: 1 }),
      input("createdTimeTo", "Created to", { type: "datetime-local", step: 1 }),
      input("instanceIdPrefix", "Id starts with"),
      el("button", { type: "submit" }, "Filter"));
  }

  apply() {
    const data = new FormData(this.form);
    this.navigate(this.href({ filters: Object.fromEntries(FILTERS.map((key) => [key, data.get(key) || ""])) }));
  }

  query() {
    const utc = (local) => (local ? new Date(local).toISOString() : "");
    return { ...this.filters, createdTimeFrom: utc(this.filters.createdTimeFrom),
      createdTimeTo: utc(this.filters.createdTimeTo) };
  }

  async refresh() {
    const asked = (this.asked = (this.asked || 0) + 1);
    const token = this.tokens[this.tokens.length - 1];
    const [list, counts] = await Promise.all([
      dashboard.instances(this.query(), this.sorting, PAGE, token), dashboard.counts(this.query())]);
    if (asked !== this.asked) return; // a newer refresh (after an action) answers instead
    this.nextToken = list.continuationToken;
    this.renderCounts(counts);
    this.renderRows(list.instances);
    this.previous.disabled = this.tokens.length === 1;
    this.next.disabled = !this.nextToken;
    this.pageInfo.textContent = `page ${this.tokens.length}`;
  }

  renderCounts(counts) {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const chip = (label, value, status) => el("a", {
      class: `chip status-${status || "all"}`, href: this.statusHref(status), "data-status": status || "all",
    }, `${label} ${value}`);
    this.countsBar.replaceChildren(chip("All", total, ""),
      ...STATUSES.filter((s) => counts[s]).map((s) => chip(s, counts[s], s)));
  }

  statusHref(status) {
    return this.href({ filters: { ...this.filters, runtimeStatus: status } });
  }

  renderRows(instances) {
    this.shown = instances.map((i) => i.instanceId);
    this.table.replaceChildren(...instances.map((item) => el("tr", { "data-id": item.instanceId },
      el("td", {}, el("input", { type: "checkbox", "aria-label": `Select ${item.instanceId}`,
        checked: this.selected.has(item.instanceId),
        onchange: (e) => (e.target.checked ? this.selected.add(item.instanceId) : this.selected.delete(item.instanceId)) })),
      el("td", {}, instanceLink(item.instanceId)), el("td", { text: item.name }),
      el("td", {}, el("span", { class: `badge status-${item.runtimeStatus}`, text: item.runtimeStatus })),
      el("td", { class: "custom-status" }, item.customStatus === null ? null : el("code", { text: item.customStatus })),
      el("td", { text: when(item.createdTime) }), el("td", { text: when(item.lastUpdatedTime) }))));
    if (!instances.length) this.table.append(el("tr", {}, el("td", { colspan: 7, text: "No instances match." })));
  }

  selectAll(checked) {
    for (const id of this.shown || []) (checked ? this.selected.add(id) : this.selected.delete(id));
    for (const box of this.table.querySelectorAll("input[type=checkbox]")) box.checked = checked;
  }

  async page(step) {
    if (step > 0 && this.nextToken) this.tokens.push(this.nextToken);
    if (step < 0 && this.tokens.length > 1) this.tokens.pop();
    await this.refresh();
  }

  async act(action) {
    const ids = [...this.selected];
    if (!ids.length) {
      this.message.textContent = "Select instances first.";
      return;
    }
    if (!(await confirmAction(`${action === "purge" ? "Purge" : "Terminate"} ${plural(ids.length, "instance")}?`))) return;
    const failures = [];
    for (const id of ids) {
      try {
        await (action === "purge" ? durable.purge(id) : durable.terminate(id, "Terminated from the dashboard"));
        this.selected.delete(id);
      } catch (error) {
        failures.push(`${id}: ${error.message}`);
      }
    }
    this.allBox.checked = false;
    const done = ids.length - failures.length;
    this.message.textContent = [`${action === "purge" ? "Purged" : "Terminated"} ${done} of ${ids.length}.`, ...failures].join(" ");
    await this.refresh();
  }
}
