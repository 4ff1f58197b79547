// The service graph: clusters as nodes (placed around an ellipse, grouped by region and
// zone), and one arrow per source → destination cluster pair carrying traffic over the last
// minute, labelled with its request rate, error rate and p99. Traffic a cluster serves
// itself is written inside its node. Built with DOM calls only: names never become markup.

const NS = 'http://www.w3.org/2000/svg';
const W = 720;
const H = 480;
const R = 46;

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// Each (service, src, dst) once: the source gateway's report when there is one (it saw the
// whole request), else the destination's.
export function pickEdges(reported) {
  const best = new Map();
  for (const e of reported) {
    const key = `${e.service}|${e.src_cluster}|${e.dst_cluster}`;
    const had = best.get(key);
    if (!had || (e.reported_by === e.src_cluster && had.reported_by !== had.src_cluster)) {
      best.set(key, e);
    }
  }
  return [...best.values()];
}

// Per src → dst pair: summed rate, requests, errors and body bytes, the worst p99, the services.
export function aggregate(edges) {
  const pairs = new Map();
  for (const e of edges) {
    const key = `${e.src_cluster}|${e.dst_cluster}`;
    const p = pairs.get(key) || {
      src: e.src_cluster, dst: e.dst_cluster, rps: 0, requests: 0, errors: 0, p99: null, services: [],
      sent: 0, received: 0,
    };
    p.sent += e.request_bytes ?? 0;
    p.received += e.response_bytes ?? 0;
    p.rps += e.requests_per_second;
    p.requests += e.requests;
    p.errors += e.errors;
    if (e.p99_ms != null) p.p99 = Math.max(p.p99 ?? 0, e.p99_ms);
    p.services.push(e.service);
    pairs.set(key, p);
  }
  return [...pairs.values()];
}

export const fmtRate = (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1));
export const fmtMs = (v) => (v == null ? '-' : v >= 10 ? v.toFixed(0) : v.toFixed(1));
export const fmtBytes = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(1)} MB` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} kB` : `${v} B`);

function label(p) {
  const err = p.requests ? (100 * p.errors) / p.requests : 0;
  return `${fmtRate(p.rps)}/s · ${err.toFixed(err > 0 && err < 1 ? 1 : 0)}% err · p99 ${fmtMs(p.p99)} ms`;
}

function health(p) {
  const err = p.requests ? p.errors / p.requests : 0;
  return err > 0.05 ? 'bad' : err > 0 ? 'warn' : 'ok';
}

export function renderGraph(root, clusters, reported, leaseState) {
  const pairs = aggregate(pickEdges(reported));
  const sorted = [...clusters].sort((a, b) =>
    `${a.region}/${a.zone}/${a.name}`.localeCompare(`${b.region}/${b.zone}/${b.name}`));
  const pos = new Map();
  sorted.forEach((c, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(sorted.length, 1);
    pos.set(c.name, { x: W / 2 + (W / 2 - 90) * Math.cos(a), y: H / 2 + (H / 2 - 60) * Math.sin(a) });
  });
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'service graph' });
  const defs = el('defs');
  for (const kind of ['ok', 'warn', 'bad']) {
    const m = el('marker', {
      id: `arrow-${kind}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
    });
    m.append(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: `arrowhead ${kind}` }));
    defs.append(m);
  }
  svg.append(defs);
  for (const p of pairs) {
    if (p.src === p.dst) continue;
    const a = pos.get(p.src);
    const b = pos.get(p.dst);
    if (!a || !b) continue;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const [ux, uy] = [dx / len, dy / len];
    // Start and end on the circles; bend to the right so a → b and b → a stay apart.
    const s = { x: a.x + ux * R, y: a.y + uy * R };
    const t = { x: b.x - ux * (R + 4), y: b.y - uy * (R + 4) };
    const c = { x: (s.x + t.x) / 2 - uy * 36, y: (s.y + t.y) / 2 + ux * 36 };
    const kind = health(p);
    const g = el('g', {
      class: `edge ${kind}`, 'data-src': p.src, 'data-dst': p.dst, 'data-services': p.services.join(' '),
      'data-rps': p.rps.toFixed(3), 'data-bytes': p.sent + p.received,
    });
    g.append(el('title', {}, `${p.src} → ${p.dst}: ${p.services.join(', ')}; last minute's bodies: ${fmtBytes(p.sent)} sent, ${fmtBytes(p.received)} back`));
    g.append(el('path', {
      d: `M ${s.x} ${s.y} Q ${c.x} ${c.y} ${t.x} ${t.y}`, class: 'wire', 'marker-end': `url(#arrow-${kind})`,
      'stroke-width': Math.min(2 + Math.log2(1 + p.rps), 9).toFixed(1),
    }));
    const m = { x: 0.25 * s.x + 0.5 * c.x + 0.25 * t.x, y: 0.25 * s.y + 0.5 * c.y + 0.25 * t.y };
    g.append(el('text', { x: m.x, y: m.y - 6, class: 'edge-label', 'text-anchor': 'middle' }, label(p)));
    g.append(el('text', { x: m.x, y: m.y + 8, class: 'edge-services', 'text-anchor': 'middle' }, p.services.join(', ')));
    svg.append(g);
  }
  for (const c of sorted) {
    const { x, y } = pos.get(c.name);
    const state = leaseState(c.name);
    const g = el('g', { class: `node ${state}`, 'data-cluster': c.name });
    g.append(el('circle', { cx: x, cy: y, r: R }));
    g.append(el('text', { x, y: y - 10, class: 'node-name', 'text-anchor': 'middle' }, c.name));
    g.append(el('text', { x, y: y + 4, class: 'node-zone', 'text-anchor': 'middle' }, c.zone));
    const local = pairs.find((p) => p.src === c.name && p.dst === c.name);
    if (local) {
      g.append(el('title', {}, `${c.name} serving itself: ${label(local)} (${local.services.join(', ')})`));
      g.append(el('text', { x, y: y + 19, class: 'node-local', 'text-anchor': 'middle' }, `local ${fmtRate(local.rps)}/s`));
    }
    svg.append(g);
  }
  root.replaceChildren(svg);
}
