//! The latency suite: produce→done time per event at a fixed rate.
//!
//! A producer hands records to librdkafka at a fixed rate (default 5,000 a
//! second, `linger.ms = 0` so the producer's own batching is not counted)
//! and notes, per record, when it was handed over; its delivery report says
//! where the record landed (partition, offset). A host runs `fixture-noop`
//! on the topic (warm instances, `max_in_flight = 64`). Each call's
//! `handle` span, seen by [`DoneLayer`] when it closes, gives the instant the
//! call for (partition, offset) ended. Latency is the difference, one
//! sample per event, after a warm-up second.
//!
//! Owns: the fixed-rate producer, the span layer and the report. Not the
//! host (`wactor_tests::kafka::Host`) nor the brokers (`kafka::Broker`).
//! The layer is installed by `main` for every run and records nothing
//! unless this suite armed it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use wactor_tests::kafka::{manifest, Host};

use crate::kafka::Broker;
use crate::stats::Summary;

/// Arguments of `wactor-bench latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Records produced per second.
    #[arg(long, default_value_t = 5_000)]
    pub rate: u64,
    /// Seconds measured (after one second of warm-up). Keep runs short on
    /// the mock: it finds a fetch's offset by walking the partition's log
    /// from the start, so its broker thread's cost per fetch grows with
    /// every record and after ~5 s at 5,000/s on 4 partitions it takes a
    /// whole core (a bare consumer sees it too).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Partitions of the topic (16, as `wactor dev` makes them: shorter
    /// logs for the mock to walk).
    #[arg(long, default_value_t = 16)]
    pub partitions: i32,
    /// Measure a bare rdkafka consumer loop (poll, note the record's
    /// arrival) instead of wactor: the same producer, broker and consumer
    /// settings, no actor.
    #[arg(long)]
    pub bare: bool,
    /// Run against this broker instead of the in-process mock.
    #[arg(long)]
    pub brokers: Option<String>,
    /// The host consumer's `fetch.wait.max.ms`. librdkafka's mock broker
    /// answers an empty fetch only after this wait, even when records
    /// arrive meanwhile, so on the mock it bounds the latency; defaults to
    /// 1 on the mock and to librdkafka's default (500) elsewhere, where
    /// brokers answer as soon as records arrive.
    #[arg(long)]
    pub fetch_wait_ms: Option<u64>,
}

/// Where the `handle` spans of the run are recorded: (partition, offset) →
/// the instant the span closed. Armed by [`run`] only.
struct Done {
    armed: AtomicBool,
    topic: OnceLock<String>,
    closed: Mutex<HashMap<(i32, i64), Instant>>,
}

fn done() -> &'static Done {
    static DONE: OnceLock<Done> = OnceLock::new();
    DONE.get_or_init(|| Done {
        armed: AtomicBool::new(false),
        topic: OnceLock::new(),
        closed: Mutex::new(HashMap::new()),
    })
}

/// The (topic, partition, offset) fields of a `handle` span.
#[derive(Default)]
struct Where {
    topic: Option<String>,
    partition: Option<i64>,
    offset: Option<i64>,
}

impl tracing::field::Visit for Where {
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        match field.name() {
            "partition" => self.partition = Some(value),
            "offset" => self.offset = Some(value),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.record_i64(field, i64::try_from(value).unwrap_or(i64::MAX));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "topic" {
            self.topic = Some(format!("{value:?}"));
        }
    }
}

/// A `tracing` layer that notes when each `handle` span of the measured
/// topic closes. Inert (one atomic load per span) until [`run`] arms it.
pub struct DoneLayer;

impl<S> Layer<S> for DoneLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if !done().armed.load(Ordering::Relaxed) || attrs.metadata().name() != "handle" {
            return;
        }
        let mut at = Where::default();
        attrs.record(&mut at);
        let (Some(topic), Some(partition), Some(offset)) = (at.topic, at.partition, at.offset)
        else {
            return;
        };
        if done().topic.get() != Some(&topic) {
            return;
        }
        let Ok(partition) = i32::try_from(partition) else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert((partition, offset));
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        if !done().armed.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        let Some(span) = ctx.span(&id) else { return };
        let Some(&(partition, offset)) = span.extensions().get::<(i32, i64)>() else {
            return;
        };
        if let Ok(mut closed) = done().closed.lock() {
            closed.entry((partition, offset)).or_insert(now);
        }
    }
}

/// Runs the suite: one run at `args.rate` for `args.seconds`.
pub async fn run(args: LatencyArgs) -> Result<serde_json::Value> {
    if args.rate == 0 || args.seconds == 0 {
        bail!("--rate and --seconds must be at least 1");
    }
    let kafka = Broker::new(args.brokers.as_deref());
    if args.partitions < 1 {
        bail!("--partitions must be at least 1");
    }
    let topic = kafka.topic("bench.latency", args.partitions).await?;
    let _ = done().topic.set(topic.clone());
    let mut settings = kafka.settings();
    let fetch_wait = args.fetch_wait_ms.or(args.brokers.is_none().then_some(1));
    if let Some(wait) = fetch_wait {
        settings
            .consumer
            .insert("fetch.wait.max.ms".into(), wait.to_string());
    }
    let dir = tempfile::tempdir()?;
    let name = format!("latency-{}", std::process::id());
    done().armed.store(true, Ordering::Relaxed);
    let side = if args.bare {
        Side::Bare(bare_loop(&settings, &name, &topic)?)
    } else {
        let host = Host::new(dir.path(), settings);
        let (consumer, _slot) = host
            .run(
                "fixture-noop",
                &manifest(&name, &topic, "max_in_flight = 64"),
            )
            .await;
        Side::Wactor(Box::new(host), consumer)
    };

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("linger.ms", "0")
        .set("acks", "all")
        .create()
        .context("cannot create the producer")?;
    let payload = format!("{{\"filler\":\"{}\"}}", "x".repeat(80));
    // The group joined and the partitions restored: a first record of
    // each partition handled (up to 60 s) before the clock starts.
    for partition in 0..args.partitions {
        let record = FutureRecord::to(&topic)
            .partition(partition)
            .key("ready")
            .payload(&payload);
        if let Err((err, _)) = producer.send(record, Duration::from_secs(10)).await {
            bail!("cannot produce: {err}");
        }
    }
    let ready_by = Instant::now() + Duration::from_secs(60);
    let first = usize::try_from(args.partitions).unwrap_or(usize::MAX);
    while done().closed.lock().map(|c| c.len()).unwrap_or(0) < first {
        if Instant::now() > ready_by {
            bail!("the host did not handle its first records within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let warmup = args.rate;
    let total = warmup + args.rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let started = tokio::time::Instant::now();
    let mut sent: Vec<Instant> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut deliveries = FuturesUnordered::new();
    let mut landed: HashMap<(i32, i64), usize> = HashMap::new();
    let mut failed = 0u64;
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        // Collect what was acknowledged meanwhile; the rest at the end.
        while let Some(Some(result)) = futures_util::FutureExt::now_or_never(deliveries.next()) {
            note(result, &mut landed, &mut failed);
        }
        let key = format!("key-{}", i % 1000);
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        let index = sent.len();
        sent.push(Instant::now());
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push(async move {
                let at = delivery
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|d| (d.partition, d.offset));
                (index, at)
            }),
            Err((err, _)) => bail!("cannot produce: {err}"),
        }
    }
    while let Some(result) = deliveries.next().await {
        note(result, &mut landed, &mut failed);
    }
    // Every acknowledged record handled, or 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let handled = done().closed.lock().map(|c| c.len()).unwrap_or(0);
        if handled >= landed.len() + first || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done().armed.store(false, Ordering::Relaxed);
    match side {
        Side::Wactor(host, consumer) => {
            consumer.stop().await;
            drop(host);
        }
        Side::Bare(stop) => stop.store(true, Ordering::Relaxed),
    }

    let closed = done().closed.lock().map(|c| c.clone()).unwrap_or_default();
    let warm = usize::try_from(warmup).unwrap_or(usize::MAX);
    let mut samples = Vec::new();
    let mut missing = 0usize;
    for (at, index) in &landed {
        if *index < warm {
            continue;
        }
        match closed.get(at) {
            Some(end) => samples.push(end.saturating_duration_since(sent[*index])),
            None => missing += 1,
        }
    }
    if std::env::var_os("WACTOR_BENCH_PROGRESS").is_some() {
        // Latency by the second the record was sent in.
        let mut by_second: std::collections::BTreeMap<u64, Vec<Duration>> = Default::default();
        for (at, index) in &landed {
            if let Some(end) = closed.get(at) {
                let second = sent[*index].saturating_duration_since(sent[0]).as_secs();
                by_second
                    .entry(second)
                    .or_default()
                    .push(end.saturating_duration_since(sent[*index]));
            }
        }
        for (second, mut lat) in by_second {
            let s = Summary::of(&mut lat);
            eprintln!(
                "second {second}: p50 {:.2} ms p99 {:.2} ms n {}",
                s.median_us / 1000.0,
                s.p99_us / 1000.0,
                lat.len()
            );
        }
    }
    if samples.is_empty() {
        bail!("no event was handled");
    }
    let summary = Summary::of(&mut samples);
    let max = samples.iter().max().copied().unwrap_or_default();
    println!(
        "latency (produce→{}, {} records/s for {} s after 1 s of warm-up, {} partitions, 1000 keys, {}, fetch.wait.max.ms {}):",
        if args.bare { "polled by a bare consumer" } else { "done by wactor" },
        args.rate,
        args.seconds,
        args.partitions,
        kafka.describe(),
        fetch_wait.map_or("default".to_string(), |w| w.to_string()),
    );
    println!(
        "  p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms   ({} events, {} not handled in time, {} not acknowledged)",
        summary.median_us / 1000.0,
        summary.p99_us / 1000.0,
        max.as_secs_f64() * 1000.0,
        samples.len(),
        missing,
        failed
    );
    Ok(serde_json::json!({
        "side": if args.bare { "bare" } else { "wactor" },
        "broker": kafka.describe(),
        "rate": args.rate,
        "seconds": args.seconds,
        "partitions": args.partitions,
        "fetch_wait_ms": fetch_wait,
        "p50_ms": summary.median_us / 1000.0,
        "p99_ms": summary.p99_us / 1000.0,
        "max_ms": max.as_secs_f64() * 1000.0,
        "events": samples.len(),
        "not_handled": missing,
        "not_acknowledged": failed,
    }))
}

/// What is measured: a host running the no-op actor, or a bare loop (its
/// stop flag).
enum Side {
    Wactor(Box<Host>, wactor_kafka::ActorConsumer),
    Bare(Arc<AtomicBool>),
}

/// A bare consumer in a thread of its own: polls the topic with the host's
/// consumer settings and notes each record's arrival as a `handle` span's
/// end would be noted. Runs until the returned flag is set.
fn bare_loop(
    settings: &wactor_kafka::KafkaSettings,
    group: &str,
    topic: &str,
) -> Result<Arc<AtomicBool>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = settings
        .consumer_config(group)
        .set("enable.auto.offset.store", "true")
        .create()
        .context("cannot create the bare consumer")?;
    consumer.subscribe(&[topic])?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                let now = Instant::now();
                if let Ok(mut closed) = done().closed.lock() {
                    closed
                        .entry((message.partition(), message.offset()))
                        .or_insert(now);
                }
            }
        }
    });
    Ok(stop)
}

/// Notes where record `index` landed, or that it was not acknowledged.
fn note(
    (index, at): (usize, Option<(i32, i64)>),
    landed: &mut HashMap<(i32, i64), usize>,
    failed: &mut u64,
) {
    match at {
        Some(at) => {
            landed.insert(at, index);
        }
        None => *failed += 1,
    }
}
