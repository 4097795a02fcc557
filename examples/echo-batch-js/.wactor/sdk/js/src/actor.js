// actor.js: `actor(fn)`, which turns the user's handler into the
// component's `handle` export: converts the WIT event in, the outcome out,
// and maps exceptions onto outcomes (errors.js has the table), so that a
// handler never traps because of an exception.
//
// The wrapper is total: whatever the handler throws, returns or rejects
// with (a Proxy whose traps throw, an object whose toString throws, a
// Symbol, null, undefined, a BigInt...), reading it cannot throw out of the
// export, which would abort the component (a trap). What cannot be read
// gives retry "unhandled <type> (its message could not be read)".

import { Event } from './event.js';
import { dead, done, retry, isOutcome, toWit } from './outcome.js';
import { WactorError } from './errors.js';
import { format, log } from './log.js';
import { oneLine } from './bytes.js';
import { NEVER_SETTLED, begin, watch } from './pending.js';

/** The reason when nothing at all can be read from what was thrown. */
export const UNREADABLE = 'unhandled exception (its message could not be read)';

/**
 * The user's handler. Return an outcome (done(), retry(...), dead(...)),
 * or nothing (undefined), which means done. Throw an SDK error (or an
 * outcome: `throw dead('...')`) to end the call early with its outcome;
 * any other exception makes the call retry.
 * @callback Handler
 * @param {Event} event
 * @returns {import('./outcome.js').Outcome | void | Promise<import('./outcome.js').Outcome | void>}
 */

/** `fn()`, or `fallback` when it throws. */
function attempt(fn, fallback) {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/**
 * A genuine outcome with the same contents, read defensively (a Proxy can
 * pass isOutcome), or undefined when it cannot be read.
 * @param {unknown} value
 * @returns {import('./outcome.js').Outcome | undefined}
 */
function readOutcome(value) {
  return attempt(() => {
    if (!isOutcome(value)) return undefined;
    const type = value.type;
    if (type === 'done') return done();
    if (type === 'dead') return dead(String(value.reason));
    if (type === 'retry') {
      const delayMs = value.delayMs;
      return retry(String(value.reason), delayMs === undefined ? {} : { delayMs });
    }
    return undefined;
  }, undefined);
}

/**
 * The outcome for a value that escaped the handler. Never throws.
 * @param {unknown} err
 * @returns {import('./outcome.js').Outcome}
 */
export function outcomeOfError(err) {
  const outcome = readOutcome(err);
  if (outcome !== undefined) return outcome;
  const isSdkError = attempt(() => err instanceof WactorError, false);
  if (isSdkError) {
    const own = readOutcome(attempt(() => err.outcome, undefined));
    if (own !== undefined) return own;
  }
  const isError = attempt(() => err instanceof Error, false);
  let name = attempt(() => typeof err, 'exception');
  if (isError) name = attempt(() => String(err.name) || 'Error', 'Error');
  const message = attempt(() => {
    if (isError) return String(err.message);
    if (typeof err === 'symbol') return err.toString();
    return String(err);
  }, undefined);
  try {
    log.error(`unhandled exception in the handler: ${format([err])}`);
  } catch {
    // logging must not turn a retry into a trap
  }
  if (message === undefined) return retry(`unhandled ${oneLine(name, 100)} (its message could not be read)`);
  return attempt(() => retry(`unhandled ${oneLine(name, 100)}: ${oneLine(message)}`), retry(UNREADABLE));
}

/**
 * The outcome for what the handler returned. Never throws.
 * @param {unknown} value
 * @returns {import('./outcome.js').Outcome}
 */
export function outcomeOfResult(value) {
  if (value === undefined) return done();
  const outcome = readOutcome(value);
  if (outcome !== undefined) return outcome;
  const shown = attempt(() => oneLine(format([value]), 100), `a ${attempt(() => typeof value, 'value')}`);
  return outcomeOfError(new TypeError(`the handler returned ${shown}, not an outcome (done(), retry(...), dead(...))`));
}

/** The WIT outcome of `compute()`, never throwing. */
function toWitTotal(compute) {
  try {
    return toWit(compute());
  } catch {
    return toWit(retry(UNREADABLE));
  }
}

/**
 * Wraps a handler as the component's `handle` export:
 *
 *     import { actor, done } from '@wactor/sdk';
 *     export const handle = actor((event) => { ...; return done(); });
 *
 * The handler runs synchronously: the SDK's HTTP client blocks, so no
 * `await` is needed. An async handler (one returning a Promise) works too:
 * componentize-js runs the engine's event loop until the Promise settles
 * (timers and fetch() make progress there), within the call's deadline.
 * A Promise that can never settle (pending with no timer due and no fetch
 * used) ends the call with retry "the handler's Promise never settled..."
 * (pending.js); one the SDK cannot judge (fetch() used) is left to the
 * engine, which aborts the component when its event loop runs out of
 * tasks: a trap, which the host retries.
 * @param {Handler} handler
 * @returns {(event: any) => any} the `handle` export: WIT event in, WIT outcome out
 */
export function actor(handler) {
  if (typeof handler !== 'function') throw new TypeError('actor(handler): handler must be a function');
  return function handle(witEvent) {
    begin();
    let result;
    try {
      result = handler(Event.fromWit(witEvent));
    } catch (err) {
      return toWitTotal(() => outcomeOfError(err));
    }
    let thenable;
    try {
      thenable = result !== null && (typeof result === 'object' || typeof result === 'function') && typeof result.then === 'function';
    } catch (err) {
      return toWitTotal(() => outcomeOfError(err));
    }
    if (!thenable) return toWitTotal(() => outcomeOfResult(result));
    return new Promise((resolve) => {
      let settled = false;
      const settle = (compute) => {
        if (settled) return;
        settled = true;
        stop();
        resolve(toWitTotal(compute));
      };
      const stop = watch(() => settle(() => retry(NEVER_SETTLED)));
      // `new Promise(r => r(result))` adopts the thenable without reading
      // anything that could throw synchronously (a throwing `then` rejects).
      new Promise((adopt) => adopt(result)).then(
        (value) => settle(() => outcomeOfResult(value)),
        (err) => settle(() => outcomeOfError(err)),
      );
    });
  };
}
