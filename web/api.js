// The game's HTTP API. The base URL is the page's own origin + /api, or ?api=<url>.

export function apiBase(location = window.location) {
  const configured = new URLSearchParams(location.search).get("api");
  return (configured || `${location.origin}/api`).replace(/\/+$/, "");
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class GameApi {
  constructor(base) {
    this.base = base;
  }

  async request(method, path, body) {
    let response;
    try {
      response = await fetch(`${this.base}/${path}`, {
        method,
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "The game server cannot be reached.");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = data && typeof data.error === "string"
        ? data.error : `The server answered ${response.status}.`;
      throw new ApiError(response.status, message);
    }
    return data;
  }

  newUser(name) { return this.request("POST", "NewUser", { name }); }
  confirm(name) { return this.request("POST", "ConfirmUser", { name }); }
  act(body) { return this.request("POST", "Action", body); }
  status(name, workflow) {
    return this.request("GET", `CheckStatus/${encodeURIComponent(name)}/${workflow}`);
  }
  game(name) { return this.request("GET", `GameStatus/${encodeURIComponent(name)}`); }
  log(name) { return this.request("GET", `GameLog/${encodeURIComponent(name)}`); }
  stats() { return this.request("GET", "Stats"); }
}
