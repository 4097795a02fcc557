//! When a call's `handle` span is made (`KafkaSettings::handle_spans`,
//! host/kafka/src/call.rs): with `wactor serve`'s default (`info`, no
//! traces: `HandleSpans::WhenLogged(INFO)`) a call whose actor logs
//! nothing the filter can show makes no span, whatever its effects, while
//! a line it can show is logged in its event's span, for single calls and
//! batches; with `HandleSpans::Always` every call's span is made; and the
//! policy follows from the log filter as `wactor serve` computes it. Real
//! components, a real librdkafka mock cluster for the emits, a real sled
//! store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use support::{manifest, Host, Kafka};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};
use wactor_kafka::call::{run_batch, run_scoped, CallOutcome};
use wactor_kafka::state_changelog::ScopedStateReader;
use wactor_kafka::{HandleSpans, VersionSlot, VersionSource};
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

/// How the events of a run are called.
#[derive(Clone, Copy)]
enum Calls {
    /// One `run_scoped` each (`handle`).
    OneByOne,
    /// All in one `run_batch` (`handle-batch`).
    Batch,
}

/// Runs `guest` on `offsets` of `topic` under `policy`, with a recording
/// layer filtered by `filter` as the only subscriber; returns the offsets
/// of the `handle` spans made and, per actor line logged, the offset of
/// the span it was logged in.
async fn seen(
    guest: &str,
    topic: &str,
    policy: HandleSpans,
    filter: &str,
    calls: Calls,
    offsets: &[i64],
) -> (Vec<i64>, Vec<Option<i64>>) {
    let kafka = Kafka::start();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = kafka.settings();
    settings.handle_spans = policy;
    let host = Host::new(dir.path(), settings);
    let out = format!("{topic}.out");
    kafka.topic(topic, 1);
    kafka.topic(&out, 1);
    let spec = manifest(guest, topic, &format!("[config]\nout_topic = \"{out}\""));
    let slot = Arc::new(VersionSlot::new(host.load(guest, &spec, 1)));
    let version = slot.current().expect("a version");
    let ctx = Arc::new(host.context(slot as Arc<dyn VersionSource>));
    let reader = ScopedStateReader::shared(ctx.state.clone(), topic, 0);
    let recorder = Recorder::default();
    let subscriber =
        tracing_subscriber::registry().with(recorder.clone().with_filter(EnvFilter::new(filter)));
    let _default = tracing::subscriber::set_default(subscriber);
    let events: Vec<Arc<Event>> = offsets.iter().map(|&o| event(topic, o)).collect();
    let reports = match calls {
        Calls::OneByOne => {
            let mut reports = Vec::new();
            for event in &events {
                let call = run_scoped(
                    ctx.clone(),
                    Some(version.clone()),
                    event.clone(),
                    reader.clone(),
                );
                reports.push(call.await);
            }
            reports
        }
        Calls::Batch => run_batch(ctx.clone(), version.clone(), events, reader.clone()).await,
    };
    for report in &reports {
        assert_eq!(report.outcome, CallOutcome::Done, "{guest}");
    }
    let seen = recorder.0.lock().unwrap();
    (seen.handle_spans.clone(), seen.actor_lines.clone())
}

const SERVE_DEFAULT: HandleSpans = HandleSpans::WhenLogged(LevelFilter::INFO);

#[tokio::test]
async fn a_quiet_call_makes_no_span_under_serves_default() {
    let (spans, lines) = seen(
        "fixture-noop",
        "spans.quiet",
        SERVE_DEFAULT,
        "info",
        Calls::OneByOne,
        &[0, 1, 2],
    )
    .await;
    assert_eq!(spans, Vec::<i64>::new());
    assert_eq!(lines, Vec::<Option<i64>>::new());
}

#[tokio::test]
async fn effects_and_lines_the_filter_cannot_show_make_no_span_either() {
    // echo logs a DEBUG line per event and emits one record.
    let (spans, lines) = seen(
        "echo",
        "spans.hidden",
        SERVE_DEFAULT,
        "info",
        Calls::OneByOne,
        &[3],
    )
    .await;
    assert_eq!(spans, Vec::<i64>::new());
    assert_eq!(lines, Vec::<Option<i64>>::new());
}

#[tokio::test]
async fn a_line_the_filter_shows_is_logged_in_its_events_span() {
    // fixture-batch logs `event <offset>` at INFO and emits, per event.
    let (spans, lines) = seen(
        "fixture-batch",
        "spans.shown",
        SERVE_DEFAULT,
        "info",
        Calls::OneByOne,
        &[4, 5],
    )
    .await;
    assert_eq!(spans, vec![4, 5]);
    assert_eq!(lines, vec![Some(4), Some(5)]);
}

#[tokio::test]
async fn in_a_batch_each_events_line_is_logged_in_its_own_span() {
    let (spans, lines) = seen(
        "fixture-batch",
        "spans.batch",
        SERVE_DEFAULT,
        "info",
        Calls::Batch,
        &[6, 7, 8],
    )
    .await;
    assert_eq!(spans, vec![6, 7, 8]);
    assert_eq!(lines, vec![Some(6), Some(7), Some(8)]);
    let (spans, _) = seen(
        "fixture-noop-batch",
        "spans.batch-quiet",
        SERVE_DEFAULT,
        "info",
        Calls::Batch,
        &[0, 1, 2],
    )
    .await;
    assert_eq!(spans, Vec::<i64>::new());
}

#[tokio::test]
async fn always_makes_every_calls_span_and_logs_the_lines_in_it() {
    let (spans, lines) = seen(
        "fixture-noop",
        "spans.always",
        HandleSpans::Always,
        "info",
        Calls::OneByOne,
        &[0, 1],
    )
    .await;
    assert_eq!(spans, vec![0, 1]);
    assert_eq!(lines, Vec::<Option<i64>>::new());
    // The span made before the call is the one its lines are logged in.
    for calls in [Calls::OneByOne, Calls::Batch] {
        let (spans, lines) = seen(
            "fixture-batch",
            "spans.always-lines",
            HandleSpans::Always,
            "info",
            calls,
            &[2, 3],
        )
        .await;
        assert_eq!(spans, vec![2, 3]);
        assert_eq!(lines, vec![Some(2), Some(3)]);
    }
}

#[test]
fn the_policy_follows_the_log_filter_as_serve_computes_it() {
    let policy = |filter: &str, traces: bool| {
        HandleSpans::for_log_filter(EnvFilter::new(filter).max_level_hint(), traces)
    };
    assert_eq!(policy("info", false), SERVE_DEFAULT);
    assert_eq!(
        policy("warn,wactor=info", false),
        HandleSpans::WhenLogged(LevelFilter::INFO)
    );
    assert_eq!(
        policy("warn", false),
        HandleSpans::WhenLogged(LevelFilter::WARN)
    );
    assert_eq!(
        policy("off", false),
        HandleSpans::WhenLogged(LevelFilter::OFF)
    );
    // DEBUG anywhere, in a span directive too, or traces: every span.
    assert_eq!(policy("info", true), HandleSpans::Always);
    assert_eq!(policy("debug", false), HandleSpans::Always);
    assert_eq!(
        policy("info,wactor::events=debug", false),
        HandleSpans::Always
    );
    assert_eq!(
        policy("info,wactor_runtime=debug", false),
        HandleSpans::Always
    );
    assert_eq!(policy("info,[handle]=debug", false), HandleSpans::Always);
    assert_eq!(
        policy("warn,[handle]=info", false),
        HandleSpans::WhenLogged(LevelFilter::INFO)
    );
    // A directive on a field's value makes the hint TRACE, whatever its
    // level.
    assert_eq!(
        policy("info,[handle{actor=orders}]=debug", false),
        HandleSpans::Always
    );
    assert_eq!(
        policy("info,[handle{actor=orders}]=info", false),
        HandleSpans::Always
    );
    assert_eq!(HandleSpans::default(), HandleSpans::Always);
}

/// `wactor serve` itself, with the filter the harness gives it
/// (`info,librdkafka=warn`: calls make their span only before a line it
/// shows): an actor's INFO lines are printed in their events' `handle`
/// spans, with the event's fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_an_actors_lines_in_their_events_spans() {
    let kafka = Kafka::start();
    kafka.topic("spans.serve", 1);
    kafka.topic("spans.serve.out", 1);
    let dir = tempfile::tempdir().unwrap();
    support::write_actor(
        dir.path(),
        "talker",
        "fixture-batch",
        "name = \"talker\"\ntopics = [\"spans.serve\"]\n",
    );
    let _host = support::ServeProcess::start(dir.path(), &kafka.brokers);
    let records: Vec<(Option<String>, String)> = ["a", "b", "c"]
        .iter()
        .map(|key| (Some(key.to_string()), "{}".to_string()))
        .collect();
    support::produce(&kafka.brokers, "spans.serve", &records).await;
    let log = dir.path().join("host.log");
    let line_of = |text: &str, offset: i64| -> Option<String> {
        text.lines()
            .find(|line| {
                line.contains("wactor::actor") && line.ends_with(&format!("event {offset}"))
            })
            .map(str::to_string)
    };
    let all_shown = support::eventually(std::time::Duration::from_secs(60), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (0..3).all(|offset| line_of(&text, offset).is_some())
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(all_shown, "the actor's lines were not all printed:\n{text}");
    for offset in 0..3 {
        let line = line_of(&text, offset).unwrap();
        for field in [
            "handle{".to_string(),
            "actor=talker".to_string(),
            "topic=spans.serve".to_string(),
            format!("offset={offset}"),
            "attempt=1".to_string(),
        ] {
            assert!(line.contains(&field), "{field} not in: {line}");
        }
    }
}
