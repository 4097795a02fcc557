// pending.js: what an async handler can still be waiting for, so that a
// Promise that can never settle ends the call with a retry instead of a trap.
//
// componentize-js (StarlingMonkey) drives the event loop until the
// handler's Promise settles or no task is left (a timer, a fetch, a body
// read); with none left and the Promise still pending it aborts the
// component: `unreachable`, a trap, about 5 ms into the call. The SDK
// cannot see the engine's task list, so it keeps its own count of what a
// handler usually waits on: it wraps the global setTimeout/setInterval
// (and their clear functions), counting the timers still due, and fetch,
// whose use makes the count unreliable (the body reads that follow are
// engine tasks the SDK does not see). When the handler's Promise is
// pending, no counted timer is due and fetch was not used since the call
// began, nothing can ever settle it: the SDK ends the call with
// retry "the handler's Promise never settled ...". In every other case
// (fetch used, a timer captured before this module wrapped it) it leaves
// the call to the engine, as before: a trap, retried by the host.

const g = globalThis;
const realSetTimeout = typeof g.setTimeout === 'function' ? g.setTimeout.bind(g) : undefined;
const realClearTimeout = typeof g.clearTimeout === 'function' ? g.clearTimeout.bind(g) : undefined;
const realSetInterval = typeof g.setInterval === 'function' ? g.setInterval.bind(g) : undefined;
const realClearInterval = typeof g.clearInterval === 'function' ? g.clearInterval.bind(g) : undefined;
const realFetch = typeof g.fetch === 'function' ? g.fetch : undefined;

/** Timers (their ids) still due: a timeout until it fires, an interval until cleared. */
const due = new Set();
/** Whether fetch() was called since the current call began (begin()). */
let fetched = false;
/** Called (as a fresh task) whenever a counted timer ends. */
let onTimerEnd;

function timerEnded() {
  const notify = onTimerEnd;
  if (notify !== undefined && realSetTimeout) realSetTimeout(notify, 0);
}

if (realSetTimeout && realClearTimeout) {
  g.setTimeout = function setTimeout(callback, delay, ...args) {
    let id;
    const run = () => {
      due.delete(id);
      try {
        if (typeof callback === 'function') callback(...args);
      } finally {
        timerEnded();
      }
    };
    id = realSetTimeout(run, delay);
    due.add(id);
    return id;
  };
  g.clearTimeout = function clearTimeout(id) {
    realClearTimeout(id);
    if (due.delete(id)) timerEnded();
  };
}
if (realSetInterval && realClearInterval) {
  g.setInterval = function setInterval(callback, delay, ...args) {
    const id = realSetInterval(callback, delay, ...args);
    due.add(id);
    return id;
  };
  g.clearInterval = function clearInterval(id) {
    realClearInterval(id);
    if (due.delete(id)) timerEnded();
  };
}
if (realFetch) {
  g.fetch = function fetch(...args) {
    fetched = true;
    return realFetch.apply(g, args);
  };
}

/** The reason of a call whose Promise can never settle. */
export const NEVER_SETTLED =
  "the handler's Promise never settled: it was still pending with nothing left to wait for (no timer due, no fetch), so the call could never end";

/** Marks the start of a call (before the handler runs): fetch() not used yet. */
export function begin() {
  fetched = false;
}

/**
 * Watches a pending handler Promise. `giveUp()` is called (at most once)
 * when it is certain the Promise can no longer settle; `stop()` ends the
 * watch (call it when the Promise settles).
 * @param {() => void} giveUp
 * @returns {() => void} stop
 */
export function watch(giveUp) {
  if (!realSetTimeout) return () => {};
  let active = true;
  const check = () => {
    if (!active) return;
    if (fetched) {
      // engine tasks the SDK cannot count: leave the call to the engine
      active = false;
      onTimerEnd = undefined;
      return;
    }
    if (due.size > 0) return; // checked again when a timer ends
    active = false;
    onTimerEnd = undefined;
    giveUp();
  };
  onTimerEnd = check;
  realSetTimeout(check, 0);
  return () => {
    active = false;
    if (onTimerEnd === check) onTimerEnd = undefined;
  };
}
