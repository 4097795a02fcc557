//! When a call's `handle` span is made (host/kafka/src/call.rs,
//! `HandleSpan`): under a log filter like `wactor serve`'s default
//! (`info`, no traces), a call that logs nothing and has no effects makes
//! no span at all, while an actor's log line still carries its event's
//! span and fields; with `wactor::events` at DEBUG (as `wactor dev` has
//! it) every call's span is made up front. Real components, a real
//! librdkafka mock cluster for the emits, a real sled store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use support::{manifest, Host, Kafka};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};
use wactor_kafka::call::{run_scoped, CallOutcome};
use wactor_kafka::state_changelog::ScopedStateReader;
use wactor_kafka::{VersionSlot, VersionSource};
use wactor_runtime::Event;

/// What the layer saw: `handle` spans made (their `offset` field) and, per
/// event of target `wactor::actor`, the `offset` of the `handle` span it
/// was logged in (`None` when it was in none).
#[derive(Default)]
struct Seen {
    handle_spans: Vec<i64>,
    actor_lines: Vec<Option<i64>>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

/// Reads the `offset` field of a span.
#[derive(Default)]
struct Offset(Option<i64>);

impl Visit for Offset {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "offset" {
            self.0 = Some(value);
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// The offset of a `handle` span, kept in its extensions.
struct HandleOffset(i64);

impl<S> Layer<S> for Recorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "handle" {
            return;
        }
        let mut offset = Offset::default();
        attrs.record(&mut offset);
        let offset = offset.0.expect("a handle span has an offset");
        self.0.lock().unwrap().handle_spans.push(offset);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(HandleOffset(offset));
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "wactor::actor" {
            return;
        }
        let offset = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<HandleOffset>().map(|o| o.0))
        });
        self.0.lock().unwrap().actor_lines.push(offset);
    }
}

fn event(topic: &str, offset: i64) -> Arc<Event> {
    Arc::new(Event {
        topic: topic.into(),
        partition: 0,
        offset,
        timestamp_ms: None,
        key: Some(b"k-1".to_vec()),
        payload: Some(br#"{"user":"ada"}"#.to_vec()),
        headers: Vec::new(),
        attempt: 1,
    })
}

/// Runs `guest` on `offsets` of `topic` with `filter` as the only
/// subscriber's filter, and returns what it saw.
async fn calls_seen(
    kafka: &Kafka,
    guest: &str,
    topic: &str,
    filter: &str,
    offsets: &[i64],
) -> HashMap<&'static str, Vec<Option<i64>>> {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let out = format!("{topic}.out");
    kafka.topic(topic, 1);
    kafka.topic(&out, 1);
    let spec = manifest(guest, topic, &format!("[config]\nout_topic = \"{out}\""));
    let slot = Arc::new(VersionSlot::new(host.load(guest, &spec, 1)));
    let version = slot.current();
    let ctx = Arc::new(host.context(slot as Arc<dyn VersionSource>));
    let reader = ScopedStateReader::shared(ctx.state.clone(), topic, 0);
    let recorder = Recorder::default();
    let subscriber =
        tracing_subscriber::registry().with(recorder.clone().with_filter(EnvFilter::new(filter)));
    let _default = tracing::subscriber::set_default(subscriber);
    for &offset in offsets {
        let report = run_scoped(
            ctx.clone(),
            version.clone(),
            event(topic, offset),
            reader.clone(),
        )
        .await;
        assert_eq!(report.outcome, CallOutcome::Done, "{guest} at {offset}");
    }
    let seen = recorder.0.lock().unwrap();
    HashMap::from([
        (
            "spans",
            seen.handle_spans.iter().map(|o| Some(*o)).collect(),
        ),
        ("lines", seen.actor_lines.clone()),
    ])
}

#[tokio::test]
async fn a_call_that_logs_nothing_and_has_no_effects_makes_no_span_under_an_info_filter() {
    let kafka = Kafka::start();
    let seen = calls_seen(&kafka, "fixture-noop", "spans.quiet", "info", &[0, 1, 2]).await;
    assert_eq!(seen["spans"], Vec::<Option<i64>>::new());
    assert_eq!(seen["lines"], Vec::<Option<i64>>::new());
}

#[tokio::test]
async fn an_actors_line_is_logged_in_its_events_span_when_the_span_is_made_late() {
    let kafka = Kafka::start();
    // echo logs one DEBUG line per event and emits one record.
    let seen = calls_seen(
        &kafka,
        "echo",
        "spans.logged",
        "info,wactor::actor=debug",
        &[4, 5],
    )
    .await;
    assert_eq!(seen["spans"], vec![Some(4), Some(5)]);
    assert_eq!(seen["lines"], vec![Some(4), Some(5)]);
}

#[tokio::test]
async fn a_call_with_effects_gets_its_span_even_when_nothing_is_logged() {
    let kafka = Kafka::start();
    // The actor's DEBUG line is filtered out, but its emit is applied in
    // the span (the producer's lines would name the call).
    let seen = calls_seen(&kafka, "echo", "spans.effects", "info", &[7]).await;
    assert_eq!(seen["spans"], vec![Some(7)]);
    assert_eq!(seen["lines"], Vec::<Option<i64>>::new());
}

#[tokio::test]
async fn with_wactor_events_at_debug_every_call_gets_its_span_up_front() {
    let kafka = Kafka::start();
    let seen = calls_seen(
        &kafka,
        "fixture-noop",
        "spans.eager",
        "info,wactor::events=debug",
        &[0, 1],
    )
    .await;
    assert_eq!(seen["spans"], vec![Some(0), Some(1)]);
}
