// Unit tests of {{name}} under plain Node, against the SDK's fake host
// (no component needed). `wactor test` runs them; by hand:
//
//     node --import ./.wactor/sdk/js/testing/register.mjs --test test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, loadEvent } from '@wactor/sdk/testing';
import { decide, handle } from '../src/actor.js';

const event = loadEvent(new URL('../event.json', import.meta.url));

test('payments at or above the threshold are flagged', () => {
  const p = { id: 'tx-1', user: 'u', amount_cents: 100000 };
  assert.equal(decide(p, 100000).flagged, true);
  assert.equal(decide({ ...p, amount_cents: 99999 }, 100000).flagged, false);
});

test('the sample event is flagged once; a redelivery does nothing', async () => {
  const first = await run(handle, event, { config: { out_topic: 'payments.out' } });
  assert.equal(first.outcome, 'done');
  assert.equal(first.emits.length, 1);
  assert.equal(first.emits[0].topic, 'payments.out');
  assert.equal(first.emits[0].json.id, 'tx-1001');
  assert.equal(first.emits[0].json.flagged, true);
  assert.equal(first.state['done:tx-1001'], '1');

  const again = await run(handle, event, { config: { out_topic: 'payments.out' }, state: first.state });
  assert.equal(again.outcome, 'done');
  assert.equal(again.emits.length, 0);
});

test('malformed JSON is dead, and nothing is published', async () => {
  const r = await run(handle, { topic: 'payments', payload_text: '{oops' });
  assert.equal(r.outcome, 'dead');
  assert.match(r.reason, /^malformed JSON payload/);
  assert.deepEqual(r.emits, []);
});

test('a payment without an amount is dead', async () => {
  const r = await run(handle, { topic: 'payments', payload: { id: 'tx-2', user: 'u' } });
  assert.equal(r.outcome, 'dead');
  assert.equal(r.reason, 'malformed JSON payload: missing field `amount_cents`');
});

test('a refused emit retries, and no marker is kept', async () => {
  const r = await run(handle, event, { reject: { emit: 'over limits.max_emits' } });
  assert.equal(r.outcome, 'retry');
  assert.equal(r.reason, 'emit rejected: over limits.max_emits');
  assert.deepEqual(r.state, {});
});
