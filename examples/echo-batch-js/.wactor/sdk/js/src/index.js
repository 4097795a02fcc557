// index.js: the public API of @wactor/sdk, the JavaScript SDK for wactor
// actors (WebAssembly components of the WIT world `actor`, built with
// componentize-js). Mirrors the Rust SDK (wactor-sdk):
//
//   import { actor, done, retry, dead, emit, state, config, log, http } from '@wactor/sdk';
//   export const handle = actor((event) => {
//     const order = event.json();                 // malformed payload => dead
//     emit.send({ topic: config.getOr('out_topic', 'orders.out'), payload: order });
//     return done();
//   });

export { actor } from './actor.js';
export { Event } from './event.js';
export { done, retry, dead, isOutcome, describe } from './outcome.js';
export {
  WactorError,
  PayloadError,
  MissingConfig,
  EmitError,
  StateError,
  HttpError,
} from './errors.js';
export { emit } from './emit.js';
export { state } from './state.js';
export { config } from './config.js';
export { log } from './log.js';
export { http, Response, DEFAULT_TIMEOUT_MS } from './http.js';
