// Unit tests of {{name}} under plain Node, against the SDK's fake host
// (no component needed). `wactor test` runs them; by hand:
//
//     node --import ./.wactor/sdk/js/testing/register.mjs --test test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, loadEvent } from '@wactor/sdk/testing';
import { handle } from '../src/actor.js';

const event = loadEvent(new URL('../event.json', import.meta.url));

test('the sample event is published once; a redelivery does nothing', async () => {
  const first = await run(handle, event, { config: { out_topic: 'items.out' } });
  assert.equal(first.outcome, 'done');
  assert.equal(first.emits.length, 1);
  assert.equal(first.emits[0].topic, 'items.out');
  assert.equal(first.emits[0].json.id, 'item-1');
  assert.equal(first.state['seen:item-1'], '1');

  const again = await run(handle, event, { config: { out_topic: 'items.out' }, state: first.state });
  assert.equal(again.outcome, 'done');
  assert.equal(again.emits.length, 0);
});

test('without out_topic the record goes to <topic>.out', async () => {
  const r = await run(handle, event);
  assert.equal(r.emits[0].topic, `${event.topic}.out`);
});

test('malformed JSON is dead, and nothing is published', async () => {
  const r = await run(handle, { topic: 'in', payload_text: '{oops' });
  assert.equal(r.outcome, 'dead');
  assert.match(r.reason, /^malformed JSON payload/);
  assert.deepEqual(r.emits, []);
});

test('a document without an id is dead', async () => {
  const r = await run(handle, { topic: 'in', payload: { value: 1 } });
  assert.equal(r.outcome, 'dead');
  assert.equal(r.reason, 'malformed JSON payload: missing field `id`');
});

test('a refused emit retries, and no marker is kept', async () => {
  const r = await run(handle, event, { reject: { emit: 'over limits.max_emits' } });
  assert.equal(r.outcome, 'retry');
  assert.equal(r.reason, 'emit rejected: over limits.max_emits');
  assert.deepEqual(r.state, {});
});
