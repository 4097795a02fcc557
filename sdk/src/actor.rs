//! The [`Actor`] trait and the [`export_actor!`](crate::export_actor) macro
//! that turns an implementation into the component's `handle` export (and,
//! in its `batch` form, `handle-batch` too).
//!
//! This module owns the conversion between the generated WIT types and the
//! SDK's [`Event`] and [`Outcome`]; nothing else in the SDK touches the
//! export side of the bindings.

use std::time::Duration;

use crate::batch_bindings::wactor::actor::batch::begin_event;
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
///
/// # Batches
///
/// Exported with `export_actor!(MyActor, batch)`, the same implementation
/// also takes several events in one call (`handle-batch`, see
/// [`export_actor!`](crate::export_actor)). Nothing changes in `handle`:
/// the SDK calls it once per event of the batch, in order, and each
/// event's emits and state writes are still applied or dropped by that
/// event's own outcome. Two things to keep in mind:
///
/// - A panic (or the deadline, or the memory limit) in one event fails the
///   whole batch, and the host then runs every event of it again, one call
///   each. So `handle` may run again for events that had already finished
///   inside the failed batch; their effects were dropped with the batch,
///   but outbound HTTP calls were made. Delivery is at-least-once anyway,
///   so a correct actor is already fine with this.
/// - Globals are shared by the events of a batch, as they are by the
///   events that a warm instance runs one after the other: a global set
///   while handling one event is seen by the next.
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
/// The crate must be built as a `cdylib` for `wasm32-wasip2` (or, lean,
/// for `wasm32-unknown-unknown`: see the crate's docs).
///
/// # Batches: `export_actor!(MyActor, batch)`
///
/// ```ignore
/// wactor_sdk::export_actor!(MyActor, batch);
/// ```
///
/// builds a component of world `actor-batch` instead of `actor`: besides
/// `handle` it exports `handle-batch`, through which the host can run
/// several events in one call (the heads of a partition's lanes, first
/// attempts only). The SDK runs [`Actor::handle`] for each of them in
/// order, telling the host which event it is on (the `wactor:actor/batch`
/// import), so the actor's code does not change.
///
/// Use it when instances are warm and throughput matters, for cheap
/// handlers, where the cost of a call into the component is a large part
/// of the cost of an event. It changes:
///
/// - Several events per call, one deadline for the call. Each event's
///   emits and state writes stay all-or-nothing by *its own* outcome: a
///   `Retry` or `Dead` for one event drops only that event's effects.
/// - A trap in one event (a panic, the deadline, the memory limit) fails
///   the batch: the host drops every effect of it and runs each of its
///   events again, one call to `handle` each, so a poison event fails
///   alone. Handlers must be fine being run again; they already must be,
///   as delivery is at-least-once (outbound HTTP made in the failed batch
///   is made again).
/// - A global set while handling one event is seen by the next event of
///   the batch, as it is with warm instances already.
///
/// The plain form builds exactly what it always has: a component of world
/// `actor`, which does not import `wactor:actor/batch` and runs on any
/// host of contract 0.2.0. The `batch` form needs a host that knows
/// `actor-batch`.
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
    ($ty:ident, batch) => {
        impl $crate::batch_bindings::Guest for $ty {
            fn handle(
                event: $crate::bindings::wactor::actor::types::Event,
            ) -> $crate::bindings::wactor::actor::types::Outcome {
                $crate::__private::dispatch::<$ty>(event)
            }

            fn handle_batch(
                events: ::std::vec::Vec<$crate::bindings::wactor::actor::types::Event>,
            ) -> ::std::vec::Vec<$crate::bindings::wactor::actor::types::Outcome> {
                $crate::__private::dispatch_batch::<$ty>(events)
            }
        }

        $crate::batch_bindings::export!($ty with_types_in $crate::batch_bindings);
    };
}

/// Runs one call: converts the event in, the outcome out.
#[doc(hidden)]
pub fn dispatch<A: Actor>(event: wit::Event) -> wit::Outcome {
    crate::lean::install_panic_hook();
    let outcome = match A::handle(Event::from(event)) {
        Ok(outcome) | Err(outcome) => outcome,
    };
    outcome_to_wit(outcome)
}

/// Runs one batch call: for each event in order, tells the host which one
/// it is (`begin-event`), then runs it as [`dispatch`] does. One outcome
/// per event, in the order of `events`.
#[doc(hidden)]
pub fn dispatch_batch<A: Actor>(events: Vec<wit::Event>) -> Vec<wit::Outcome> {
    (0u32..)
        .zip(events)
        .map(|(index, event)| {
            begin_event(index);
            dispatch::<A>(event)
        })
        .collect()
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
