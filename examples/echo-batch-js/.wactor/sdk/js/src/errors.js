// errors.js: the SDK's error classes. Each knows the outcome it stands for
// (`error.outcome`), which is what the handler's call ends with when the
// error escapes the handler: the JS counterpart of the Rust SDK's `?` table.
//
// | error                          | outcome                                  |
// |--------------------------------|------------------------------------------|
// | PayloadError (bad JSON/UTF-8)  | dead: retrying cannot fix it             |
// | MissingConfig                  | dead: only a new manifest fixes it       |
// | EmitError 'rejected'           | retry (the host refused: limit, topic)   |
// | EmitError 'encode'             | dead (the value cannot become JSON)      |
// | StateError 'rejected'/'decode' | retry                                    |
// | StateError 'encode'            | dead                                     |
// | HttpError (no response)        | retry                                    |
// | any other exception            | retry "unhandled <Name>: <message>", plus an error log |

import { dead, retry } from './outcome.js';

/** Base class of the SDK's errors. */
export class WactorError extends Error {
  /**
   * The outcome the call ends with when this error escapes the handler.
   * @returns {import('./outcome.js').Outcome}
   */
  get outcome() {
    return retry(this.message);
  }
}

/**
 * The event's payload is not what the actor expects: not UTF-8, not JSON,
 * or (thrown by the actor itself) a JSON document missing a field.
 * Outcome: dead, with the message as the reason.
 */
export class PayloadError extends WactorError {
  /**
   * @param {string} detail what is wrong, e.g. "missing field `booking_id`"
   * @param {{ kind?: 'json' | 'utf8' }} [options] 'json' (default) gives
   *   "malformed JSON payload: <detail>", 'utf8' "payload is not UTF-8: <detail>"
   */
  constructor(detail, options = {}) {
    const kind = options.kind ?? 'json';
    super(kind === 'utf8' ? `payload is not UTF-8: ${detail}` : `malformed JSON payload: ${detail}`);
    this.name = 'PayloadError';
    /** @type {'json' | 'utf8'} */
    this.kind = kind;
  }
  get outcome() {
    return dead(this.message);
  }
}

/** A required config value is not set. Outcome: dead ("config KEY is not set"). */
export class MissingConfig extends WactorError {
  /** @param {string} key */
  constructor(key) {
    super(`config ${key} is not set`);
    this.name = 'MissingConfig';
    this.key = key;
  }
  get outcome() {
    return dead(this.message);
  }
}

/**
 * An emit failed. kind 'rejected': the host refused the record (an empty
 * topic, a per-call limit): retry. kind 'encode': the payload could not be
 * encoded as JSON: dead.
 */
export class EmitError extends WactorError {
  /** @param {'rejected' | 'encode'} kind @param {string} detail */
  constructor(kind, detail) {
    super(kind === 'encode' ? `emit value is not encodable as JSON: ${detail}` : `emit rejected: ${detail}`);
    this.name = 'EmitError';
    this.kind = kind;
  }
  get outcome() {
    return this.kind === 'encode' ? dead(this.message) : retry(this.message);
  }
}

/**
 * A state operation failed. kind 'rejected': the host refused a write (a
 * key over 4096 bytes, a per-call limit); the message names the limit:
 * retry. 'decode': a stored value is not JSON (getJson): retry. 'encode':
 * a value cannot be encoded as JSON (setJson): dead.
 */
export class StateError extends WactorError {
  /** @param {'rejected' | 'decode' | 'encode'} kind @param {string} key @param {string} detail */
  constructor(kind, key, detail) {
    super(
      kind === 'rejected'
        ? `state write rejected: ${detail}`
        : `state ${key} does not ${kind === 'decode' ? 'decode' : 'encode'}: ${detail}`,
    );
    this.name = 'StateError';
    this.kind = kind;
    this.key = key;
  }
  get outcome() {
    return this.kind === 'encode' ? dead(this.message) : retry(this.message);
  }
}

/**
 * The reason of a request to `host` (host:port) that the allow-list refused.
 * @param {string} host
 * @returns {string}
 */
export function deniedReason(host) {
  return `HTTP request to ${host} denied: the host is not in the actor's allowed_hosts (actor.toml) or --allow-host (wactor invoke)`;
}

/**
 * No HTTP response arrived. kind: 'invalid-url', 'invalid-request',
 * 'denied' (the host is not on the actor's allow-list), 'timeout',
 * 'transport' (connection refused, reset...), or 'decode' (Response.json()
 * on a body that is not JSON). Outcome: retry. Status codes are not errors.
 * A denial from `http.request` names the host:port and the fix: "HTTP
 * request to 127.0.0.1:7781 denied: the host is not in the actor's
 * allowed_hosts (actor.toml) or --allow-host (wactor invoke)" (`host` is
 * set); without a host the message is "HTTP request denied by the host:
 * <detail>".
 */
export class HttpError extends WactorError {
  /**
   * @param {'invalid-url' | 'invalid-request' | 'denied' | 'timeout' | 'transport' | 'decode'} kind
   * @param {string} detail
   * @param {{ host?: string }} [options] host: the host:port a denied request was for
   */
  constructor(kind, detail, options = {}) {
    if (kind === 'denied' && options.host !== undefined) {
      super(deniedReason(options.host));
      this.name = 'HttpError';
      this.kind = kind;
      this.detail = detail;
      /** @type {string | undefined} */
      this.host = options.host;
      return;
    }
    const prefix = {
      'invalid-url': 'invalid URL',
      'invalid-request': 'invalid HTTP request',
      denied: 'HTTP request denied by the host',
      timeout: 'HTTP request timed out',
      transport: 'HTTP request failed',
      decode: 'HTTP response body is not JSON',
    }[kind] ?? 'HTTP request failed';
    super(`${prefix}: ${detail}`);
    this.name = 'HttpError';
    this.kind = kind;
    this.detail = detail;
    this.host = undefined;
  }
}
