// Unit tests of the SDK itself, against its fake host:
//     node --import ./testing/register.mjs --test test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actor, dead, done, emit, retry, state, http, PayloadError } from '@wactor/sdk';
import { run } from '@wactor/sdk/testing';

test('outcomes convert to the WIT variant; delays round up', async () => {
  const r = await run(actor(() => retry('busy', { delayMs: 1.2 })));
  assert.deepEqual([r.outcome, r.reason, r.delayMs], ['retry', 'busy', 2]);
  assert.equal((await run(actor(() => undefined))).outcome, 'done');
  assert.equal((await run(actor(async () => dead('no')))).reason, 'no');
});

test('exceptions map to outcomes and never escape', async () => {
  const payload = await run(actor((e) => e.json()), { payload_text: '{' });
  assert.equal(payload.outcome, 'dead');
  assert.match(payload.reason, /^malformed JSON payload: /);
  const mine = await run(actor(() => { throw new PayloadError('missing field `id`'); }));
  assert.equal(mine.reason, 'malformed JSON payload: missing field `id`');
  const thrown = await run(actor(() => { throw dead('nope'); }));
  assert.deepEqual([thrown.outcome, thrown.reason], ['dead', 'nope']);
  const other = await run(actor(() => { throw new RangeError('boom\nmore'); }));
  assert.deepEqual([other.outcome, other.reason], ['retry', 'unhandled RangeError: boom']);
  assert.equal(other.logs[0].level, 'error');
  const bad = await run(actor(() => 42));
  assert.equal(bad.outcome, 'retry');
  assert.match(bad.reason, /not an outcome/);
});

test('emit encodes strings, bytes and JSON; null is a tombstone; a missing payload is an error', async () => {
  const r = await run(actor(() => {
    emit.send({ topic: 'a', payload: 'text', key: 'k', headers: { h: 'v', n: null } });
    emit.send({ topic: 'b', payload: new Uint8Array([1, 2]) });
    emit.send({ topic: 'c', payload: { x: 1 }, delayMs: 1500 });
    emit.tombstone('d');
    assert.throws(() => emit.send({ topic: 'e' }), TypeError);
    return done();
  }));
  assert.deepEqual(r.emits.map((e) => e.topic), ['a', 'b', 'c', 'd']);
  assert.equal(r.emits[0].text, 'text');
  assert.deepEqual(r.emits[0].headers, { h: 'v', n: null });
  assert.deepEqual([...r.emits[1].payload], [1, 2]);
  assert.equal(r.emits[2].text, '{"x":1}');
  assert.equal(r.emits[2].headers['wactor-delay-ms'], '1500');
  assert.equal(r.emits[3].payload, null);
});

test('state reads see pending writes; writes apply only on done; a refused write retries', async () => {
  const r = await run(actor(() => {
    state.setJson('j', { a: 1 });
    assert.deepEqual(state.getJson('j'), { a: 1 });
    state.delete('old');
    assert.equal(state.has('old'), false);
    return done();
  }), {}, { state: { old: 'x' } });
  assert.deepEqual(r.state, { j: '{"a":1}' });
  const notDone = await run(actor(() => { state.set('k', 'v'); return retry('later'); }));
  assert.deepEqual(notDone.state, {});
  const refused = await run(actor(() => { state.set('k', 'v'); }), {}, { reject: { state: 'limit' } });
  assert.deepEqual([refused.outcome, refused.reason], ['retry', 'state write rejected: limit']);
});

test('http: JSON body, headers, any status is a response; no answer is denied', async () => {
  const r = await run(actor(() => {
    const resp = http.post('http://svc.test/x?y=1', { headers: { 'X-A': 'b' }, body: { n: 1 } });
    assert.equal(resp.status, 503);
    assert.equal(resp.retryAfterMs(), 7000);
    assert.deepEqual(resp.json(), { busy: true });
    http.get('http://svc.test/');
  }), {}, { http: [{ status: 503, headers: { 'Retry-After': '7' }, body: { busy: true } }] });
  assert.equal(r.outcome, 'retry');
  assert.equal(r.reason, "HTTP request to svc.test:80 denied: the host is not in the actor's allowed_hosts (actor.toml) or --allow-host (wactor invoke)");
  assert.equal(r.requests[0].url, 'http://svc.test/x?y=1');
  assert.equal(r.requests[0].headers['x-a'], 'b');
  assert.equal(r.requests[0].headers['content-type'], 'application/json');
  assert.deepEqual(r.requests[0].json, { n: 1 });
});
