// What the reviewer attacked: hostile thrown values, Promises that never
// settle, the text of a denied HTTP request, deep JSON. Every case must end
// as an outcome; a throw out of `handle` would be a trap in a component.
//     node --import ./testing/register.mjs --test test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actor, done, dead, http, state, HttpError, StateError, WactorError } from '@wactor/sdk';
import { run } from '@wactor/sdk/testing';
import { outcomeOfError, outcomeOfResult, UNREADABLE } from '../src/actor.js';
import { NEVER_SETTLED } from '../src/pending.js';

const hostileProxy = () =>
  new Proxy({}, {
    get() { throw new Error('get'); },
    getPrototypeOf() { throw new Error('proto'); },
    has() { throw new Error('has'); },
    ownKeys() { throw new Error('keys'); },
    getOwnPropertyDescriptor() { throw new Error('desc'); },
  });

class BadOutcome extends WactorError {
  get outcome() { throw new Error('no outcome'); }
}

const hostile = {
  'toString throws': [() => ({ toString() { throw new Error('x'); } }), 'unhandled object (its message could not be read)'],
  'a Proxy whose traps throw': [hostileProxy, 'unhandled object (its message could not be read)'],
  'a revoked Proxy': [() => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy; }, 'unhandled object (its message could not be read)'],
  'a Symbol': [() => Symbol('s'), 'unhandled symbol: Symbol(s)'],
  null: [() => null, 'unhandled object: null'],
  undefined: [() => undefined, 'unhandled undefined: undefined'],
  'a BigInt': [() => 10n, 'unhandled bigint: 10'],
  'an Error whose message getter throws': [() => { const e = new Error('m'); Object.defineProperty(e, 'message', { get() { throw new Error('no'); } }); return e; }, 'unhandled Error (its message could not be read)'],
  'an Error whose name is hostile': [() => { const e = new TypeError('m'); Object.defineProperty(e, 'name', { get() { throw new Error('no'); } }); return e; }, 'unhandled Error: m'],
  'an SDK error whose outcome throws': [() => new BadOutcome('b'), 'unhandled Error: b'],
  'a fake outcome': [() => ({ [Symbol.for('wactor.outcome')]: true, type: 'retry', reason: { toString() { throw new Error('r'); } } }), 'unhandled object: [object Object]'],
};

test('outcomeOfError never throws: any thrown value is a retry with a best-effort reason', () => {
  for (const [what, [make, reason]] of Object.entries(hostile)) {
    const outcome = outcomeOfError(make());
    assert.equal(outcome.type, 'retry', what);
    assert.equal(outcome.reason, reason, what);
  }
  assert.equal(UNREADABLE, 'unhandled exception (its message could not be read)');
});

test('hostile values thrown, rejected or returned end the call as a retry, never an exception', async () => {
  for (const [what, [make, reason]] of Object.entries(hostile)) {
    const thrown = await run(actor(() => { throw make(); }));
    assert.deepEqual([thrown.outcome, thrown.reason], ['retry', reason], `thrown: ${what}`);
    const rejected = await run(actor(async () => { throw make(); }));
    assert.deepEqual([rejected.outcome, rejected.reason], ['retry', reason], `rejected: ${what}`);
  }
  const returned = await run(actor(() => hostileProxy()));
  assert.equal(returned.outcome, 'retry');
  const thenThrows = await run(actor(() => ({ get then() { throw new Error('then getter'); } })));
  assert.deepEqual([thenThrows.outcome, thenThrows.reason], ['retry', 'unhandled Error: then getter']);
  const badThen = await run(actor(() => ({ then() { throw new Error('then call'); } })));
  assert.deepEqual([badThen.outcome, badThen.reason], ['retry', 'unhandled Error: then call']);
  assert.equal(outcomeOfResult(hostileProxy()).type, 'retry');
  // a real outcome behind a transparent Proxy still counts
  assert.equal((await run(actor(() => new Proxy(dead('no'), {})))).reason, 'no');
});

test('a Promise that can never settle retries with a clear reason; one waiting on a timer is awaited', async () => {
  const never = await run(actor(() => new Promise(() => {})));
  assert.deepEqual([never.outcome, never.reason], ['retry', NEVER_SETTLED]);
  assert.match(never.reason, /^the handler's Promise never settled/);
  const afterTimer = await run(actor(async () => {
    await new Promise((r) => setTimeout(r, 5));
    await new Promise(() => {});
  }));
  assert.deepEqual([afterTimer.outcome, afterTimer.reason], ['retry', NEVER_SETTLED]);
  const cleared = await run(actor(() => new Promise((r) => clearTimeout(setTimeout(r, 5)))));
  assert.equal(cleared.reason, NEVER_SETTLED);
  const slow = await run(actor(async () => { await new Promise((r) => setTimeout(r, 20)); return done(); }));
  assert.equal(slow.outcome, 'done');
  const ticks = await run(actor(() => new Promise((r) => {
    let n = 0;
    const id = setInterval(() => { if (++n === 3) { clearInterval(id); r(done()); } }, 2);
  })));
  assert.equal(ticks.outcome, 'done');
  const microtasks = await run(actor(async () => { for (let i = 0; i < 100; i++) await null; return dead('late'); }));
  assert.equal(microtasks.reason, 'late');
});

test('a denied request names the host:port and the fix', async () => {
  const r = await run(actor(() => { http.get('http://svc.test:7781/x'); }), {}, { http: { error: 'denied' } });
  assert.equal(r.outcome, 'retry');
  assert.equal(r.reason, "HTTP request to svc.test:7781 denied: the host is not in the actor's allowed_hosts (actor.toml) or --allow-host (wactor invoke)");
  const https = await run(actor(() => { http.get('https://api.example.com/'); }), {}, { http: { error: 'denied' } });
  assert.match(https.reason, /^HTTP request to api\.example\.com:443 denied: /);
  const v6 = await run(actor(() => { http.get('http://[::1]/'); }), {}, { http: { error: 'denied' } });
  assert.match(v6.reason, /^HTTP request to \[::1\]:80 denied: /);
  let caught;
  await run(actor(() => { try { http.get('http://svc.test/'); } catch (err) { caught = err; } }));
  assert.equal(caught.kind, 'denied');
  assert.equal(caught.host, 'svc.test:80');
  assert.equal(caught.detail, 'HTTP-request-denied');
  // built by hand without a host: the text it always had
  assert.equal(new HttpError('denied', 'HTTP-request-denied').message, 'HTTP request denied by the host: HTTP-request-denied');
});

test('deep JSON parses (JSON.parse does not recurse on the stack); bad state JSON retries', async () => {
  const deep = '['.repeat(20000) + ']'.repeat(20000);
  assert.equal((await run(actor((e) => { e.json(); }), { payload_text: deep })).outcome, 'done');
  const r = await run(actor(() => { state.getJson('k'); }), {}, { state: { k: '{' } });
  assert.equal(r.outcome, 'retry');
  assert.ok(new StateError('decode', 'k', 'x').outcome.type === 'retry');
});
