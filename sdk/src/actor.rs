//! The [`Actor`] trait and the [`export_actor!`](crate::export_actor) macro
//! that turns an implementation into the component's `handle` export.
//!
//! This module owns the conversion between the generated WIT types and the
//! SDK's [`Event`] and [`Outcome`]; nothing else in the SDK touches the
//! export side of the bindings.

use std::time::Duration;

use crate::bindings::wactor::actor::types as wit;
use crate::{Event, Outcome};

/// What [`Actor::handle`] returns: an [`Outcome`] either way.
///
/// The `Err` side exists so that `?` can end a call early: every SDK error
/// type converts into the outcome that suits it (see [`Outcome`]'s `From`
/// implementations). `Ok(outcome)` and `Err(outcome)` mean the same thing to
/// the host; write `Ok(Outcome::Done)` for success and `Err(...)` (or `?`)
/// for failures, and the code reads the way it behaves.
pub type Handled = Result<Outcome, Outcome>;

/// An actor: the code the host runs for each event.
///
/// Implement it on a unit struct and export the struct with
/// [`export_actor!`](crate::export_actor):
///
/// ```no_run
/// use wactor_sdk::{Actor, Event, Handled, Outcome};
///
/// struct Hello;
///
/// impl Actor for Hello {
///     fn handle(event: Event) -> Handled {
///         wactor_sdk::info!("hello from {} at offset {}", event.topic, event.offset);
///         Ok(Outcome::Done)
///     }
/// }
///
/// wactor_sdk::export_actor!(Hello);
/// # fn main() {}
/// ```
///
/// The host may run a fresh instance per event or reuse a warm one, so do
/// not keep anything in globals that must survive between events: use
/// [`state`](crate::state) for that.
pub trait Actor {
    /// Handles one event and says what became of it.
    fn handle(event: Event) -> Handled;
}

/// Exports an [`Actor`] implementation as the component's `handle` function.
///
/// Use it once per crate, at the top level, with the name of the type (a
/// plain identifier, not a path):
///
/// ```ignore
/// wactor_sdk::export_actor!(MyActor);
/// ```
///
/// The crate must be built as a `cdylib` for `wasm32-wasip2`.
#[macro_export]
macro_rules! export_actor {
    ($ty:ident) => {
        impl $crate::bindings::Guest for $ty {
            fn handle(
                event: $crate::bindings::wactor::actor::types::Event,
            ) -> $crate::bindings::wactor::actor::types::Outcome {
                $crate::__private::dispatch::<$ty>(event)
            }
        }

        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}

/// Runs one call: converts the event in, the outcome out.
#[doc(hidden)]
pub fn dispatch<A: Actor>(event: wit::Event) -> wit::Outcome {
    let outcome = match A::handle(Event::from(event)) {
        Ok(outcome) | Err(outcome) => outcome,
    };
    outcome_to_wit(outcome)
}

fn outcome_to_wit(outcome: Outcome) -> wit::Outcome {
    match outcome {
        Outcome::Done => wit::Outcome::Done,
        Outcome::Retry { reason, after } => wit::Outcome::Retry(wit::RetryAfter {
            reason,
            delay_ms: after.map(duration_to_ms),
        }),
        Outcome::Dead(reason) => wit::Outcome::Dead(reason),
    }
}

/// Whole milliseconds, rounded up so that a non-zero delay never becomes
/// zero, and saturating at `u64::MAX`.
fn duration_to_ms(after: Duration) -> u64 {
    let ms = after.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

impl From<wit::Event> for Event {
    fn from(event: wit::Event) -> Self {
        Event {
            topic: event.topic,
            partition: event.partition,
            offset: event.offset,
            timestamp_ms: event.timestamp_ms,
            key: event.key,
            payload: event.payload,
            headers: event
                .headers
                .into_iter()
                .map(|header| (header.name, header.value))
                .collect(),
            attempt: event.attempt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_whole_milliseconds() {
        assert_eq!(duration_to_ms(Duration::from_millis(250)), 250);
        assert_eq!(duration_to_ms(Duration::from_micros(1)), 1);
        assert_eq!(duration_to_ms(Duration::ZERO), 0);
        assert_eq!(duration_to_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn retry_outcome_carries_reason_and_delay() {
        let outcome = outcome_to_wit(Outcome::retry_after("busy", Duration::from_secs(2)));
        match outcome {
            wit::Outcome::Retry(retry) => {
                assert_eq!(retry.reason, "busy");
                assert_eq!(retry.delay_ms, Some(2000));
            }
            other => panic!("expected retry, got {other:?}"),
        }
    }

    #[test]
    fn wit_event_converts_headers_to_pairs() {
        let event = Event::from(wit::Event {
            topic: "t".into(),
            partition: 3,
            offset: 42,
            timestamp_ms: Some(7),
            key: Some(b"k".to_vec()),
            payload: Some(b"p".to_vec()),
            headers: vec![
                wit::Header {
                    name: "h".into(),
                    value: Some(b"v".to_vec()),
                },
                wit::Header {
                    name: "n".into(),
                    value: None,
                },
            ],
            attempt: 2,
        });
        assert_eq!(
            event.headers,
            vec![
                ("h".to_string(), Some(b"v".to_vec())),
                ("n".to_string(), None)
            ]
        );
        assert!(!event.is_tombstone());
        assert_eq!((event.partition, event.offset, event.attempt), (3, 42, 2));
    }

    #[test]
    fn a_wit_event_without_payload_is_a_tombstone() {
        let event = Event::from(wit::Event {
            topic: "t".into(),
            partition: 0,
            offset: 1,
            timestamp_ms: None,
            key: Some(b"k".to_vec()),
            payload: None,
            headers: Vec::new(),
            attempt: 1,
        });
        assert!(event.is_tombstone());
    }
}
