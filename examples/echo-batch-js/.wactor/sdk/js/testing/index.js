// testing/index.js: `run()`, which calls an actor's `handle` export once
// under plain Node against a fake host, and reports what the real host
// would: the outcome, the emits and state writes (kept only when done),
// logs and the HTTP requests made. Needs the hooks of register.mjs:
//
//     node --import @wactor/sdk/testing/register.mjs --test test/
//
//     import { run } from '@wactor/sdk/testing';
//     import { handle } from '../src/actor.js';
//     const r = await run(handle, { topic: 'orders', key: 'o-1', payload: { id: 1 } },
//                         { config: { out_topic: 'x' }, http: [{ status: 503, headers: { 'retry-after': '30' } }] });
//     assert.equal(r.outcome, 'retry');

import { readFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import { setCurrent } from './fake/world.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes of a string, bytes, or (anything else) its JSON. */
function bytesOf(value) {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return new Uint8Array(value);
  return encoder.encode(JSON.stringify(value));
}

/** JSON of a text, or undefined. */
function tryJson(text) {
  if (text === null || text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The WIT event for an event in the `wactor invoke --event` file format
 * (docs/actors.md, "The event file"): topic (default "dev"), partition,
 * offset, timestamp_ms, key | key_base64, headers (object or [name, value]
 * pairs; null: a null value), payload (any JSON value, sent as compact
 * JSON; null: a tombstone) | payload_text | payload_base64, attempt.
 * @param {object} event
 * @returns {object} the WIT event (offset and timestampMs as BigInt)
 */
export function witEvent(event = {}) {
  let payload = new Uint8Array(0);
  if ('payload' in event) payload = event.payload === null ? undefined : encoder.encode(JSON.stringify(event.payload));
  else if ('payload_text' in event) payload = encoder.encode(event.payload_text);
  else if ('payload_base64' in event) payload = new Uint8Array(Buffer.from(event.payload_base64, 'base64'));
  let key;
  if (event.key !== undefined && event.key !== null) key = bytesOf(event.key);
  else if (event.key_base64 !== undefined) key = new Uint8Array(Buffer.from(event.key_base64, 'base64'));
  const pairs = Array.isArray(event.headers) ? event.headers : Object.entries(event.headers ?? {});
  const timestamp = event.timestamp_ms ?? event.timestampMs;
  return {
    topic: event.topic ?? 'dev',
    partition: event.partition ?? 0,
    offset: BigInt(event.offset ?? 0),
    timestampMs: timestamp === undefined || timestamp === null ? undefined : BigInt(timestamp),
    key,
    payload,
    headers: pairs.map(([name, value]) => ({ name, value: value === null ? undefined : bytesOf(value) })),
    attempt: event.attempt ?? 1,
  };
}

/**
 * Reads an event file (e.g. the actor's event.json).
 * @param {string | URL} path
 * @returns {object}
 */
export function loadEvent(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * A scripted HTTP answer: a response, or `{ error }` for a request that
 * gets none: 'denied' (not on the allow-list), 'timeout', 'refused'
 * (connection refused), or any wasi:http error-code case name.
 * @typedef {{ status?: number, headers?: Record<string, string>, body?: string | Uint8Array | object }
 *   | { error: string }} HttpAnswer
 */

const ERROR_CODES = {
  denied: 'HTTP-request-denied',
  timeout: 'HTTP-response-timeout',
  refused: 'connection-refused',
};

/** @param {HttpAnswer} answer */
function normaliseAnswer(answer) {
  if (answer && typeof answer === 'object' && 'error' in answer) {
    return { errorCode: { tag: ERROR_CODES[answer.error] ?? answer.error } };
  }
  const headers = Object.entries(answer?.headers ?? {}).map(([n, v]) => [n, encoder.encode(String(v))]);
  const body = answer?.body === undefined ? new Uint8Array(0) : bytesOf(answer.body);
  return { status: answer?.status ?? 200, headers, body };
}

/**
 * @typedef {object} RunOptions
 * @property {Record<string, string>} [config] the `[config]` values
 * @property {Record<string, string | Uint8Array | object> | Map<string, string | Uint8Array>} [state]
 *   the state before the call (a string is stored as UTF-8, an object as
 *   JSON); pass a previous result's `state` to run a redelivery.
 * @property {HttpAnswer | HttpAnswer[] | ((request: RecordedRequest) => HttpAnswer)} [http]
 *   answers in order (an array), one answer for every request, or a
 *   function. A request with no answer left is denied, as by a host
 *   whose allow-list is empty.
 * @property {{ emit?: string, state?: string }} [reject] make the host
 *   refuse every emit / state write with this reason (a per-call limit).
 */

/**
 * @typedef {object} RecordedRequest
 * @property {string} method upper case
 * @property {string} url
 * @property {Record<string, string>} headers lower-case names
 * @property {Uint8Array} body
 * @property {string} text the body as UTF-8
 * @property {any} json the body parsed as JSON, or undefined
 */

/**
 * @typedef {object} RecordedEmit
 * @property {string} topic
 * @property {string | undefined} key the key as text; undefined: the source key
 * @property {Uint8Array | undefined} keyBytes
 * @property {Uint8Array | null} payload null: a tombstone
 * @property {string | null} text the payload as UTF-8
 * @property {any} json the payload parsed as JSON, or undefined
 * @property {Record<string, string | null>} headers
 */

/**
 * @typedef {object} RunResult
 * @property {'done' | 'retry' | 'dead'} outcome
 * @property {string | undefined} reason for retry and dead
 * @property {number | undefined} delayMs for a retry with a delay
 * @property {RecordedEmit[]} emits the records published (none unless done)
 * @property {Record<string, string>} state the state after the call, as
 *   UTF-8 text (the call's writes are applied only when done)
 * @property {Array<{ key: string, value: string | null }>} changes the
 *   call's state writes (null: a delete); empty unless done
 * @property {Array<{ level: string, message: string }>} logs
 * @property {RecordedRequest[]} requests every HTTP request made
 * @property {RecordedEmit[]} attemptedEmits the records queued, also when not done
 */

/**
 * Calls `handle` once, as the host would, against a fake host.
 * @param {(event: object) => any} handle the actor module's `handle` export
 * @param {object} [event] an event in the event-file format (see witEvent)
 * @param {RunOptions} [options]
 * @returns {Promise<RunResult>}
 */
export async function run(handle, event = {}, options = {}) {
  const store = new Map();
  const initial = options.state instanceof Map ? options.state.entries() : Object.entries(options.state ?? {});
  for (const [k, v] of initial) store.set(k, bytesOf(v));

  const script = options.http;
  let nextAnswer = 0;
  const requests = [];
  const answer = (req) => {
    const text = decoder.decode(req.body);
    const recorded = { ...req, text, json: tryJson(text) };
    requests.push(recorded);
    let a;
    if (typeof script === 'function') a = script(recorded);
    else if (Array.isArray(script)) a = nextAnswer < script.length ? script[nextAnswer++] : { error: 'denied' };
    else a = script ?? { error: 'denied' };
    return normaliseAnswer(a);
  };

  const call = {
    config: new Map(Object.entries(options.config ?? {}).map(([k, v]) => [k, String(v)])),
    store,
    pending: new Map(),
    emits: [],
    logs: [],
    http: answer,
    requests,
    reject: options.reject ?? {},
  };

  setCurrent(call);
  let wit;
  try {
    wit = await handle(witEvent(event));
  } finally {
    setCurrent(undefined);
  }
  if (!wit || typeof wit !== 'object' || !['done', 'retry', 'dead'].includes(wit.tag)) {
    throw new Error(`handle returned ${JSON.stringify(wit)}, not a WIT outcome (was it made with actor()?)`);
  }
  const isDone = wit.tag === 'done';
  const emits = call.emits.map((r) => {
    const text = r.payload === undefined ? null : decoder.decode(r.payload);
    return {
      topic: r.topic,
      key: r.key === undefined ? undefined : decoder.decode(r.key),
      keyBytes: r.key,
      payload: r.payload ?? null,
      text,
      json: tryJson(text),
      headers: Object.fromEntries(r.headers.map((h) => [h.name, h.value === undefined ? null : decoder.decode(h.value)])),
    };
  });
  const changes = [];
  if (isDone) {
    for (const [k, v] of call.pending) {
      changes.push({ key: k, value: v === null ? null : decoder.decode(v) });
      if (v === null) store.delete(k);
      else store.set(k, v);
    }
  }
  return {
    outcome: wit.tag,
    reason: wit.tag === 'retry' ? wit.val.reason : wit.tag === 'dead' ? wit.val : undefined,
    delayMs: wit.tag === 'retry' && wit.val.delayMs !== undefined ? Number(wit.val.delayMs) : undefined,
    emits: isDone ? emits : [],
    state: Object.fromEntries([...store].map(([k, v]) => [k, decoder.decode(v)])),
    changes,
    logs: call.logs,
    requests,
    attemptedEmits: emits,
  };
}
