// Unit tests of echo-js under plain Node, against the SDK's fake host:
//
//     node --import @wactor/sdk/testing/register.mjs --test test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, loadEvent } from '@wactor/sdk/testing';
import { handle } from '../src/actor.js';

const event = loadEvent(new URL('../event.json', import.meta.url));

test('the sample event is echoed to out_topic with its key, payload and headers', async () => {
  const r = await run(handle, event, { config: { out_topic: 'orders.echo' } });
  assert.equal(r.outcome, 'done');
  assert.equal(r.emits.length, 1);
  const [out] = r.emits;
  assert.equal(out.topic, 'orders.echo');
  assert.equal(out.key, 'order-1001');
  assert.deepEqual(out.json, { order_id: 'order-1001', total_cents: 1999 });
  assert.deepEqual(out.headers, { 'trace-id': '4bf92f3577b34da6' });
  assert.deepEqual(r.logs, [{ level: 'debug', message: 'echoing 44 bytes from orders/0@42 to orders.echo' }]);
});

test('without out_topic the copy goes to <topic>.echo', async () => {
  const r = await run(handle, event);
  assert.equal(r.emits[0].topic, 'orders.echo');
});

test('a tombstone is echoed as a tombstone, a null header as a null header', async () => {
  const r = await run(handle, { topic: 'users', key: 'u-7', payload: null, headers: [['gone', null], ['empty', '']] });
  assert.equal(r.outcome, 'done');
  assert.equal(r.emits[0].payload, null);
  assert.deepEqual(r.emits[0].headers, { gone: null, empty: '' });
});

test('a refused emit retries and publishes nothing', async () => {
  const r = await run(handle, event, { reject: { emit: 'more than 1000 records (limits.max_emits)' } });
  assert.equal(r.outcome, 'retry');
  assert.equal(r.reason, 'emit rejected: more than 1000 records (limits.max_emits)');
  assert.deepEqual(r.emits, []);
});
