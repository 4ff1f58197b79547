// The console's state and its updates: the catalog (clusters, services, leases, trust, audit)
// is read once and again whenever the watch stream reports a change; signals, failed
// requests and the Raft view are polled every 2 s (they are not store changes). Without a
// watch stream it polls everything. The timeline is what changed while the page is open.

import { ApiError, PATHS, get, put, setToken, token, watch } from './api.js';
import { renderGraph, pickEdges } from './graph.js';
import {
  renderAudit, renderClusters, renderFailed, renderRaft, renderServices, renderTimeline, renderTrust,
} from './panels.js';

const $ = (id) => document.getElementById(id);

const state = {
  clusters: [],
  services: [],
  leases: new Map(), // cluster -> {renewed_at, ttl_ms}
  skew: 0, // node clock - this clock, ms
  edges: [],
  placements: [], // per gateway: where it sends each service now
  timeline: [],
  health: null, // "ns/svc|cluster" -> healthy endpoints
  leaseSeen: new Map(), // cluster -> last lease state
  crossEdges: null, // "svc|src|dst" seen carrying traffic between clusters
  revision: 0,
  live: false,
  updates: 0,
};
window.wardenConsole = state;

function message(text, kind = 'info') {
  const m = $('message');
  m.textContent = text;
  m.dataset.kind = kind;
}

function setStatus(s) {
  const el = $('status');
  el.dataset.state = s;
  el.textContent = s;
}

function leaseState(name) {
  const l = state.leases.get(name);
  if (!l) return 'none';
  return Date.now() + state.skew - l.renewed_at <= l.ttl_ms ? 'live' : 'expired';
}

function leaseAge(name) {
  const l = state.leases.get(name);
  return l ? Math.max(0, Date.now() + state.skew - l.renewed_at) : null;
}

function note(kind, text, at = Date.now()) {
  state.timeline.push({ at, kind, text });
  if (state.timeline.length > 200) state.timeline.shift();
  renderTimeline($('timeline'), state.timeline);
}

// Failovers and failbacks as the catalog shows them: a cluster's healthy endpoints for a
// service dropping to none, and coming back.
function diffHealth(services) {
  const now = new Map();
  for (const s of services) {
    for (const c of s.clusters) now.set(`${s.namespace}/${s.service}|${c.cluster}`, c.healthy_endpoints);
  }
  if (state.health) {
    for (const [key, n] of now) {
      const [svc, cluster] = key.split('|');
      const was = state.health.get(key);
      if (was > 0 && n === 0) note('failover', `${svc} in ${cluster}: no healthy endpoint left; its callers fail over`);
      if (was === 0 && n > 0) note('failback', `${svc} in ${cluster}: ${n} healthy endpoint(s) again; traffic fails back`);
      if (was === undefined) note('export', `${svc} exported by ${cluster} (${n} healthy)`);
    }
  } else {
    for (const [key, n] of now) {
      if (n === 0) note('failover', `${key.replace('|', ' in ')}: no healthy endpoint (when the page opened)`);
    }
  }
  state.health = now;
}

function diffLeases() {
  for (const c of state.clusters) {
    const s = leaseState(c.name);
    const was = state.leaseSeen.get(c.name);
    if (was && was !== s) note('lease', `${c.name}: lease ${was} → ${s}`);
    state.leaseSeen.set(c.name, s);
  }
}

function diffEdges(edges) {
  const known = new Set(state.clusters.map((c) => c.name));
  const now = new Set(edges.filter((e) => e.src_cluster !== e.dst_cluster && known.has(e.src_cluster) && known.has(e.dst_cluster))
    .map((e) => `${e.service}|${e.src_cluster}|${e.dst_cluster}`));
  if (state.crossEdges) {
    for (const k of now) {
      if (!state.crossEdges.has(k)) {
        const [svc, src, dst] = k.split('|');
        note('edge', `${svc}: traffic ${src} → ${dst} began`);
      }
    }
    for (const k of state.crossEdges) {
      if (!now.has(k)) {
        const [svc, src, dst] = k.split('|');
        note('edge', `${svc}: no traffic ${src} → ${dst} in the last minute`);
      }
    }
  }
  state.crossEdges = now;
}

function draw() {
  renderClusters($('clusters'), state.clusters, leaseState, leaseAge);
  renderGraph($('graph'), state.clusters, state.edges, leaseState);
  renderServices($('services'), state.services, state.edges, state.clusters, state.placements);
  state.updates += 1;
}

async function refreshCatalog() {
  const [clusters, services, leases, trust] = await Promise.all([
    get(PATHS.clusters), get(PATHS.services), get(PATHS.leases), get(PATHS.trust),
  ]);
  state.clusters = clusters.items;
  state.services = services.items;
  state.revision = Math.max(state.revision, clusters.revision);
  state.skew = leases.now - Date.now();
  state.leases = new Map(leases.items.map((l) => [l.cluster, { renewed_at: l.renewed_at, ttl_ms: l.ttl_ms }]));
  diffHealth(state.services);
  diffLeases();
  renderTrust($('trust'), trust);
  const audit = await get(PATHS.audit(Math.max(0, state.revision - 500)));
  renderAudit($('audit'), audit.items);
  draw();
}

async function refreshSignals() {
  const [signals, failed, status, placements] = await Promise.all([
    get(PATHS.signals), get(PATHS.failed), get(PATHS.status),
    // A node from before placements answers 404: the rest of the page goes on.
    get(PATHS.placements).catch(() => ({ gateways: [] })),
  ]);
  state.edges = signals.edges;
  state.placements = placements.gateways ?? [];
  diffEdges(pickEdges(state.edges));
  diffLeases();
  renderFailed($('failed'), failed);
  renderRaft($('raft'), status);
  $('node').textContent = `node ${status.node_id} (${status.state}) · revision ${status.revision} · ${signals.nodes_answered}/${signals.nodes_asked} nodes answered`;
  draw();
}

function failed(e) {
  if (e instanceof ApiError && e.status === 401) {
    message('Reads from outside loopback need the admin token: log in.', 'warn');
  } else {
    message(`Cannot read the API: ${e.message}`, 'error');
  }
}

let catalogDue = null;
function catalogSoon() {
  if (catalogDue) return;
  catalogDue = setTimeout(() => {
    catalogDue = null;
    refreshCatalog().catch(failed);
  }, 200);
}

async function follow() {
  for (;;) {
    try {
      setStatus('live');
      state.live = true;
      await watch(state.revision, (ev) => {
        if (ev.type === 'heartbeat') return;
        state.revision = Math.max(state.revision, ev.revision ?? 0);
        if (ev.type === 'lease.renewed') {
          state.leases.set(ev.lease.cluster, { renewed_at: ev.lease.renewed_at, ttl_ms: ev.lease.ttl_ms });
        } else {
          const c = ev.change;
          if (ev.type === 'member.changed' && c) {
            note('raft', c.change === 'added'
              ? `node ${c.id} joined as ${c.voter ? 'voter' : 'learner'} (${c.api_addr})`
              : `node ${c.id} left the group`);
          }
          catalogSoon();
        }
      });
    } catch (e) {
      // 410: the revision fell out of the retained history; read everything again.
      if (e instanceof ApiError && e.status === 410) await refreshCatalog().catch(failed);
      else if (e instanceof ApiError) failed(e);
    }
    state.live = false;
    setStatus('polling');
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function every(ms, f) {
  const run = () => f().catch(failed).finally(() => setTimeout(run, ms));
  run();
}

// ---- logging in, and the one write the console makes: the mesh configuration ----

function showLogin() {
  const admin = !!token();
  $('login').hidden = admin;
  $('who').hidden = !admin;
  $('who').textContent = admin ? 'admin' : '';
  $('logout').hidden = !admin;
  $('config-section').hidden = !admin;
  if (admin) {
    get(PATHS.config).then((d) => { $('config-text').value = JSON.stringify(d.config, null, 2); }).catch(failed);
  }
}

function parsedConfig() {
  try {
    return JSON.parse($('config-text').value || '{}');
  } catch (e) {
    $('config-result').textContent = `Not JSON: ${e.message}`;
    return null;
  }
}

async function preview() {
  const config = parsedConfig();
  if (!config) return;
  try {
    const d = await put(`${PATHS.config}?dry_run=true`, config);
    $('config-result').textContent = `${d.change}\ncurrent:  ${JSON.stringify(d.current ?? {})}\nproposed: ${JSON.stringify(d.proposed)}`;
  } catch (e) {
    $('config-result').textContent = `Refused${e.field ? ` (${e.field})` : ''}: ${e.message}`;
  }
}

async function apply() {
  const config = parsedConfig();
  if (!config) return;
  try {
    const d = await put(PATHS.config, config);
    $('config-result').textContent = `Applied at revision ${d.revision}.`;
  } catch (e) {
    $('config-result').textContent = `Refused${e.field ? ` (${e.field})` : ''}: ${e.message}`;
  }
}

async function login(ev) {
  ev.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  setToken(t);
  try {
    // A dry run of the current document: answers only to the admin credential, writes nothing.
    const d = await get(PATHS.config);
    await put(`${PATHS.config}?dry_run=true`, d.config);
    $('token').value = '';
    message('Logged in: changes are allowed.', 'info');
    showLogin();
    refreshCatalog().catch(failed);
  } catch (e) {
    setToken(null);
    message(`Token refused: ${e.message}`, 'error');
    showLogin();
  }
}

$('login').addEventListener('submit', login);
$('logout').addEventListener('click', () => { setToken(null); showLogin(); message('Logged out: read-only.'); });
$('config-preview').addEventListener('click', preview);
$('config-apply').addEventListener('click', apply);
showLogin();

refreshCatalog()
  .then(() => {
    follow();
    every(2000, refreshSignals);
    every(5000, async () => {
      if (!state.live) await refreshCatalog();
      diffLeases();
      draw();
    });
  })
  .catch((e) => {
    failed(e);
    setStatus('polling');
    every(2000, async () => { await refreshCatalog(); await refreshSignals(); });
  });
