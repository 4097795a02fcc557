// The wactor dashboard: actors, one actor's charts, retries and versions,
// and dead letters, through the JSON API. Everything from the API is
// inserted as text (textContent), never as HTML: payloads, keys and error
// messages are untrusted. Charts are uPlot's (ui/vendor/).
'use strict';

const TOKEN_KEY = 'wactor.token';
const PAGE = 50;
// How often the open actor's charts, retries and versions are refreshed.
const ACTOR_REFRESH_MS = 2000;
// How often the actors, cluster and dead-letter tables are refreshed.
const REFRESH_MS = 5000;
// A request without an answer by then fails (and the refresh goes on).
const REQUEST_TIMEOUT_MS = 30000;
const OUTCOMES = [['done', '#2e7d32'], ['retry', '#e09b00'], ['dead', '#c62828'], ['trap', '#6a1b9a']];

const ui = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  filter: {},
  next: null,
  // More than the first page of dead letters is shown: the periodic
  // refresh leaves the list alone.
  appended: false,
  detail: null,
  // The actor whose view is open, and its charts.
  actor: null,
  charts: null,
  // The open actor's points so far ({ actor, points }): each refresh asks
  // only for newer ones.
  series: null,
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

// A table cell of untrusted text that may be long without a space (a
// base64 key, notes): cut to the column with an ellipsis, whole in its
// tooltip, so it never widens the table past the screen and its buttons.
function clipped(text) {
  const value = text == null ? '' : String(text);
  return el('td', { className: 'clip', title: value }, value);
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

// Shows a message (an error unless `ok`); `source` names the refresh loop
// whose failure it is, so that loop's next success clears it.
function banner(message, ok, source) {
  const node = $('banner');
  node.textContent = message || '';
  node.className = ok ? 'banner ok' : 'banner';
  node.hidden = !message;
  node.dataset.source = message && !ok && source ? source : '';
}

class Unauthorized extends Error {}

async function api(method, path, body) {
  const headers = {};
  if (ui.token) headers.Authorization = 'Bearer ' + ui.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    if (err.name === 'TimeoutError') {
      throw new Error(`${method} ${path}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s`);
    }
    throw new Error(`${method} ${path}: the host did not answer (${err.message})`);
  }
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

// Runs an action, showing its failure in the banner (as `source`'s, when
// given); true when it succeeded.
async function attempt(action, source) {
  try {
    await action();
    return true;
  } catch (err) {
    if (!(err instanceof Unauthorized)) banner(err.message, false, source);
    return false;
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
    body.append(el('tr', { 'data-actor': actor.name },
      el('td', {}, el('a', {
        href: '#',
        className: 'actor-link',
        onclick: (event) => { event.preventDefault(); attempt(() => openActor(actor.name)); },
      }, actor.name)),
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
  if (ui.actor) {
    const open = data.items.find((actor) => actor.name === ui.actor);
    if (!open) {
      banner(`${ui.actor} was removed.`, true);
      closeActor();
      return;
    }
    $('av-summary').textContent =
      `${open.active_version == null ? 'no active version' : 'v' + open.active_version + ' active'}, ` +
      `${open.state}, lag ${open.lag < 0 ? '?' : open.lag}, ${open.held} held, ` +
      `${open.dead_letters} dead letters, ${open.handled} handled`;
  }
}

// ---- one actor ----------------------------------------------------------------

async function openActor(name) {
  if (ui.actor !== name) {
    destroyCharts();
    ui.actor = name;
    $('av-summary').textContent = '';
  }
  $('av-name').textContent = name;
  $('actor-view').hidden = false;
  $('actor-view').scrollIntoView({ behavior: 'smooth' });
  await Promise.all([loadActorView(), loadActors()]);
}

function closeActor() {
  destroyCharts();
  ui.actor = null;
  $('actor-view').hidden = true;
}

async function loadActorView() {
  const name = ui.actor;
  if (!name) return;
  const results = await Promise.allSettled([loadSeries(name), loadRetries(name), loadVersions(name)]);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

function chartWidth(node) {
  return Math.max(260, Math.floor(node.clientWidth || 360));
}

// A y range from 0 that is never empty.
function fromZero(_u, _min, max) {
  return [0, max > 0 ? max * 1.1 : 1];
}

// Clock times on the x axis: with seconds while the chart spans less
// than ten minutes.
function timeLabels(u, splits) {
  const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
  const format = span < 600
    ? { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }
    : { hour: '2-digit', minute: '2-digit', hour12: false };
  return splits.map((seconds) => new Date(seconds * 1000).toLocaleTimeString([], format));
}

function makeChart(node, series) {
  const options = {
    width: chartWidth(node),
    height: 170,
    scales: { x: { time: true }, y: { range: fromZero } },
    axes: [{ values: timeLabels, space: 70 }, { size: 56 }],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [{}, ...series.map(([label, stroke]) => ({
      label, stroke, width: 1.5, spanGaps: false, points: { show: false },
    }))],
  };
  return new uPlot(options, [[], ...series.map(() => [])], node);
}

function ensureCharts() {
  if (ui.charts) return ui.charts;
  if (typeof uPlot === 'undefined') return null;
  ui.charts = {
    rate: makeChart($('chart-rate'), OUTCOMES),
    time: makeChart($('chart-time'), [['p50', '#2463eb'], ['p99', '#c62828']]),
    lag: makeChart($('chart-lag'), [['lag', '#455a64']]),
  };
  return ui.charts;
}

function destroyCharts() {
  ui.series = null;
  if (!ui.charts) return;
  for (const chart of Object.values(ui.charts)) chart.destroy();
  ui.charts = null;
  for (const id of ['chart-rate', 'chart-time', 'chart-lag']) {
    $(id).replaceChildren();
    delete $(id).dataset.points;
    delete $(id).dataset.events;
    delete $(id).dataset.timed;
    $(id + '-last').textContent = '';
  }
}

function number(value, digits) {
  if (value == null) return '—';
  return value.toFixed(value !== 0 && Math.abs(value) < 10 ? digits : 0);
}

async function loadSeries(name) {
  // The whole hour once, then only the points after the newest one held.
  const had = ui.series && ui.series.actor === name ? ui.series.points : [];
  const since = had.length ? `?since=${had[had.length - 1].t_ms}` : '';
  const data = await api('GET', `/v1/actors/${encodeURIComponent(name)}/series${since}`);
  if (ui.actor !== name) return;
  // Merged with what is held now (another load may have run meanwhile):
  // newer points only, at most the hour the host keeps.
  const held = ui.series && ui.series.actor === name ? ui.series.points : [];
  const newest = held.length ? held[held.length - 1].t_ms : -Infinity;
  const keep = Math.max(1, Math.ceil(3600 / data.step_seconds));
  const points = held.concat(data.points.filter((p) => p.t_ms > newest)).slice(-keep);
  ui.series = { actor: name, points };
  const xs = points.map((p) => p.t_ms / 1000);
  const charts = ensureCharts();
  if (charts) {
    charts.rate.setData([xs, ...OUTCOMES.map(([outcome]) => points.map((p) => p.rates[outcome]))]);
    charts.time.setData([xs, points.map((p) => p.p50_ms), points.map((p) => p.p99_ms)]);
    charts.lag.setData([xs, points.map((p) => p.lag)]);
  } else {
    $('chart-rate').textContent = 'Charts are unavailable (uPlot did not load).';
  }
  // What the charts hold, for scripts and tests: points, and events over
  // the window (rates times the step, rounded).
  const events = points.reduce((sum, p) =>
    sum + OUTCOMES.reduce((s, [outcome]) => s + p.rates[outcome], 0) * data.step_seconds, 0);
  for (const id of ['chart-rate', 'chart-time', 'chart-lag']) $(id).dataset.points = points.length;
  $('chart-rate').dataset.events = Math.round(events);
  $('chart-time').dataset.timed = points.filter((p) => p.p50_ms != null).length;
  const last = points[points.length - 1];
  $('chart-rate-last').textContent = last
    ? 'now ' + OUTCOMES.map(([outcome]) => `${number(last.rates[outcome], 2)} ${outcome}`).join(', ')
    : '';
  $('chart-time-last').textContent = last ? `now ${number(last.p50_ms, 2)} / ${number(last.p99_ms, 2)}` : '';
  $('chart-lag-last').textContent = last ? `now ${last.lag}` : '';
  $('av-step').textContent = `The last hour on this host, one point every ${data.step_seconds} s ` +
    '(p50/p99 estimated from histogram buckets).';
}

function resizeCharts() {
  if (!ui.charts) return;
  ui.charts.rate.setSize({ width: chartWidth($('chart-rate')), height: 170 });
  ui.charts.time.setSize({ width: chartWidth($('chart-time')), height: 170 });
  ui.charts.lag.setSize({ width: chartWidth($('chart-lag')), height: 170 });
}

function heldState(held) {
  if (held.blocked_by) return 'blocked by dead letter ' + held.blocked_by;
  return held.retrying ? 'retrying' : 'waiting behind its lane';
}

function inTime(ms) {
  if (ms == null) return '';
  const seconds = Math.round((ms - Date.now()) / 1000);
  return `${time(ms)} (${seconds >= 0 ? 'in ' + seconds + ' s' : seconds + ' s ago'})`;
}

async function loadRetries(name) {
  const data = await api('GET', `/v1/actors/${encodeURIComponent(name)}/retries?limit=100`);
  if (ui.actor !== name) return;
  const rows = data.items.map((held) => {
    const last = held.attempts[held.attempts.length - 1];
    return el('tr', { 'data-id': held.id },
      clipped(held.event.key == null ? '(none)' : bytes(held.event.key)),
      el('td', {}, `${held.event.topic}/${held.event.partition}@${held.event.offset}`),
      el('td', {}, heldState(held)),
      el('td', { className: 'num' }, held.attempts.length),
      el('td', {}, inTime(held.next_attempt_at_ms)),
      el('td', { className: 'reason', title: last ? last.error : '' }, last ? last.error : ''),
      clipped(held.host || 'this host'),
      el('td', {}, held.retrying ? el('button', {
        type: 'button',
        onclick: () => attempt(async () => {
          await api('POST', `/v1/actors/${encodeURIComponent(name)}/retries/${encodeURIComponent(held.id)}/retry-now`);
          banner(`${name}: retrying ${held.id} now`, true);
          await loadRetries(name);
        }),
      }, 'Retry now') : ''),
    );
  });
  const body = $('av-retries').tBodies[0];
  body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 8, className: 'muted' }, 'none'))]));
  const unanswered = data.unanswered_hosts && data.unanswered_hosts.length
    ? `; not answered: ${data.unanswered_hosts.join(', ')}` : '';
  $('av-retries-count').textContent = `${data.items.length} held${unanswered}`;
}

async function loadVersions(name) {
  const data = await api('GET', `/v1/actors/${encodeURIComponent(name)}/versions`);
  if (ui.actor !== name) return;
  const active = data.items.find((v) => v.active);
  const change = (verb, label, body, confirmText) => el('button', {
    type: 'button',
    onclick: () => attempt(async () => {
      if (!confirm(confirmText)) return;
      const done = await api('POST', `/v1/actors/${encodeURIComponent(name)}/${verb}`, body);
      banner(`${name}: v${done.version} active`, true);
      await Promise.all([loadVersions(name), loadActors()]);
    }),
  }, label);
  const rows = [...data.items].reverse().map((v) => el('tr', { 'data-version': v.version, className: v.active ? 'active' : '' },
    el('td', {}, 'v' + v.version),
    el('td', {}, time(v.uploaded_at_ms)),
    clipped(v.uploaded_by),
    el('td', {}, el('code', { title: v.sha256 }, v.sha256.slice(0, 12))),
    clipped(v.notes),
    el('td', {}, v.active ? el('strong', {}, 'active')
      : active && v.version < active.version
        ? change('rollback', 'Roll back', { to: v.version }, `Roll ${name} back to v${v.version}?`)
        : change('activate', 'Activate', { version: v.version }, `Activate v${v.version} of ${name}?`)),
  ));
  $('av-versions').tBodies[0].replaceChildren(...rows);
  const history = await api('GET', `/v1/actors/${encodeURIComponent(name)}/history`);
  if (ui.actor !== name) return;
  $('av-history').tBodies[0].replaceChildren(...history.items.slice(-10).reverse().map((a) => el('tr', {},
    el('td', {}, time(a.at_ms)),
    el('td', {}, 'v' + a.version),
    el('td', {}, a.previous == null ? '—' : 'v' + a.previous),
    el('td', {}, a.reason),
    clipped(a.by),
  )));
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
        clipped(name),
        clipped(host.api),
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
    body.append(el('tr', { className: 'clickable', 'data-id': dead.id, onclick: () => attempt(() => showDetail(dead.id)) },
      el('td', {}, time(dead.dead_at_ms)),
      el('td', {}, dead.actor + ' v' + dead.version),
      el('td', {}, `${dead.event.topic}/${dead.event.partition}@${dead.event.offset}`),
      clipped(bytes(dead.event.key)),
      el('td', { className: 'num' }, dead.attempts.length),
      el('td', { className: 'reason', title: dead.reason }, dead.reason),
    ));
  }
  ui.next = page.next;
  ui.appended = Boolean(append);
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
    attempt(refreshAll, 'tables');
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
  $('av-close').addEventListener('click', closeActor);
  $('av-dead-letters').addEventListener('click', (event) => {
    event.preventDefault();
    if (ui.actor) filterBy({ actor: ui.actor });
  });
  window.addEventListener('resize', resizeCharts);

  attempt(async () => {
    const health = await api('GET', '/health');
    $('host-version').textContent = 'host ' + health.version;
    if (health.auth_required && !ui.token) {
      showTokenPanel('This host needs an API token.');
      return;
    }
    await refreshAll();
  }, 'tables');
  const live = () => document.visibilityState === 'visible' && $('token-panel').hidden;
  every('tables', REFRESH_MS, live, async () => {
    await loadActors();
    await loadCluster();
    if (!ui.appended) await loadDeadLetters(false);
  });
  every('actor', ACTOR_REFRESH_MS, () => live() && ui.actor, loadActorView);
}

// Runs `task` every `ms` while `when()` holds, one run at a time: the next
// is scheduled when this one has ended, so a slow or hanging API never has
// refreshes piling up (each request also gives up after REQUEST_TIMEOUT_MS).
// A failure shows in the banner until the loop's next success clears it.
function every(source, ms, when, task) {
  const tick = async () => {
    try {
      if (when() && await attempt(task, source) && $('banner').dataset.source === source) banner('');
    } finally {
      setTimeout(tick, ms);
    }
  };
  setTimeout(tick, ms);
}

document.addEventListener('DOMContentLoaded', start);
