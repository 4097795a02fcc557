// emit.js: records to publish to Kafka when the call returns done (the
// wactor:actor/emit import). The host queues them and produces them only
// after a done call; on retry, dead or a trap they are dropped.

import { hostEmit } from './host.js';
import { asBytes, utf8 } from './bytes.js';
import { EmitError } from './errors.js';

/**
 * Header values: a string (UTF-8), bytes, or null/undefined for a null
 * value. Headers may be given as an object, as [name, value] pairs, or as
 * {name, value} objects (so `event.headers` can be passed on as is).
 * @typedef {string | Uint8Array | null | undefined} HeaderValue
 * @typedef {Record<string, HeaderValue>
 *   | Array<[string, HeaderValue]>
 *   | Array<{ name: string, value: HeaderValue }>} HeadersInit
 */

/**
 * One record to publish.
 * @typedef {object} Record
 * @property {string} topic the destination topic (not empty).
 * @property {string | Uint8Array} [key] undefined: the source event's key
 *   (keeps per-key order for follow-up events).
 * @property {string | Uint8Array | object | number | boolean | null | undefined} payload
 *   a string (sent as UTF-8), bytes (as is), or any other value (sent as
 *   compact JSON). null or undefined: a tombstone (a null value, which
 *   deletes the key in a compacted topic). The property must be present,
 *   so a forgotten payload is an error rather than a tombstone.
 * @property {HeadersInit} [headers]
 * @property {number} [delayMs] publish this many milliseconds after the
 *   call is done (the `wactor-delay-ms` header; see docs/schedules.md).
 * @property {number} [deliverAtMs] publish at this time, in milliseconds
 *   since the Unix epoch (the `wactor-deliver-at` header).
 */

/**
 * @param {HeaderValue} value
 * @param {string} name
 * @returns {Uint8Array | undefined}
 */
function headerBytes(value, name) {
  if (value === null || value === undefined) return undefined;
  const bytes = asBytes(value);
  if (bytes === undefined) throw new TypeError(`emit: header ${name} must be a string, a Uint8Array or null`);
  return bytes;
}

/**
 * Normalises headers to the WIT `header` list.
 * @param {HeadersInit | undefined} headers
 * @returns {Array<{ name: string, value: Uint8Array | undefined }>}
 */
export function toWitHeaders(headers) {
  if (headers === undefined || headers === null) return [];
  const out = [];
  if (Array.isArray(headers)) {
    for (const h of headers) {
      const [name, value] = Array.isArray(h) ? h : [h.name, h.value];
      out.push({ name: String(name), value: headerBytes(value, name) });
    }
  } else {
    for (const [name, value] of Object.entries(headers)) {
      out.push({ name, value: headerBytes(value, name) });
    }
  }
  return out;
}

/**
 * Bytes of a payload; undefined for a tombstone.
 * @param {unknown} payload
 * @returns {Uint8Array | undefined}
 * @throws {EmitError} kind 'encode' when the value cannot be JSON
 */
function payloadBytes(payload) {
  if (payload === null || payload === undefined) return undefined;
  const bytes = asBytes(payload);
  if (bytes !== undefined) return bytes;
  let text;
  try {
    text = JSON.stringify(payload);
  } catch (err) {
    throw new EmitError('encode', err instanceof Error ? err.message : String(err));
  }
  if (text === undefined) throw new EmitError('encode', `a ${typeof payload} has no JSON form`);
  return utf8(text);
}

/**
 * Queues a record for publishing when the call is done.
 * @param {Record} record
 * @throws {EmitError} 'rejected' when the host refuses it (an empty topic,
 *   more records or bytes than the per-call limits allow): outcome retry;
 *   'encode' when the payload cannot be encoded as JSON: outcome dead.
 * @throws {TypeError} when the record is malformed (no payload property,
 *   a topic that is not a string).
 */
function send(record) {
  if (typeof record !== 'object' || record === null) throw new TypeError('emit.send: expected a record object');
  if (typeof record.topic !== 'string') throw new TypeError('emit.send: topic must be a string');
  if (!('payload' in record)) {
    throw new TypeError('emit.send: the record has no payload (use payload: null for a tombstone)');
  }
  let key;
  if (record.key !== undefined && record.key !== null) {
    key = asBytes(record.key);
    if (key === undefined) throw new TypeError('emit.send: key must be a string or a Uint8Array');
  }
  const headers = toWitHeaders(record.headers);
  if (record.delayMs !== undefined) {
    headers.push({ name: 'wactor-delay-ms', value: utf8(String(Math.max(0, Math.ceil(record.delayMs)))) });
  }
  if (record.deliverAtMs !== undefined) {
    headers.push({ name: 'wactor-deliver-at', value: utf8(String(Math.trunc(record.deliverAtMs))) });
  }
  const witRecord = { topic: record.topic, key, payload: payloadBytes(record.payload), headers };
  try {
    hostEmit(witRecord);
  } catch (err) {
    throw new EmitError('rejected', hostReason(err));
  }
}

/**
 * Queues a JSON record: `send({ ...options, topic, payload: value })`.
 * @param {string} topic
 * @param {unknown} value encoded with JSON.stringify
 * @param {Omit<Record, 'topic' | 'payload'>} [options]
 */
function sendJson(topic, value, options = {}) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new EmitError('encode', err instanceof Error ? err.message : String(err));
  }
  if (text === undefined) throw new EmitError('encode', `a ${typeof value} has no JSON form`);
  send({ ...options, topic, payload: text });
}

/**
 * Queues a tombstone (a null value) for `topic`; its key is the source
 * event's unless `options.key` is given.
 * @param {string} topic
 * @param {Omit<Record, 'topic' | 'payload'>} [options]
 */
function tombstone(topic, options = {}) {
  send({ ...options, topic, payload: null });
}

/**
 * The host's reason from an error thrown by a `result<_, string>` import.
 * @param {unknown} err
 * @returns {string}
 */
export function hostReason(err) {
  if (err && typeof err === 'object' && 'payload' in err && err.payload !== undefined) return String(err.payload);
  return err instanceof Error ? err.message : String(err);
}

/** Records to publish when the call is done. */
export const emit = Object.freeze({ send, sendJson, tombstone });
