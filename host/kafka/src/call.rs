//! One attempt at one event: call the actor, and if it is done, make its
//! effects real.
//!
//! The order of effects is what keeps at-least-once honest: emitted records
//! are produced and acknowledged first, then the state writes are produced
//! to the state changelog (`<group>.state`, when on) and acknowledged, then
//! applied to the local store in one batch, all before the event's offset
//! may be committed. A crash before the changelog is acknowledged
//! redelivers the event, which emits again (a duplicate, allowed) and finds
//! its state as before, on this host or whichever host restores the
//! partition next (no write is lost or half-applied). Producing first also
//! means an actor's idempotency marker can never exist without its emits.
//!
//! State is read and written in the scope of the event's source partition
//! (for a re-driven dead letter: its original topic and partition).
//!
//! A call runs inside its span,
//! `handle{actor, version, topic, partition, offset, key, attempt}`; the
//! actor's log lines become tracing events in that span, and, once the
//! outcome is known, lines of the actor's ring for `wactor logs`
//! ([`crate::actor_logs`]). Under `wactor serve`'s default log filter
//! (`info`, no traces) the span is made only for a call whose actor logged
//! a line the filter may show, just before that line (see [`HandleSpans`]).
//!
//! Traces (see docs/operations.md, "Traces"; [`wactor_telemetry`] owns the
//! exporter and the header format). When traces are on, the `handle` span
//! is exported as the CONSUMER span `process <topic>` with OpenTelemetry's
//! messaging attributes, a child of the record's `traceparent` when it has
//! a valid one (each attempt is its own span with that same parent); each
//! emitted record gets a PRODUCER span `send <topic>` and that span's
//! context in its `traceparent` header; each outbound HTTP request a CLIENT
//! span (see [`HandleHttpTracer`]). When traces are off, nothing of that is
//! made: a valid incoming `traceparent` (and `tracestate`) is passed on
//! unchanged to the emitted records and the outbound requests. Either way
//! an emitted record whose actor set a `traceparent` header keeps it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::field::Empty;
use tracing::level_filters::LevelFilter;
use tracing::Instrument;
use wactor_runtime::{
    CallResult, Effects, Event, HttpTracer, LogLevel, LogLine, OutboundTrace, Outcome, StateReader,
    StateWrite,
};
use wactor_store::{ActorState, StateChange};
use wactor_telemetry::{IncomingContext, TRACEPARENT, TRACESTATE};

use crate::actor::{ActiveVersion, ActorContext};
use crate::actor_logs::CallCoordinates;
use crate::producer::OutRecord;
use crate::state_changelog::ScopedStateReader;

/// Header naming the source of an emitted record: `topic/partition/offset`.
pub const SOURCE_HEADER: &str = "wactor-source";
/// Header naming the actor and version that emitted a record: `name@version`.
pub const ACTOR_HEADER: &str = "wactor-actor";

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// Done, effects applied.
    Done,
    /// The actor asked for a retry.
    Retry {
        /// Its reason.
        reason: String,
        /// The delay it asked for.
        delay: Option<Duration>,
    },
    /// The actor declared the event dead.
    Dead {
        /// Its reason.
        reason: String,
    },
    /// The call trapped (panic, deadline, memory limit, ...).
    Trap {
        /// Kind and message.
        message: String,
    },
    /// The actor was done but the host could not make its effects real
    /// (producing emits failed, the state write failed), or there was no
    /// version to run. Counts as a failed attempt.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

impl CallOutcome {
    /// Position of [`label`](Self::label) in done, retry, dead, trap,
    /// failed.
    pub(crate) fn index(&self) -> usize {
        match self {
            CallOutcome::Done => 0,
            CallOutcome::Retry { .. } => 1,
            CallOutcome::Dead { .. } => 2,
            CallOutcome::Trap { .. } => 3,
            CallOutcome::Failed { .. } => 4,
        }
    }

    /// The metric label and stored outcome name.
    pub fn label(&self) -> &'static str {
        match self {
            CallOutcome::Done => "done",
            CallOutcome::Retry { .. } => "retry",
            CallOutcome::Dead { .. } => "dead",
            CallOutcome::Trap { .. } => "trap",
            CallOutcome::Failed { .. } => "failed",
        }
    }

    /// The error text kept in the attempt history (empty for done).
    pub fn error(&self) -> String {
        match self {
            CallOutcome::Done => String::new(),
            CallOutcome::Retry { reason, .. }
            | CallOutcome::Dead { reason }
            | CallOutcome::Failed { reason } => reason.clone(),
            CallOutcome::Trap { message } => message.clone(),
        }
    }
}

/// The report of one attempt.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// How it ended.
    pub outcome: CallOutcome,
    /// The version that ran (0 when none could).
    pub version: u64,
    /// Wall-clock start, ms since the epoch.
    pub started_at_ms: i64,
    /// How long it took, effects included.
    pub duration: Duration,
}

/// Applies a done call's state writes atomically, in the scope of source
/// partition `topic[partition]`.
pub fn apply_state_writes(
    state: &ActorState,
    topic: &str,
    partition: i32,
    effects: &Effects,
) -> wactor_store::Result<()> {
    if effects.state_writes.is_empty() {
        return Ok(());
    }
    state.apply(
        topic,
        partition,
        effects.state_writes.iter().map(|(key, write)| {
            let change = match write {
                StateWrite::Set(value) => StateChange::Set(value),
                StateWrite::Delete => StateChange::Delete,
            };
            (key.as_str(), change)
        }),
    )
}

/// Runs one attempt of `event` (whose `attempt` field is set) on
/// `version`, or reports `Failed` when there is no version.
pub async fn run(
    ctx: Arc<ActorContext>,
    version: Option<Arc<ActiveVersion>>,
    event: Arc<Event>,
) -> CallReport {
    let reader = ScopedStateReader::shared(ctx.state.clone(), &event.topic, event.partition);
    run_scoped(ctx, version, event, reader).await
}

/// [`run`] with the state reader of the event's scope given: a partition
/// worker keeps one per scope (`topic`, `partition` of the events it
/// presents) instead of making one per call. `reader` must read the scope
/// of `event.topic` and `event.partition` (see `ScopedStateReader::shared`).
pub async fn run_scoped(
    ctx: Arc<ActorContext>,
    version: Option<Arc<ActiveVersion>>,
    event: Arc<Event>,
    reader: Arc<dyn StateReader>,
) -> CallReport {
    let started_at_ms = ctx.clock.now_ms();
    let started = Instant::now();
    let Some(version) = version else {
        return CallReport {
            outcome: CallOutcome::Failed {
                reason: "the actor has no active version".into(),
            },
            version: 0,
            started_at_ms,
            duration: started.elapsed(),
        };
    };
    let mut span = HandleSpan::new(&ctx, &version, &event);
    let eager = span.current();
    let (outcome, logs) = attempt(&ctx, &version, &event, reader, &mut span)
        .instrument(eager)
        .await;
    let traced = span.traced;
    close_call(
        &ctx,
        &version,
        &event,
        Closing {
            span: span.into_span(),
            traced,
            outcome,
            logs,
            started_at_ms,
            duration: started.elapsed(),
        },
    )
}

/// Runs the first attempts of `events` (of one state scope, which `reader`
/// reads) as one `handle-batch` call of `version`
/// ([`wactor_runtime::LoadedActor::invoke_batch`]) and makes each event's
/// effects real by its own outcome, the events side by side (each as
/// [`run`] would: emits, then the state changelog, then the store). One
/// report per event, in order.
///
/// Each event has its own `handle` span (when one is made: see
/// [`HandleSpans`]), log lines and metrics, as if it had been called
/// alone; its duration is its own share of the batch call (from its
/// `begin-event` to the next) plus its effects. The events may
/// go in several `handle-batch` calls (`max_uses` per instance); each call
/// that answered counts in `wactor_batch_calls_total{result="batch"}` and
/// its events in `wactor_batched_events_total`, and each that failed as a
/// whole (its events then ran again one by one) in `{result="fallback"}`,
/// with a WARN line. A panic in host code while applying one event's
/// effects fails that event's attempt alone.
pub async fn run_batch(
    ctx: Arc<ActorContext>,
    version: Arc<ActiveVersion>,
    events: Vec<Arc<Event>>,
    reader: Arc<dyn StateReader>,
) -> Vec<CallReport> {
    let started_at_ms = ctx.clock.now_ms();
    let mut spans: Vec<HandleSpan> = events
        .iter()
        .map(|event| HandleSpan::new(&ctx, &version, event))
        .collect();
    let traces = events
        .iter()
        .zip(&spans)
        .map(|(event, span)| {
            let incoming = wactor_telemetry::incoming(&event.headers);
            match &span.span {
                Some(made) => outbound_trace(made, span.traced, incoming),
                None => outbound_trace(&tracing::Span::none(), false, incoming),
            }
        })
        .collect();
    let refs: Vec<&Event> = events.iter().map(|event| &**event).collect();
    let batch = version.actor.invoke_batch(&refs, reader, traces).await;
    ctx.counters.batch_calls.inc_by(u64::from(batch.calls));
    ctx.counters
        .batch_fallbacks
        .inc_by(u64::from(batch.failed_calls));
    ctx.counters
        .batched_events
        .inc_by(u64::from(batch.batched_events));
    if let Some(trap) = &batch.fallback {
        tracing::warn!(
            actor = %ctx.name, version = version.version, topic = %events[0].topic,
            partition = events[0].partition, first_offset = events[0].offset,
            events = events.len(), failed_calls = batch.failed_calls, error = %trap,
            "a batch call failed as a whole; its events ran again one by one"
        );
    }
    // An event whose call has nothing to apply (no emits, no state
    // writes; only a `done` keeps effects) is settled here; only
    // the others' effects are awaited, side by side. Most events of a
    // batch are settled without a future of their own.
    let mut finished: Vec<Option<(CallOutcome, Vec<LogLine>, Duration)>> =
        Vec::with_capacity(events.len());
    let mut applying = Vec::new();
    for (index, ((mut invocation, event), span)) in batch
        .invocations
        .into_iter()
        .zip(&events)
        .zip(&mut spans)
        .enumerate()
    {
        let logs = std::mem::take(&mut invocation.logs);
        // No `handle` span is entered around a batch's calls: each
        // event's lines are logged in its own.
        match span.for_lines(&ctx, &version, event, &logs) {
            Some(made) => made.in_scope(|| log_actor_lines(&logs)),
            None => log_actor_lines(&logs),
        }
        let own = invocation.duration;
        if invocation.effects.is_empty() {
            finished.push(Some((settled(invocation.result), logs, own)));
            continue;
        }
        finished.push(None);
        let traced = span.traced;
        let span = span.current();
        let (ctx, version) = (&ctx, &version);
        applying.push(async move {
            let effects_started = Instant::now();
            let emit_trace = EmitTrace {
                span: &span,
                traced,
                incoming: wactor_telemetry::incoming(&event.headers),
            };
            // A panic in host code (a bug) fails this event's attempt
            // alone: the events beside it keep what they applied.
            let applied = std::panic::AssertUnwindSafe(
                effects_of(ctx, event, version, invocation, emit_trace).instrument(span.clone()),
            );
            let outcome = match futures::FutureExt::catch_unwind(applied).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    // In the event's span, made now if it was not yet
                    // (only for this line: its report's `close_call` gets
                    // the span as it was, made or not; `is_none` is also
                    // true of a span the filter disabled, which only
                    // makes another disabled one here).
                    let parent = if span.is_none() {
                        handle_span(ctx, version, event).0
                    } else {
                        span.clone()
                    };
                    tracing::error!(parent: &parent, "an actor call panicked in the host");
                    CallOutcome::Failed {
                        reason: "host error: the call panicked".into(),
                    }
                }
            };
            (index, (outcome, logs, own + effects_started.elapsed()))
        });
    }
    for (index, result) in futures::future::join_all(applying).await {
        if let Some(slot) = finished.get_mut(index) {
            *slot = Some(result);
        }
    }
    finished
        .into_iter()
        .zip(&events)
        .zip(spans)
        .map(|((result, event), span)| {
            // Every slot is filled above (a `None` left would be a bug:
            // the attempt then counts as failed, so the event is not lost).
            let (outcome, logs, duration) = result.unwrap_or_else(|| {
                (
                    CallOutcome::Failed {
                        reason: "host error: the event's effects were not applied".into(),
                    },
                    Vec::new(),
                    Duration::ZERO,
                )
            });
            close_call(
                &ctx,
                &version,
                event,
                Closing {
                    traced: span.traced,
                    span: span.into_span(),
                    outcome,
                    logs,
                    started_at_ms,
                    duration,
                },
            )
        })
        .collect()
}

/// When calls make their `handle` span ([`KafkaSettings::handle_spans`]).
///
/// [`KafkaSettings::handle_spans`]: crate::KafkaSettings::handle_spans
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandleSpans {
    /// Before every call: right for any subscriber (one that wants every
    /// call's span, as the trace exporter does, or one whose filter the
    /// host cannot see). The default.
    #[default]
    Always,
    /// Only for a call whose actor logged a line at this level or a more
    /// severe one, just before that line is logged: with a subscriber that
    /// only logs, and whose filter shows nothing below this level, the
    /// span only gives context to lines logged in it, and a call without
    /// such a line would have its span made and formatted for nothing.
    WhenLogged(LevelFilter),
}

impl HandleSpans {
    /// The policy for a host whose subscriber is a log layer with a filter
    /// whose most verbose level is `max_level` (`EnvFilter::max_level_hint`;
    /// `None` when unknown), plus the trace exporter when `traces` is on.
    ///
    /// [`Always`](Self::Always) when traces are on (the exporter reads
    /// every span, and the call's `send` and `http_request` spans are its
    /// children), when the filter's level is unknown, or when it is DEBUG
    /// or more verbose: at DEBUG, host lines logged during a call (an
    /// outbound request the allow-list denies, `wactor::events`' line per
    /// call that `wactor dev` prints) carry the span too. Otherwise
    /// [`WhenLogged`](Self::WhenLogged) at that level: `wactor serve`'s
    /// default filter, `info`, gives `WhenLogged(INFO)`. At INFO and above
    /// the host logs nothing in a call's span but the actor's own lines
    /// (and a panic of its own code applying a batch's effects, which
    /// makes the span itself).
    pub fn for_log_filter(max_level: Option<LevelFilter>, traces: bool) -> Self {
        match max_level {
            Some(level) if !traces && level < LevelFilter::DEBUG => HandleSpans::WhenLogged(level),
            _ => HandleSpans::Always,
        }
    }
}

/// A call's `handle` span, made when [`HandleSpans`] says: before the call,
/// or just before the first of its actor's lines that the log filter can
/// show (docs/benchmarks.md, "The handle span under a log subscriber").
struct HandleSpan {
    /// The span, once made.
    span: Option<tracing::Span>,
    /// It is exported as an OpenTelemetry span.
    traced: bool,
    /// Lines at this level or more severe make the span.
    shown: LevelFilter,
}

impl HandleSpan {
    /// The span of one attempt of `event`, made now under
    /// [`HandleSpans::Always`], else later by [`for_lines`](Self::for_lines).
    fn new(ctx: &ActorContext, version: &ActiveVersion, event: &Event) -> Self {
        match ctx.settings.handle_spans {
            HandleSpans::Always => {
                let (span, traced) = handle_span(ctx, version, event);
                HandleSpan {
                    span: Some(span),
                    traced,
                    shown: LevelFilter::TRACE,
                }
            }
            HandleSpans::WhenLogged(shown) => HandleSpan {
                span: None,
                traced: false,
                shown,
            },
        }
    }

    /// The span to log `lines` in: made now if it was not yet and one of
    /// them may be shown; `None` when none may be.
    fn for_lines(
        &mut self,
        ctx: &ActorContext,
        version: &ActiveVersion,
        event: &Event,
        lines: &[LogLine],
    ) -> Option<&tracing::Span> {
        if self.span.is_none()
            && lines
                .iter()
                .any(|line| tracing_level(line.level) <= self.shown)
        {
            self.span = Some(handle_span(ctx, version, event).0);
        }
        self.span.as_ref()
    }

    /// The span if it was made, else a disabled one (entering it, or
    /// recording in it, does nothing).
    fn current(&self) -> tracing::Span {
        self.span.clone().unwrap_or_else(tracing::Span::none)
    }

    /// [`current`](Self::current), without a clone.
    fn into_span(self) -> tracing::Span {
        self.span.unwrap_or_else(tracing::Span::none)
    }
}

/// The `handle` span of one attempt of `event`, and whether it is traced
/// (exported as an OpenTelemetry span).
fn handle_span(
    ctx: &ActorContext,
    version: &ActiveVersion,
    event: &Event,
) -> (tracing::Span, bool) {
    let span = tracing::info_span!(
        "handle",
        messaging.system = "kafka",
        actor = %ctx.name,
        version = version.version,
        topic = %event.topic,
        partition = event.partition,
        offset = event.offset,
        key = %display_key(event.key.as_deref()),
        attempt = event.attempt,
        outcome = Empty,
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
    );
    let traced = wactor_telemetry::enabled() && !span.is_disabled();
    if traced {
        trace_handle_span(&span, ctx, version, event);
    }
    (span, traced)
}

/// How one attempt ended, for [`close_call`].
struct Closing {
    span: tracing::Span,
    traced: bool,
    outcome: CallOutcome,
    logs: Vec<LogLine>,
    started_at_ms: i64,
    duration: Duration,
}

/// Ends one attempt: its outcome on its span, its log lines in the
/// actor's ring, its debug line, its metrics; and its report.
fn close_call(
    ctx: &ActorContext,
    version: &ActiveVersion,
    event: &Event,
    closing: Closing,
) -> CallReport {
    let Closing {
        span,
        traced,
        outcome,
        logs,
        started_at_ms,
        duration,
    } = closing;
    span.record("outcome", outcome.label());
    if traced && !matches!(outcome, CallOutcome::Done) {
        span.record("otel.status_code", "error");
    }
    if !logs.is_empty() {
        let call = CallCoordinates {
            time_ms: started_at_ms,
            version: version.version,
            topic: Arc::from(event.topic.as_str()),
            partition: event.partition,
            offset: event.offset,
            key: Arc::from(display_key(event.key.as_deref())),
            attempt: event.attempt,
            outcome: outcome.label(),
        };
        ctx.logs.push_call(call, logs);
    }
    // One line per call, for `wactor dev` (its default filter shows
    // `wactor::events` at debug) and for anyone who turns it on.
    match &outcome {
        CallOutcome::Done => tracing::debug!(
            target: "wactor::events",
            parent: &span,
            "done in {:.1} ms",
            duration.as_secs_f64() * 1e3
        ),
        other => tracing::debug!(
            target: "wactor::events",
            parent: &span,
            "{} in {:.1} ms: {}",
            other.label(),
            duration.as_secs_f64() * 1e3,
            other.error()
        ),
    }
    let metrics = version.call_metrics(&ctx.metrics);
    metrics.duration.observe(duration.as_secs_f64());
    metrics.outcomes[outcome.index()].inc();
    CallReport {
        outcome,
        version: version.version,
        started_at_ms,
        duration,
    }
}

/// Makes `span` (just created, not entered) the exported CONSUMER span
/// `process <topic>`: its name, kind, parent and messaging attributes.
/// Only when traces are on: it allocates.
fn trace_handle_span(
    span: &tracing::Span,
    ctx: &ActorContext,
    version: &ActiveVersion,
    event: &Event,
) {
    use wactor_telemetry::set_attribute;
    span.record("otel.name", format!("process {}", event.topic).as_str());
    span.record("otel.kind", "consumer");
    // First: the parent can only be set before anything starts the span.
    // Without a valid `traceparent`, a new trace (not a child of the
    // partition worker's span the call runs in).
    wactor_telemetry::set_parent(span, wactor_telemetry::incoming(&event.headers).as_ref());
    set_attribute(span, "messaging.operation.type", "process");
    set_attribute(span, "messaging.operation.name", "process");
    set_attribute(span, "messaging.destination.name", event.topic.clone());
    set_attribute(
        span,
        "messaging.destination.partition.id",
        event.partition.to_string(),
    );
    set_attribute(span, "messaging.kafka.offset", event.offset);
    if let Some(key) = text_key(event.key.as_deref()) {
        set_attribute(span, "messaging.kafka.message.key", key.to_string());
    }
    set_attribute(span, "messaging.consumer.group.name", ctx.group.clone());
    set_attribute(span, "wactor.actor", ctx.name.to_string());
    set_attribute(span, "wactor.actor.version", version.version as i64);
    set_attribute(span, "wactor.attempt", i64::from(event.attempt));
}

/// Longest key recorded as `messaging.kafka.message.key`.
const MAX_TRACED_KEY_BYTES: usize = 256;

/// A key as span attribute: only text (UTF-8 without control characters)
/// of at most [`MAX_TRACED_KEY_BYTES`]; binary or longer keys are left out.
fn text_key(key: Option<&[u8]>) -> Option<&str> {
    let key = key.filter(|k| k.len() <= MAX_TRACED_KEY_BYTES)?;
    std::str::from_utf8(key)
        .ok()
        .filter(|text| !text.chars().any(char::is_control))
}

/// The outbound HTTP requests of one traced call: a CLIENT span each, a
/// child of the call's `handle` span, named after the method, with the
/// HTTP client attributes; the request carries its context.
pub struct HandleHttpTracer {
    /// The call's `handle` span.
    parent: tracing::Span,
}

impl HttpTracer for HandleHttpTracer {
    fn start(
        &self,
        method: &http::Method,
        uri: &http::Uri,
    ) -> (
        tracing::Span,
        Option<http::HeaderValue>,
        Option<http::HeaderValue>,
    ) {
        use wactor_telemetry::set_attribute;
        let known = known_method(method);
        let span = tracing::info_span!(
            parent: &self.parent,
            "http_request",
            otel.name = known.unwrap_or("HTTP"),
            otel.kind = "client",
            otel.status_code = Empty,
        );
        set_attribute(&span, "http.request.method", known.unwrap_or("_OTHER"));
        if known.is_none() {
            set_attribute(
                &span,
                "http.request.method_original",
                method.as_str().chars().take(64).collect::<String>(),
            );
        }
        if let Some(host) = uri.host() {
            set_attribute(&span, "server.address", host.to_string());
        }
        let port = uri
            .port_u16()
            .unwrap_or_else(|| wactor_runtime::default_port(uri.scheme_str()));
        set_attribute(&span, "server.port", i64::from(port));
        set_attribute(&span, "url.full", url_without_query(uri));
        let (traceparent, tracestate) = match wactor_telemetry::traceparent_of(&span) {
            Some((parent, state)) => (
                http::HeaderValue::try_from(parent).ok(),
                state.and_then(|s| http::HeaderValue::try_from(s).ok()),
            ),
            None => (None, None),
        };
        (span, traceparent, tracestate)
    }

    fn finish(&self, span: &tracing::Span, result: Result<u16, &dyn std::fmt::Display>) {
        match result {
            Ok(status) => {
                wactor_telemetry::set_attribute(
                    span,
                    "http.response.status_code",
                    i64::from(status),
                );
                if status >= 400 {
                    wactor_telemetry::set_attribute(span, "error.type", status.to_string());
                    span.record("otel.status_code", "error");
                }
            }
            Err(err) => {
                wactor_telemetry::set_attribute(span, "error.type", err.to_string());
                span.record("otel.status_code", "error");
            }
        }
    }
}

/// `method` when it is one of HTTP's own (RFC 9110 and PATCH), as
/// OpenTelemetry's HTTP conventions ask: a span name or attribute never
/// takes whatever method a guest makes up (`HTTP` and `_OTHER` instead).
fn known_method(method: &http::Method) -> Option<&'static str> {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN.into_iter().find(|known| *known == method.as_str())
}

/// `uri` as `url.full`: scheme, host, port and path; no user info, query
/// or fragment (they may hold secrets).
fn url_without_query(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}{}", uri.path()),
        None => format!("{scheme}://{host}{}", uri.path()),
    }
}

/// How the call's outbound HTTP requests are traced: spans when traces are
/// on, else the incoming context passed on, else nothing.
fn outbound_trace(
    span: &tracing::Span,
    traced: bool,
    incoming: Option<IncomingContext<'_>>,
) -> Option<OutboundTrace> {
    if traced {
        return Some(OutboundTrace::Spans(Arc::new(HandleHttpTracer {
            parent: span.clone(),
        })));
    }
    let incoming = incoming?;
    Some(OutboundTrace::Propagate {
        traceparent: http::HeaderValue::try_from(incoming.traceparent.to_header()).ok()?,
        tracestate: incoming
            .tracestate
            .and_then(|s| http::HeaderValue::try_from(s).ok()),
    })
}

/// Runs the call and makes its effects real; returns its outcome and the
/// actor's log lines (already given to tracing).
async fn attempt(
    ctx: &ActorContext,
    version: &ActiveVersion,
    event: &Event,
    reader: Arc<dyn StateReader>,
    span: &mut HandleSpan,
) -> (CallOutcome, Vec<LogLine>) {
    let incoming = wactor_telemetry::incoming(&event.headers);
    let none = tracing::Span::none();
    let trace = outbound_trace(span.span.as_ref().unwrap_or(&none), span.traced, incoming);
    let made_before = span.span.is_some();
    let mut invocation = version.actor.invoke_traced(event, reader, trace).await;
    let logs = std::mem::take(&mut invocation.logs);
    match span.for_lines(ctx, version, event, &logs) {
        // Made before the call: the caller's `instrument` has entered it.
        Some(_) if made_before => log_actor_lines(&logs),
        Some(made) => made.in_scope(|| log_actor_lines(&logs)),
        // No line can be shown (logged all the same, in no `handle` span).
        None => log_actor_lines(&logs),
    }
    let emit_trace = EmitTrace {
        span: span.span.as_ref().unwrap_or(&none),
        traced: span.traced,
        incoming,
    };
    let applying = effects_of(ctx, event, version, invocation, emit_trace);
    // The effects run in the span too: entered by the caller when it was
    // made before the call, here when it was made for the lines.
    let outcome = match &span.span {
        Some(late) if !made_before => applying.instrument(late.clone()).await,
        _ => applying.await,
    };
    (outcome, logs)
}

/// What the emits of a call need to be traced.
struct EmitTrace<'a> {
    /// The call's `handle` span.
    span: &'a tracing::Span,
    /// Traces are on (a `send` span per record).
    traced: bool,
    /// The incoming record's context (passed on when traces are off).
    incoming: Option<IncomingContext<'a>>,
}

impl EmitTrace<'_> {
    /// The `send <topic>` span of a record to `topic`, when traces are on.
    fn send_span(&self, topic: &str) -> Option<tracing::Span> {
        if !self.traced {
            return None;
        }
        let span = tracing::info_span!(
            parent: self.span,
            "send",
            otel.name = %format_args!("send {topic}"),
            otel.kind = "producer",
        );
        wactor_telemetry::set_attribute(&span, "messaging.system", "kafka");
        wactor_telemetry::set_attribute(&span, "messaging.operation.type", "send");
        wactor_telemetry::set_attribute(&span, "messaging.operation.name", "send");
        wactor_telemetry::set_attribute(&span, "messaging.destination.name", topic.to_string());
        Some(span)
    }

    /// Adds `traceparent` (and `tracestate`) to an emitted record's
    /// `headers`, unless the actor set a `traceparent` itself: the `send`
    /// span's context when traces are on, else the incoming one.
    fn inject(&self, send: Option<&tracing::Span>, headers: &mut Vec<(String, Option<Vec<u8>>)>) {
        if headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(TRACEPARENT))
        {
            return;
        }
        let (parent, state) = match send {
            Some(send) => match wactor_telemetry::traceparent_of(send) {
                Some((parent, state)) => (parent, state),
                None => return,
            },
            None => match &self.incoming {
                Some(incoming) => (
                    incoming.traceparent.to_header(),
                    incoming.tracestate.map(str::to_string),
                ),
                None => return,
            },
        };
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case(TRACESTATE));
        headers.push((TRACEPARENT.to_string(), Some(parent.into_bytes())));
        if let Some(state) = state {
            headers.push((TRACESTATE.to_string(), Some(state.into_bytes())));
        }
    }
}

/// The outcome of a call that has nothing to apply: a `done` without
/// effects, or any other result (only a `done` keeps its effects).
fn settled(result: CallResult) -> CallOutcome {
    match result {
        CallResult::Returned(Outcome::Done) => CallOutcome::Done,
        CallResult::Returned(Outcome::Retry { reason, delay }) => {
            CallOutcome::Retry { reason, delay }
        }
        CallResult::Returned(Outcome::Dead { reason }) => CallOutcome::Dead { reason },
        CallResult::Trapped(trap) => CallOutcome::Trap {
            message: trap.to_string(),
        },
    }
}

/// Makes a call's effects real (emits, then the state changelog, then the
/// store) and returns its outcome: `Failed` when one of them cannot be
/// applied.
async fn effects_of(
    ctx: &ActorContext,
    event: &Event,
    version: &ActiveVersion,
    invocation: wactor_runtime::Invocation,
    trace: EmitTrace<'_>,
) -> CallOutcome {
    match invocation.result {
        CallResult::Returned(Outcome::Done) if !invocation.effects.is_empty() => {
            if let Err(reason) =
                produce_emits(ctx, version, event, &invocation.effects, &trace).await
            {
                ctx.counters.emit_failures.inc();
                return CallOutcome::Failed { reason };
            }
            if let Err(reason) = write_state_changelog(ctx, event, &invocation.effects).await {
                return CallOutcome::Failed { reason };
            }
            if let Err(err) = apply_state_writes(
                &ctx.state,
                &event.topic,
                event.partition,
                &invocation.effects,
            ) {
                return CallOutcome::Failed {
                    reason: format!("cannot apply the actor's state writes: {err}"),
                };
            }
            CallOutcome::Done
        }
        result => settled(result),
    }
}

/// Produces a done call's state writes to the state changelog (when it is
/// on) and waits for every acknowledgement.
async fn write_state_changelog(
    ctx: &ActorContext,
    event: &Event,
    effects: &Effects,
) -> Result<(), String> {
    if effects.state_writes.is_empty() {
        return Ok(());
    }
    let Some(changelog) = ctx.state_changelog.get() else {
        return Ok(());
    };
    let mut deliveries = Vec::with_capacity(effects.state_writes.len());
    for (key, write) in &effects.state_writes {
        let value = match write {
            StateWrite::Set(value) => Some(value.as_slice()),
            StateWrite::Delete => None,
        };
        let record = changelog
            .entry_record(&event.topic, event.partition, key, value)
            .map_err(|e| format!("state not written: {e}"))?;
        deliveries.push(ctx.producer.enqueue(&record));
    }
    for result in futures::future::join_all(deliveries).await {
        if let Err(err) = result {
            return Err(format!("state changelog record not produced: {err}"));
        }
    }
    Ok(())
}

/// Produces every emitted record and waits for all acknowledgements.
async fn produce_emits(
    ctx: &ActorContext,
    version: &ActiveVersion,
    event: &Event,
    effects: &Effects,
    trace: &EmitTrace<'_>,
) -> Result<(), String> {
    if effects.emits.is_empty() {
        return Ok(());
    }
    let source = format!("{}/{}/{}", event.topic, event.partition, event.offset);
    let actor = format!("{}@{}", ctx.name, version.version);
    // The emits of a replayed event say so (and which replay).
    let replay = event
        .headers
        .iter()
        .find(|(name, _)| name == crate::replay::REPLAY_HEADER)
        .map(|(_, value)| value.clone());
    let deliveries: Vec<_> = effects
        .emits
        .iter()
        .map(|record| {
            let mut headers = record.headers.clone();
            headers.push((SOURCE_HEADER.to_string(), Some(source.clone().into_bytes())));
            headers.push((ACTOR_HEADER.to_string(), Some(actor.clone().into_bytes())));
            if let Some(replay) = &replay {
                if !headers
                    .iter()
                    .any(|(n, _)| n == crate::replay::REPLAY_HEADER)
                {
                    headers.push((crate::replay::REPLAY_HEADER.to_string(), replay.clone()));
                }
            }
            let send = trace.send_span(&record.topic);
            trace.inject(send.as_ref(), &mut headers);
            let key = record.key.clone().or_else(|| event.key.clone());
            // A delayed emit goes to `<group>.delayed` until it is due
            // (checked at emit; a directive refused now cannot happen).
            let out = match crate::delayed::due_of(&headers, ctx.clock.now_ms()) {
                Ok(Some(due)) => {
                    ctx.metrics
                        .delayed_total
                        .with_label_values(&[&ctx.name, "scheduled"])
                        .inc();
                    crate::delayed::delayed_record(
                        &ctx.group,
                        &record.topic,
                        key,
                        record.payload.clone(),
                        &headers,
                        due,
                    )
                }
                Ok(None) | Err(_) => OutRecord {
                    topic: record.topic.clone(),
                    partition: None,
                    key,
                    // `None` is a tombstone the actor asked for.
                    payload: record.payload.clone(),
                    headers,
                },
            };
            let delivery = ctx.producer.enqueue(&out);
            async move {
                match send {
                    Some(send) => delivery.instrument(send).await,
                    None => delivery.await,
                }
            }
        })
        .collect();
    let count = deliveries.len();
    for result in futures::future::join_all(deliveries).await {
        if let Err(err) = result {
            return Err(format!("emitted record not produced: {err}"));
        }
    }
    ctx.counters.emitted_records.inc_by(count as u64);
    Ok(())
}

/// Logs an actor's `lines` as `wactor::actor` events, in whatever span is
/// entered.
fn log_actor_lines(lines: &[LogLine]) {
    for line in lines {
        log_actor_line(line.level, &line.message);
    }
}

/// The `tracing` level of an actor's log level.
fn tracing_level(level: LogLevel) -> tracing::Level {
    match level {
        LogLevel::Trace => tracing::Level::TRACE,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    }
}

fn log_actor_line(level: LogLevel, message: &str) {
    match level {
        LogLevel::Trace => tracing::trace!(target: "wactor::actor", "{message}"),
        LogLevel::Debug => tracing::debug!(target: "wactor::actor", "{message}"),
        LogLevel::Info => tracing::info!(target: "wactor::actor", "{message}"),
        LogLevel::Warn => tracing::warn!(target: "wactor::actor", "{message}"),
        LogLevel::Error => tracing::error!(target: "wactor::actor", "{message}"),
    }
}

/// A key for logs: its text when printable, hex otherwise, cut at 64
/// characters.
pub fn display_key(key: Option<&[u8]>) -> String {
    let Some(key) = key else {
        return "(none)".into();
    };
    let text = match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    };
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn header(name: &str, value: &str) -> (String, Option<Vec<u8>>) {
        (name.to_string(), Some(value.as_bytes().to_vec()))
    }

    fn value_of<'a>(headers: &'a [(String, Option<Vec<u8>>)], name: &str) -> Vec<&'a [u8]> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    #[test]
    fn with_traces_off_an_emit_gets_the_incoming_context_unless_the_actor_set_one() {
        let source = vec![header("traceparent", INCOMING), header("tracestate", "v=1")];
        let span = tracing::Span::none();
        let trace = EmitTrace {
            span: &span,
            traced: false,
            incoming: wactor_telemetry::incoming(&source),
        };
        assert!(trace.send_span("out").is_none());
        let mut headers = vec![header("tracestate", "stale")];
        trace.inject(None, &mut headers);
        assert_eq!(value_of(&headers, "traceparent"), [INCOMING.as_bytes()]);
        assert_eq!(value_of(&headers, "tracestate"), [b"v=1".as_slice()]);

        let actor_set = "00-11111111111111111111111111111111-2222222222222222-00";
        let mut headers = vec![header("TraceParent", actor_set)];
        trace.inject(None, &mut headers);
        assert_eq!(headers, vec![header("TraceParent", actor_set)]);
    }

    #[test]
    fn without_an_incoming_context_or_traces_an_emit_gets_no_header() {
        let span = tracing::Span::none();
        let trace = EmitTrace {
            span: &span,
            traced: false,
            incoming: None,
        };
        let mut headers = Vec::new();
        trace.inject(None, &mut headers);
        assert!(headers.is_empty());
    }

    #[test]
    fn only_short_text_keys_become_span_attributes() {
        assert_eq!(text_key(Some(b"user-1")), Some("user-1"));
        assert_eq!(text_key(Some(&[0xff, 0x00])), None);
        assert_eq!(text_key(Some(b"line\nbreak")), None);
        assert_eq!(text_key(Some(&[b'k'; 300])), None);
        assert_eq!(text_key(None), None);
    }

    #[test]
    fn url_full_leaves_out_user_info_query_and_fragment() {
        let uri: http::Uri = "http://user:secret@api.example.com:8080/a/b?token=x"
            .parse()
            .unwrap_or_default();
        assert_eq!(url_without_query(&uri), "http://api.example.com:8080/a/b");
        let uri: http::Uri = "https://api.example.com/v1?q=1".parse().unwrap_or_default();
        assert_eq!(url_without_query(&uri), "https://api.example.com/v1");
    }

    #[test]
    fn only_http_methods_name_request_spans() {
        assert_eq!(known_method(&http::Method::POST), Some("POST"));
        assert_eq!(known_method(&http::Method::PATCH), Some("PATCH"));
        for made_up in [b"USER-12345-PURGE".as_slice(), b"get"] {
            let method = http::Method::from_bytes(made_up).unwrap_or_default();
            assert_ne!(method, http::Method::GET, "{made_up:?} parsed");
            assert_eq!(known_method(&method), None);
        }
    }

    #[test]
    fn keys_display_as_text_or_hex() {
        assert_eq!(display_key(None), "(none)");
        assert_eq!(display_key(Some(b"user-1")), "user-1");
        assert_eq!(display_key(Some(&[0, 255])), "00ff");
        assert_eq!(display_key(Some(&[b'a'; 100])).chars().count(), 65);
    }
}
