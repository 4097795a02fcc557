// fake/world.js: the state of the fake host during one `run()` call: the
// config, the state store with the call's pending writes, queued emits, log
// lines, scripted HTTP responses and the requests made. The fake
// interfaces (logging.js, emit.js, state.js, config.js, wasi.js) read and
// write `current`; testing/index.js sets it up and collects it.

/**
 * @typedef {object} Call
 * @property {Map<string, string>} config
 * @property {Map<string, Uint8Array>} store the state before the call
 * @property {Map<string, Uint8Array | null>} pending writes of the call (null: a delete)
 * @property {Array<object>} emits WIT outgoing-records
 * @property {Array<{ level: string, message: string }>} logs
 * @property {(request: object) => object} http answers one request
 * @property {Array<object>} requests
 * @property {{ emit?: string, state?: string }} reject host refusals to simulate
 */

/** @type {Call | undefined} */
export let current;

/** @param {Call | undefined} call */
export function setCurrent(call) {
  current = call;
}

/** The running call; throws when a host import is used outside run(). */
export function call() {
  if (current === undefined) {
    throw new Error('@wactor/sdk testing: a host import was used outside run() (call the handler through run())');
  }
  return current;
}

/** An error like the one componentize-js throws for a `result<_, E>` import. */
export class ComponentError extends Error {
  constructor(payload) {
    super(typeof payload === 'string' ? payload : JSON.stringify(payload));
    this.name = 'ComponentError';
    this.payload = payload;
  }
}
