// echo-batch-js: echo-js taken in batches. `batch = true` in actor.toml
// makes `wactor build` build it against the world `actor-batch` and add the
// SDK's `handleBatch` export next to `handle`, so the host may hand it up
// to 64 events in one call. The handler below still sees one event at a
// time, and each event's emit is published only if *that* event ends done.
//
// An event whose echo topic the host refuses (one starting with `_`, which
// names Kafka's internal topics) ends retry alone; the events beside it in
// the batch keep their emits.

import { actor, config, done, emit } from '@wactor/sdk';

export const handle = actor((event) => {
  const topic = config.getOr('out_topic', `${event.topic}.echo`);
  emit.send({ topic, key: event.key, payload: event.payload, headers: event.headers });
  return done();
});
