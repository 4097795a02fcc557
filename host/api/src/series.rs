//! Per-actor time series for the dashboard's charts, kept in the host: no
//! Prometheus server or other service needed.
//!
//! A sampler task ([`run_sampler`]) reads the host's own metrics
//! (wactor-metrics) every *step* (10 s for `wactor serve`, 2 s for `wactor
//! dev`; `WACTOR_SERIES_STEP` sets another, 1 s to 5 min) and appends one
//! [`Point`] per actor to a ring of one hour (`3600 s / step` points,
//! oldest dropped):
//!
//! - `rates`: events per second by outcome (`done`, `retry`, `dead`,
//!   `trap`) over the step: the growth of `wactor_events_total` (summed
//!   over versions) divided by the time since the previous sample;
//! - `p50_ms`, `p99_ms`: call time quantiles over the step, from the growth
//!   of each `wactor_call_duration_seconds` bucket, interpolated linearly
//!   inside the bucket the rank falls in, as Prometheus'
//!   `histogram_quantile` does (so they are estimates, as exact as the
//!   buckets); `null` for a step without calls;
//! - `lag`: the actor's lag summed over the partitions it has on this
//!   host at the sample, as `GET /v1/actors` shows it (partitions whose
//!   lag is not known yet count as 0).
//!
//! Bounded: at most [`MAX_ACTORS`] actors, each a ring of at most one
//! hour of points; an actor the registry no longer knows loses its series.
//! Served by `GET /v1/actors/{name}/series?since=` ([`routes`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use prometheus::core::Collector;
use serde::{Deserialize, Serialize};
use wactor_metrics::{label, Metrics};
use wactor_registry::Registry;

use crate::error::{ApiError, ApiResult};
use crate::extract::{non_empty, PathParams, Query};
use crate::ApiState;

/// The step of `wactor serve`.
pub const DEFAULT_STEP: Duration = Duration::from_secs(10);
/// The step of `wactor dev` (interactive: charts move within seconds).
pub const DEV_STEP: Duration = Duration::from_secs(2);
/// The environment variable that overrides the step (`2s`, `10s`, `1m`).
pub const STEP_ENV: &str = "WACTOR_SERIES_STEP";
/// How far back a series goes.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Most actors with a series; further ones get none until others go.
pub const MAX_ACTORS: usize = 1000;

const SHORTEST_STEP: Duration = Duration::from_secs(1);
const LONGEST_STEP: Duration = Duration::from_secs(300);

/// Why a step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    /// Not a duration.
    #[error("{STEP_ENV}={text:?} is not a duration (2s, 10s, 1m)")]
    NotADuration {
        /// What was given.
        text: String,
    },
    /// Outside 1 s to 5 min.
    #[error("{STEP_ENV}={text:?} is outside 1s to 5m")]
    OutOfRange {
        /// What was given.
        text: String,
    },
}

/// The step: `WACTOR_SERIES_STEP` when set, else `default`.
pub fn step_from_env(default: Duration) -> Result<Duration, SeriesError> {
    match std::env::var(STEP_ENV) {
        Ok(text) if !text.trim().is_empty() => parse_step(&text),
        _ => Ok(default),
    }
}

/// Parses a step: a duration from 1 s to 5 min.
pub fn parse_step(text: &str) -> Result<Duration, SeriesError> {
    let step = wactor_delivery::duration_str::parse(text.trim()).map_err(|_| {
        SeriesError::NotADuration {
            text: text.to_string(),
        }
    })?;
    if !(SHORTEST_STEP..=LONGEST_STEP).contains(&step) {
        return Err(SeriesError::OutOfRange {
            text: text.to_string(),
        });
    }
    Ok(step)
}

/// Events per second by outcome over one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Handled to `done`.
    pub done: f64,
    /// Ended in `retry` (a retry is scheduled, or attempts ran out).
    pub retry: f64,
    /// Ended in `dead`.
    pub dead: f64,
    /// Trapped.
    pub trap: f64,
}

/// One sample of one actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// When it was taken, ms since the epoch.
    pub t_ms: i64,
    /// Events per second by outcome since the previous sample.
    pub rates: Rates,
    /// Median call time over the step, ms (`null`: no call).
    pub p50_ms: Option<f64>,
    /// 99th percentile call time over the step, ms (`null`: no call).
    pub p99_ms: Option<f64>,
    /// Consumer lag summed over the actor's partitions on this host.
    pub lag: i64,
}

/// The answer of `GET /v1/actors/{name}/series`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesView {
    /// The actor.
    pub actor: String,
    /// Seconds between points.
    pub step_seconds: f64,
    /// Points, oldest first.
    pub points: Vec<Point>,
}

/// The query of `GET /v1/actors/{name}/series`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// Only points taken after this: milliseconds since the epoch (the
    /// `t_ms` of the last point a client has), RFC 3339, or a duration
    /// back from now (`10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// What the counters and histogram of one actor read at a sample.
#[derive(Debug, Clone, Default, PartialEq)]
struct Reading {
    /// done, retry, dead, trap.
    outcomes: [f64; 4],
    /// Cumulative bucket counts by upper bound (seconds), ascending; the
    /// `+Inf` bucket is `count`.
    buckets: Vec<(f64, u64)>,
    /// Calls observed.
    count: u64,
    /// Lag sum.
    lag: i64,
}

struct Rings {
    /// The previous reading of every actor in the metrics (kept for
    /// removed actors too, so a re-deploy does not count old events as
    /// new ones; bounded like the metrics' labels).
    last: BTreeMap<String, Reading>,
    /// When `last` was read.
    last_at: Option<Instant>,
    /// The points.
    series: BTreeMap<String, VecDeque<Point>>,
}

/// The series of every actor.
pub struct Series {
    step: Duration,
    capacity: usize,
    rings: Mutex<Rings>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("step", &self.step)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Series {
    /// Empty series sampled every `step` (clamped to 1 s .. 5 min), each
    /// holding one hour.
    pub fn new(step: Duration) -> Self {
        let step = step.clamp(SHORTEST_STEP, LONGEST_STEP);
        let capacity = usize::try_from(WINDOW.as_millis().div_ceil(step.as_millis().max(1)))
            .unwrap_or(3600)
            .max(1);
        Series {
            step,
            capacity,
            rings: Mutex::new(Rings {
                last: BTreeMap::new(),
                last_at: None,
                series: BTreeMap::new(),
            }),
        }
    }

    /// The step.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// Most points per actor.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rings> {
        match self.rings.lock() {
            Ok(rings) => rings,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes one sample of `metrics` at `now_ms`, `now`: a point for every
    /// actor in the metrics or in `known`; when `known` is given, only for
    /// those, and the series of others are dropped. `lags`, when given, is
    /// the lag of every actor running here (one not in it has none);
    /// without it the lag is read from the `wactor_consumer_lag` gauge.
    pub fn sample(
        &self,
        metrics: &Metrics,
        known: Option<&BTreeSet<String>>,
        lags: Option<&BTreeMap<String, i64>>,
        now_ms: i64,
        now: Instant,
    ) {
        let mut readings = read(metrics);
        if let Some(lags) = lags {
            for (actor, reading) in readings.iter_mut() {
                reading.lag = lags.get(actor).copied().unwrap_or(0).max(0);
            }
            for (actor, lag) in lags {
                readings.entry(actor.clone()).or_default().lag = (*lag).max(0);
            }
        }
        let mut rings = self.lock();
        let elapsed = rings
            .last_at
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or(self.step)
            .as_secs_f64()
            .max(0.001);
        let mut actors: BTreeSet<&String> = readings.keys().collect();
        if let Some(known) = known {
            actors.extend(known.iter());
            actors.retain(|actor| known.contains(*actor));
        }
        let empty = Reading::default();
        let mut points = Vec::with_capacity(actors.len());
        for actor in actors {
            let current = readings.get(actor).unwrap_or(&empty);
            let previous = rings.last.get(actor).unwrap_or(&empty);
            points.push((actor.clone(), point(previous, current, elapsed, now_ms)));
        }
        if let Some(known) = known {
            rings.series.retain(|actor, _| known.contains(actor));
        }
        for (actor, point) in points {
            if !rings.series.contains_key(&actor) && rings.series.len() >= MAX_ACTORS {
                continue;
            }
            let ring = rings.series.entry(actor).or_default();
            if ring.len() >= self.capacity {
                ring.pop_front();
            }
            ring.push_back(point);
        }
        rings.last = readings;
        rings.last_at = Some(now);
    }

    /// The points of `actor` taken after `since_ms`, oldest first.
    pub fn points(&self, actor: &str, since_ms: Option<i64>) -> Vec<Point> {
        let rings = self.lock();
        rings
            .series
            .get(actor)
            .map(|ring| {
                ring.iter()
                    .filter(|p| since_ms.is_none_or(|since| p.t_ms > since))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Samples `metrics` into `series` every step for as long as the registry
/// lives; actors the registry does not know lose their series.
pub async fn run_sampler(series: Arc<Series>, metrics: Arc<Metrics>, registry: Weak<Registry>) {
    let mut tick = tokio::time::interval(series.step());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let known = match registry.parts().store.registry().actors() {
            Ok(records) => Some(records.into_iter().map(|r| r.name).collect()),
            Err(err) => {
                tracing::debug!(error = %err, "cannot list actors for the series; keeping all");
                None
            }
        };
        let lags = registry.lag_by_actor();
        let now_ms = registry.parts().clock.now_ms();
        drop(registry);
        series.sample(
            &metrics,
            known.as_ref(),
            Some(&lags),
            now_ms,
            Instant::now(),
        );
    }
}

/// Reads every actor's counters, histogram and lag.
fn read(metrics: &Metrics) -> BTreeMap<String, Reading> {
    let mut out: BTreeMap<String, Reading> = BTreeMap::new();
    for family in metrics.events_total.collect() {
        for metric in family.get_metric() {
            let (Some(actor), Some(outcome)) = (label(metric, "actor"), label(metric, "outcome"))
            else {
                continue;
            };
            let slot = match outcome {
                "done" => 0,
                "retry" => 1,
                "dead" => 2,
                "trap" => 3,
                _ => continue,
            };
            out.entry(actor.to_string()).or_default().outcomes[slot] +=
                metric.get_counter().value();
        }
    }
    for family in metrics.call_duration_seconds.collect() {
        for metric in family.get_metric() {
            let Some(actor) = label(metric, "actor") else {
                continue;
            };
            let histogram = metric.get_histogram();
            let reading = out.entry(actor.to_string()).or_default();
            reading.count = histogram.get_sample_count();
            reading.buckets = histogram
                .get_bucket()
                .iter()
                .filter(|b| b.upper_bound().is_finite())
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect();
        }
    }
    for family in metrics.consumer_lag.collect() {
        for metric in family.get_metric() {
            let Some(actor) = label(metric, "actor") else {
                continue;
            };
            // Gauges of lag hold whole numbers.
            let lag = metric.get_gauge().value().max(0.0) as i64;
            let reading = out.entry(actor.to_string()).or_default();
            reading.lag = reading.lag.saturating_add(lag);
        }
    }
    out
}

/// The point between two readings `elapsed` seconds apart.
fn point(previous: &Reading, current: &Reading, elapsed: f64, t_ms: i64) -> Point {
    let rate = |slot: usize| {
        let grown = (current.outcomes[slot] - previous.outcomes[slot]).max(0.0);
        grown / elapsed
    };
    // Bucket growth over the step (a counter that went down, which a
    // removed label set would do, counts as no growth).
    let before = |bound: f64| {
        previous
            .buckets
            .iter()
            .find(|(b, _)| *b == bound)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    };
    let buckets: Vec<(f64, u64)> = current
        .buckets
        .iter()
        .map(|&(bound, count)| (bound, count.saturating_sub(before(bound))))
        .collect();
    let count = current.count.saturating_sub(previous.count);
    let quantile_ms = |q: f64| histogram_quantile(q, &buckets, count).map(|s| s * 1000.0);
    Point {
        t_ms,
        rates: Rates {
            done: rate(0),
            retry: rate(1),
            dead: rate(2),
            trap: rate(3),
        },
        p50_ms: quantile_ms(0.5),
        p99_ms: quantile_ms(0.99),
        lag: current.lag,
    }
}

/// The `q` quantile of observations in cumulative `buckets` (finite upper
/// bounds, ascending) of `count` observations in all, as Prometheus'
/// `histogram_quantile`: linear interpolation inside the bucket the rank
/// falls in (from 0 for the first bucket); a rank in the `+Inf` bucket
/// gives the highest finite bound. `None` without observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, u64)], count: u64) -> Option<f64> {
    if count == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * count as f64;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for &(bound, cumulative) in buckets {
        let cumulative = cumulative as f64;
        if cumulative >= rank && cumulative > lower_count {
            let share = (rank - lower_count) / (cumulative - lower_count);
            return Some(lower_bound + (bound - lower_bound) * share);
        }
        lower_bound = bound;
        lower_count = cumulative;
    }
    // In the +Inf bucket.
    buckets.last().map(|&(bound, _)| bound)
}

/// `since`: milliseconds since the epoch first (a client passes the last
/// `t_ms` it has, and `0` is the epoch, not "0 s back from now"), else RFC
/// 3339 or a duration back from now.
fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(ms) => Ok(ms),
        Err(_) => crate::logs::parse_since(text, now_ms),
    }
}

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/actors/{name}/series", get(show))
}

async fn show(
    State(state): State<ApiState>,
    PathParams(name): PathParams<String>,
    Query(query): Query<SeriesQuery>,
) -> ApiResult<Json<SeriesView>> {
    let now_ms = state.registry.parts().clock.now_ms();
    let since_ms = non_empty(query.since)
        .map(|since| parse_since(&since, now_ms))
        .transpose()
        .map_err(ApiError::BadRequest)?;
    // 404 for an actor the registry does not know.
    state.registry.actor(&name)?;
    Ok(Json(SeriesView {
        points: state.series.points(&name, since_ms),
        step_seconds: state.series.step().as_secs_f64(),
        actor: name,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new().unwrap()
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        // 10 observations: 4 up to 1, 6 more up to 2.
        let buckets = [(1.0, 4), (2.0, 10), (5.0, 10)];
        // Rank 5 of 10: the second bucket, 1/6 of the way from 1 to 2.
        let p50 = histogram_quantile(0.5, &buckets, 10).unwrap();
        assert!((p50 - (1.0 + 1.0 / 6.0)).abs() < 1e-9, "{p50}");
        // Rank 2 of 10: half of the first bucket, from 0.
        assert_eq!(histogram_quantile(0.2, &buckets, 10), Some(0.5));
        // In +Inf: the highest finite bound.
        assert_eq!(histogram_quantile(0.99, &[(1.0, 1)], 10), Some(1.0));
        assert_eq!(histogram_quantile(0.5, &buckets, 0), None);
    }

    #[test]
    fn points_are_rates_and_quantiles_over_the_step() {
        let m = metrics();
        let series = Series::new(Duration::from_secs(2));
        let start = Instant::now();
        m.events_total
            .with_label_values(&["echo", "1", "done"])
            .inc_by(4);
        series.sample(&m, None, None, 1_000, start);
        m.events_total
            .with_label_values(&["echo", "1", "done"])
            .inc_by(6);
        m.events_total
            .with_label_values(&["echo", "2", "done"])
            .inc_by(4);
        m.events_total
            .with_label_values(&["echo", "2", "dead"])
            .inc_by(2);
        for _ in 0..10 {
            m.call_duration_seconds
                .with_label_values(&["echo"])
                .observe(0.003);
        }
        m.consumer_lag
            .with_label_values(&["echo", "orders", "0"])
            .set(5);
        m.consumer_lag
            .with_label_values(&["echo", "orders", "1"])
            .set(7);
        series.sample(&m, None, None, 3_000, start + Duration::from_secs(2));
        let points = series.points("echo", None);
        assert_eq!(points.len(), 2);
        // The first sample counts from zero (the sampler starts with the
        // metrics), over one step.
        assert_eq!(points[0].rates.done, 2.0);
        let last = &points[1];
        assert_eq!(last.t_ms, 3_000);
        assert_eq!(last.rates.done, 5.0);
        assert_eq!(last.rates.dead, 1.0);
        assert_eq!(last.rates.retry, 0.0);
        assert_eq!(last.lag, 12);
        // All in the (1 ms, 5 ms] bucket: p50 at its middle.
        let p50 = last.p50_ms.unwrap();
        assert!((p50 - 3.0).abs() < 1e-9, "{p50}");
        assert!(last.p99_ms.unwrap() <= 5.0);
        assert_eq!(points[0].p50_ms, None);
        assert_eq!(series.points("echo", Some(1_000)).len(), 1);
        assert_eq!(series.points("other", None), Vec::new());
    }

    #[test]
    fn rings_hold_one_hour_and_forget_removed_actors() {
        let m = metrics();
        let series = Series::new(Duration::from_secs(60));
        assert_eq!(series.capacity(), 60);
        let known: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let start = Instant::now();
        for i in 0..100 {
            series.sample(
                &m,
                Some(&known),
                None,
                i,
                start + Duration::from_secs(60 * i as u64),
            );
        }
        assert_eq!(series.points("a", None).len(), 60);
        assert_eq!(series.points("a", None)[0].t_ms, 40);
        let only_a: BTreeSet<String> = ["a".to_string()].into();
        series.sample(
            &m,
            Some(&only_a),
            None,
            100,
            start + Duration::from_secs(6000),
        );
        assert!(series.points("b", None).is_empty());
        assert_eq!(series.points("a", None).len(), 60);
    }

    #[test]
    fn lag_is_the_running_consumers_not_the_stale_gauge() {
        let m = metrics();
        let series = Series::new(Duration::from_secs(2));
        let start = Instant::now();
        // The gauge of a partition this host read once and no longer does
        // (revoked, paused) keeps its last value.
        m.consumer_lag
            .with_label_values(&["echo", "orders", "3"])
            .set(40);
        m.consumer_lag
            .with_label_values(&["idle", "orders", "0"])
            .set(9);
        let lags: BTreeMap<String, i64> =
            [("echo".to_string(), 2), ("fresh".to_string(), 5)].into();
        series.sample(&m, None, Some(&lags), 1_000, start);
        assert_eq!(series.points("echo", None)[0].lag, 2);
        // Not running here: no lag, whatever the gauge says.
        assert_eq!(series.points("idle", None)[0].lag, 0);
        // Running, without any metric yet.
        assert_eq!(series.points("fresh", None)[0].lag, 5);
        // Without the consumers' lags: the gauge.
        series.sample(&m, None, None, 3_000, start + Duration::from_secs(2));
        assert_eq!(series.points("echo", None)[1].lag, 40);
    }

    #[test]
    fn since_is_milliseconds_first() {
        // 0 is the epoch (every point), not a duration of 0 (none).
        assert_eq!(parse_since("0", 5_000), Ok(0));
        assert_eq!(parse_since("1796602248944", 5_000), Ok(1_796_602_248_944));
        assert_eq!(parse_since("-5", 5_000), Ok(-5));
        assert_eq!(parse_since("2s", 5_000), Ok(3_000));
        assert_eq!(parse_since("1970-01-01T00:00:01Z", 5_000), Ok(1_000));
        assert!(parse_since("99999999999999999999", 5_000).is_err());
        assert!(parse_since("soon", 5_000).is_err());
    }

    #[test]
    fn steps_parse_within_bounds() {
        assert_eq!(parse_step("2s"), Ok(Duration::from_secs(2)));
        assert!(matches!(
            parse_step("0s"),
            Err(SeriesError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_step("soon"),
            Err(SeriesError::NotADuration { .. })
        ));
        assert_eq!(Series::new(Duration::from_secs(10)).capacity(), 360);
    }
}
