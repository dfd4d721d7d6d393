// The dashboard page: plain HTML, CSS and a few dozen lines of script (no
// framework, a few KiB). It renders the status stream per namespace and
// offers Recover and Clean with a confirmation; the server runs the same
// code as `kubectl kt recover` and `kubectl kt clean`.
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kubectl kt dashboard</title>
<style>
  :root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ee; --ok:#1b8a4b; --warn:#b26a00; --bad:#c0392b; --accent:#3157d5; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0; background: #f7f8fb; }
  header { display:flex; align-items:center; gap:12px; padding:14px 24px; background:#fff; border-bottom:1px solid var(--line); }
  header h1 { font-size:16px; margin:0; }
  #conn { font-size:12px; color:var(--muted); }
  #conn.live::before { content:"●"; color:var(--ok); margin-right:4px; }
  #conn.down::before { content:"●"; color:var(--bad); margin-right:4px; }
  main { padding: 18px 24px; max-width: 1200px; }
  section.ns { background:#fff; border:1px solid var(--line); border-radius:8px; margin-bottom:18px; }
  section.ns h2 { font-size:14px; margin:0; padding:10px 14px; border-bottom:1px solid var(--line); display:flex; justify-content:space-between; align-items:center; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:7px 14px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { font-size:12px; color:var(--muted); font-weight:600; }
  tr:last-child td { border-bottom:none; }
  h3 { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); margin:12px 14px 4px; }
  .badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
  .exchanged, .meshed, .exchanged\\+meshed { background:#e8edff; color:var(--accent); }
  .previewed { background:#e9f7ef; color:var(--ok); }
  .taken-over { background:#fff4e0; color:var(--warn); }
  .healthy { color:var(--ok); } .stale { color:var(--bad); font-weight:600; }
  code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background:#f1f3f8; padding:1px 4px; border-radius:4px; }
  button { font: inherit; font-size:12px; padding:3px 10px; border-radius:6px; border:1px solid var(--line); background:#fff; cursor:pointer; }
  button.danger { border-color:#efc2bd; color:var(--bad); }
  .empty { padding:14px; color:var(--muted); }
  #msg { margin: 0 0 14px; color: var(--muted); min-height: 1.4em; }
</style>
</head>
<body>
<header><h1>kubectl kt</h1><span id="conn">connecting…</span></header>
<main>
  <p id="msg"></p>
  <div id="root"><p class="empty">waiting for the first status…</p></div>
</main>
<script>
const TOKEN = "__KT_TOKEN__";
const root = document.getElementById('root');
const conn = document.getElementById('conn');
const msg = document.getElementById('msg');
let report = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return e;
}
function age(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'never';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 120 ? s + 's ago' : s < 7200 ? Math.round(s / 60) + 'm ago' : Math.round(s / 3600) + 'h ago';
}
function health(stale, hb) {
  return el('span', { class: stale ? 'stale' : 'healthy' }, stale ? 'stale (' + age(hb) + ')' : 'alive (' + age(hb) + ')');
}
function headers(r) {
  if (r.kind !== 'mesh') return 'all traffic';
  return (r.headers || []).map(h => h.baggage !== undefined ? 'baggage ' + h.baggage + '=' + h.value : h.regex !== undefined ? h.name + ' ~= ' + h.regex : h.name + ': ' + h.value).join(', ');
}
// The router's counts for the route (status/model.ts RouteTraffic), renewed with each heartbeat.
function traffic(r) {
  const t = r.traffic;
  if (!t || !t.ports.length) return '';
  return el('span', { class: 'traffic' }, ' · last ' + t.windowSeconds + ' s: ', ...t.ports.map(p => el('span', {
    'data-counts': String(p.servicePort), 'data-matched': String(p.matched), 'data-other': String(p.otherValue), 'data-untagged': String(p.untagged), 'data-requests': String(p.requests),
    title: 'requests this route took · carried its header/baggage key with another value · carried neither · all requests on port ' + p.servicePort,
  }, (t.ports.length > 1 ? ':' + p.servicePort + ' ' : '') + p.matched + ' matched · ' + p.otherValue + ' other value · ' + p.untagged + ' untagged of ' + p.requests)));
}
function row(cells) { return el('tr', {}, ...cells.map(c => el('td', {}, c))); }
function table(head, rows) {
  return el('table', {}, el('thead', {}, el('tr', {}, ...head.map(h => el('th', {}, h)))), el('tbody', {}, ...rows));
}
async function act(path, body, question) {
  if (!confirm(question)) return;
  msg.textContent = 'working…';
  let res, out;
  try {
    res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-kt-token': TOKEN }, body: JSON.stringify(body) });
    out = await res.json();
  } catch (e) {
    msg.textContent = 'error: the plugin did not answer (' + e.message + ') — is kubectl kt dashboard still running?';
    return;
  }
  msg.textContent = res.ok ? (out.actions.length ? out.actions.join('; ') : 'nothing to do') : ('error ' + out.error + ': ' + (out.message || '') + (out.fix ? ' — ' + out.fix : ''));
}
function render() {
  if (!report) return;
  const byNs = new Map();
  const ns = (n) => { if (!byNs.has(n)) byNs.set(n, { services: [], sessions: [] }); return byNs.get(n); };
  for (const s of report.services) ns(s.namespace).services.push(s);
  for (const s of report.sessions) ns(s.namespace).sessions.push(s);
  if (Array.isArray(report.namespaces)) for (const n of report.namespaces) ns(n);
  const sections = [];
  for (const [name, d] of [...byNs.entries()].sort()) {
    const staleCount = d.sessions.filter(s => s.stale).length + d.services.reduce((n, s) => n + s.routes.filter(r => r.stale).length + (s.state === 'taken-over' ? 1 : 0), 0);
    const cleanBtn = el('button', { class: 'danger', 'data-action': 'clean', 'data-namespace': name, disabled: staleCount === 0 }, 'Clean ' + staleCount + ' stale');
    cleanBtn.onclick = () => act('/api/clean', { namespace: name }, 'Remove what dead sessions left in namespace ' + name + '? (same as kubectl kt clean -n ' + name + ')');
    const parts = [el('h2', {}, el('span', {}, 'namespace ', el('code', {}, name)), cleanBtn)];
    parts.push(el('h3', {}, 'Services'));
    if (d.services.length === 0) parts.push(el('p', { class: 'empty' }, 'every Service is served by its own pods'));
    else {
      const rows = [];
      for (const s of d.services) {
        const recover = s.state === 'previewed' ? '' : el('button', { class: 'danger', 'data-action': 'recover', 'data-service': s.name }, 'Recover');
        if (recover) recover.onclick = () => act('/api/recover', { namespace: s.namespace, name: s.name }, 'Put service ' + s.namespace + '/' + s.name + ' back to its own pods? (same as kubectl kt recover svc/' + s.name + ')');
        const routes = s.routes.length ? el('div', {}, ...s.routes.map(r => el('div', { 'data-route': r.session }, el('b', {}, r.kind), ' ', headers(r), ' → ', r.owner, ' since ', r.since, ' · ', health(r.stale, r.heartbeat), traffic(r)))) : (s.state === 'previewed' ? 'by ' + (s.owner || 'unknown') : 'no live route');
        rows.push(el('tr', { 'data-service': s.name }, el('td', {}, el('code', {}, s.name)), el('td', {}, el('span', { class: 'badge ' + s.state }, s.state)), el('td', {}, s.router ? s.router.pod + (s.router.ready ? '' : ' (not ready)') : ''), el('td', {}, routes), el('td', {}, recover)));
      }
      parts.push(table(['Service', 'State', 'Router', 'Routes', ''], rows));
    }
    parts.push(el('h3', {}, 'Laptops'));
    if (d.sessions.length === 0) parts.push(el('p', { class: 'empty' }, 'no connect, preview or forward sessions'));
    else parts.push(table(['Kind', 'Owner', 'Since', 'Heartbeat', 'Pod', 'Target'], d.sessions.map(s => el('tr', { 'data-session': s.session }, ...[s.kind, s.owner, s.since, health(s.stale, s.heartbeat), s.pod + ' (' + s.phase + ')', s.target || ''].map(c => el('td', {}, c))))));
    sections.push(el('section', { class: 'ns', 'data-namespace': name }, ...parts));
  }
  root.replaceChildren(...(sections.length ? sections : [el('p', { class: 'empty' }, 'no kubectl-kt activity')]));
}
const es = new EventSource('/api/events');
es.addEventListener('status', (e) => { report = JSON.parse(e.data); conn.className = 'live'; conn.textContent = 'live · ' + new Date(report.generatedAt).toLocaleTimeString(); render(); });
es.onerror = () => { conn.className = 'down'; conn.textContent = 'disconnected, retrying…'; };
</script>
</body>
</html>
`;
