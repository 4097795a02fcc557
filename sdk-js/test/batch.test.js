// Unit tests of batch.js (the handle-batch export made from `handle`)
// under plain Node, against the fake wactor:actor/batch that records each
// beginEvent.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batch } from '@wactor/sdk/batch';
import { begun } from 'wactor:actor/batch@0.2.0';

test('each event begins before its handle runs, and outcomes come back in order', () => {
  begun.length = 0;
  const seen = [];
  const handleBatch = batch((event) => {
    seen.push([event, [...begun]]);
    return { tag: 'done', of: event };
  });
  const outcomes = handleBatch(['a', 'b', 'c']);
  assert.deepEqual(outcomes, [{ tag: 'done', of: 'a' }, { tag: 'done', of: 'b' }, { tag: 'done', of: 'c' }]);
  assert.deepEqual(seen, [['a', [0]], ['b', [0, 1]], ['c', [0, 1, 2]]]);
});

test('an async handle settles before the next event begins', async () => {
  begun.length = 0;
  const trail = [];
  const handleBatch = batch(async (event) => {
    trail.push(`handle ${event} after begin ${begun.at(-1)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    trail.push(`settled ${event}`);
    return { tag: 'done', of: event };
  });
  const outcomes = await handleBatch(['x', 'y']);
  assert.deepEqual(outcomes, [{ tag: 'done', of: 'x' }, { tag: 'done', of: 'y' }]);
  assert.deepEqual(trail, ['handle x after begin 0', 'settled x', 'handle y after begin 1', 'settled y']);
});

test('an empty batch returns no outcomes and begins nothing', () => {
  begun.length = 0;
  assert.deepEqual(batch(() => ({ tag: 'done' }))([]), []);
  assert.deepEqual(begun, []);
});

test('batch() refuses what is not a function', () => {
  assert.throws(() => batch(undefined), TypeError);
});
