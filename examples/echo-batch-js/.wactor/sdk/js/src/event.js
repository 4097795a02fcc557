// event.js: `Event`, the view of one Kafka record an actor receives, built
// from the WIT `event` record. Mirrors the Rust SDK's `Event`.

import { decodeOrUndefined, decodeStrict, toNumber } from './bytes.js';
import { PayloadError } from './errors.js';

const EMPTY = new Uint8Array(0);

/**
 * One Kafka header. `value` is undefined for a null value (Kafka tells a
 * null header value from an empty one).
 * @typedef {{ name: string, value: Uint8Array | undefined }} Header
 */

/** One Kafka record, as delivered to the actor. */
export class Event {
  /**
   * @param {object} fields
   * @param {string} fields.topic
   * @param {number} [fields.partition]
   * @param {number | bigint} [fields.offset]
   * @param {number | bigint} [fields.timestampMs]
   * @param {Uint8Array} [fields.key]
   * @param {Uint8Array} [fields.payload] undefined: a tombstone
   * @param {Header[]} [fields.headers]
   * @param {number} [fields.attempt]
   */
  constructor(fields) {
    /** The topic the record was read from. @type {string} */
    this.topic = fields.topic;
    /** The partition within the topic. @type {number} */
    this.partition = fields.partition ?? 0;
    /**
     * The record's offset within its partition. A number (the WIT type is
     * s64; offsets are exact below 2^53, i.e. always in practice), so it
     * can be used in arithmetic and JSON.stringify.
     * @type {number}
     */
    this.offset = toNumber(fields.offset) ?? 0;
    /**
     * The record's timestamp in milliseconds since the Unix epoch (a
     * number), or undefined when the broker reported none.
     * @type {number | undefined}
     */
    this.timestampMs = toNumber(fields.timestampMs);
    /** The record's key, or undefined for none. @type {Uint8Array | undefined} */
    this.key = fields.key;
    /**
     * The record's value: undefined for a null value (a tombstone), an
     * empty Uint8Array for an empty value (not a tombstone).
     * @type {Uint8Array | undefined}
     */
    this.payload = fields.payload;
    /** The headers in the producer's order. @type {Header[]} */
    this.headers = fields.headers ?? [];
    /** 1 for the first delivery attempt, 2 for the first retry... @type {number} */
    this.attempt = fields.attempt ?? 1;
  }

  /**
   * Builds an Event from the WIT `event` record (as componentize-js passes
   * it to the `handle` export).
   * @param {any} wit
   * @returns {Event}
   */
  static fromWit(wit) {
    return new Event({
      topic: wit.topic,
      partition: wit.partition,
      offset: wit.offset,
      timestampMs: wit.timestampMs,
      key: wit.key,
      payload: wit.payload,
      headers: (wit.headers ?? []).map((h) => ({ name: h.name, value: h.value })),
      attempt: wit.attempt,
    });
  }

  /** Whether the value is null (a tombstone). @returns {boolean} */
  get isTombstone() {
    return this.payload === undefined;
  }

  /** The payload's bytes: empty for a tombstone. @returns {Uint8Array} */
  bytes() {
    return this.payload ?? EMPTY;
  }

  /**
   * The payload as UTF-8 text ("" for a tombstone).
   * @returns {string}
   * @throws {PayloadError} kind 'utf8' (outcome dead) when it is not UTF-8
   */
  text() {
    try {
      return decodeStrict(this.bytes());
    } catch (err) {
      throw new PayloadError(err instanceof Error ? err.message : String(err), { kind: 'utf8' });
    }
  }

  /**
   * The payload parsed as JSON. A tombstone or an empty value is not JSON.
   * @returns {any}
   * @throws {PayloadError} "malformed JSON payload: ..." (outcome dead)
   */
  json() {
    let text;
    try {
      text = decodeStrict(this.bytes());
    } catch (err) {
      throw new PayloadError(`not UTF-8: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new PayloadError(err instanceof Error ? err.message : String(err));
    }
  }

  /** The key as UTF-8 text; undefined when there is no key or it is not UTF-8. @returns {string | undefined} */
  keyText() {
    return decodeOrUndefined(this.key);
  }

  /**
   * The value of the first header called `name` (case-sensitive, as Kafka
   * header names are); undefined when absent or null.
   * @param {string} name
   * @returns {Uint8Array | undefined}
   */
  header(name) {
    return this.headers.find((h) => h.name === name)?.value;
  }

  /** `header(name)` as UTF-8 text (undefined if absent, null or not UTF-8). @param {string} name @returns {string | undefined} */
  headerText(name) {
    return decodeOrUndefined(this.header(name));
  }

  /** Whether a header called `name` is present (also with a null value). @param {string} name @returns {boolean} */
  hasHeader(name) {
    return this.headers.some((h) => h.name === name);
  }
}
