//! The Kafka suite: what a host costs and delivers on a real
//! Kafka-protocol broker (librdkafka's mock cluster, in process), each
//! figure a ratio or a time taken in one run on one machine.
//!
//! - `throughput`: events/s through a no-op actor vs a bare rdkafka
//!   consumer loop reading the same number of records from the same broker.
//! - `overhead`: host cost per event without Kafka: the call path of a
//!   partition worker (span, metrics, state reader, invoke) plus lane and
//!   offset bookkeeping, warm and fresh instances.
//! - `ordering`: a 10 ms actor and 1000 keys on one partition, `key` vs
//!   `partition` ordering.
//! - `swap`: upload of a new component to its first event, and rollback to
//!   the first event on the old version, while events flow.
//! - `state`: the state changelog: events/s of an actor that writes one
//!   state key per event (`fixture-checker`) with `kafka.state_changelog`
//!   on and off (the overhead per event is the difference of the inverse
//!   rates), and the time to restore a partition's state of 100,000 keys
//!   into an empty store.
//! - `replay`: records/s a replay copies to `<group>.replay` and the actor
//!   handles again.
//! - `schedule`: firing skew of a schedule firing every second, at one and
//!   two hosts (the real clock).
//! - `redrive`: dead letters/s one re-drive request sends and removes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use wactor_delivery::{LaneScheduler, OffsetTracker, OrderingMode};
use wactor_kafka::{
    ActorConsumer, ActorContext, KafkaSettings, OutRecord, Producer, VersionSlot, VersionSource,
};
use wactor_registry::Upload;
use wactor_runtime::Event;
use wactor_tests::kafka::{manifest, read_until, Host, Kafka};

use crate::stats::Summary;

/// Arguments of `wactor-bench kafka`.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Which measurement: `throughput`, `overhead`, `ordering`, `swap`,
    /// `state`, `replay`, `schedule`, `redrive` or `all`.
    #[arg(default_value = "all")]
    pub what: String,
    /// Dead letters of the `redrive` run.
    #[arg(long, default_value_t = 10_000)]
    pub redrive_letters: usize,
    /// Records for the throughput run.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Calls per overhead sample set.
    #[arg(long, default_value_t = 20_000)]
    pub iterations: usize,
    /// Events per mode of the `state` run.
    #[arg(long, default_value_t = 20_000)]
    pub state_events: usize,
    /// Keys of the partition restored in the `state` run.
    #[arg(long, default_value_t = 100_000)]
    pub state_keys: usize,
    /// Run `throughput`, `ordering` and `state` against this broker instead of the
    /// in-process mock (e.g. a Tansu broker, see ../shared/KAFKA.md).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Seconds each `schedule` run measures (a schedule firing every second).
    #[arg(long, default_value_t = 30)]
    pub schedule_seconds: u64,
    /// The consumers' `fetch.wait.max.ms` in the `schedule` run (librdkafka's
    /// default, 500, when not given).
    #[arg(long)]
    pub fetch_wait_ms: Option<u64>,
    /// Run only one side of `throughput`: `bare`, `wactor` or `batch` (the
    /// no-op actor with the batch export), e.g. under `valgrind --tool=callgrind`,
    /// where each side is profiled on its own at two record counts (docs/benchmarks.md).
    #[arg(long)]
    pub only: Option<String>,
}

/// Runs the suite.
pub async fn run(args: KafkaArgs) -> Result<serde_json::Value> {
    let mut results = serde_json::Map::new();
    let all = args.what == "all";
    if !all
        && ![
            "throughput",
            "overhead",
            "ordering",
            "swap",
            "state",
            "replay",
            "schedule",
            "redrive",
        ]
        .contains(&args.what.as_str())
    {
        bail!("unknown measurement {:?}", args.what);
    }
    if all || args.what == "overhead" {
        results.insert("overhead".into(), overhead(args.iterations).await?);
    }
    if all || args.what == "throughput" {
        results.insert(
            "throughput".into(),
            throughput(args.events, args.brokers.as_deref(), args.only.as_deref()).await?,
        );
    }
    if all || args.what == "ordering" {
        results.insert("ordering".into(), ordering(args.brokers.as_deref()).await?);
    }
    if all || args.what == "swap" {
        results.insert("swap".into(), swap().await?);
    }
    if all || args.what == "state" {
        results.insert(
            "state".into(),
            state(args.state_events, args.state_keys, args.brokers.as_deref()).await?,
        );
    }
    if all || args.what == "replay" {
        results.insert(
            "replay".into(),
            replay(args.events.min(50_000), args.brokers.as_deref()).await?,
        );
    }
    if all || args.what == "redrive" {
        results.insert("redrive".into(), redrive(args.redrive_letters).await?);
    }
    if all || args.what == "schedule" {
        let mut runs = Vec::new();
        for hosts in [1, 2] {
            runs.push(schedule(hosts, args.schedule_seconds, args.fetch_wait_ms).await?);
        }
        results.insert("schedule".into(), serde_json::Value::Array(runs));
    }
    Ok(serde_json::Value::Object(results))
}

/// Firing skew: a schedule firing every second runs for `seconds` on
/// `hosts` hosts (real clock, in-process mock broker). Reports, per
/// firing, the delay from its scheduled time to the firing record's
/// timestamp (produced) and to the actor's output's timestamp (handled),
/// plus firings missed or fired twice.
///
/// The mock broker answers a fetch only when `fetch.wait.max.ms` (500 ms by
/// default) runs out, where Kafka answers as soon as a record arrives, so
/// the handled delay on the mock is mostly that wait; `fetch_wait_ms` sets it.
async fn schedule(
    hosts: usize,
    seconds: u64,
    fetch_wait_ms: Option<u64>,
) -> Result<serde_json::Value> {
    let kafka = Broker::new(None);
    let name = format!("skew{hosts}");
    let input = kafka.topic(&format!("bench.{name}.in"), 1).await?;
    let out = kafka.topic(&format!("bench.{name}.out"), 1).await?;
    let fired_topic = kafka.topic(&format!("wactor.{name}.schedule"), 1).await?;
    let spec = manifest(
        &name,
        &input,
        &format!(
            "[[schedules]]\nname = \"each-second\"\ncron = \"* * * * * *\"\n\
             payload = '{{\"seq\": {{{{scheduled_unix_ms}}}}}}'\ncatch_up = \"skip\"\n\
             [config]\nout_topic = \"{out}\"\n"
        ),
    );
    let dirs: Vec<_> = (0..hosts)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let mut running = Vec::new();
    for dir in &dirs {
        let mut settings = kafka.settings();
        if let Some(wait) = fetch_wait_ms {
            settings
                .consumer
                .insert("fetch.wait.max.ms".into(), wait.to_string());
        }
        let host = Host::new(dir.path(), settings);
        let (consumer, slot) = host.run("fixture-scripted", &spec).await;
        running.push((host, consumer, slot));
    }
    // Let the group settle before the measured window.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(30)
        && running
            .iter()
            .any(|(_, consumer, _)| consumer.status().partitions().is_empty())
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window_start = now_ms()?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let window_end = now_ms()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (_, consumer, _) in running {
        consumer.stop().await;
    }
    let brokers = kafka.brokers.clone();
    let (firings, outputs) = tokio::task::spawn_blocking(move || {
        Ok::<_, anyhow::Error>((
            timestamps(&brokers, &fired_topic)?,
            timestamps(&brokers, &out)?,
        ))
    })
    .await??;
    let in_window = |scheduled: &i64| *scheduled >= window_start && *scheduled < window_end;
    let mut produced = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut twice = 0usize;
    for (scheduled, ts) in firings.iter().filter(|(s, _)| in_window(s)) {
        if !seen.insert(*scheduled) {
            twice += 1;
            continue;
        }
        produced.push(Duration::from_millis(
            ts.saturating_sub(*scheduled).max(0) as u64
        ));
    }
    let expected = (window_start.div_euclid(1000) + 1..=(window_end - 1).div_euclid(1000))
        .map(|s| s * 1000)
        .collect::<Vec<_>>();
    let missed = expected.iter().filter(|s| !seen.contains(s)).count();
    let mut handled: Vec<Duration> = outputs
        .iter()
        .filter(|(s, _)| in_window(s))
        .map(|(s, ts)| Duration::from_millis(ts.saturating_sub(*s).max(0) as u64))
        .collect();
    let produced = Summary::of(&mut produced);
    let handled = Summary::of(&mut handled);
    let ms = |us: f64| us / 1000.0;
    println!(
        "schedule skew ({hosts} host(s), every second for {seconds} s, {}):",
        kafka.describe()
    );
    println!(
        "  fired (record timestamp - scheduled)   median {:>6.1} ms  p99 {:>6.1} ms  ({} firings)",
        ms(produced.median_us),
        ms(produced.p99_us),
        produced.samples
    );
    println!(
        "  handled (output timestamp - scheduled) median {:>6.1} ms  p99 {:>6.1} ms",
        ms(handled.median_us),
        ms(handled.p99_us)
    );
    println!(
        "  missed {missed} of {}, fired twice {twice}",
        expected.len()
    );
    if missed > 0 || twice > 0 {
        bail!("{hosts} host(s): missed {missed} firings, fired {twice} twice");
    }
    Ok(serde_json::json!({
        "hosts": hosts,
        "seconds": seconds,
        "fired": produced,
        "handled": handled,
        "missed": missed,
        "fired_twice": twice,
        "fetch_wait_ms": fetch_wait_ms,
    }))
}

fn now_ms() -> Result<i64> {
    Ok(i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?)
}

/// (scheduled ms, record timestamp ms) of every record of `topic`: the
/// scheduled time from the `seq` of its JSON value.
fn timestamps(brokers: &str, topic: &str) -> Result<Vec<(i64, i64)>> {
    let consumer: BaseConsumer = KafkaSettings::new(brokers).reader_config().create()?;
    let (low, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(5))?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Offset(low))?;
    consumer.assign(&tpl)?;
    let mut found = Vec::new();
    let started = Instant::now();
    let mut next = low;
    while next < high && started.elapsed() < Duration::from_secs(30) {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message?;
        next = message.offset() + 1;
        let value: serde_json::Value = message
            .payload()
            .and_then(|v| serde_json::from_slice(v).ok())
            .unwrap_or_default();
        if let (Some(seq), Some(ts)) = (value["seq"].as_i64(), message.timestamp().to_millis()) {
            found.push((seq, ts));
        }
    }
    Ok(found)
}

/// Replay throughput: a no-op actor handles `n` records live, then a
/// replay of all of them is fed (copied to `<group>.replay`) and handled
/// again; reports records/s fed and handled end to end.
async fn replay(n: usize, external: Option<&str>) -> Result<serde_json::Value> {
    use wactor_kafka::replay::{feed, plan, ReplayRun, ReplaySpec, ReplayState};
    let kafka = Broker::new(external);
    let topic = kafka.topic("bench.replay", 4).await?;
    let payload = format!("{{\"filler\":\"{}\"}}", "x".repeat(80));
    let from_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 1000;
    fill(&kafka.brokers, &topic, n, &payload).await?;
    let dir = tempfile::tempdir()?;
    let (_host, name, consumer, done) = noop_actor(&kafka, dir.path(), "replayed", &topic).await;
    let (live, _) = watch(done.clone(), n).await?;
    if live < n {
        bail!("the actor handled {live} of {n} live events");
    }
    let settings = kafka.settings();
    let ranges = {
        let settings = settings.clone();
        let topics = vec![topic.clone()];
        tokio::task::spawn_blocking(move || plan(&settings, &topics, None, from_ms, None)).await??
    };
    let run = Arc::new(ReplayRun::new(
        ReplaySpec {
            id: "bench".into(),
            actor: name.clone(),
            group: format!("wactor.{name}"),
            from_ms,
            to_ms: None,
            version: None,
            rate: None,
            ranges,
        },
        from_ms,
        "bench".into(),
    ));
    let started = Instant::now();
    let feeder = tokio::spawn(feed(
        run.clone(),
        settings.clone(),
        Producer::new(&settings)?,
        settings.changelog_partitions,
    ));
    // The first MAX_UNHANDLED records are fed as fast as the feeder goes;
    // after them it waits for the actor's commits.
    let ahead = n.min(wactor_kafka::replay::MAX_UNHANDLED as usize);
    let fed_at = {
        let run = run.clone();
        tokio::spawn(async move {
            let mut ahead_at = None;
            while (run.progress().fed as usize) < n && !run.progress().state.is_final() {
                if ahead_at.is_none() && run.progress().fed as usize >= ahead {
                    ahead_at = Some(started.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let all = started.elapsed();
            (ahead_at.unwrap_or(all), all)
        })
    };
    let (handled, _) = watch(done, 2 * n).await?;
    let handled_at = started.elapsed();
    let (ahead_at, fed_at) = fed_at.await?;
    feeder.await?;
    consumer.stop().await;
    let progress = run.progress();
    if handled < 2 * n || progress.state != ReplayState::Done {
        bail!(
            "replay ended {:?}: fed {}, handled {} of {n}; {progress:?}",
            progress.state,
            progress.fed,
            handled - n
        );
    }
    let ahead_per_s = ahead as f64 / ahead_at.as_secs_f64();
    let fed_per_s = n as f64 / fed_at.as_secs_f64();
    let handled_per_s = n as f64 / handled_at.as_secs_f64();
    println!(
        "replay ({n} records of ~100 bytes, 4 partitions, no-op actor, {}):",
        kafka.describe()
    );
    println!("  fed, the first {ahead:<6} (ahead)    {ahead_per_s:>10.0} records/s");
    println!("  fed (copied to <group>.replay)    {fed_per_s:>10.0} records/s");
    println!("  handled again, end to end         {handled_per_s:>10.0} records/s");
    Ok(serde_json::json!({
        "broker": kafka.describe(),
        "records": n,
        "fed_ahead_per_s": ahead_per_s,
        "fed_per_s": fed_per_s,
        "handled_per_s": handled_per_s,
    }))
}

/// Re-drive rate: `n` dead letters (an actor that declares every event
/// dead, in-process mock broker) re-driven by one request with no rate
/// limit; the time from the request to its report (every re-drive
/// acknowledged and its letter removed). Twice: first while the re-driven
/// events die again (not waited for, but on the same cores, writing their
/// letters again), then, once they are all back, with a version that
/// handles them (`fixture-noop`), which shows the re-drive's own cost.
async fn redrive(n: usize) -> Result<serde_json::Value> {
    use wactor_tests::kafka::{eventually, produce};
    let kafka = Kafka::start();
    kafka.topic("bench.doomed", 4);
    let dir = tempfile::tempdir()?;
    let host = Host::new(dir.path(), kafka.settings());
    let registry = host.registry();
    let deploy = |guest: &'static str| {
        let registry = &registry;
        async move {
            let component = wactor_tests::guest_bytes(guest);
            registry
                .deploy(Upload {
                    manifest_toml: &manifest("doomed", "bench.doomed", "max_in_flight = 64"),
                    component: &component,
                    uploaded_by: "bench",
                    notes: "",
                    activate: true,
                })
                .await
        }
    };
    deploy("fixture-scripted").await?;
    let records: Vec<_> = (0..n)
        .map(|i| {
            (
                Some(format!("k{i}")),
                format!("{{\"seq\": {i}, \"dead\": true}}"),
            )
        })
        .collect();
    produce(&kafka.brokers, "bench.doomed", &records).await;
    let letters = host.store.dead_letters();
    if !eventually(Duration::from_secs(300), || letters.len() == n).await {
        bail!("{} of {n} events were dead-lettered", letters.len());
    }
    let dying = redrive_once(&registry, n).await?;
    // Every letter back (died again, one re-drive counted), then a
    // version that handles them.
    if !eventually(Duration::from_secs(300), || {
        letters
            .list(&Default::default(), 10_000, None)
            .is_ok_and(|page| page.items.len() == n && page.items.iter().all(|d| d.redrives == 1))
    })
    .await
    {
        bail!("{} of {n} re-driven events died again", letters.len());
    }
    deploy("fixture-noop").await?;
    let handled = redrive_once(&registry, n).await?;
    let (dying_s, handled_s) = (
        n as f64 / dying.as_secs_f64(),
        n as f64 / handled.as_secs_f64(),
    );
    println!("redrive ({n} dead letters, no rate limit, librdkafka mock in process):");
    println!("  re-driven and removed, dying again {dying_s:>9.0} letters/s ({dying:.2?})");
    println!("  re-driven and removed, handled     {handled_s:>9.0} letters/s ({handled:.2?})");
    registry.shutdown().await;
    Ok(serde_json::json!({
        "broker": "librdkafka mock, in process",
        "letters": n,
        "seconds": dying.as_secs_f64(),
        "per_s": dying_s,
        "handled_seconds": handled.as_secs_f64(),
        "handled_per_s": handled_s,
    }))
}

/// One re-drive of every letter (`n` of them); how long it took.
async fn redrive_once(registry: &wactor_registry::Registry, n: usize) -> Result<Duration> {
    let started = Instant::now();
    let report = registry
        .redrive(wactor_registry::RedriveRequest {
            by: "bench".into(),
            ..wactor_registry::RedriveRequest::default()
        })
        .await?;
    let took = started.elapsed();
    if report.redriven != n {
        bail!(
            "re-drove {} of {n}: {:?}",
            report.redriven,
            report.failed.first()
        );
    }
    Ok(took)
}

/// A host in `dir` running `fixture-noop` (`max_in_flight = 64`) as
/// `<prefix><run suffix>` on `topic`: the host (keep it for the run), the
/// actor's name, consumer and done counter.
async fn noop_actor(
    kafka: &Broker,
    dir: &std::path::Path,
    prefix: &str,
    topic: &str,
) -> (Host, String, ActorConsumer, prometheus::IntCounter) {
    guest_actor(kafka, dir, prefix, topic, "fixture-noop").await
}

/// [`noop_actor`] with another guest (`fixture-noop-batch`: the same
/// actor with the batch export).
async fn guest_actor(
    kafka: &Broker,
    dir: &std::path::Path,
    prefix: &str,
    topic: &str,
    guest: &str,
) -> (Host, String, ActorConsumer, prometheus::IntCounter) {
    let host = Host::new(dir, kafka.settings());
    let name = format!("{prefix}{}", kafka.suffix.replace('.', "-"));
    let (consumer, _slot) = host
        .run(guest, &manifest(&name, topic, "max_in_flight = 64"))
        .await;
    let done = host
        .metrics
        .events_total
        .with_label_values(&[&name, "1", "done"]);
    (host, name, consumer, done)
}

/// The broker of a run: the in-process mock, or an external one
/// (`--brokers`), where topic names get a per-run suffix.
pub(crate) struct Broker {
    mock: Option<Kafka>,
    pub(crate) brokers: String,
    suffix: String,
}

impl Broker {
    pub(crate) fn new(external: Option<&str>) -> Self {
        match external {
            None => {
                let kafka = Kafka::start();
                let brokers = kafka.brokers.clone();
                Broker {
                    mock: Some(kafka),
                    brokers,
                    suffix: String::new(),
                }
            }
            Some(brokers) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                Broker {
                    mock: None,
                    brokers: brokers.to_string(),
                    suffix: format!(".{nanos}"),
                }
            }
        }
    }

    /// Creates `name` (with the run's suffix) and returns its full name.
    pub(crate) async fn topic(&self, name: &str, partitions: i32) -> Result<String> {
        let full = format!("{name}{}", self.suffix);
        match &self.mock {
            Some(kafka) => kafka.topic(&full, partitions),
            None => {
                wactor_kafka::admin::ensure_topics(
                    &KafkaSettings::new(&self.brokers),
                    &[wactor_kafka::admin::TopicSpec::plain(&full, partitions)],
                )
                .await?
            }
        }
        Ok(full)
    }

    /// Host settings for this broker.
    pub(crate) fn settings(&self) -> KafkaSettings {
        let mut settings = match &self.mock {
            Some(kafka) => kafka.settings(),
            None => {
                let mut settings = KafkaSettings::new(&self.brokers);
                settings.changelog_partitions = 4;
                settings
            }
        };
        settings.commit_interval = Duration::from_millis(500);
        settings.max_buffered_per_partition = 100_000;
        settings.handle_spans = HANDLE_SPANS.get().copied().unwrap_or_default();
        settings
    }

    pub(crate) fn describe(&self) -> String {
        match &self.mock {
            Some(_) => "in-process mock broker".into(),
            None => format!("broker {}", self.brokers),
        }
    }
}

/// When the hosts of this process's runs make their calls' `handle` span
/// (`main` sets it with the subscriber; `Always` when unset).
static HANDLE_SPANS: std::sync::OnceLock<wactor_kafka::HandleSpans> = std::sync::OnceLock::new();

/// Sets [`HANDLE_SPANS`]; the first setting wins.
pub(crate) fn set_handle_spans(spans: wactor_kafka::HandleSpans) {
    let _ = HANDLE_SPANS.set(spans);
}

/// Produces `n` small records with 1000 keys, waiting for all acks.
pub(crate) async fn fill(brokers: &str, topic: &str, n: usize, payload: &str) -> Result<()> {
    let producer = Producer::new(&KafkaSettings::new(brokers))?;
    let mut pending = Vec::with_capacity(10_000);
    for i in 0..n {
        pending.push(producer.enqueue(&OutRecord {
            topic: topic.to_string(),
            partition: None,
            key: Some(format!("key-{}", i % 1000).into_bytes()),
            payload: Some(payload.as_bytes().to_vec()),
            headers: Vec::new(),
        }));
        if pending.len() == 10_000 {
            for delivery in pending.drain(..) {
                delivery.await?;
            }
        }
    }
    for delivery in pending {
        delivery.await?;
    }
    Ok(())
}

/// Events/s of a bare consumer loop and of a no-op actor on the same broker.
async fn throughput(
    n: usize,
    external: Option<&str>,
    only: Option<&str>,
) -> Result<serde_json::Value> {
    if !matches!(only, None | Some("bare") | Some("wactor") | Some("batch")) {
        bail!("--only takes `bare`, `wactor` or `batch`, not {only:?}");
    }
    let runs = |side: &str| only.is_none() || only == Some(side);
    let kafka = Broker::new(external);
    let bare_topic = kafka.topic("bench.bare", 4).await?;
    let actor_topic = kafka.topic("bench.actor", 4).await?;
    let batch_topic = kafka.topic("bench.batch", 4).await?;
    let payload = format!("{{\"filler\":\"{}\"}}", "x".repeat(80));
    if runs("bare") {
        fill(&kafka.brokers, &bare_topic, n, &payload).await?;
    }
    if runs("wactor") {
        fill(&kafka.brokers, &actor_topic, n, &payload).await?;
    }
    if runs("batch") {
        fill(&kafka.brokers, &batch_topic, n, &payload).await?;
    }

    // The bare loop: poll and count, offsets auto-stored and committed.
    let (bare, bare_cpu) = if !runs("bare") {
        (f64::NAN, None)
    } else {
        let brokers = kafka.brokers.clone();
        let topic = bare_topic.clone();
        let group = format!("bench-bare{}", kafka.suffix);
        tokio::task::spawn_blocking(move || -> Result<(f64, Option<Duration>)> {
            let mut cpu_before = None;
            let consumer: BaseConsumer = KafkaSettings::new(&brokers)
                .consumer_config(&group)
                .set("enable.auto.offset.store", "true")
                .create()?;
            consumer.subscribe(&[topic.as_str()])?;
            let mut count = 0usize;
            let mut first = None;
            let deadline = Instant::now() + Duration::from_secs(300);
            while count < n && Instant::now() < deadline {
                if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                    let message = message?;
                    std::hint::black_box(message.payload());
                    if first.is_none() {
                        first = Some(Instant::now());
                        cpu_before = crate::stats::process_cpu();
                    }
                    count += 1;
                }
            }
            let first = first.context("the bare consumer read nothing")?;
            let rate = count as f64 / first.elapsed().as_secs_f64();
            let cpu = crate::stats::process_cpu()
                .zip(cpu_before)
                .map(|(after, before)| after.saturating_sub(before));
            Ok((rate, cpu))
        })
        .await??
    };

    let actor_side = |prefix: &'static str, topic: String, guest: &'static str| {
        let kafka = &kafka;
        async move {
            let dir = tempfile::tempdir()?;
            let (_host, _, consumer, done) =
                guest_actor(kafka, dir.path(), prefix, &topic, guest).await;
            let (handled, elapsed, cpu) = watch_with_cpu(done, n).await?;
            consumer.stop().await;
            if handled < n {
                bail!("the actor {guest} handled {handled} of {n} events");
            }
            Ok((handled as f64 / elapsed.as_secs_f64(), cpu))
        }
    };
    let (wactor, wactor_cpu) = if runs("wactor") {
        actor_side("noop", actor_topic, "fixture-noop").await?
    } else {
        (f64::NAN, None)
    };
    let (batch, batch_cpu) = if runs("batch") {
        actor_side("batch", batch_topic, "fixture-noop-batch").await?
    } else {
        (f64::NAN, None)
    };
    // Events per second of CPU: the process's CPU time (every thread,
    // the in-process mock broker's too) from the side's first event to its
    // last.
    let per_cpu = |cpu: Option<Duration>| {
        cpu.filter(|c| !c.is_zero())
            .map_or(f64::NAN, |c| n as f64 / c.as_secs_f64())
    };
    let (bare_per_cpu, wactor_per_cpu, batch_per_cpu) =
        (per_cpu(bare_cpu), per_cpu(wactor_cpu), per_cpu(batch_cpu));
    let ratio = wactor / bare;
    let batch_ratio = batch / bare;
    println!(
        "throughput ({n} records of ~100 bytes, 4 partitions, 1000 keys, {}):",
        kafka.describe()
    );
    println!("  bare rdkafka consumer loop   {bare:>10.0} events/s");
    println!("  wactor, no-op actor (warm)   {wactor:>10.0} events/s   {ratio:.2}x");
    println!("  wactor, batch export         {batch:>10.0} events/s   {batch_ratio:.2}x");
    println!(
        "  events per CPU-second         bare {bare_per_cpu:>10.0}   wactor {wactor_per_cpu:>10.0} ({:.2}x)   batch {batch_per_cpu:>10.0} ({:.2}x)",
        wactor_per_cpu / bare_per_cpu,
        batch_per_cpu / bare_per_cpu
    );
    Ok(serde_json::json!({
        "broker": kafka.describe(),
        "events": n,
        "bare_events_per_s": bare,
        "wactor_events_per_s": wactor,
        "batch_events_per_s": batch,
        "ratio": ratio,
        "batch_ratio": batch_ratio,
        "bare_events_per_cpu_s": bare_per_cpu,
        "wactor_events_per_cpu_s": wactor_per_cpu,
        "batch_events_per_cpu_s": batch_per_cpu,
    }))
}

/// Watches a done counter from an OS thread (a tokio task could be
/// starved by the very work it times) and returns how many events were
/// done and the time from the first to the `n`th (or to the 300 s limit).
pub(crate) async fn watch(done: prometheus::IntCounter, n: usize) -> Result<(usize, Duration)> {
    let (handled, elapsed, _) = watch_with_cpu(done, n).await?;
    Ok((handled, elapsed))
}

/// [`watch`], plus the process's CPU time from the first event to the
/// `n`th (`None` without `/proc/self/stat`).
pub(crate) async fn watch_with_cpu(
    done: prometheus::IntCounter,
    n: usize,
) -> Result<(usize, Duration, Option<Duration>)> {
    tokio::task::spawn_blocking(move || {
        let mut cpu_at_first = None;
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut first = None;
        let trace = std::env::var_os("WACTOR_BENCH_PROGRESS").is_some();
        let mut last = Instant::now();
        while (done.get() as usize) < n && Instant::now() < deadline {
            if done.get() > 0 && first.is_none() {
                first = Some(Instant::now());
                cpu_at_first = crate::stats::process_cpu();
            }
            if trace && last.elapsed() >= Duration::from_millis(50) {
                last = Instant::now();
                eprintln!(
                    "progress: {} ms after the first event, {} done",
                    first.map_or(0, |f| f.elapsed().as_millis()),
                    done.get()
                );
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let first = first.context("nothing was handled")?;
        let cpu = crate::stats::process_cpu()
            .zip(cpu_at_first)
            .map(|(after, before)| after.saturating_sub(before));
        Ok((done.get() as usize, first.elapsed(), cpu))
    })
    .await?
}

/// Host cost per event without Kafka: the worker's call path and the lane
/// and offset bookkeeping.
async fn overhead(iterations: usize) -> Result<serde_json::Value> {
    let kafka = Broker::new(None);
    let dir = tempfile::tempdir()?;
    let host = Host::new(dir.path(), kafka.settings());
    let mut out = serde_json::Map::new();
    println!("host overhead per event, no Kafka ({iterations} calls per mode):");
    for mode in ["warm", "fresh"] {
        let spec = manifest(
            "noop",
            "bench.none",
            &format!("[instances]\nmode = \"{mode}\""),
        );
        let slot = Arc::new(VersionSlot::new(host.load("fixture-noop", &spec, 1)));
        let version = slot.current().context("no version")?;
        let versions: Arc<dyn VersionSource> = slot;
        let ctx = Arc::new(ActorContext::new(
            &version.manifest,
            versions,
            host.store.clone(),
            host.producer.clone(),
            host.metrics.clone(),
            host.settings.clone(),
            host.clock.clone(),
        )?);
        let reader = wactor_kafka::state_changelog::ScopedStateReader::shared(
            ctx.state.clone(),
            "bench.none",
            0,
        );
        let mut scheduler: LaneScheduler<Arc<Event>> = LaneScheduler::new(OrderingMode::Key, 64);
        let mut offsets = OffsetTracker::new();
        let mut samples = Vec::with_capacity(iterations);
        let mut invoke_only = Vec::with_capacity(iterations);
        for i in 0..iterations + 1_000 {
            let event = Arc::new(Event {
                topic: "bench.none".into(),
                partition: 0,
                offset: i as i64,
                timestamp_ms: None,
                key: Some(format!("key-{}", i % 1000).into_bytes()),
                payload: Some(b"{}".to_vec()),
                headers: Vec::new(),
                attempt: 1,
            });
            let started = Instant::now();
            offsets.track(event.offset)?;
            let key = event.key.clone();
            scheduler.push(key.as_deref(), event);
            let (lane, event) = scheduler.next_ready().context("nothing ready")?;
            // As a partition worker calls it: with its scope's reader.
            let report = wactor_kafka::call::run_scoped(
                ctx.clone(),
                Some(version.clone()),
                event.clone(),
                reader.clone(),
            )
            .await;
            scheduler.complete(lane)?;
            offsets.finish(event.offset);
            let total = started.elapsed();
            if report.outcome != wactor_kafka::call::CallOutcome::Done {
                bail!("the no-op actor did not return done: {:?}", report.outcome);
            }
            if i >= 1_000 {
                samples.push(total);
                let started = Instant::now();
                let reader: Arc<dyn wactor_runtime::StateReader> =
                    Arc::new(wactor_runtime::EmptyState);
                std::hint::black_box(version.actor.invoke(&event, reader).await);
                invoke_only.push(started.elapsed());
            }
        }
        let with_host = Summary::of(&mut samples);
        let invoke = Summary::of(&mut invoke_only);
        println!(
            "  {mode:<5} call path + bookkeeping: median {:>6.2} µs  p99 {:>6.2} µs   (runtime invoke alone: median {:>6.2} µs)",
            with_host.median_us, with_host.p99_us, invoke.median_us
        );
        out.insert(
            mode.into(),
            serde_json::json!({ "host_path": with_host, "invoke_only": invoke }),
        );
    }
    Ok(serde_json::Value::Object(out))
}

/// A 10 ms actor over 1000 keys on one partition: `key` vs `partition`.
async fn ordering(external: Option<&str>) -> Result<serde_json::Value> {
    let kafka = Broker::new(external);
    let mut rates = BTreeMap::new();
    println!("ordering (one partition, 1000 keys, an actor that sleeps 10 ms):");
    for (mode, events, in_flight) in [("partition", 300usize, 1usize), ("key", 8_000, 256)] {
        let topic = kafka.topic(&format!("bench.order.{mode}"), 1).await?;
        fill(&kafka.brokers, &topic, events, "x").await?;
        let dir = tempfile::tempdir()?;
        let host = Host::new(dir.path(), kafka.settings());
        let name = format!("order-{mode}{}", kafka.suffix.replace('.', "-"));
        let (consumer, _slot) = host
            .run(
                "fixture-sleep",
                &manifest(
                    &name,
                    &topic,
                    &format!(
                        "ordering = \"{mode}\"\nmax_in_flight = {in_flight}\n[config]\nsleep_ms = \"10\""
                    ),
                ),
            )
            .await;
        let done = host
            .metrics
            .events_total
            .with_label_values(&[&name, "1", "done"]);
        let (handled, elapsed) = watch(done, events).await?;
        let rate = handled as f64 / elapsed.as_secs_f64();
        consumer.stop().await;
        println!("  {mode:<9} max_in_flight {in_flight:>3}: {rate:>8.0} events/s");
        rates.insert(mode, rate);
    }
    let ratio = rates["key"] / rates["partition"];
    println!("  key / partition: {ratio:.1}x");
    Ok(serde_json::json!({
        "partition_events_per_s": rates["partition"],
        "key_events_per_s": rates["key"],
        "ratio": ratio,
    }))
}

/// Upload-to-first-event of a new component, and rollback-to-first-event,
/// while events flow.
async fn swap() -> Result<serde_json::Value> {
    let kafka = Broker::new(None);
    kafka.topic("bench.swap", 1).await?;
    kafka.topic("bench.swap.out", 1).await?;
    let dir = tempfile::tempdir()?;
    let mut settings = kafka.settings();
    // Fetch often: the figure is the host's swap, not the broker's batching.
    settings
        .consumer
        .insert("fetch.wait.max.ms".into(), "5".into());
    let host = Host::new(dir.path(), settings);
    let registry = host.registry();
    let spec = manifest(
        "swapped",
        "bench.swap",
        "[config]\nout_topic = \"bench.swap.out\"",
    );
    let v1 = wactor_tests::guest_bytes("fixture-scripted");
    let v2 = wactor_tests::guest_bytes("fixture-checker");
    let upload = |component| Upload {
        manifest_toml: &spec,
        component,
        uploaded_by: "bench",
        notes: "",
        activate: true,
    };
    registry.deploy(upload(&v1)).await?;

    // A steady stream: one event per millisecond, increasing seqs.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let brokers = kafka.brokers.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let producer = match Producer::new(&KafkaSettings::new(&brokers)) {
                Ok(producer) => producer,
                Err(_) => return,
            };
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seq += 1;
                // Fire and forget: the acknowledgement is not awaited.
                drop(producer.enqueue(&OutRecord {
                    topic: "bench.swap".into(),
                    partition: None,
                    key: Some(format!("k{seq}").into_bytes()),
                    payload: Some(format!("{{\"seq\": {seq}}}").into_bytes()),
                    headers: Vec::new(),
                }));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    read_until(
        &kafka.brokers,
        "bench.swap.out",
        Duration::from_secs(60),
        |r| r.len() >= 100,
    )
    .await;

    // "First event on a version": the version's done counter moves,
    // watched from an OS thread (broker fetch latency is not the host's).
    let done_of = |version: &str| {
        host.metrics
            .events_total
            .with_label_values(&["swapped", version, "done"])
    };
    let started = Instant::now();
    let deployed = registry.deploy(upload(&v2)).await?;
    let upload_to_event = first_increase(done_of("2"), started).await;

    let started = Instant::now();
    registry.rollback("swapped", None, "bench").await?;
    let rollback_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rollback_to_event = first_increase(done_of("1"), started).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = feeder.await;
    registry.shutdown().await;

    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    println!("hot swap (one event per ms flowing):");
    println!(
        "  deploy of a new component: compile {:.1} ms, deploy call {:.1} ms, upload to first event on it {:.1} ms",
        deployed.compile_ms,
        deployed.total_ms,
        ms(upload_to_event).unwrap_or(f64::NAN)
    );
    println!(
        "  rollback: the call {:.2} ms, to first event on the old version {:.1} ms",
        rollback_ms,
        ms(rollback_to_event).unwrap_or(f64::NAN)
    );
    Ok(serde_json::json!({
        "compile_ms": deployed.compile_ms,
        "deploy_call_ms": deployed.total_ms,
        "upload_to_first_event_ms": ms(upload_to_event),
        "rollback_call_ms": rollback_ms,
        "rollback_to_first_event_ms": ms(rollback_to_event),
    }))
}

/// How long after `since` the counter first moved (up to 60 s).
async fn first_increase(counter: prometheus::IntCounter, since: Instant) -> Option<Duration> {
    let from = counter.get();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if counter.get() > from {
                return Some(since.elapsed());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// The state changelog's cost per event and a partition's restore time.
///
/// On the in-process mock the restore is only honest up to its partition
/// limits (100,000 records or 5 MiB, oldest dropped first, no compaction):
/// measure 100,000 keys against a real broker (`--brokers`, e.g. Tansu).
async fn state(n: usize, keys: usize, external: Option<&str>) -> Result<serde_json::Value> {
    // The rates on the in-process mock (with Tansu 0.6 the group never
    // starts consuming here); the restore on `--brokers` when given.
    let kafka = Broker::new(None);
    let mut rates = BTreeMap::new();
    for on in [false, true] {
        let label = if on { "on" } else { "off" };
        let topic = kafka.topic(&format!("bench.state.{label}"), 4).await?;
        let producer = Producer::new(&KafkaSettings::new(&kafka.brokers))?;
        let mut pending = Vec::with_capacity(n);
        for i in 0..n {
            pending.push(producer.enqueue(&OutRecord {
                topic: topic.clone(),
                partition: None,
                key: Some(format!("key-{}", i % 1000).into_bytes()),
                payload: Some(format!("{{\"seq\": {i}}}").into_bytes()),
                headers: Vec::new(),
            }));
        }
        for delivery in pending {
            delivery.await?;
        }
        let dir = tempfile::tempdir()?;
        let mut settings = kafka.settings();
        settings.state_changelog = on;
        let host = Host::new(dir.path(), settings);
        let name = format!("checker-{label}");
        let (consumer, _slot) = host
            .run(
                "fixture-checker",
                &manifest(&name, &topic, "max_in_flight = 64"),
            )
            .await;
        let done = host
            .metrics
            .events_total
            .with_label_values(&[&name, "1", "done"]);
        let (handled, elapsed) = watch(done, n).await?;
        consumer.stop().await;
        if handled < n {
            bail!("the actor handled {handled} of {n} events (state changelog {label})");
        }
        rates.insert(label, handled as f64 / elapsed.as_secs_f64());
    }
    let (off, on) = (rates["off"], rates["on"]);
    let overhead_us = (1.0 / on - 1.0 / off) * 1e6;

    // Restore: one scope of `keys` keys (values of ~40 bytes) written to
    // the changelog, read into an empty store.
    let restore_broker = Broker::new(external);
    let settings = restore_broker.settings();
    let changelog = wactor_kafka::state_changelog::StateChangelog::open(
        &settings,
        format!("bench.restore{}.state", restore_broker.suffix),
    )
    .await?;
    let producer = Producer::new(&settings)?;
    let value = vec![b'v'; 40];
    let mut pending = Vec::with_capacity(keys);
    for i in 0..keys {
        let record =
            changelog.entry_record("orders", 0, &format!("reversed:b{i}"), Some(&value))?;
        pending.push(producer.enqueue(&record));
    }
    pending.push(producer.enqueue(&changelog.mark_record("orders", 0)?));
    for delivery in pending {
        delivery.await?;
    }
    let dir = tempfile::tempdir()?;
    let store = wactor_store::Store::open(&dir.path().join("store"))?;
    let actor_state = store.actor_state("restore")?;
    let restored = {
        let producer = producer.clone();
        tokio::task::spawn_blocking(move || {
            wactor_kafka::state_changelog::restore_scope(
                &actor_state,
                Some(&changelog),
                &settings,
                &producer,
                "orders",
                0,
                &std::sync::atomic::AtomicBool::new(false),
            )
        })
        .await?
        .map_err(anyhow::Error::msg)?
    };
    if restored.keys != keys {
        bail!("restored {} of {keys} keys", restored.keys);
    }
    let restore_s = restored.took.as_secs_f64();
    println!("state changelog ({n} events of an actor writing one key each, 4 partitions, 1000 keys, {}):", kafka.describe());
    println!("  changelog off                {off:>10.0} events/s");
    println!("  changelog on                 {on:>10.0} events/s");
    println!("  overhead per event           {overhead_us:>10.1} us");
    println!(
        "  restore of {keys} keys ({})  {restore_s:>10.2} s",
        restore_broker.describe()
    );
    Ok(serde_json::json!({
        "broker": kafka.describe(),
        "events": n,
        "off_events_per_s": off,
        "on_events_per_s": on,
        "overhead_per_event_us": overhead_us,
        "restore_broker": restore_broker.describe(),
        "restore_keys": keys,
        "restore_s": restore_s,
    }))
}
