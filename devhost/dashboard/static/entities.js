// Entities: each with its state and the operations waiting for it.
import { dashboard } from "./api.js";
import { el, json, plural, when } from "./dom.js";

const PAGE = 50;

export class EntitiesView {
  constructor() {
    this.tokens = [null];
    this.root = el("section", { class: "card", "aria-labelledby": "entities-title" });
  }

  mount(container) {
    this.list = el("div", { id: "entity-list" });
    this.previous = el("button", { class: "secondary", type: "button", onclick: () => this.page(-1) }, "Previous");
    this.next = el("button", { class: "secondary", type: "button", onclick: () => this.page(1) }, "Next");
    this.root.append(el("h2", { id: "entities-title", text: "Entities" }), this.list,
      el("div", { class: "actions" }, this.previous, this.next));
    container.replaceChildren(this.root);
  }

  async refresh() {
    const body = await dashboard.entities(PAGE, this.tokens[this.tokens.length - 1]);
    this.nextToken = body.continuationToken;
    this.previous.disabled = this.tokens.length === 1;
    this.next.disabled = !this.nextToken;
    if (!body.entities.length) {
      this.list.replaceChildren(el("p", { class: "muted", text: "No entities in this hub." }));
      return;
    }
    this.list.replaceChildren(...body.entities.map((entity) => el("article", { class: "entity", "data-id": entity.instanceId },
      el("h3", {}, el("code", { text: `@${entity.name}@${entity.key}` })),
      el("p", { class: "muted", text: `last operation ${when(entity.lastOperationTime)}` }),
      el("pre", { class: "state", text: json(entity.state) }),
      el("p", { text: entity.queue.length ? `${plural(entity.queue.length, "operation")} waiting:` : "No operations waiting." }),
      entity.queue.length ? el("ul", { class: "queue" }, ...entity.queue.map((op) =>
        el("li", { text: `${op.signal ? "signal" : "call"} ${op.operation}(${op.input === null ? "" : JSON.stringify(op.input)})` }))) : null)));
  }

  async page(step) {
    if (step > 0 && this.nextToken) this.tokens.push(this.nextToken);
    if (step < 0 && this.tokens.length > 1) this.tokens.pop();
    await this.refresh();
  }
}
