#!/usr/bin/env node
// The dashboard in a real browser: headless Chromium (Debian's `chromium`)
// driven by playwright-core, against a running `wactor dev`.
//
// Run by host/cli/tests/dashboard.rs, which starts `wactor dev` with two
// actors (`echo` on `orders`, `scripted` on `jobs`: the fixture that does
// what its payload says) and passes:
//
//   WACTOR_API          the dev host's API, http://127.0.0.1:PORT
//   WACTOR_BROKERS      its broker
//   WACTOR_BIN          the wactor binary (for `produce` and `deploy`)
//   SCRIPTED_V2         a manifest of `scripted` that differs from the
//                       running one (deployed as v2, then rolled back)
//   WACTOR_CHROMIUM     the browser (default /usr/bin/chromium)
//
// `--screenshot FILE` writes a PNG of the dashboard at the end
// (docs/img/dashboard.png is made this way: docs/operations.md).
//
// Every wait is on a condition with a generous timeout (a loaded 2-core
// CI machine): nothing asserts after a fixed sleep.
'use strict';

const { execFileSync } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const { chromium } = require('playwright-core');

const API = process.env.WACTOR_API;
const BIN = process.env.WACTOR_BIN;
const BROKERS = process.env.WACTOR_BROKERS;
const V2 = process.env.SCRIPTED_V2;
const CHROMIUM = process.env.WACTOR_CHROMIUM || '/usr/bin/chromium';
const WAIT = 60_000;
const XSS = '<img src=x onerror=window.__xss=1><b>bold</b>';
// Long without a space (a base64 key, pasted notes): must not widen the page.
const LONG = 'QUJD'.repeat(750);

const screenshotAt = process.argv.indexOf('--screenshot');
const screenshot = screenshotAt > 0 ? process.argv[screenshotAt + 1] : null;

for (const [name, value] of Object.entries({ WACTOR_API: API, WACTOR_BIN: BIN, WACTOR_BROKERS: BROKERS, SCRIPTED_V2: V2 })) {
  if (!value) throw new Error(`${name} is not set`);
}

function step(text) {
  console.log(`[dashboard] ${new Date().toISOString()} ${text}`);
}

function wactor(...args) {
  return execFileSync(BIN, args, {
    env: { ...process.env, WACTOR_API: API, WACTOR_BROKERS: BROKERS },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: WAIT,
  });
}

function produce(topic, key, payload) {
  wactor('produce', '--topic', topic, '--key', key, payload);
}

async function apiGet(route) {
  const response = await fetch(API + route);
  if (!response.ok) throw new Error(`GET ${route}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
  });
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // Content-security-policy violations, reported by the page itself.
    await context.addInitScript(() => {
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', (event) => {
        window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`);
      });
    });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    // Console errors the test causes itself (a refused connection).
    const expected = [];
    page.on('console', (message) => {
      const url = message.location().url || '';
      if (expected.some((pattern) => pattern.test(`${message.text()} ${url}`))) return;
      if (message.type() === 'error' && !url.endsWith('/favicon.ico')) {
        problems.push(`console error: ${message.text()} (${url})`);
      }
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    // Confirm dialogs (roll back, re-drive all) are accepted unless a step
    // says otherwise; their messages are kept.
    const dialogs = { accept: true, seen: [] };
    page.on('dialog', (dialog) => {
      dialogs.seen.push(dialog.message());
      return dialogs.accept ? dialog.accept() : dialog.dismiss();
    });

    step(`open ${API}/`);
    await page.goto(API + '/');
    await page.locator('#actors tbody tr[data-actor="echo"]').waitFor();
    await page.locator('#actors tbody tr[data-actor="scripted"]').waitFor();
    step('the actors table lists echo and scripted');

    // ---- a chart moves after events are produced ----------------------------
    // The series requests: the whole hour once, then only newer points.
    const seriesUrls = [];
    page.on('request', (request) => {
      if (request.url().includes('/series')) seriesUrls.push(request.url());
    });
    await page.locator('#actors tr[data-actor="scripted"] a.actor-link').click();
    await page.locator('#actor-view').waitFor({ state: 'visible' });
    await page.locator('#chart-rate canvas').waitFor();
    await page.waitForFunction(() => document.getElementById('chart-rate').dataset.points !== undefined);
    const before = Number(await page.locator('#chart-rate').getAttribute('data-events'));
    step(`scripted's chart holds ${before} events; producing 6`);
    for (let i = 0; i < 6; i += 1) produce('jobs', `k${i % 3}`, JSON.stringify({ seq: i }));
    await page.waitForFunction(
      (least) => Number(document.getElementById('chart-rate').dataset.events) >= least,
      before + 3, { timeout: WAIT });
    // Call times too: some step of the window had calls.
    await page.waitForFunction(() => Number(document.getElementById('chart-time').dataset.timed) >= 1);
    if (/since=/.test(seriesUrls[0] || '') || !seriesUrls.slice(1).some((url) => /\?since=\d+$/.test(url))) {
      throw new Error(`the charts do not fetch only newer points: ${JSON.stringify(seriesUrls.slice(0, 4))}`);
    }
    step(`the chart moved: ${await page.locator('#chart-rate').getAttribute('data-events')} events, ` +
      `${await page.locator('#chart-rate-last').textContent()}; call time ${await page.locator('#chart-time-last').textContent()}`);

    // ---- a retry in progress --------------------------------------------------
    // Its key holds HTML too, and is long: shown as text in the retries table.
    produce('jobs', 'stuck' + XSS + LONG, JSON.stringify({ fail_until_attempt: 1000 }));
    const held = page.locator('#av-retries tbody tr', { hasText: 'stuck' });
    await held.waitFor();
    await page.waitForFunction(() => {
      const row = [...document.querySelectorAll('#av-retries tbody tr')].find((r) => r.textContent.includes('stuck'));
      return row && row.textContent.includes('retrying') && /scripted retry \d+/.test(row.textContent);
    });
    step(`a retry in progress: ${(await held.textContent()).replace(/\s+/g, ' ').replace(LONG, '<3000 characters>')}`);

    // ---- a dead letter with HTML in its payload is shown as text --------------
    produce('jobs', 'xss', JSON.stringify({ dead: true, note: XSS }));
    const row = page.locator('#dlq tbody tr', { hasText: 'xss' });
    await row.waitFor();
    const id = await row.getAttribute('data-id');
    const attemptsBefore = Number(await row.locator('td.num').textContent());
    await row.click();
    await page.locator('#detail').waitFor({ state: 'visible' });
    await page.waitForFunction((text) => document.getElementById('detail-payload').textContent.includes(text), XSS);
    const injected = await page.evaluate(() => ({
      bold: document.querySelectorAll('#detail b, #dlq b').length,
      img: document.querySelectorAll('img').length,
      xss: window.__xss,
    }));
    if (injected.bold !== 0 || injected.img !== 0 || injected.xss !== undefined) {
      throw new Error(`the payload's HTML was interpreted: ${JSON.stringify(injected)}`);
    }
    const attemptRows = await page.locator('#detail-attempts tbody tr').count();
    if (attemptRows < 1) throw new Error('the dead letter shows no attempt');
    step(`dead letter ${id}: payload shown as text, ${attemptRows} attempt(s) listed`);

    // ---- re-drive it by clicking ---------------------------------------------
    await page.locator('#detail-redrive').click();
    await page.waitForFunction(() => /1 of 1 re-driven/.test(document.getElementById('banner').textContent));
    await page.locator('#detail').waitFor({ state: 'hidden' });
    // It runs again, dies again (its payload says so) and comes back with
    // its history: one more attempt, one re-drive.
    const deadline = Date.now() + WAIT;
    for (;;) {
      const letter = await apiGet(`/v1/dead-letters/${encodeURIComponent(id)}`).catch(() => null);
      if (letter && letter.redrives >= 1) break;
      if (Date.now() > deadline) throw new Error(`${id} was not re-driven`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await page.waitForFunction(({ id, attempts }) => {
      const again = document.querySelector(`#dlq tbody tr[data-id="${CSS.escape(id)}"]`);
      return again && Number(again.querySelector('td.num').textContent) > attempts;
    }, { id, attempts: attemptsBefore });
    step(`re-driven: ${id} ran again and is back with more attempts`);

    // ---- roll back by clicking -------------------------------------------------
    // Notes with HTML: shown as text in the versions table.
    wactor('deploy', V2, '--notes', 'browser test v2 ' + XSS + LONG);
    await page.locator('#av-versions tbody tr[data-version="2"].active').waitFor();
    await page.waitForFunction(() =>
      document.querySelector('#actors tr[data-actor="scripted"]').textContent.includes('v2'));
    step('v2 deployed and shown active');
    // Cancelled in its confirmation, the roll back does nothing.
    dialogs.accept = false;
    const rollback = page.locator('#av-versions tbody tr[data-version="1"] button', { hasText: 'Roll back' });
    const seenBefore = dialogs.seen.length;
    await rollback.click();
    const askedBy = Date.now() + 10_000;
    while (dialogs.seen.length === seenBefore && Date.now() < askedBy) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const asked = dialogs.seen.length > seenBefore ? dialogs.seen[dialogs.seen.length - 1] : '';
    if (!/Roll scripted back to v1\?/.test(asked)) throw new Error(`no confirmation before the roll back: ${JSON.stringify(dialogs.seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const kept = await apiGet('/v1/actors/scripted');
    if (kept.active_version !== 2) throw new Error(`a cancelled roll back changed the active version to ${kept.active_version}`);
    dialogs.accept = true;
    step(`the roll back asks first ("${asked}"); cancelled, v2 stays`);
    await rollback.click();
    await page.locator('#av-versions tbody tr[data-version="1"].active').waitFor();
    await page.waitForFunction(() =>
      /\bv1\b/.test(document.querySelector('#actors tr[data-actor="scripted"] td:nth-child(2)').textContent));
    await page.waitForFunction(() => {
      const newest = document.querySelector('#av-history tbody tr');
      return newest && newest.textContent.includes('rollback') && newest.textContent.includes('v1');
    });
    const actor = await apiGet('/v1/actors/scripted');
    if (actor.active_version !== 1) throw new Error(`active version ${actor.active_version} after the roll back`);
    step('rolled back to v1 by clicking');

    // ---- untrusted text stays text everywhere --------------------------------------
    // The retry's key and v2's notes, in the actor view, as the payload above.
    await page.waitForFunction((text) =>
      document.querySelector('#av-versions tbody tr[data-version="2"]').textContent.includes(text)
      && document.getElementById('av-retries').textContent.includes('stuck' + text), XSS);
    const anywhere = await page.evaluate(() => ({
      bold: document.querySelectorAll('b').length,
      img: document.querySelectorAll('img').length,
      xss: window.__xss,
    }));
    if (anywhere.bold !== 0 || anywhere.img !== 0 || anywhere.xss !== undefined) {
      throw new Error(`HTML in a key or notes was interpreted: ${JSON.stringify(anywhere)}`);
    }
    step('HTML in a retry key and in version notes is shown as text');
    // The 3000-character key and notes are cut to their columns: the page
    // is no wider than the window and Retry now stays on screen.
    const widths = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      window: window.innerWidth,
      retryNow: Math.ceil(document.querySelector('#av-retries tbody button').getBoundingClientRect().right),
    }));
    if (widths.page > widths.window || widths.retryNow > widths.window) {
      throw new Error(`long text widens the page: ${JSON.stringify(widths)}`);
    }
    step(`long keys and notes stay within the window: ${JSON.stringify(widths)}`);

    // ---- a slow API: refreshes wait for each other --------------------------------
    // Every series request answers after 5 s, longer than the actor view's
    // 2 s refresh: the next refresh starts only when this one has ended, so
    // there is never more than one series request in flight.
    const SERIES = '**/v1/actors/*/series*';
    const slow = { inflight: 0, most: 0, answered: 0 };
    await page.route(SERIES, async (route) => {
      slow.inflight += 1;
      slow.most = Math.max(slow.most, slow.inflight);
      await new Promise((resolve) => setTimeout(resolve, 5000));
      await route.continue().catch(() => {});
      slow.inflight -= 1;
      slow.answered += 1;
    });
    const slowUntil = Date.now() + WAIT;
    while (slow.answered < 2 && Date.now() < slowUntil) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await page.unroute(SERIES);
    if (slow.answered < 2) throw new Error(`the charts stopped refreshing under a slow API: ${JSON.stringify(slow)}`);
    if (slow.most > 1) throw new Error(`refreshes piled up under a slow API: ${slow.most} series requests at once`);
    step(`a slow API: ${slow.answered} slow series requests, at most ${slow.most} at once`);

    // ---- an API that fails, then answers again ------------------------------------
    // The failure shows in the banner, and goes once the refresh succeeds.
    const ACTORS = '**/v1/actors';
    expected.push(/ERR_CONNECTION_REFUSED .*\/v1\/actors$/);
    await page.route(ACTORS, (route) => route.abort('connectionrefused'));
    await page.waitForFunction(() => {
      const node = document.getElementById('banner');
      return !node.hidden && /GET \/v1\/actors: the host did not answer/.test(node.textContent);
    });
    step(`an unreachable API is shown: ${await page.locator('#banner').textContent()}`);
    await page.unroute(ACTORS);
    await page.locator('#banner').waitFor({ state: 'hidden' });
    step('the banner went once the API answered again');

    // ---- CSP --------------------------------------------------------------------
    const csp = await page.evaluate(() => window.__csp);
    if (csp.length) problems.push(`CSP violations: ${csp.join('; ')}`);

    if (screenshot) {
      // Charts with a few more points, the dead letter open.
      for (let i = 0; i < 4; i += 1) produce('orders', `o${i}`, JSON.stringify({ order_id: `o${i}`, total_cents: 1250 }));
      await page.locator('#dlq tbody tr', { hasText: 'xss' }).click();
      await page.locator('#detail').waitFor({ state: 'visible' });
      await page.locator('#actors tr[data-actor="scripted"] a.actor-link').click();
      await page.waitForFunction(() => Number(document.getElementById('chart-rate').dataset.points) >= 5);
      fs.mkdirSync(path.dirname(path.resolve(screenshot)), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
      step(`screenshot written to ${screenshot}`);
    }
  } finally {
    await browser.close();
  }
  if (problems.length) throw new Error(problems.join('\n'));
  step('passed');
}

main().catch((error) => {
  console.error(`[dashboard] FAILED: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
