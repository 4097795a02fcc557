// The wactor dashboard: actors and dead letters, through the JSON API.
// Everything from the API is inserted as text (textContent), never as HTML:
// payloads, keys and error messages are untrusted.
'use strict';

const TOKEN_KEY = 'wactor.token';
const PAGE = 50;

const ui = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  filter: {},
  next: null,
  detail: null,
};

const $ = (id) => document.getElementById(id);

// ---- helpers ---------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === 'onclick') node.addEventListener('click', value);
    else if (name === 'className') node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? '' : String(child)));
  }
  return node;
}

function time(ms) {
  if (ms == null) return '';
  const date = new Date(ms);
  // Out of the Date range (a forged record): shown, not thrown.
  if (Number.isNaN(date.getTime())) return '?';
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function bytes(view) {
  if (view == null) return '(null)';
  return view.text !== undefined ? view.text : 'base64:' + view.base64;
}

function pretty(view) {
  if (view == null) return '(tombstone: null value)';
  if (view.text === undefined) return 'base64:' + view.base64;
  try { return JSON.stringify(JSON.parse(view.text), null, 2); } catch (_) { return view.text; }
}

function banner(message, ok) {
  const node = $('banner');
  node.textContent = message || '';
  node.className = ok ? 'banner ok' : 'banner';
  node.hidden = !message;
}

class Unauthorized extends Error {}

async function api(method, path, body) {
  const headers = {};
  if (ui.token) headers.Authorization = 'Bearer ' + ui.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = { error: text }; }
  }
  if (response.status === 401) {
    showTokenPanel(ui.token ? 'The token was refused.' : 'This host needs an API token.');
    throw new Unauthorized((data && data.error) || 'unauthorized');
  }
  if (!response.ok) throw new Error((data && data.error) || response.status + ' ' + response.statusText);
  return data;
}

// Runs an action, showing its failure in the banner.
async function attempt(action) {
  try {
    await action();
  } catch (err) {
    if (!(err instanceof Unauthorized)) banner(err.message);
  }
}

// ---- token ------------------------------------------------------------------

function showTokenPanel(message) {
  $('token-panel').hidden = false;
  $('token-message').textContent = message || '';
  $('token-input').focus();
}

function setToken(token) {
  ui.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $('token-button').textContent = token ? 'Token ✓' : 'Token';
}

// ---- actors -----------------------------------------------------------------

async function loadActors() {
  const data = await api('GET', '/v1/actors');
  const body = $('actors').tBodies[0];
  body.replaceChildren();
  for (const actor of data.items) {
    const act = (verb, label, confirmText, payload) => el('button', {
      type: 'button',
      onclick: () => attempt(async () => {
        if (confirmText && !confirm(confirmText)) return;
        await api('POST', `/v1/actors/${encodeURIComponent(actor.name)}/${verb}`, payload);
        banner(`${actor.name}: ${label.toLowerCase()} done`, true);
        await loadActors();
      }),
    }, label);
    const paused = actor.state === 'paused';
    body.append(el('tr', {},
      el('td', {}, actor.name),
      el('td', {}, actor.active_version == null ? '—' : 'v' + actor.active_version),
      el('td', { className: 'state-' + actor.state }, actor.state),
      el('td', { className: 'num' }, actor.lag < 0 ? '?' : actor.lag),
      el('td', { className: 'num' }, el('a', {
        href: '#',
        onclick: (event) => { event.preventDefault(); filterBy({ actor: actor.name }); },
      }, actor.dead_letters)),
      el('td', { className: 'num' }, actor.held),
      el('td', {}, actor.topics.join(', ')),
      el('td', {},
        paused ? act('resume', 'Resume') : act('pause', 'Pause', `Pause ${actor.name}? Its events wait in Kafka.`),
        ' ',
        act('rollback', 'Roll back', `Roll ${actor.name} back to its previous version?`, {})),
    ));
  }
  $('actors-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}

// ---- cluster ------------------------------------------------------------------

async function loadCluster() {
  const data = await api('GET', '/v1/cluster');
  const section = $('cluster-section');
  // No cluster view: the host does not share its registry.
  section.hidden = data.items.length === 0;
  const body = $('cluster').tBodies[0];
  body.replaceChildren();
  const alive = data.items.filter((host) => host.alive).length;
  $('cluster-summary').textContent = `${alive} of ${data.items.length} hosts alive`;
  for (const host of data.items) {
    const name = host.this_host ? `${host.name} (this host)` : host.name;
    const rows = host.actors.length ? host.actors : [null];
    for (const actor of rows) {
      body.append(el('tr', { className: host.alive ? '' : 'muted' },
        el('td', {}, name),
        el('td', {}, host.api),
        el('td', { className: host.alive ? 'state-running' : 'state-failed' }, host.alive ? 'yes' : 'no'),
        el('td', {}, time(host.heartbeat_at_ms)),
        el('td', {}, actor ? actor.actor : '—'),
        el('td', {}, actor && actor.running_version != null ? 'v' + actor.running_version : '—'),
        el('td', {}, actor && actor.partitions.length
          ? actor.partitions.map((p) => `${p.topic}[${p.partition}] ${p.lag < 0 ? '?' : p.lag}`).join(', ')
          : '—'),
      ));
    }
  }
}

// ---- dead letters -------------------------------------------------------------

function query(extra) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...ui.filter, ...extra })) {
    if (value !== undefined && value !== null && value !== '') params.set(name, value);
  }
  return params.toString();
}

async function loadDeadLetters(append) {
  const extra = { limit: PAGE };
  if (append && ui.next) extra.after = ui.next;
  else extra.total = 'true';
  const page = await api('GET', '/v1/dead-letters?' + query(extra));
  const body = $('dlq').tBodies[0];
  if (!append) body.replaceChildren();
  for (const dead of page.items) {
    body.append(el('tr', { className: 'clickable', onclick: () => attempt(() => showDetail(dead.id)) },
      el('td', {}, time(dead.dead_at_ms)),
      el('td', {}, dead.actor + ' v' + dead.version),
      el('td', {}, `${dead.event.topic}/${dead.event.partition}@${dead.event.offset}`),
      el('td', {}, bytes(dead.event.key)),
      el('td', { className: 'num' }, dead.attempts.length),
      el('td', { className: 'reason', title: dead.reason }, dead.reason),
    ));
  }
  ui.next = page.next;
  $('dlq-more').hidden = !page.next;
  if (page.total !== undefined) {
    $('dlq-count').textContent = page.total === 1 ? '1 matching' : page.total + ' matching';
  }
}

function filterBy(filter) {
  const form = $('dlq-filter');
  for (const input of form.elements) {
    if (input.name) input.value = filter[input.name] || '';
  }
  ui.filter = filter;
  attempt(() => loadDeadLetters(false));
}

function selection() {
  const filter = Object.fromEntries(Object.entries(ui.filter).filter(([, value]) => value));
  return Object.keys(filter).length ? { filter } : { all: true };
}

async function bulk(action) {
  const target = selection();
  const preview = await api('POST', `/v1/dead-letters/${action}`, { ...target, dry_run: true });
  if (preview.matched === 0) { banner('No dead letter matches.', true); return; }
  const scope = target.all ? 'ALL dead letters' : 'the dead letters matching the filter';
  const verb = action === 'redrive' ? 'Re-drive' : 'Discard (for good)';
  if (!confirm(`${verb} ${preview.matched} of ${scope}?`)) return;
  const report = await api('POST', `/v1/dead-letters/${action}`, target);
  reportDone(action, report);
  await Promise.all([loadDeadLetters(false), loadActors()]);
}

function reportDone(action, report) {
  const done = action === 'redrive' ? report.redriven : report.discarded;
  const verb = action === 'redrive' ? 're-driven' : 'discarded';
  const failed = report.failed.length ? `; ${report.failed.length} failed: ${report.failed[0].error}` : '';
  banner(`${done} of ${report.matched} ${verb}${failed}`, report.failed.length === 0);
}

// ---- detail -------------------------------------------------------------------

async function showDetail(id) {
  const dead = await api('GET', '/v1/dead-letters/' + encodeURIComponent(id));
  ui.detail = dead;
  $('detail-id').textContent = dead.id;
  const fields = [
    ['actor', `${dead.actor} (v${dead.version}, group ${dead.group})`],
    ['event', `${dead.event.topic} partition ${dead.event.partition} offset ${dead.event.offset}`],
    ['key', dead.event.key == null ? '(none)' : bytes(dead.event.key)],
    ['record time', time(dead.event.timestamp_ms)],
    ['kind', dead.kind],
    ['reason', dead.reason],
    ['first attempt', time(dead.first_attempt_at_ms)],
    ['dead at', time(dead.dead_at_ms)],
    ['re-drives before', dead.redrives],
  ];
  $('detail-fields').replaceChildren(...fields.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));
  $('detail-attempts').tBodies[0].replaceChildren(...dead.attempts.map((a) => el('tr', {},
    el('td', {}, a.attempt),
    el('td', {}, time(a.started_at_ms)),
    el('td', { className: 'num' }, a.duration_ms.toFixed(1)),
    el('td', {}, 'v' + a.version),
    el('td', {}, a.outcome),
    el('td', {}, a.error),
  )));
  const headers = dead.event.headers.flatMap((h) => [el('dt', {}, h.name), el('dd', {}, bytes(h.value))]);
  $('detail-headers').replaceChildren(...(headers.length ? headers : [el('dt', {}, '(none)'), el('dd', {})]));
  $('detail-payload').textContent = pretty(dead.event.payload);
  $('detail-version').value = '';
  $('detail').hidden = false;
  $('detail').scrollIntoView({ behavior: 'smooth' });
}

async function detailAction(action) {
  const dead = ui.detail;
  if (!dead) return;
  const body = { id: dead.id };
  if (action === 'redrive') {
    const version = $('detail-version').value;
    if (version) body.version = Number(version);
  } else if (!confirm(`Discard ${dead.id} for good?`)) {
    return;
  }
  const report = await api('POST', `/v1/dead-letters/${action}`, body);
  reportDone(action, report);
  $('detail').hidden = true;
  ui.detail = null;
  await Promise.all([loadDeadLetters(false), loadActors()]);
}

// ---- wiring -------------------------------------------------------------------

async function refreshAll() {
  // Each section on its own: one that fails does not keep the others
  // from loading; the first failure is shown.
  const results = await Promise.allSettled([loadActors(), loadCluster(), loadDeadLetters(false)]);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

function start() {
  setToken(ui.token);
  $('token-button').addEventListener('click', () => showTokenPanel(''));
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    setToken($('token-input').value.trim());
    $('token-input').value = '';
    $('token-panel').hidden = true;
    banner('');
    attempt(refreshAll);
  });
  $('token-forget').addEventListener('click', () => { setToken(''); showTokenPanel('Token forgotten.'); });
  $('dlq-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    filterBy(Object.fromEntries(new FormData(event.target)));
  });
  $('dlq-clear').addEventListener('click', () => filterBy({}));
  $('dlq-more').addEventListener('click', () => attempt(() => loadDeadLetters(true)));
  $('dlq-redrive-all').addEventListener('click', () => attempt(() => bulk('redrive')));
  $('dlq-discard-all').addEventListener('click', () => attempt(() => bulk('discard')));
  $('detail-redrive').addEventListener('click', () => attempt(() => detailAction('redrive')));
  $('detail-discard').addEventListener('click', () => attempt(() => detailAction('discard')));
  $('detail-close').addEventListener('click', () => { $('detail').hidden = true; });

  attempt(async () => {
    const health = await api('GET', '/health');
    $('host-version').textContent = 'host ' + health.version;
    if (health.auth_required && !ui.token) {
      showTokenPanel('This host needs an API token.');
      return;
    }
    await refreshAll();
  });
  setInterval(() => {
    if (document.visibilityState === 'visible' && $('token-panel').hidden) {
      attempt(async () => { await loadActors(); await loadCluster(); });
    }
  }, 5000);
}

document.addEventListener('DOMContentLoaded', start);
