// log.js: log lines into the host's tracing (the wactor:actor/logging
// import), with the actor, version and event attached by the host.

import { hostLog } from './host.js';

/**
 * One argument as text; never throws (a value whose every reading throws,
 * such as a hostile Proxy, is `[unprintable <type>]`).
 * @param {unknown} arg
 * @returns {string}
 */
function formatOne(arg) {
  try {
    if (typeof arg === 'string') return arg;
    if (arg instanceof Error) return arg.stack ? `${arg.name}: ${arg.message}\n${arg.stack}` : `${arg.name}: ${arg.message}`;
    if (typeof arg === 'bigint') return arg.toString();
    if (typeof arg === 'symbol') return arg.toString();
    if (arg === undefined || typeof arg === 'function') return String(arg);
    if (arg instanceof Uint8Array) return `Uint8Array(${arg.length})`;
    try {
      const json = JSON.stringify(arg, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
      if (json !== undefined) return json;
    } catch {
      // not JSON: its string form below
    }
    return String(arg);
  } catch {
    let type = 'value';
    try {
      type = typeof arg;
    } catch {
      // keep 'value'
    }
    return `[unprintable ${type}]`;
  }
}

/**
 * Formats log arguments like console.log: strings as they are, Errors by
 * their stack (or message), BigInts as digits, other values as JSON.
 * Never throws.
 * @param {unknown[]} args
 * @returns {string}
 */
export function format(args) {
  return args.map(formatOne).join(' ');
}

/** @param {'trace' | 'debug' | 'info' | 'warn' | 'error'} level */
function logger(level) {
  /** @param {...unknown} args joined with spaces, like console.log */
  return (...args) => hostLog(level, format(args));
}

/**
 * Log lines. Per-event facts (topic, partition, offset, attempt) are on the
 * host's span already; log what only the actor knows. The host keeps at
 * most 1000 lines per call, each cut at 4 KiB.
 */
export const log = Object.freeze({
  trace: logger('trace'),
  debug: logger('debug'),
  info: logger('info'),
  warn: logger('warn'),
  error: logger('error'),
});
