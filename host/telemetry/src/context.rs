//! W3C trace context (<https://www.w3.org/TR/trace-context/>) in Kafka
//! record headers: reading an incoming record's `traceparent` and
//! `tracestate`, making a span their child, and writing a span's context
//! back out.
//!
//! Record headers are hostile input. A `traceparent` is used only when
//! exactly one header of that name (compared without regard to ASCII case)
//! holds a valid value: ASCII, at most [`MAX_TRACEPARENT_BYTES`], a known
//! layout (`00` exactly; a higher version only with the `00` fields first),
//! lowercase hex, neither id all zeros, version not `ff`. Anything else
//! (missing, null, not UTF-8, too long, two headers) is ignored: the span
//! starts a new trace and the event goes on as if there were no header. A
//! `tracestate` is carried only beside a valid `traceparent`, only when
//! unique, printable ASCII and at most [`MAX_TRACESTATE_BYTES`].
//!
//! Reading costs no allocation: [`incoming`] borrows from the headers.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The trace-context header of a record or request.
pub const TRACEPARENT: &str = "traceparent";
/// The vendor trace-state header beside it.
pub const TRACESTATE: &str = "tracestate";

/// Longest `traceparent` value read (a version-00 value is 55 bytes; later
/// versions may append fields).
pub const MAX_TRACEPARENT_BYTES: usize = 256;
/// Longest `tracestate` value carried (the W3C limit for propagation).
pub const MAX_TRACESTATE_BYTES: usize = 512;

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id (never all zeros).
    pub trace_id: [u8; 16],
    /// The parent's span id (never all zeros).
    pub span_id: [u8; 8],
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value; `None` when it is not a valid one.
    pub fn parse(value: &[u8]) -> Option<TraceParent> {
        if value.len() < 55 || value.len() > MAX_TRACEPARENT_BYTES {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        if version == 0xff || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        // Version 00 is exactly 55 bytes; a later version may add fields
        // after a dash.
        if (version == 0 && value.len() != 55) || (value.len() > 55 && value[55] != b'-') {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&value[3 + 2 * i..5 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, byte) in span_id.iter_mut().enumerate() {
            *byte = hex_byte(&value[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&value[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The version-00 header value:
    /// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
    pub fn to_header(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        for b in self.trace_id {
            let _ = write!(out, "{b:02x}");
        }
        out.push('-');
        for b in self.span_id {
            let _ = write!(out, "{b:02x}");
        }
        let _ = write!(out, "-{:02x}", self.flags);
        out
    }
}

/// Two lowercase hex digits.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

/// The trace context an incoming record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingContext<'a> {
    /// Its `traceparent`.
    pub traceparent: TraceParent,
    /// Its `tracestate`, when valid.
    pub tracestate: Option<&'a str>,
}

/// The one non-null value of header `name` (ASCII case ignored); `None`
/// when there is none, or more than one.
fn unique_header<'a>(headers: &'a [(String, Option<Vec<u8>>)], name: &str) -> Option<&'a [u8]> {
    let mut found = None;
    for (key, value) in headers {
        if key.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return None;
            }
            found = Some(value.as_deref());
        }
    }
    found.flatten()
}

/// The trace context of a record with `headers`, or `None` (a new trace)
/// when it carries no valid one. Never fails, never allocates.
pub fn incoming(headers: &[(String, Option<Vec<u8>>)]) -> Option<IncomingContext<'_>> {
    let traceparent = TraceParent::parse(unique_header(headers, TRACEPARENT)?)?;
    let tracestate = unique_header(headers, TRACESTATE)
        .filter(|v| v.len() <= MAX_TRACESTATE_BYTES)
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)));
    Some(IncomingContext {
        traceparent,
        tracestate,
    })
}

/// Makes `span` (not yet entered) a child of the remote span `parent`,
/// or, with `None`, the root of a new trace whatever span it was created
/// in. Does nothing when traces are off or the span is disabled.
pub fn set_parent(span: &tracing::Span, parent: Option<&IncomingContext<'_>>) {
    let cx = match parent {
        Some(parent) => {
            let state = parent
                .tracestate
                .and_then(|s| s.parse::<TraceState>().ok())
                .unwrap_or_default();
            let remote = SpanContext::new(
                TraceId::from_bytes(parent.traceparent.trace_id),
                SpanId::from_bytes(parent.traceparent.span_id),
                TraceFlags::new(parent.traceparent.flags & 0x01),
                true,
                state,
            );
            opentelemetry::Context::new().with_remote_span_context(remote)
        }
        None => opentelemetry::Context::new(),
    };
    // Errors: no OpenTelemetry layer (traces off) or a span started
    // already; either way the span keeps the trace it has.
    let _ = span.set_parent(cx);
}

/// Sets OpenTelemetry attribute `key` on `span` without a `tracing`
/// field (so log lines do not show it). Does nothing when traces are off.
pub fn set_attribute(
    span: &tracing::Span,
    key: &'static str,
    value: impl Into<opentelemetry::Value>,
) {
    span.set_attribute(key, value);
}

/// The `traceparent` (and `tracestate`, when not empty) values of `span`'s
/// OpenTelemetry context; `None` when it has none (traces off, span
/// disabled).
pub fn traceparent_of(span: &tracing::Span) -> Option<(String, Option<String>)> {
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let parent = TraceParent {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8() & 0x01,
    };
    let state = sc.trace_state().header();
    Some((parent.to_header(), (!state.is_empty()).then_some(state)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(list: &[(&str, Option<&[u8]>)]) -> Vec<(String, Option<Vec<u8>>)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn a_valid_traceparent_round_trips() {
        let parsed = TraceParent::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(parsed.flags, 1);
        assert_eq!(
            parsed.span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(parsed.to_header(), GOOD);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        let long = format!("{GOOD}{}", "a".repeat(10_000));
        let bad: Vec<&[u8]> = vec![
            b"",
            b"garbage",
            // upper case hex, wrong version, version ff, zero ids
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // version 00 with extra fields, bad separators, non-UTF-8
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\xff\xfe",
            long.as_bytes(),
        ];
        for value in bad {
            assert_eq!(TraceParent::parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_version_00_fields() {
        let v = b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert_eq!(TraceParent::parse(v).unwrap().to_header(), GOOD);
    }

    #[test]
    fn incoming_needs_exactly_one_valid_header() {
        let one = headers(&[("TraceParent", Some(GOOD.as_bytes()))]);
        assert!(incoming(&one).is_some());
        let two = headers(&[
            ("traceparent", Some(GOOD.as_bytes())),
            ("traceparent", Some(GOOD.as_bytes())),
        ]);
        assert_eq!(incoming(&two), None);
        assert_eq!(incoming(&headers(&[("traceparent", None)])), None);
        assert_eq!(
            incoming(&headers(&[("other", Some(GOOD.as_bytes()))])),
            None
        );
    }

    #[test]
    fn tracestate_is_kept_only_when_sane() {
        let with = |state: &[u8]| {
            let h = headers(&[
                ("traceparent", Some(GOOD.as_bytes())),
                ("tracestate", Some(state)),
            ]);
            incoming(&h).unwrap().tracestate.map(str::to_string)
        };
        assert_eq!(with(b"vendor=abc").as_deref(), Some("vendor=abc"));
        assert_eq!(with(&[b'a'; 600]), None);
        assert_eq!(with(b"bad\nvalue"), None);
        assert_eq!(with(b"\xff"), None);
    }

    /// Runs `f` with a subscriber whose OpenTelemetry layer has a
    /// parent-based sampler that records new traces, and no exporter.
    fn with_tracer(f: impl FnOnce()) {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
                opentelemetry_sdk::trace::Sampler::AlwaysOn,
            )))
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f);
    }

    #[test]
    fn a_parent_that_is_not_sampled_is_still_propagated_with_its_state() {
        with_tracer(|| {
            let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
            let h = headers(&[
                ("traceparent", Some(unsampled.as_bytes())),
                ("tracestate", Some(b"vendor=abc")),
            ]);
            let span = tracing::info_span!("handle");
            set_parent(&span, incoming(&h).as_ref());
            let child = tracing::info_span!(parent: &span, "send");
            let (parent, state) = traceparent_of(&child).unwrap();
            // Same trace, a span id of its own, still not sampled (so the
            // next service does not record it either), the state kept.
            assert!(parent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
            assert!(!parent.contains("00f067aa0ba902b7"), "{parent}");
            assert!(parent.ends_with("-00"), "{parent}");
            assert_eq!(state.as_deref(), Some("vendor=abc"));
            // A sampled parent gives sampled children.
            let span = tracing::info_span!("handle");
            set_parent(
                &span,
                incoming(&headers(&[("traceparent", Some(GOOD.as_bytes()))])).as_ref(),
            );
            let (parent, state) = traceparent_of(&span).unwrap();
            assert!(parent.ends_with("-01"), "{parent}");
            assert_eq!(state, None);
        });
    }

    #[test]
    fn without_an_opentelemetry_layer_spans_have_no_context() {
        let span = tracing::info_span!("x");
        let parent = TraceParent::parse(GOOD.as_bytes()).unwrap();
        set_parent(
            &span,
            Some(&IncomingContext {
                traceparent: parent,
                tracestate: None,
            }),
        );
        assert_eq!(traceparent_of(&span), None);
    }
}
