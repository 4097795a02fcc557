// {{name}}: a wactor actor in JavaScript.
//
// It reads JSON events like {"id": "tx-1001", "user": "user-7",
// "amount_cents": 250000} from its topics, flags those at or above
// `threshold_cents`, and emits the verdict to `out_topic`. Each event id is
// handled once: a marker in the actor's state makes a redelivery a no-op.
//
// What it shows: SDK errors picking the outcome (a malformed payload is
// dead, a refused emit or state write is retried), effects that apply only
// on done, config and state. Replace `decide` with your own logic; keep it a
// plain function so that the unit tests can test it without a host.
//
// Config:
// - out_topic (default `<source topic>.out`): where verdicts go;
// - threshold_cents (default 100000): the smallest flagged amount.

import { actor, config, dead, done, emit, log, state, PayloadError } from '@wactor/sdk';

/**
 * The actor's logic, free of I/O: the verdict to emit for a payment.
 * @param {{id: string, user: string, amount_cents: number}} payment
 * @param {number} thresholdCents
 * @returns {{id: string, flagged: boolean, amount_cents: number}}
 */
export function decide(payment, thresholdCents) {
  return {
    id: payment.id,
    flagged: payment.amount_cents >= thresholdCents,
    amount_cents: payment.amount_cents,
  };
}

/** Reads a payment from the event; a PayloadError (dead) if it is not one. */
function payment(event) {
  const doc = event.json(); // not JSON: dead (retrying cannot fix it)
  for (const [field, type] of [['id', 'string'], ['user', 'string'], ['amount_cents', 'number']]) {
    if (typeof doc?.[field] !== type) {
      throw new PayloadError(`missing field \`${field}\``);
    }
  }
  return doc;
}

export const handle = actor((event) => {
  const p = payment(event);
  // Kafka delivers at least once: a redelivered event finds its marker.
  const marker = `done:${p.id}`;
  if (state.has(marker)) {
    log.info(`${p.id} already handled`);
    return done();
  }
  const thresholdCents = Number(config.getOr('threshold_cents', '100000'));
  if (!Number.isFinite(thresholdCents)) {
    return dead(`config threshold_cents is not a number`);
  }
  const verdict = decide(p, thresholdCents);
  const topic = config.getOr('out_topic', `${event.topic}.out`);
  // A refused record or state write throws, and the call is retried; both
  // are applied only if the call ends done.
  emit.send({ topic, key: p.user, payload: verdict });
  state.set(marker, '1');
  return done();
});
