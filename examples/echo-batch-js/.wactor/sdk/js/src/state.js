// state.js: the actor's own key-value state, kept by the host (the
// wactor:actor/state import). Reads see the call's own pending writes;
// writes are applied only if the call returns done. State is scoped by the
// source partition (docs/actors.md, "State lives with the partition").

import { hostStateDelete, hostStateGet, hostStateSet } from './host.js';
import { asBytes, decodeLossy, decodeStrict, utf8 } from './bytes.js';
import { StateError } from './errors.js';
import { hostReason } from './emit.js';

/**
 * A value's bytes, or undefined when the key is not set. A key over 4096
 * bytes reads as undefined.
 * @param {string} key
 * @returns {Uint8Array | undefined}
 */
function get(key) {
  return hostStateGet(key);
}

/**
 * Whether the key is set.
 * @param {string} key
 * @returns {boolean}
 */
function has(key) {
  return hostStateGet(key) !== undefined;
}

/**
 * A value as UTF-8 text (invalid bytes become U+FFFD), or undefined.
 * @param {string} key
 * @returns {string | undefined}
 */
function getText(key) {
  const bytes = hostStateGet(key);
  return bytes === undefined ? undefined : decodeLossy(bytes);
}

/**
 * A JSON value, or undefined when the key is not set.
 * @param {string} key
 * @returns {any}
 * @throws {StateError} kind 'decode' when the stored value is not JSON (outcome retry)
 */
function getJson(key) {
  const bytes = hostStateGet(key);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(decodeStrict(bytes));
  } catch (err) {
    throw new StateError('decode', key, err instanceof Error ? err.message : String(err));
  }
}

/**
 * Writes a value (applied when the call is done).
 * @param {string} key at most 4096 bytes
 * @param {string | Uint8Array} value a string is stored as UTF-8
 * @throws {StateError} kind 'rejected' when the host refuses the write (a
 *   long key, a per-call limit; the message names it): outcome retry. A
 *   refused write changes nothing.
 * @throws {TypeError} for a value that is neither a string nor bytes (use setJson)
 */
function set(key, value) {
  const bytes = asBytes(value);
  if (bytes === undefined) throw new TypeError(`state.set(${JSON.stringify(key)}): the value must be a string or a Uint8Array (use state.setJson for other values)`);
  try {
    hostStateSet(key, bytes);
  } catch (err) {
    throw new StateError('rejected', key, hostReason(err));
  }
}

/**
 * Writes a value as compact JSON.
 * @param {string} key
 * @param {unknown} value
 * @throws {StateError} 'encode' (outcome dead) or 'rejected' (outcome retry)
 */
function setJson(key, value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StateError('encode', key, err instanceof Error ? err.message : String(err));
  }
  if (text === undefined) throw new StateError('encode', key, `a ${typeof value} has no JSON form`);
  set(key, utf8(text));
}

/**
 * Removes a value (applied when the call is done).
 * @param {string} key
 * @throws {StateError} kind 'rejected' like set
 */
function del(key) {
  try {
    hostStateDelete(key);
  } catch (err) {
    throw new StateError('rejected', key, hostReason(err));
  }
}

/** The actor's key-value state. */
export const state = Object.freeze({ get, has, getText, getJson, set, setJson, delete: del });
