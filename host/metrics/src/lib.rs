//! # wactor-metrics
//!
//! Every Prometheus metric the host exports, registered once in one
//! [`Registry`] and handed around as an `Arc<Metrics>`. Names are
//! `wactor_*` with units in the name. Labels are bounded: actor, version,
//! outcome, topic and partition, never keys or offsets.
//!
//! Handles are resolved per label set by the callers that use them on a hot
//! path (`with_label_values` once per worker, not per event).

use std::sync::{Arc, Mutex, OnceLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// All host metrics.
pub struct Metrics {
    registry: Registry,
    /// Events handled, by actor, version and outcome
    /// (`done`, `retry`, `dead`, `trap`).
    pub events_total: IntCounterVec,
    /// Wall time of actor calls, by actor.
    pub call_duration_seconds: HistogramVec,
    /// Records produced on behalf of actors, by actor.
    pub emitted_records_total: IntCounterVec,
    /// Produce failures of emitted records, by actor.
    pub emit_failures_total: IntCounterVec,
    /// Consumer lag per partition (messages behind the high watermark), by
    /// actor, topic and partition, set from librdkafka's statistics. Only
    /// partitions this host reads now: the consumer removes a partition's
    /// series when it stops reading it (revoked, consumer stopped).
    pub consumer_lag: IntGaugeVec,
    /// Events read from Kafka and not yet finished, by actor.
    pub buffered_events: IntGaugeVec,
    /// Times a partition was paused because its buffer was full, by actor.
    pub partition_pauses_total: IntCounterVec,
    /// Rebalances seen, by actor and kind (`assign`, `revoke`).
    pub rebalances_total: IntCounterVec,
    /// Offsets committed, by actor.
    pub commits_total: IntCounterVec,
    /// Retries scheduled (a failed attempt that will be tried again), by
    /// actor.
    pub retries_scheduled_total: IntCounterVec,
    /// Retry attempts started (held events run again), by actor.
    pub retries_fired_total: IntCounterVec,
    /// `wactor_batch_calls_total{actor,result}`: `handle-batch` calls of
    /// batch actors, by result: `batch` (taken as the actor answered) or
    /// `fallback` (failed as a whole; its events ran again one by one).
    pub batch_calls_total: IntCounterVec,
    /// `wactor_batched_events_total{actor}`: events handled by
    /// `handle-batch` calls that answered (divided by
    /// `wactor_batch_calls_total{result="batch"}`: the mean batch size).
    pub batched_events_total: IntCounterVec,
    /// `wactor_schedule_firings_total{actor,schedule}`: firings this host
    /// wrote (as the owner of `<group>.schedule`; backfills not counted).
    pub schedule_firings_total: IntCounterVec,
    /// `wactor_schedule_owner{actor}`: 1 while this host fires the actor's
    /// schedules (it owns partition 0 of `<group>.schedule`), else 0.
    pub schedule_owner: IntGaugeVec,
    /// `wactor_start_skipped_records_total{actor}`: records a new actor
    /// passed over to begin at its manifest's `start`.
    pub start_skipped_total: IntCounterVec,
    /// `wactor_delayed_records_total{actor,event}`: delayed emits
    /// `scheduled` (written to `<group>.delayed`), `delivered`, `dropped`
    /// (unreadable or for a reserved topic).
    pub delayed_total: IntCounterVec,
    /// Events dead-lettered, by actor and kind (`actor_dead`,
    /// `attempts_exhausted`, `max_age_exceeded`).
    pub dead_letters_total: IntCounterVec,
    /// Events in the dead-letter set, by actor.
    pub dead_letter_set_size: IntGaugeVec,
    /// Dead letters removed by retention, by actor and reason (`age`:
    /// older than `[dead_letter] max_age`; `count`: beyond `max_count`).
    pub dead_letters_evicted_total: IntCounterVec,
    /// Events held in the store (retrying, or waiting behind a retrying
    /// event of their key), by actor.
    pub held_events: IntGaugeVec,
    /// Age of the oldest retrying event (since its first attempt), by
    /// actor.
    pub oldest_retry_age_seconds: GaugeVec,
    /// `wactor_blocked_lanes{actor}`: lanes (keys, or partitions) blocked
    /// behind a dead letter (`on_dead = "block"`) in this host's store.
    pub blocked_lanes: IntGaugeVec,
    /// Actor versions activated (deploy, activate, rollback), by actor and
    /// reason.
    pub activations_total: IntCounterVec,
    /// Partition workers that ended unexpectedly and wait for their
    /// restart, by actor.
    pub partition_workers_failed: IntGaugeVec,
    /// Restarts of partition workers that ended unexpectedly, by actor.
    pub partition_worker_restarts_total: IntCounterVec,
    /// Records skipped by an offset reset (the partition's position fell
    /// out of the broker's log), by actor, topic and partition.
    pub offsets_skipped_total: IntCounterVec,
    /// Time to restore one partition's actor state (from the state
    /// changelog, or seeded locally) before its events run, by actor.
    pub state_restore_seconds: HistogramVec,
    /// `wactor_trace_export_failures_total`: batches of spans the trace
    /// exporter failed to send (collector down, slow or refusing); 0 while
    /// traces are off. Read from the exporter at each scrape.
    pub trace_export_failures_total: SourcedCounter,
}

/// A counter kept outside this registry (by a crate that starts before
/// the metrics exist, such as the trace exporter), read from its source
/// at each scrape. Without a source it stays 0.
#[derive(Clone)]
pub struct SourcedCounter {
    counter: IntCounter,
    source: Arc<OnceLock<fn() -> u64>>,
    /// Serializes the catch-up of concurrent scrapes.
    sync: Arc<Mutex<()>>,
}

impl SourcedCounter {
    fn new(opts: Opts) -> Result<Self, prometheus::Error> {
        Ok(SourcedCounter {
            counter: IntCounter::with_opts(opts)?,
            source: Arc::new(OnceLock::new()),
            sync: Arc::new(Mutex::new(())),
        })
    }

    /// Sets where the value comes from (once; later calls are ignored).
    /// The source must never go down: it is a counter.
    pub fn set_source(&self, source: fn() -> u64) {
        let _ = self.source.set(source);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        let _guard = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(source) = self.source.get() {
            let now = source();
            let seen = self.counter.get();
            if now > seen {
                self.counter.inc_by(now - seen);
            }
        }
        self.counter.get()
    }
}

impl Collector for SourcedCounter {
    fn desc(&self) -> Vec<&Desc> {
        self.counter.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.get();
        self.counter.collect()
    }
}

impl Metrics {
    /// Events each actor handled to `done` on this host since it started:
    /// `wactor_events_total{outcome="done"}` summed over the actor's
    /// versions (re-drives and replays that end done included; retries,
    /// traps and dead ends are not handled events).
    pub fn handled_by_actor(&self) -> std::collections::BTreeMap<String, u64> {
        use prometheus::core::Collector;
        let mut out = std::collections::BTreeMap::new();
        for family in self.events_total.collect() {
            for metric in family.get_metric() {
                if label(metric, "outcome") != Some("done") {
                    continue;
                }
                let Some(actor) = label(metric, "actor") else {
                    continue;
                };
                // Counters of events are whole numbers.
                *out.entry(actor.to_string()).or_insert(0) += metric.get_counter().value() as u64;
            }
        }
        out
    }

    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let events_total = IntCounterVec::new(
            Opts::new("wactor_events_total", "Events handled, by outcome"),
            &["actor", "version", "outcome"],
        )?;
        let call_duration_seconds = HistogramVec::new(
            HistogramOpts::new("wactor_call_duration_seconds", "Wall time of actor calls").buckets(
                vec![
                    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
                    5.0, 30.0,
                ],
            ),
            &["actor"],
        )?;
        let emitted_records_total = IntCounterVec::new(
            Opts::new(
                "wactor_emitted_records_total",
                "Records produced for actors",
            ),
            &["actor"],
        )?;
        let emit_failures_total = IntCounterVec::new(
            Opts::new(
                "wactor_emit_failures_total",
                "Failed produces of emitted records",
            ),
            &["actor"],
        )?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new("wactor_consumer_lag", "Messages behind the high watermark"),
            &["actor", "topic", "partition"],
        )?;
        let buffered_events = IntGaugeVec::new(
            Opts::new("wactor_buffered_events", "Events read and not finished"),
            &["actor"],
        )?;
        let partition_pauses_total = IntCounterVec::new(
            Opts::new(
                "wactor_partition_pauses_total",
                "Partitions paused because their buffer was full",
            ),
            &["actor"],
        )?;
        let rebalances_total = IntCounterVec::new(
            Opts::new("wactor_rebalances_total", "Consumer group rebalances"),
            &["actor", "kind"],
        )?;
        let commits_total = IntCounterVec::new(
            Opts::new("wactor_offset_commits_total", "Offset commits"),
            &["actor"],
        )?;
        let retries_scheduled_total = IntCounterVec::new(
            Opts::new(
                "wactor_retries_scheduled_total",
                "Failed attempts scheduled for a retry",
            ),
            &["actor"],
        )?;
        let schedule_firings_total = IntCounterVec::new(
            Opts::new(
                "wactor_schedule_firings_total",
                "Schedule firings written by this host",
            ),
            &["actor", "schedule"],
        )?;
        let schedule_owner = IntGaugeVec::new(
            Opts::new(
                "wactor_schedule_owner",
                "1 while this host fires the actor's schedules",
            ),
            &["actor"],
        )?;
        let start_skipped_total = IntCounterVec::new(
            Opts::new(
                "wactor_start_skipped_records_total",
                "Records a new actor passed over to begin at its start position",
            ),
            &["actor"],
        )?;
        let delayed_total = IntCounterVec::new(
            Opts::new(
                "wactor_delayed_records_total",
                "Delayed emits scheduled, delivered or dropped",
            ),
            &["actor", "event"],
        )?;
        let batch_calls_total = IntCounterVec::new(
            Opts::new(
                "wactor_batch_calls_total",
                "handle-batch calls of batch actors, by result (batch, fallback)",
            ),
            &["actor", "result"],
        )?;
        let batched_events_total = IntCounterVec::new(
            Opts::new(
                "wactor_batched_events_total",
                "Events handled by handle-batch calls that answered",
            ),
            &["actor"],
        )?;
        let retries_fired_total = IntCounterVec::new(
            Opts::new("wactor_retries_fired_total", "Retry attempts started"),
            &["actor"],
        )?;
        let dead_letters_total = IntCounterVec::new(
            Opts::new("wactor_dead_letters_total", "Events dead-lettered"),
            &["actor", "kind"],
        )?;
        let dead_letter_set_size = IntGaugeVec::new(
            Opts::new(
                "wactor_dead_letter_set_size",
                "Events in the dead-letter set",
            ),
            &["actor"],
        )?;
        let dead_letters_evicted_total = IntCounterVec::new(
            Opts::new(
                "wactor_dead_letters_evicted_total",
                "Dead letters removed by retention (age or count)",
            ),
            &["actor", "reason"],
        )?;
        let held_events = IntGaugeVec::new(
            Opts::new(
                "wactor_held_events",
                "Events held for a retry or behind one",
            ),
            &["actor"],
        )?;
        let oldest_retry_age_seconds = GaugeVec::new(
            Opts::new(
                "wactor_oldest_retry_age_seconds",
                "Age of the oldest retrying event since its first attempt",
            ),
            &["actor"],
        )?;
        let blocked_lanes = IntGaugeVec::new(
            Opts::new(
                "wactor_blocked_lanes",
                "Lanes held behind a dead letter (on_dead = block) in this host's store",
            ),
            &["actor"],
        )?;
        let activations_total = IntCounterVec::new(
            Opts::new("wactor_activations_total", "Actor versions activated"),
            &["actor", "reason"],
        )?;
        let partition_workers_failed = IntGaugeVec::new(
            Opts::new(
                "wactor_partition_workers_failed",
                "Partition workers that ended unexpectedly and wait for their restart",
            ),
            &["actor"],
        )?;
        let partition_worker_restarts_total = IntCounterVec::new(
            Opts::new(
                "wactor_partition_worker_restarts_total",
                "Restarts of partition workers that ended unexpectedly",
            ),
            &["actor"],
        )?;
        let offsets_skipped_total = IntCounterVec::new(
            Opts::new(
                "wactor_offsets_skipped_total",
                "Records skipped by an offset reset (deleted by the broker before they were read)",
            ),
            &["actor", "topic", "partition"],
        )?;
        let state_restore_seconds = HistogramVec::new(
            HistogramOpts::new(
                "wactor_state_restore_seconds",
                "Time to restore a partition's actor state before its events run",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0]),
            &["actor"],
        )?;
        let trace_export_failures_total = SourcedCounter::new(Opts::new(
            "wactor_trace_export_failures_total",
            "Batches of spans the trace exporter failed to send to the collector",
        ))?;
        registry.register(Box::new(trace_export_failures_total.clone()))?;
        registry.register(Box::new(state_restore_seconds.clone()))?;
        registry.register(Box::new(partition_workers_failed.clone()))?;
        registry.register(Box::new(partition_worker_restarts_total.clone()))?;
        registry.register(Box::new(offsets_skipped_total.clone()))?;
        registry.register(Box::new(retries_scheduled_total.clone()))?;
        registry.register(Box::new(retries_fired_total.clone()))?;
        registry.register(Box::new(batch_calls_total.clone()))?;
        registry.register(Box::new(batched_events_total.clone()))?;
        registry.register(Box::new(schedule_firings_total.clone()))?;
        registry.register(Box::new(schedule_owner.clone()))?;
        registry.register(Box::new(start_skipped_total.clone()))?;
        registry.register(Box::new(delayed_total.clone()))?;
        registry.register(Box::new(dead_letters_total.clone()))?;
        registry.register(Box::new(dead_letter_set_size.clone()))?;
        registry.register(Box::new(dead_letters_evicted_total.clone()))?;
        registry.register(Box::new(held_events.clone()))?;
        registry.register(Box::new(oldest_retry_age_seconds.clone()))?;
        registry.register(Box::new(blocked_lanes.clone()))?;
        registry.register(Box::new(activations_total.clone()))?;
        registry.register(Box::new(events_total.clone()))?;
        registry.register(Box::new(call_duration_seconds.clone()))?;
        registry.register(Box::new(emitted_records_total.clone()))?;
        registry.register(Box::new(emit_failures_total.clone()))?;
        registry.register(Box::new(consumer_lag.clone()))?;
        registry.register(Box::new(buffered_events.clone()))?;
        registry.register(Box::new(partition_pauses_total.clone()))?;
        registry.register(Box::new(rebalances_total.clone()))?;
        registry.register(Box::new(commits_total.clone()))?;
        Ok(Metrics {
            registry,
            events_total,
            call_duration_seconds,
            emitted_records_total,
            emit_failures_total,
            consumer_lag,
            buffered_events,
            partition_pauses_total,
            rebalances_total,
            commits_total,
            retries_scheduled_total,
            retries_fired_total,
            batch_calls_total,
            batched_events_total,
            schedule_firings_total,
            schedule_owner,
            start_skipped_total,
            delayed_total,
            dead_letters_total,
            dead_letter_set_size,
            dead_letters_evicted_total,
            held_events,
            oldest_retry_age_seconds,
            blocked_lanes,
            activations_total,
            partition_workers_failed,
            partition_worker_restarts_total,
            offsets_skipped_total,
            state_restore_seconds,
            trace_export_failures_total,
        })
    }

    /// The registry (to add more metrics from other crates).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// The value of the label `name` of one collected series (`metric`, from a
/// vector's `collect()`), or `None` when it has no such label.
pub fn label<'a>(metric: &'a prometheus::proto::Metric, name: &str) -> Option<&'a str> {
    metric
        .get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_names_and_labels() {
        let m = Metrics::new().unwrap();
        m.events_total
            .with_label_values(&["echo", "1", "done"])
            .inc_by(3);
        let text = m.render();
        assert!(
            text.contains(r#"wactor_events_total{actor="echo",outcome="done",version="1"} 3"#),
            "{text}"
        );
    }

    static FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    fn failures() -> u64 {
        FAILURES.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn trace_export_failures_are_read_from_their_source_at_each_scrape() {
        let m = Metrics::new().unwrap();
        // No source (traces off): exported as 0.
        assert!(
            m.render().contains("wactor_trace_export_failures_total 0"),
            "{}",
            m.render()
        );
        m.trace_export_failures_total.set_source(failures);
        FAILURES.store(3, std::sync::atomic::Ordering::Relaxed);
        assert!(m.render().contains("wactor_trace_export_failures_total 3"));
        assert!(m.render().contains("wactor_trace_export_failures_total 3"));
        FAILURES.store(5, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(m.trace_export_failures_total.get(), 5);
        assert!(m.render().contains("wactor_trace_export_failures_total 5"));
    }

    #[test]
    fn handled_counts_done_events_over_versions() {
        let m = Metrics::new().unwrap();
        m.events_total
            .with_label_values(&["echo", "1", "done"])
            .inc_by(3);
        m.events_total
            .with_label_values(&["echo", "2", "done"])
            .inc_by(4);
        m.events_total
            .with_label_values(&["echo", "2", "retry"])
            .inc_by(9);
        m.events_total
            .with_label_values(&["other", "1", "dead"])
            .inc();
        let handled = m.handled_by_actor();
        assert_eq!(handled.get("echo"), Some(&7));
        assert_eq!(handled.get("other"), None);
    }
}
