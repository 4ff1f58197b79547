// The federation API as the console uses it. Every request goes to this node (the page's
// origin); once logged in, the admin token rides along as a bearer header. Paths live here.

export const PATHS = {
  clusters: '/api/v1/clusters',
  leases: '/api/v1/leases',
  services: '/api/v1/services',
  trust: '/api/v1/trust/status',
  status: '/api/v1/mesh/status',
  config: '/api/v1/mesh/config',
  signals: '/api/v1/observability/metrics?window=1m',
  failed: '/api/v1/observability/logs?status=5xx&limit=8',
  placements: '/api/v1/observability/placements',
  audit: (since) => `/api/v1/audit?since=${since}&limit=500`,
  watch: (from) => `/api/v1/watch?from_revision=${from}`,
};

const KEY = 'warden.admin-token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

function headers(extra) {
  const h = { ...extra };
  const t = token();
  if (t) h.authorization = `Bearer ${t}`;
  return h;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.field = body?.error?.field;
  }
}

async function send(method, path, value) {
  const init = { method, headers: headers(), cache: 'no-store' };
  if (value !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(value);
  }
  const r = await fetch(path, init);
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

export const get = (path) => send('GET', path);
export const put = (path, value) => send('PUT', path, value);

// Reads the watch stream (NDJSON) from `from`, calling `onEvent` for each line, until it ends.
export async function watch(from, onEvent, signal) {
  const r = await fetch(PATHS.watch(from), { headers: headers(), signal, cache: 'no-store' });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
  const reader = r.body.getReader();
  const text = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += text.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onEvent(JSON.parse(line));
    }
  }
}
