// wasi.js: the only SDK module that imports WASI interfaces: the parts of
// wasi:http@0.2.12, wasi:io@0.2.12 and wasi:clocks@0.2.12 that the HTTP
// client (http.js) uses. The world `actor` imports
// wasi:http/outgoing-handler; the others come with it.
//
// Under Node (unit tests) testing/register.mjs maps these specifiers to
// testing/fake/wasi.js, which answers with the responses a test scripted.

export { handle as wasiHttpHandle } from 'wasi:http/outgoing-handler@0.2.12';
export {
  Fields,
  OutgoingRequest,
  OutgoingBody,
  RequestOptions,
  IncomingBody,
  httpErrorCode,
} from 'wasi:http/types@0.2.12';
export { poll } from 'wasi:io/poll@0.2.12';
export { now, subscribeInstant } from 'wasi:clocks/monotonic-clock@0.2.12';
