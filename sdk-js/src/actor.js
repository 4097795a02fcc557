// actor.js: `actor(fn)`, which turns the user's handler into the
// component's `handle` export: converts the WIT event in, the outcome out,
// and maps exceptions onto outcomes (errors.js has the table), so that a
// handler never traps because of an exception.

import { Event } from './event.js';
import { done, retry, isOutcome, toWit } from './outcome.js';
import { WactorError } from './errors.js';
import { format, log } from './log.js';
import { oneLine } from './bytes.js';

/**
 * The user's handler. Return an outcome (done(), retry(...), dead(...)),
 * or nothing (undefined), which means done. Throw an SDK error (or an
 * outcome: `throw dead('...')`) to end the call early with its outcome;
 * any other exception makes the call retry.
 * @callback Handler
 * @param {Event} event
 * @returns {import('./outcome.js').Outcome | void | Promise<import('./outcome.js').Outcome | void>}
 */

/**
 * The outcome for a value that escaped the handler.
 * @param {unknown} err
 * @returns {import('./outcome.js').Outcome}
 */
export function outcomeOfError(err) {
  if (isOutcome(err)) return err;
  if (err instanceof WactorError) return err.outcome;
  const name = err instanceof Error ? err.name || 'Error' : typeof err;
  const message = err instanceof Error ? err.message : String(err);
  try {
    log.error(`unhandled exception in the handler: ${format([err])}`);
  } catch {
    // logging must not turn a retry into a trap
  }
  return retry(`unhandled ${name}: ${oneLine(message)}`);
}

/**
 * The outcome for what the handler returned.
 * @param {unknown} value
 * @returns {import('./outcome.js').Outcome}
 */
export function outcomeOfResult(value) {
  if (value === undefined) return done();
  if (isOutcome(value)) return value;
  return outcomeOfError(
    new TypeError(`the handler returned ${oneLine(format([value]), 100)}, not an outcome (done(), retry(...), dead(...))`),
  );
}

/**
 * Wraps a handler as the component's `handle` export:
 *
 *     import { actor, done } from '@wactor/sdk';
 *     export const handle = actor((event) => { ...; return done(); });
 *
 * The handler runs synchronously: the SDK's HTTP client blocks, so no
 * `await` is needed. An async handler (one returning a Promise) is
 * supported too; the host waits for it within the call's deadline.
 * @param {Handler} handler
 * @returns {(event: any) => any} the `handle` export: WIT event in, WIT outcome out
 */
export function actor(handler) {
  if (typeof handler !== 'function') throw new TypeError('actor(handler): handler must be a function');
  return function handle(witEvent) {
    let result;
    try {
      result = handler(Event.fromWit(witEvent));
    } catch (err) {
      return toWit(outcomeOfError(err));
    }
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      return Promise.resolve(result).then(
        (value) => toWit(outcomeOfResult(value)),
        (err) => toWit(outcomeOfError(err)),
      );
    }
    return toWit(outcomeOfResult(result));
  };
}
