// The console's panels other than the graph: clusters by region and zone, services, the
// timeline, failed requests, trust, the Raft store and the audit log. Each takes what the
// API answered and rebuilds its element with DOM calls (names never become markup).

import { fmtMs, fmtRate, pickEdges } from './graph.js';

export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const time = (ms) => new Date(ms).toLocaleTimeString();

function table(head, rows) {
  return h('table', {},
    h('thead', {}, h('tr', {}, head.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows));
}

export function renderClusters(root, clusters, leaseState, leaseAge) {
  const regions = new Map();
  for (const c of clusters) {
    if (!regions.has(c.region)) regions.set(c.region, new Map());
    const zones = regions.get(c.region);
    if (!zones.has(c.zone)) zones.set(c.zone, []);
    zones.get(c.zone).push(c);
  }
  const boxes = [...regions.keys()].sort().map((region) => h('div', { class: 'region' },
    h('h3', {}, region),
    [...regions.get(region).keys()].sort().map((zone) => h('div', { class: 'zone' },
      h('h4', {}, zone),
      regions.get(region).get(zone).map((c) => {
        const state = leaseState(c.name);
        const age = leaseAge(c.name);
        return h('div', { class: `cluster ${state}`, 'data-cluster': c.name, 'data-lease': state },
          h('strong', {}, c.name),
          h('span', { class: 'lease' }, state === 'none' ? 'no lease' : `lease ${state}${age == null ? '' : ` (renewed ${(age / 1000).toFixed(1)} s ago)`}`),
          h('span', { class: 'detail' }, `gateway ${c.gateway}`),
          h('span', { class: 'detail' }, `trust domain ${c.trust_domain}`));
      })))));
  root.replaceChildren(...(boxes.length ? boxes : [h('p', {}, 'No cluster registered yet.')]));
}

// Where each source cluster's traffic for `service` goes now (shares of the last minute's
// request rate), and why, from the catalog: healthy local endpoints, or a failover.
function routing(service, exports, edges, clusters) {
  const bySrc = new Map();
  // Callers the destination could not name (`unknown`: no verified mTLS identity) are the
  // same traffic another cluster's gateway reported as its own; leave them out.
  const known = new Set(clusters.map((c) => c.name));
  for (const e of edges.filter((x) => x.service === service && known.has(x.src_cluster) && known.has(x.dst_cluster))) {
    if (!bySrc.has(e.src_cluster)) bySrc.set(e.src_cluster, []);
    bySrc.get(e.src_cluster).push(e);
  }
  return [...bySrc.keys()].sort().map((src) => {
    const list = bySrc.get(src);
    const total = list.reduce((n, e) => n + e.requests_per_second, 0) || 1;
    const shares = list
      .sort((a, b) => b.requests_per_second - a.requests_per_second)
      .map((e) => `${e.dst_cluster} ${Math.round((100 * e.requests_per_second) / total)}%`)
      .join(', ');
    const local = exports.find((x) => x.cluster === src);
    const me = clusters.find((c) => c.name === src);
    let why;
    if (local && local.healthy_endpoints > 0) {
      why = `${local.healthy_endpoints} healthy local endpoint(s); other clusters by weight and locality`;
    } else if (local) {
      why = 'no healthy local endpoint: failed over to the nearest healthy clusters';
    } else {
      why = 'not served locally: the nearest healthy clusters';
    }
    const region = me ? ` (${me.region})` : '';
    return h('li', { 'data-src': src }, h('strong', {}, `from ${src}${region}: `), shares, h('span', { class: 'why' }, ` — ${why}`));
  });
}

// Each gateway's plan for one service, as it reported it: where its traffic goes and why.
function placementRows(name, placements) {
  const rows = [];
  for (const g of placements ?? []) {
    const p = (g.services ?? []).find((x) => x.service === name);
    if (!p) continue;
    const to = (p.levels ?? []).filter((l) => l.traffic_share > 0).map((l) => {
      const clusters = l.clusters ?? [];
      // A failover or weight level already names its one cluster.
      const named = clusters.length === 1 && l.name.endsWith(`: ${clusters[0]}`);
      const more = l.clusters_omitted ? `, +${l.clusters_omitted} more` : '';
      const where = clusters.length && !named ? `${l.name} (${clusters.join(', ')}${more})` : l.name;
      return `${where} ${Math.round(l.traffic_share * 100)}%`;
    });
    rows.push(h('tr', { 'data-placement': g.cluster, class: to.length ? '' : 'down' },
      h('td', {}, g.cluster), h('td', {}, `${p.local_available}/${p.local_total}`),
      h('td', {}, to.length ? to.join(', ') : 'nowhere'), h('td', {}, p.reason)));
  }
  return rows;
}

export function renderServices(root, services, reported, clusters, placements = []) {
  const edges = pickEdges(reported);
  if (!services.length) {
    root.replaceChildren(h('p', {}, 'No service exported yet.'));
    return;
  }
  root.replaceChildren(...services.map((s) => {
    const name = `${s.namespace}/${s.service}`;
    const rows = s.clusters.map((x) => h('tr', { class: x.healthy_endpoints > 0 ? '' : 'down' },
      h('td', {}, x.cluster), h('td', {}, x.healthy_endpoints), h('td', {}, x.weight),
      h('td', {}, x.ports.map((p) => `${p.name}:${p.port}/${p.protocol}`).join(' '))));
    const now = routing(name, s.clusters, edges, clusters);
    const plans = placementRows(name, placements);
    return h('div', { class: 'service', 'data-service': name },
      h('h3', {}, name),
      table(['cluster', 'healthy endpoints', 'weight', 'ports'], rows),
      plans.length
        ? h('div', { class: 'placements' }, h('h4', {}, 'Where each gateway sends it now'),
          table(['gateway', 'local up', 'sends to', 'why'], plans))
        : h('p', { class: 'quiet' }, 'No gateway reported its plan yet.'),
      now.length ? h('ul', { class: 'routing' }, now) : h('p', { class: 'quiet' }, 'No traffic in the last minute.'));
  }));
}

export function renderTimeline(root, entries) {
  root.replaceChildren(...[...entries].reverse().slice(0, 50).map((e) => h('li', { class: e.kind, 'data-kind': e.kind },
    h('time', {}, time(e.at)), ' ', h('span', { class: 'kind' }, e.kind), ' ', e.text)));
  if (!entries.length) root.replaceChildren(h('li', { class: 'quiet' }, 'Nothing yet.'));
}

export function renderFailed(root, answer) {
  const rows = answer.records.map((r) => h('tr', {},
    h('td', {}, time(r.at_ms)), h('td', {}, r.reported_by), h('td', {}, r.service),
    h('td', {}, `${r.method} ${r.path}`), h('td', {}, r.status), h('td', {}, r.error ?? ''),
    h('td', { class: 'mono' }, r.trace_id)));
  root.replaceChildren(rows.length
    ? table(['time', 'gateway', 'service', 'request', 'status', 'cause', 'trace'], rows)
    : h('p', { class: 'quiet' }, 'No failed request recorded.'));
}

export function renderTrust(root, trust) {
  if (!trust.items.length) {
    root.replaceChildren(h('p', { class: 'quiet' }, 'No trust bundle published: gateways run without mTLS.'));
    return;
  }
  root.replaceChildren(...trust.items.map((d) => h('div', { class: 'domain', 'data-trust-domain': d.trust_domain },
    h('h3', {}, `${d.trust_domain} — bundle v${d.version} `, h('span', { class: d.complete ? 'pill ok' : 'pill warn' }, d.complete ? 'rotation complete' : 'rotation in progress')),
    table(['cluster', 'role', 'loaded version', 'mTLS', 'lease'], d.clusters.map((c) => h('tr', { class: c.owner || c.current ? '' : 'down' },
      h('td', {}, c.cluster), h('td', {}, c.owner ? 'owner' : 'peer'),
      h('td', {}, c.owner ? '-' : `v${c.loaded_version}${c.current ? '' : ' (behind)'}`),
      h('td', {}, c.mtls ? 'yes' : 'no'), h('td', {}, c.lease_live ? 'live' : 'not live')))))));
}

export function renderRaft(root, s) {
  const leader = s.members.find((m) => m.id === s.leader);
  const lagOf = (m) => (m.matched_index == null || s.last_log_index == null ? null : s.last_log_index - m.matched_index);
  const rows = s.members.map((m) => h('tr', { 'data-member': m.id },
    h('td', {}, m.id), h('td', {}, m.id === s.leader ? 'leader' : m.role), h('td', {}, m.api_addr),
    h('td', {}, m.matched_index ?? '-'), h('td', {}, lagOf(m) ?? '-')));
  const note = s.state === 'Leader' ? null : h('p', { class: 'quiet' },
    'Lag per member is in the leader\'s answer: ',
    leader ? h('a', { href: `http://${leader.api_addr}/ui` }, `the console on node ${leader.id}`) : 'no leader now', '.');
  root.replaceChildren(
    h('p', {}, `This node: ${s.node_id} (${s.state}), term ${s.term}, leader ${s.leader ?? 'none'}, `,
      `log ${s.last_log_index ?? '-'}, applied ${s.last_applied ?? '-'} (lag ${s.last_log_index != null && s.last_applied != null ? s.last_log_index - s.last_applied : '-'}), revision ${s.revision}`),
    table(['id', 'role', 'API', 'matched index', 'lag (entries)'], rows), ...(note ? [note] : []));
}

export function renderAudit(root, records) {
  const rows = [...records].reverse().slice(0, 12).map((r) => h('tr', {},
    h('td', {}, r.revision), h('td', {}, time(r.at)), h('td', {}, r.who), h('td', {}, r.what)));
  root.replaceChildren(rows.length ? table(['revision', 'time', 'who', 'what'], rows) : h('p', { class: 'quiet' }, 'No change yet.'));
}

export { fmtMs, fmtRate };
