//! `{{name}}`: a wactor actor.
//!
//! It reads JSON events like `{"id": "tx-1001", "user": "user-7",
//! "amount_cents": 250000}` from its topics, flags those at or above
//! `threshold_cents`, and emits the verdict to `out_topic`. Each event id is
//! handled once: a marker in the actor's state makes a redelivery a no-op.
//!
//! What it shows: `?` on the SDK's errors (a malformed payload is dead, a
//! refused emit is retried), effects that apply only on `Done`, config and
//! state. Replace `decide` with your own logic; keep it a plain function so
//! that `cargo test` can test it without a host.

use serde::{Deserialize, Serialize};
use wactor_sdk::emit::{self, Record};
use wactor_sdk::{config, state, Actor, Event, Handled, Outcome};

/// The event this actor reads.
#[derive(Debug, Deserialize)]
pub struct Payment {
    /// Unique id of the payment: the idempotency key.
    pub id: String,
    /// Who paid.
    pub user: String,
    /// Amount in cents.
    pub amount_cents: i64,
}

/// What it emits.
#[derive(Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The payment's id.
    pub id: String,
    /// Whether the payment is at or above the threshold.
    pub flagged: bool,
    /// The amount, in cents.
    pub amount_cents: i64,
}

/// The actor's logic, free of I/O.
pub fn decide(payment: &Payment, threshold_cents: i64) -> Verdict {
    Verdict {
        id: payment.id.clone(),
        flagged: payment.amount_cents >= threshold_cents,
        amount_cents: payment.amount_cents,
    }
}

struct Actor_;

impl Actor for Actor_ {
    fn handle(event: Event) -> Handled {
        // Not JSON of this shape: dead (retrying cannot fix it).
        let payment: Payment = event.json()?;
        let marker = format!("done:{}", payment.id);
        if state::get(&marker).is_some() {
            wactor_sdk::info!("{} already handled", payment.id);
            return Ok(Outcome::Done);
        }
        let threshold_cents = config::get_or("threshold_cents", "100000")
            .parse::<i64>()
            .map_err(|e| Outcome::dead(format!("config threshold_cents: {e}")))?;
        let verdict = decide(&payment, threshold_cents);
        let topic = config::get_or("out_topic", &format!("{}.out", event.topic));
        emit::send(Record::json(topic, &verdict)?.key(payment.user.as_bytes()))?;
        state::set(&marker, b"1")?;
        Ok(Outcome::Done)
    }
}

wactor_sdk::export_actor!(Actor_);

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(amount_cents: i64) -> Payment {
        Payment {
            id: "tx-1".into(),
            user: "user-7".into(),
            amount_cents,
        }
    }

    #[test]
    fn flags_payments_at_or_above_the_threshold() {
        assert!(decide(&payment(100_000), 100_000).flagged);
        assert!(!decide(&payment(99_999), 100_000).flagged);
    }

    #[test]
    fn the_sample_event_parses() {
        let event = Event::new(
            "payments",
            r#"{"id": "tx-1001", "user": "user-7", "amount_cents": 250000}"#,
        );
        let parsed: Result<Payment, _> = event.json();
        assert!(matches!(parsed, Ok(p) if p.amount_cents == 250_000));
    }
}
