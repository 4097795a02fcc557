// Unit tests of payment-reversal-js under plain Node, against the SDK's
// fake host (no component, no wallet):
//
//     node --import @wactor/sdk/testing/register.mjs --test test/
//
// They pin the behaviour the Rust example has (examples/payment-reversal).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, loadEvent } from '@wactor/sdk/testing';
import { handle, encodePathSegment } from '../src/actor.js';

const event = loadEvent(new URL('../event.json', import.meta.url));
const config = { wallet_url: 'http://wallet.test:8080', timeout_ms: '3000' };

test('a cancellation is reversed once: marker, Idempotency-Key, emit; the redelivery does nothing', async () => {
  const first = await run(handle, event, { config, http: [{ status: 200, body: { status: 'reversed' } }] });
  assert.equal(first.outcome, 'done');
  assert.equal(first.requests.length, 1);
  const [request] = first.requests;
  assert.equal(request.method, 'POST');
  assert.equal(request.url, 'http://wallet.test:8080/reservations/R-555/reverse');
  assert.equal(request.headers['idempotency-key'], 'B-1001');
  assert.equal(request.headers['content-type'], 'application/json');
  assert.deepEqual(request.json, { booking_id: 'B-1001', customer_id: 'C-77', amount: { value: 25000, currency: 'IDR' } });
  assert.equal(first.emits.length, 1);
  assert.equal(first.emits[0].topic, 'wallet.reversal.completed');
  assert.equal(first.emits[0].key, undefined, 'the source key');
  assert.deepEqual(first.emits[0].json, { booking_id: 'B-1001', reservation_id: 'R-555', amount: { value: 25000, currency: 'IDR' } });
  assert.deepEqual(JSON.parse(first.state['reversed:B-1001']), { reservation_id: 'R-555', wallet_status: 200 });

  const second = await run(handle, event, { config, state: first.state });
  assert.equal(second.outcome, 'done');
  assert.equal(second.requests.length, 0, 'no second wallet call');
  assert.equal(second.emits.length, 0);
  assert.deepEqual(second.changes, []);
});

test('409 (already reversed) is success', async () => {
  const r = await run(handle, event, { config, http: [{ status: 409, body: 'already reversed' }] });
  assert.equal(r.outcome, 'done');
  assert.equal(JSON.parse(r.state['reversed:B-1001']).wallet_status, 409);
  assert.equal(r.emits.length, 1);
});

test('503 retries after the Retry-After, with no effects', async () => {
  const r = await run(handle, event, { config, http: [{ status: 503, headers: { 'Retry-After': '30' } }] });
  assert.equal(r.outcome, 'retry');
  assert.equal(r.reason, 'wallet answered 503');
  assert.equal(r.delayMs, 30000);
  assert.deepEqual(r.emits, []);
  assert.deepEqual(r.state, {}, 'no marker after a failed reversal');
  assert.equal(r.attemptedEmits.length, 0);
});

test('429 without Retry-After retries on the policy', async () => {
  const r = await run(handle, event, { config, http: [{ status: 429 }] });
  assert.equal(r.outcome, 'retry');
  assert.equal(r.reason, 'wallet answered 429');
  assert.equal(r.delayMs, undefined);
});

test('404 is dead with the status and the body', async () => {
  const r = await run(handle, event, { config, http: [{ status: 404, body: 'no such reservation' }] });
  assert.equal(r.outcome, 'dead');
  assert.equal(r.reason, 'wallet refused the reversal with 404: no such reservation');
  assert.deepEqual(r.emits, []);
});

test('a host not on the allow-list (denied) retries, and says so', async () => {
  const r = await run(handle, event, { config, http: { error: 'denied' } });
  assert.equal(r.outcome, 'retry');
  assert.match(r.reason, /^wallet unreachable: .*denied/);
});

test('a timeout retries', async () => {
  const r = await run(handle, event, { config, http: { error: 'timeout' } });
  assert.equal(r.outcome, 'retry');
  assert.match(r.reason, /timed out/);
});

test('malformed JSON is dead without calling the wallet', async () => {
  const r = await run(handle, { topic: 'bookings', key: 'B-1', payload_text: '{oops' }, { config });
  assert.equal(r.outcome, 'dead');
  assert.match(r.reason, /^malformed JSON payload/);
  assert.equal(r.requests.length, 0);
});

test('a booking.cancelled without its fields is dead ("missing field")', async () => {
  const r = await run(handle, { topic: 'bookings', key: 'B-1', payload: { type: 'booking.cancelled', booking_id: 'B-1' } }, { config });
  assert.equal(r.outcome, 'dead');
  assert.equal(r.reason, 'malformed JSON payload: missing field `customer_id`');
  assert.equal(r.requests.length, 0);
});

test('other event types are ignored', async () => {
  const r = await run(handle, { topic: 'bookings', payload: { type: 'booking.created' } }, { config });
  assert.equal(r.outcome, 'done');
  assert.equal(r.requests.length, 0);
  assert.deepEqual(r.logs, [{ level: 'debug', message: 'ignoring a booking.created event' }]);
});

test('a missing wallet_url is dead', async () => {
  const r = await run(handle, event, {});
  assert.equal(r.outcome, 'dead');
  assert.equal(r.reason, 'config wallet_url is not set');
});

test('a refused state write retries and emits nothing', async () => {
  const r = await run(handle, event, { config, http: [{ status: 200 }], reject: { state: 'state: too many writes (limits.max_state_writes)' } });
  assert.equal(r.outcome, 'retry');
  assert.match(r.reason, /^cannot record the marker: state write rejected: state: too many writes/);
  assert.deepEqual(r.emits, []);
});

test('ids cannot escape their path segment', () => {
  assert.equal(encodePathSegment('R-555'), 'R-555');
  assert.equal(encodePathSegment('../admin?x'), '%2E%2E%2Fadmin%3Fx');
});
