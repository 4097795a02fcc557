//! `payment-reversal`: when a booking is cancelled, give the customer's
//! money back by reversing the wallet reservation made for it.
//!
//! This is the GO-JEK case: a cancellation event must cause exactly one
//! reversal, even though Kafka delivers at least once and the wallet
//! service is sometimes slow or down. The actor gets there with:
//!
//! - an idempotency marker in state (`reversed:<booking_id>`): a redelivered
//!   event finds it and does nothing. It is written in the same call that
//!   succeeds, and state writes are applied only on `Done`, so the marker
//!   exists exactly when the reversal was confirmed;
//! - an `Idempotency-Key: <booking_id>` header, so that the wallet itself
//!   ignores a repeat (a call that timed out after the wallet acted, then
//!   retried);
//! - a precise mapping of replies onto outcomes: 2xx and 409 (already
//!   reversed) are success, 429/5xx/timeouts retry (honouring
//!   `Retry-After`), other 4xx are dead because asking again cannot help.
//!
//! Config:
//! - `wallet_url` (required): base URL of the wallet service, e.g.
//!   `http://127.0.0.1:8080`;
//! - `completed_topic` (default `wallet.reversal.completed`): where to
//!   publish the confirmation;
//! - `timeout_ms` (default 5000): how long one wallet call may take.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wactor_sdk::http::{Request, Response};
use wactor_sdk::{config, emit, state, Actor, Event, Handled, Outcome};

/// The event type this actor acts on; every other type is ignored.
const BOOKING_CANCELLED: &str = "booking.cancelled";
/// Default topic of the confirmation record.
const DEFAULT_COMPLETED_TOPIC: &str = "wallet.reversal.completed";
/// Default timeout of one wallet call, in milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// How much of an error body to quote in a dead-letter reason.
const MAX_QUOTED_BODY: usize = 512;

/// Just enough of any booking event to see its type.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
}

/// A `booking.cancelled` event.
#[derive(Deserialize)]
struct BookingCancelled {
    booking_id: String,
    customer_id: String,
    reservation_id: String,
    amount: Amount,
}

/// Money in minor units (IDR has none: 25000 is 25,000 rupiah).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Amount {
    value: u64,
    currency: String,
}

/// The body of the wallet's reverse call.
#[derive(Serialize)]
struct ReverseRequest<'a> {
    booking_id: &'a str,
    customer_id: &'a str,
    amount: &'a Amount,
}

/// The record published once the reversal is confirmed.
#[derive(Serialize)]
struct ReversalCompleted<'a> {
    booking_id: &'a str,
    reservation_id: &'a str,
    amount: &'a Amount,
}

/// What is kept under the idempotency marker.
#[derive(Serialize)]
struct Marker<'a> {
    reservation_id: &'a str,
    wallet_status: u16,
}

/// What a wallet reply means for the event.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The reservation is reversed (now, or by an earlier call).
    Reversed,
    /// Not this time: the event ends with this (retry or dead) outcome.
    Failed(Outcome),
}

/// The actor.
struct PaymentReversal;

impl Actor for PaymentReversal {
    fn handle(event: Event) -> Handled {
        // Not JSON, or no `type`: nothing could ever make sense of it.
        let envelope: Envelope = event.json()?;
        if envelope.kind != BOOKING_CANCELLED {
            wactor_sdk::debug!("ignoring a {} event", envelope.kind);
            return Ok(Outcome::Done);
        }
        let cancelled: BookingCancelled = event.json()?;
        if cancelled.booking_id.is_empty() || cancelled.reservation_id.is_empty() {
            return Err(Outcome::dead(
                "booking_id and reservation_id must not be empty",
            ));
        }

        let marker_key = format!("reversed:{}", cancelled.booking_id);
        if state::get(&marker_key).is_some() {
            wactor_sdk::debug!("booking {} already reversed", cancelled.booking_id);
            return Ok(Outcome::Done);
        }

        let wallet_url = config::require("wallet_url")?;
        let timeout = timeout()?;
        let url = format!(
            "{}/reservations/{}/reverse",
            wallet_url.trim_end_matches('/'),
            encode_path_segment(&cancelled.reservation_id)
        );
        let body = ReverseRequest {
            booking_id: &cancelled.booking_id,
            customer_id: &cancelled.customer_id,
            amount: &cancelled.amount,
        };
        let response = Request::post(url)
            .header("Idempotency-Key", cancelled.booking_id.as_str())
            .json(&body)
            .timeout(timeout)
            .send()
            .map_err(|err| Outcome::retry(format!("wallet unreachable: {err}")))?;

        if let Verdict::Failed(outcome) = judge(&response) {
            wactor_sdk::warn!(
                "reversal of booking {} not done: {outcome}",
                cancelled.booking_id
            );
            return Err(outcome);
        }

        let marker = Marker {
            reservation_id: &cancelled.reservation_id,
            wallet_status: response.status,
        };
        state::set_json(&marker_key, &marker)
            .map_err(|err| Outcome::retry(format!("cannot record the marker: {err}")))?;
        let completed = ReversalCompleted {
            booking_id: &cancelled.booking_id,
            reservation_id: &cancelled.reservation_id,
            amount: &cancelled.amount,
        };
        let topic = config::get_or("completed_topic", DEFAULT_COMPLETED_TOPIC);
        emit::send_json(&topic, &completed)?;
        wactor_sdk::info!(
            "reversed reservation {} of booking {} ({} {})",
            cancelled.reservation_id,
            cancelled.booking_id,
            cancelled.amount.value,
            cancelled.amount.currency
        );
        Ok(Outcome::Done)
    }
}

wactor_sdk::export_actor!(PaymentReversal);

/// The wallet call's timeout from config `timeout_ms`.
fn timeout() -> Result<Duration, Outcome> {
    match config::get("timeout_ms") {
        None => Ok(Duration::from_millis(DEFAULT_TIMEOUT_MS)),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| Outcome::dead(format!("config timeout_ms is not a number: {text:?}"))),
    }
}

/// Maps a wallet reply onto what it means for the event.
fn judge(response: &Response) -> Verdict {
    let status = response.status;
    match status {
        200..=299 => Verdict::Reversed,
        // The wallet has reversed this reservation already (an earlier
        // attempt whose reply we never saw): the goal is reached.
        409 => Verdict::Reversed,
        429 | 500..=599 => {
            let reason = format!("wallet answered {status}");
            Verdict::Failed(match response.retry_after() {
                Some(after) => Outcome::retry_after(reason, after),
                None => Outcome::retry(reason),
            })
        }
        _ => Verdict::Failed(Outcome::dead(format!(
            "wallet refused the reversal with {status}: {}",
            quote(&response.text())
        ))),
    }
}

/// The start of `text`, cut at a character boundary.
fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and dots
/// too, so that an id of `..` stays a name), so that an id can never change
/// the path it is put in.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn success_and_conflict_both_mean_reversed() {
        assert_eq!(judge(&reply(200, &[], "{}")), Verdict::Reversed);
        assert_eq!(judge(&reply(204, &[], "")), Verdict::Reversed);
        assert_eq!(
            judge(&reply(409, &[], "already reversed")),
            Verdict::Reversed
        );
    }

    #[test]
    fn overload_retries_after_the_wallets_retry_after() {
        assert_eq!(
            judge(&reply(503, &[("retry-after", "30")], "")),
            Verdict::Failed(Outcome::retry_after(
                "wallet answered 503",
                Duration::from_secs(30)
            ))
        );
        assert_eq!(
            judge(&reply(429, &[], "")),
            Verdict::Failed(Outcome::retry("wallet answered 429"))
        );
    }

    #[test]
    fn other_client_errors_are_dead_with_status_and_body() {
        assert_eq!(
            judge(&reply(404, &[], "no such reservation")),
            Verdict::Failed(Outcome::dead(
                "wallet refused the reversal with 404: no such reservation"
            ))
        );
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert_eq!(encode_path_segment("R-555"), "R-555");
        assert_eq!(encode_path_segment("../admin?x"), "%2E%2E%2Fadmin%3Fx");
    }

    #[test]
    fn booking_cancelled_parses_from_the_sample_event() {
        let event = Event::new(
            "bookings",
            r#"{"type":"booking.cancelled","booking_id":"B-1001","customer_id":"C-77",
                "reservation_id":"R-555","amount":{"value":25000,"currency":"IDR"}}"#,
        );
        match event.json::<BookingCancelled>() {
            Ok(cancelled) => {
                assert_eq!(cancelled.reservation_id, "R-555");
                assert_eq!(cancelled.amount.value, 25000);
            }
            Err(err) => panic!("{err}"),
        }
        let missing = Event::new("bookings", r#"{"type":"booking.cancelled"}"#);
        assert!(matches!(
            missing.json::<BookingCancelled>().map_err(Outcome::from),
            Err(Outcome::Dead(_))
        ));
    }
}
