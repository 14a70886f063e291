// The dashboard's JSON (/_devhost/api/) and the public Durable Functions HTTP API.

const DASHBOARD = `${window.location.origin}/_devhost/api/`;
const DURABLE = `${window.location.origin}/runtime/webhooks/durabletask/`;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch {
    throw new ApiError(0, "The host cannot be reached.");
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!response.ok) {
    const message = (body && (body.Message || body.message)) || `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

const id = (instanceId) => `instances/${encodeURIComponent(instanceId)}`;

export const dashboard = {
  hub: () => call(`${DASHBOARD}hub`),
  instances: (filters, sorting, top, continuationToken) =>
    call(`${DASHBOARD}instances${query({ ...filters, ...sorting, top, continuationToken })}`),
  counts: (filters) => call(`${DASHBOARD}counts${query({ ...filters, runtimeStatus: "" })}`),
  instance: (instanceId) => call(`${DASHBOARD}${id(instanceId)}`),
  entities: (top, continuationToken) => call(`${DASHBOARD}entities${query({ top, continuationToken })}`),
};

const post = (path, body) =>
  call(`${DURABLE}${path}`, {
    method: "POST",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body,
  });

export const durable = {
  raiseEvent: (instanceId, name, jsonText) =>
    post(`${id(instanceId)}/raiseEvent/${encodeURIComponent(name)}`, jsonText),
  terminate: (instanceId, reason) => post(`${id(instanceId)}/terminate${query({ reason })}`),
  suspend: (instanceId, reason) => post(`${id(instanceId)}/suspend${query({ reason })}`),
  resume: (instanceId, reason) => post(`${id(instanceId)}/resume${query({ reason })}`),
  rewind: (instanceId, reason) => post(`${id(instanceId)}/rewind${query({ reason })}`),
  restart: (instanceId) => post(`${id(instanceId)}/restart?restartWithNewInstanceId=true`),
  purge: (instanceId) => call(`${DURABLE}${id(instanceId)}`, { method: "DELETE" }),
};
