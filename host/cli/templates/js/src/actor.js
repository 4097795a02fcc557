// {{name}}: a wactor actor in JavaScript.
//
// For each event it parses the JSON payload ({"id": "...", ...}), skips an
// id it has handled before (an idempotency marker in state), and publishes
// the document, stamped with where it came from, to another topic.
//
// Config:
// - out_topic: where to publish; default `<source topic>.out`.

import { actor, config, done, emit, log, state, PayloadError } from '@wactor/sdk';

export const handle = actor((event) => {
  const doc = event.json(); // not JSON: dead (retrying cannot fix it)
  if (typeof doc?.id !== 'string' || doc.id === '') {
    throw new PayloadError('missing field `id`'); // dead, with this reason
  }

  // Kafka delivers at least once: a redelivered event finds its marker.
  const marker = `seen:${doc.id}`;
  if (state.has(marker)) {
    log.debug(`${doc.id} already handled`);
    return done();
  }

  const topic = config.getOr('out_topic', `${event.topic}.out`);
  emit.send({
    topic,
    payload: { ...doc, source: { topic: event.topic, partition: event.partition, offset: event.offset } },
  }); // a refused record: retry
  state.set(marker, '1'); // a refused write: retry
  log.info(`handled ${doc.id} -> ${topic}`);
  // Emits and state writes are applied only when the call is done.
  return done();
});
