// outcome.js: the outcomes an actor returns (done, retry, dead) and their
// conversion to the WIT `outcome` variant. Mirrors the Rust SDK's `Outcome`.

/** Marks the objects made by done/retry/dead, so a thrown one is recognised. */
const OUTCOME = Symbol.for('wactor.outcome');

/**
 * What became of one event.
 * - `done`: handled; the call's emits and state writes are applied.
 * - `retry`: failed in a way worth trying again; effects are dropped and the
 *   host retries after `delayMs` (or its backoff policy when undefined,
 *   capped by the policy's maximum delay).
 * - `dead`: can never succeed; effects are dropped and the event is parked
 *   in the dead-letter set with `reason`.
 * @typedef {{ type: 'done' }
 *   | { type: 'retry', reason: string, delayMs: number | undefined }
 *   | { type: 'dead', reason: string }} Outcome
 */

function brand(obj) {
  Object.defineProperty(obj, OUTCOME, { value: true });
  return Object.freeze(obj);
}

const DONE = brand({ type: 'done' });

/**
 * The event is handled: its emits and state writes are applied.
 * @returns {Outcome}
 */
export function done() {
  return DONE;
}

/**
 * Try the event again later. The call's emits and state writes are dropped.
 * @param {string} reason why; shown to operators (the host keeps 4 KiB).
 * @param {{ delayMs?: number }} [options] wait at least this many
 *   milliseconds (e.g. from a Retry-After); rounded up to a whole
 *   millisecond; omitted: the actor's retry policy decides.
 * @returns {Outcome}
 */
export function retry(reason, options = {}) {
  const { delayMs } = options;
  if (delayMs !== undefined && !(typeof delayMs === 'number' && delayMs >= 0)) {
    throw new TypeError(`retry: delayMs must be a non-negative number of milliseconds, not ${String(delayMs)}`);
  }
  return brand({
    type: 'retry',
    reason: String(reason),
    delayMs: delayMs === undefined ? undefined : Math.ceil(delayMs),
  });
}

/**
 * Give up on the event: it goes to the dead-letter set with `reason`.
 * The call's emits and state writes are dropped.
 * @param {string} reason
 * @returns {Outcome}
 */
export function dead(reason) {
  return brand({ type: 'dead', reason: String(reason) });
}

/**
 * Whether a value is an outcome made by done/retry/dead.
 * @param {unknown} value
 * @returns {value is Outcome}
 */
export function isOutcome(value) {
  return typeof value === 'object' && value !== null && value[OUTCOME] === true;
}

/**
 * One line describing an outcome, as `wactor invoke` prints it:
 * `done`, `retry: reason`, `retry after 30000 ms: reason`, `dead: reason`.
 * @param {Outcome} outcome
 * @returns {string}
 */
export function describe(outcome) {
  switch (outcome.type) {
    case 'done':
      return 'done';
    case 'retry':
      return outcome.delayMs === undefined
        ? `retry: ${outcome.reason}`
        : `retry after ${outcome.delayMs} ms: ${outcome.reason}`;
    default:
      return `dead: ${outcome.reason}`;
  }
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * The WIT `outcome` variant for an outcome (delays saturate at u64::MAX).
 * @param {Outcome} outcome
 * @returns {{ tag: 'done' } | { tag: 'retry', val: { reason: string, delayMs: bigint | undefined } } | { tag: 'dead', val: string }}
 */
export function toWit(outcome) {
  switch (outcome.type) {
    case 'done':
      return { tag: 'done' };
    case 'retry': {
      let delayMs;
      if (outcome.delayMs !== undefined) {
        delayMs = Number.isFinite(outcome.delayMs) ? BigInt(outcome.delayMs) : U64_MAX;
        if (delayMs > U64_MAX) delayMs = U64_MAX;
      }
      return { tag: 'retry', val: { reason: outcome.reason, delayMs } };
    }
    default:
      return { tag: 'dead', val: outcome.reason };
  }
}
