// echo-js: re-publishes each event (payload, key and headers) to another
// topic. A tombstone is echoed as a tombstone, a null header value as a
// null one. The JavaScript twin of examples/echo (Rust).
//
// Config:
// - out_topic: where to publish; default `<source topic>.echo`.

import { actor, config, done, emit, log } from '@wactor/sdk';

export const handle = actor((event) => {
  const topic = config.getOr('out_topic', `${event.topic}.echo`);
  log.debug(`echoing ${event.bytes().length} bytes from ${event.topic}/${event.partition}@${event.offset} to ${topic}`);
  // key undefined: the source key; payload undefined: a tombstone. The host
  // refuses a record only for a limit or an empty topic: an EmitError, which
  // makes the call retry.
  emit.send({ topic, key: event.key, payload: event.payload, headers: event.headers });
  return done();
});
