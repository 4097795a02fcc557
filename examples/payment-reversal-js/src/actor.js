// payment-reversal-js: when a booking is cancelled, give the customer's
// money back by reversing the wallet reservation made for it. The
// JavaScript twin of examples/payment-reversal (Rust): same state key,
// same HTTP call, same outcomes and reasons.
//
// A cancellation event must cause exactly one reversal, although Kafka
// delivers at least once and the wallet service is sometimes slow or down:
// - an idempotency marker in state (`reversed:<booking_id>`): a redelivered
//   event finds it and does nothing. It is written in the call that
//   succeeds, and state writes are applied only on done, so the marker
//   exists exactly when the reversal was confirmed;
// - an `Idempotency-Key: <booking_id>` header, so that the wallet itself
//   ignores a repeat (a call that timed out after the wallet acted);
// - replies mapped onto outcomes: 2xx and 409 (already reversed) are
//   success, 429/5xx/timeouts retry (honouring Retry-After), other 4xx are
//   dead because asking again cannot help.
//
// Config:
// - wallet_url (required): base URL of the wallet, e.g. http://127.0.0.1:8080
// - completed_topic (default wallet.reversal.completed)
// - timeout_ms (default 5000): how long one wallet call may take

import { actor, config, dead, done, emit, http, log, retry, state, describe, HttpError, PayloadError } from '@wactor/sdk';

/** The event type this actor acts on; every other type is ignored. */
export const BOOKING_CANCELLED = 'booking.cancelled';
/** Default topic of the confirmation record. */
const DEFAULT_COMPLETED_TOPIC = 'wallet.reversal.completed';
/** Default timeout of one wallet call, in milliseconds. */
const DEFAULT_TIMEOUT_MS = 5000;
/** How much of an error body to quote in a dead-letter reason (characters). */
const MAX_QUOTED_BODY = 512;

/**
 * A field of a JSON object, checked like the Rust actor's serde types do
 * (a missing or mistyped field is a malformed payload: dead).
 * @param {any} doc
 * @param {string} name
 * @param {'string' | 'u64' | 'object'} type
 */
function field(doc, name, type) {
  const value = doc[name];
  if (value === undefined || value === null) throw new PayloadError(`missing field \`${name}\``);
  const ok =
    type === 'string' ? typeof value === 'string'
      : type === 'u64' ? Number.isSafeInteger(value) && value >= 0
        : typeof value === 'object' && !Array.isArray(value);
  if (!ok) throw new PayloadError(`invalid type for field \`${name}\`: expected ${type === 'u64' ? 'an unsigned integer' : `a ${type}`}`);
  return value;
}

/**
 * Parses a `booking.cancelled` event.
 * @param {any} doc
 * @returns {{ booking_id: string, customer_id: string, reservation_id: string, amount: { value: number, currency: string } }}
 * @throws {PayloadError} on a missing or mistyped field
 */
export function parseCancelled(doc) {
  // In declaration order, so the first missing field is the one named.
  const booking_id = field(doc, 'booking_id', 'string');
  const customer_id = field(doc, 'customer_id', 'string');
  const reservation_id = field(doc, 'reservation_id', 'string');
  const amount = field(doc, 'amount', 'object');
  return {
    booking_id,
    customer_id,
    reservation_id,
    amount: { value: field(amount, 'value', 'u64'), currency: field(amount, 'currency', 'string') },
  };
}

/**
 * What a wallet reply means for the event: undefined when the reservation
 * is reversed (now, or by an earlier call: 409), else the outcome.
 * @param {import('@wactor/sdk').Response} response
 * @returns {import('@wactor/sdk').Outcome | undefined}
 */
export function judge(response) {
  const status = response.status;
  if ((status >= 200 && status <= 299) || status === 409) return undefined;
  if (status === 429 || (status >= 500 && status <= 599)) {
    return retry(`wallet answered ${status}`, { delayMs: response.retryAfterMs() });
  }
  return dead(`wallet refused the reversal with ${status}: ${quote(response.text())}`);
}

/** The start of `text` (at most MAX_QUOTED_BODY characters). @param {string} text */
function quote(text) {
  const chars = Array.from(text);
  return chars.length > MAX_QUOTED_BODY ? `${chars.slice(0, MAX_QUOTED_BODY).join('')}...` : text;
}

/**
 * Percent-encodes everything but RFC 3986 unreserved characters (and dots
 * too, so that an id of `..` stays a name): an id can never change the path.
 * @param {string} segment
 */
export function encodePathSegment(segment) {
  let out = '';
  for (const byte of new TextEncoder().encode(segment)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The wallet call's timeout from config `timeout_ms`. */
function timeoutMs() {
  const text = config.get('timeout_ms');
  if (text === undefined) return DEFAULT_TIMEOUT_MS;
  if (!/^\d+$/.test(text.trim())) throw dead(`config timeout_ms is not a number: ${JSON.stringify(text)}`);
  return Number(text.trim());
}

export const handle = actor((event) => {
  // Not JSON, or no `type`: nothing could ever make sense of it (dead).
  const doc = event.json();
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new PayloadError('invalid type: expected an object');
  }
  const kind = field(doc, 'type', 'string');
  if (kind !== BOOKING_CANCELLED) {
    log.debug(`ignoring a ${kind} event`);
    return done();
  }
  const cancelled = parseCancelled(doc);
  if (cancelled.booking_id === '' || cancelled.reservation_id === '') {
    return dead('booking_id and reservation_id must not be empty');
  }

  const markerKey = `reversed:${cancelled.booking_id}`;
  if (state.has(markerKey)) {
    log.debug(`booking ${cancelled.booking_id} already reversed`);
    return done();
  }

  const walletUrl = config.require('wallet_url'); // missing: dead
  const url = `${walletUrl.replace(/\/+$/, '')}/reservations/${encodePathSegment(cancelled.reservation_id)}/reverse`;
  let response;
  try {
    response = http.post(url, {
      headers: { 'Idempotency-Key': cancelled.booking_id },
      body: { booking_id: cancelled.booking_id, customer_id: cancelled.customer_id, amount: cancelled.amount },
      timeoutMs: timeoutMs(),
    });
  } catch (err) {
    if (err instanceof HttpError) return retry(`wallet unreachable: ${err.message}`);
    throw err;
  }

  const failed = judge(response);
  if (failed !== undefined) {
    log.warn(`reversal of booking ${cancelled.booking_id} not done: ${describe(failed)}`);
    return failed;
  }

  try {
    state.setJson(markerKey, { reservation_id: cancelled.reservation_id, wallet_status: response.status });
  } catch (err) {
    return retry(`cannot record the marker: ${err.message}`);
  }
  emit.sendJson(config.getOr('completed_topic', DEFAULT_COMPLETED_TOPIC), {
    booking_id: cancelled.booking_id,
    reservation_id: cancelled.reservation_id,
    amount: cancelled.amount,
  });
  log.info(
    `reversed reservation ${cancelled.reservation_id} of booking ${cancelled.booking_id} (${cancelled.amount.value} ${cancelled.amount.currency})`,
  );
  return done();
});
