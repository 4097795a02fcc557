// fake/state.js: wactor:actor/state@0.2.0 for unit tests: reads see the
// call's pending writes; a key over 4096 bytes is refused as by the host,
// and `reject.state` refuses every write.
import { call, ComponentError } from './world.js';

const MAX_KEY = 4096;

function check(key) {
  const c = call();
  if (c.reject.state !== undefined) throw new ComponentError(c.reject.state);
  const size = new TextEncoder().encode(key).length;
  if (size > MAX_KEY) throw new ComponentError(`state: a key of ${size} bytes is over the limit of ${MAX_KEY}`);
  return c;
}

/** @param {string} key @returns {Uint8Array | undefined} */
export function get(key) {
  const c = call();
  if (c.pending.has(key)) return c.pending.get(key) ?? undefined;
  return c.store.get(key);
}

/** @param {string} key @param {Uint8Array} value */
export function set(key, value) {
  check(key).pending.set(key, new Uint8Array(value));
}

/** @param {string} key */
function del(key) {
  check(key).pending.set(key, null);
}
export { del as delete };
