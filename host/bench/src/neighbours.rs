//! The neighbours suite (issue 9): how much of its throughput a
//! well-behaved actor keeps while hostile actors run on the same host.
//!
//! One host (one store, runtime, producer, metrics, tokio runtime) on the
//! in-process mock broker. The neighbour (`fixture-noop` by default, warm,
//! `max_in_flight = 64`, 4 partitions) reads the same preloaded topic in
//! every phase under a new name (so a new consumer group that starts from
//! the beginning); its rate is from its first event done to its last.
//!
//! Phases: the neighbour alone; beside each hostile behaviour on its own;
//! beside all of them at once with the manifest defaults; beside all of
//! them with `max_in_flight = 1`. A discarded warm-up phase (the neighbour
//! alone) comes first; then every phase runs `--rounds` times (3 by
//! default), in turn, and each phase's rate is the median of its rounds; a
//! ratio is a phase's median over the median of the neighbour alone. (One
//! round of 100,000 events lasts under a second on 2 cores, and single
//! rounds varied by more than the effect measured.) The hostile actors:
//!
//! - `loop`: `fixture-loop`, spins until its `call_timeout` (50 ms);
//! - `memory-hog`: `fixture-memory-hog`, allocates 1 MiB at a time until
//!   its 16 MiB memory limit traps it;
//! - `recurse`: `fixture-recurse`, recurses until the stack overflows;
//! - `trap`: `fixture-trap`, panics on every event;
//! - `flood`: `fixture-hostile`, fills every per-call limit (16 x 1 MiB of
//!   state, 5000 log lines of 4 KiB, 10 MB of stdout, a 1 MiB emit), then
//!   asks for a retry, so the host captures, bounds and drops it all.
//!
//! Each hostile actor retries every event forever (1 ms backoff) on two
//! partitions with 256 distinct keys, so it stays hostile for the whole
//! phase, whatever its speed: every failed attempt is a held event written
//! to the store and to the changelog, as in production. The phase starts
//! the neighbour only once every hostile actor is busy, and counts the
//! hostile calls during the neighbour's run.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use wactor_kafka::ActorConsumer;
use wactor_tests::kafka::{manifest, produce, Host, Kafka};

use crate::kafka::{fill, watch};

/// Arguments of `wactor-bench neighbours`.
#[derive(Debug, Args)]
pub struct NeighboursArgs {
    /// Events the neighbour handles in each phase.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// The neighbour's component (a guest of the tests crate).
    #[arg(long, default_value = "fixture-noop")]
    pub neighbour: String,
    /// Only the neighbour alone and beside all hostile actors (both
    /// settings), not each behaviour on its own.
    #[arg(long)]
    pub quick: bool,
    /// Times each phase runs; its rate is the median.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// One hostile behaviour.
struct Hostile {
    /// Short name (also the topic's).
    kind: &'static str,
    /// Its guest.
    guest: &'static str,
    /// Extra manifest lines (limits).
    limits: &'static str,
    /// The payload of its events.
    payload: &'static str,
}

const HOSTILE: &[Hostile] = &[
    Hostile {
        kind: "loop",
        guest: "fixture-loop",
        limits: "call_timeout = \"50ms\"",
        payload: "{}",
    },
    Hostile {
        kind: "memory-hog",
        guest: "fixture-memory-hog",
        limits: "memory = \"16MiB\"",
        payload: "{}",
    },
    Hostile {
        kind: "recurse",
        guest: "fixture-recurse",
        limits: "",
        payload: "{}",
    },
    Hostile {
        kind: "trap",
        guest: "fixture-trap",
        limits: "",
        payload: "{}",
    },
    Hostile {
        kind: "flood",
        guest: "fixture-hostile",
        limits: "",
        payload: "{\"state_sets\": 16, \"state_value_bytes\": 1048576, \"past_refusals\": true, \
                  \"log_lines\": 5000, \"log_line_bytes\": 4096, \"stdout_bytes\": 10000000, \
                  \"emit_topic\": \"hostile.flood.out\", \"emit_payload_bytes\": 1048576, \
                  \"then\": \"retry\"}",
    },
];

/// Retry forever, at once: an actor that fails every event keeps failing.
const FOREVER: &str = "[retry]\nmax_attempts = 1000000\ninitial_backoff = \"1ms\"\n\
                       max_backoff = \"1ms\"\nmax_age = \"none\"\njitter = \"none\"";

/// Events on each hostile topic (distinct keys, so none waits for another).
const HOSTILE_EVENTS: usize = 256;

/// The topic the neighbour reads in every phase.
const GOOD_TOPIC: &str = "neighbours.good";

/// One phase's result.
struct Phase {
    label: String,
    rate: f64,
    /// Hostile calls per second during the neighbour's run.
    hostile_calls_per_s: f64,
}

/// Runs the suite.
pub async fn run(args: NeighboursArgs) -> Result<serde_json::Value> {
    let kafka = Kafka::start();
    kafka.topic(GOOD_TOPIC, 4);
    kafka.topic("hostile.flood.out", 1);
    for hostile in HOSTILE {
        kafka.topic(&hostile_topic(hostile), 2);
        let records: Vec<_> = (0..HOSTILE_EVENTS)
            .map(|i| (Some(format!("h{i}")), hostile.payload.to_string()))
            .collect();
        produce(&kafka.brokers, &hostile_topic(hostile), &records).await;
    }
    fill(&kafka.brokers, GOOD_TOPIC, args.events, "{}").await?;

    let dir = tempfile::tempdir()?;
    let mut settings = kafka.settings();
    settings.commit_interval = Duration::from_millis(500);
    settings.max_buffered_per_partition = 100_000;
    let host = Host::new(dir.path(), settings);
    let bench = Bench {
        host,
        events: args.events,
        neighbour: args.neighbour,
    };

    println!(
        "neighbours ({} events of the neighbour {} per phase, in-process mock broker):",
        bench.events, bench.neighbour
    );
    let all: Vec<&Hostile> = HOSTILE.iter().collect();
    let mut plan: Vec<(String, Vec<&Hostile>, Option<usize>)> =
        vec![("alone".to_string(), Vec::new(), None)];
    if !args.quick {
        for hostile in HOSTILE {
            plan.push((format!("beside {}", hostile.kind), vec![hostile], None));
        }
    }
    plan.push(("beside all five, defaults".to_string(), all.clone(), None));
    plan.push((
        "beside all five, max_in_flight = 1".to_string(),
        all.clone(),
        Some(1),
    ));

    println!("  (warm-up, discarded)");
    bench.phase(0, "warm-up", &[], None).await?;
    let rounds = args.rounds.max(1);
    let mut runs: Vec<Vec<Phase>> = plan.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        println!("  round {} of {rounds}:", round + 1);
        for (i, (label, hostile, max_in_flight)) in plan.iter().enumerate() {
            let index = 1 + round * plan.len() + i;
            runs[i].push(bench.phase(index, label, hostile, *max_in_flight).await?);
        }
    }
    let phases: Vec<Phase> = runs.into_iter().map(median).collect();

    let alone = phases[0].rate;
    let mut out = Vec::new();
    println!("medians of {rounds} round(s):");
    println!(
        "  {:<40} {:>12} {:>7} {:>18}",
        "phase", "events/s", "ratio", "hostile calls/s"
    );
    for phase in &phases {
        let ratio = phase.rate / alone;
        println!(
            "  {:<40} {:>12.0} {:>7.2} {:>18.0}",
            phase.label, phase.rate, ratio, phase.hostile_calls_per_s
        );
        out.push(serde_json::json!({
            "phase": phase.label,
            "events_per_s": phase.rate,
            "ratio": ratio,
            "hostile_calls_per_s": phase.hostile_calls_per_s,
        }));
    }
    Ok(serde_json::json!({
        "neighbour": bench.neighbour,
        "events": bench.events,
        "rounds": rounds,
        "phases": out,
    }))
}

/// The run with the median rate (of an odd count; the upper middle of an
/// even one).
fn median(mut runs: Vec<Phase>) -> Phase {
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

fn hostile_topic(hostile: &Hostile) -> String {
    format!("hostile.{}", hostile.kind)
}

struct Bench {
    host: Host,
    events: usize,
    neighbour: String,
}

impl Bench {
    /// Starts `hostile` (with `max_in_flight` if given), waits until each
    /// is busy, then times the neighbour over its topic; stops everything.
    async fn phase(
        &self,
        index: usize,
        label: &str,
        hostile: &[&Hostile],
        max_in_flight: Option<usize>,
    ) -> Result<Phase> {
        let mut running: Vec<(String, ActorConsumer)> = Vec::new();
        for h in hostile {
            let name = format!("{}-{index}", h.kind);
            let mut extra = FOREVER.to_string();
            if let Some(n) = max_in_flight {
                extra = format!("max_in_flight = {n}\n{extra}");
            }
            if !h.limits.is_empty() {
                extra.push_str(&format!("\n[limits]\n{}", h.limits));
            }
            let (consumer, _slot) = self
                .host
                .run(h.guest, &manifest(&name, &hostile_topic(h), &extra))
                .await;
            running.push((name, consumer));
        }
        // Busy: every hostile actor has made a few calls.
        let busy_by = Instant::now() + Duration::from_secs(30);
        while running.iter().any(|(name, _)| self.calls(name) < 4) {
            if Instant::now() > busy_by {
                bail!("{label}: the hostile actors did not start");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let name = format!("good-{index}");
        let (consumer, _slot) = self
            .host
            .run(
                &self.neighbour,
                &manifest(&name, GOOD_TOPIC, "max_in_flight = 64"),
            )
            .await;
        let done = self
            .host
            .metrics
            .events_total
            .with_label_values(&[&name, "1", "done"]);
        let hostile_before = self.hostile_calls(&running);
        let started = Instant::now();
        let (handled, elapsed) = watch(done, self.events).await?;
        let hostile_calls = self.hostile_calls(&running) - hostile_before;
        let hostile_calls_per_s = hostile_calls as f64 / started.elapsed().as_secs_f64();
        consumer.stop().await;
        for (_, consumer) in running {
            consumer.stop().await;
        }
        if handled < self.events {
            bail!(
                "{label}: the neighbour handled {handled} of {} events",
                self.events
            );
        }
        let rate = handled as f64 / elapsed.as_secs_f64();
        println!("  {label:<40} {rate:>12.0} events/s");
        Ok(Phase {
            label: label.to_string(),
            rate,
            hostile_calls_per_s,
        })
    }

    /// Calls made by actor `name` so far.
    fn calls(&self, name: &str) -> u64 {
        self.host
            .metrics
            .call_duration_seconds
            .with_label_values(&[name])
            .get_sample_count()
    }

    fn hostile_calls(&self, running: &[(String, ActorConsumer)]) -> u64 {
        running.iter().map(|(name, _)| self.calls(name)).sum()
    }
}
