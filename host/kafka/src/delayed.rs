//! Delayed emits: a record an actor emits with a delivery time reaches its
//! topic then, not at once, durably across restarts and host moves.
//!
//! An emitted record carrying the header [`HEADER_DELAY_MS`] (a delay, in
//! ms) or [`HEADER_DELIVER_AT`] (a time, ms since the Unix epoch) is, like
//! every emit, produced only if the call is done, but to the group's topic
//! `<group>.delayed` ([`delayed_topic`]), keyed as it would have been, with
//! its target topic and due time in headers ([`HEADER_TARGET`],
//! [`HEADER_DELIVER_AT`]). The actor's consumer reads that topic like its
//! others; its partition workers hold each record (in the store and the
//! retry changelog, as a held retry, so it moves with its partition) until
//! it is due, then produce it to its target, without the host's headers,
//! and forget it. A delivery that fails is tried again every 5 s.
//!
//! Bounds: a delay of at most [`MAX_DELAY`] (7 days) is accepted at emit
//! (more is refused to the actor); a record in the topic due later than
//! that after it was read (written by something else) is delivered at
//! that bound. A target that is not a topic an actor may emit to
//! (reserved names) is never delivered (logged, dropped).
//!
//! Delivery is at least once: a host stopped between producing a due
//! record and forgetting it delivers it again after a restart.

use std::time::Duration;

use wactor_runtime::Event;

use crate::producer::OutRecord;

pub use wactor_runtime::delay::{due_of, HEADER_DELAY_MS, HEADER_DELIVER_AT, MAX_DELAY};

/// Header of a record in `<group>.delayed`: the topic it goes to.
pub const HEADER_TARGET: &str = "wactor-delayed-topic";

/// How long a failed delivery waits before it is tried again: 5 s.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The delayed-records topic of a consumer group: `<group>.delayed`.
pub fn delayed_topic(group: &str) -> String {
    format!("{group}.delayed")
}

fn max_delay_ms() -> i64 {
    i64::try_from(MAX_DELAY.as_millis()).unwrap_or(i64::MAX)
}

fn header<'a>(headers: &'a [(String, Option<Vec<u8>>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

fn parse_ms(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// Whether a header is one of the host's delay headers (not delivered).
fn is_delay_header(name: &str) -> bool {
    name == HEADER_DELAY_MS || name == HEADER_DELIVER_AT || name == HEADER_TARGET
}

/// The record of `<group>.delayed` for an emit to `target` due at `due_ms`.
pub fn delayed_record(
    group: &str,
    target: &str,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: &[(String, Option<Vec<u8>>)],
    due_ms: i64,
) -> OutRecord {
    let mut headers: Vec<(String, Option<Vec<u8>>)> = headers
        .iter()
        .filter(|(n, _)| !is_delay_header(n))
        .cloned()
        .collect();
    headers.push((HEADER_TARGET.to_string(), Some(target.as_bytes().to_vec())));
    headers.push((
        HEADER_DELIVER_AT.to_string(),
        Some(due_ms.to_string().into_bytes()),
    ));
    OutRecord {
        topic: delayed_topic(group),
        partition: None,
        key,
        payload,
        headers,
    }
}

/// A record of `<group>.delayed` read back: where and when it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The topic it is delivered to.
    pub target: String,
    /// When (ms since the epoch), at most [`MAX_DELAY`] after `read_at_ms`.
    pub due_ms: i64,
}

/// Reads a record of `<group>.delayed` (read at `read_at_ms`).
///
/// # Errors
/// Why it cannot be delivered: no target or time, or a target no actor may
/// emit to.
pub fn pending_of(event: &Event, read_at_ms: i64) -> Result<Pending, String> {
    let target = header(&event.headers, HEADER_TARGET)
        .and_then(|t| std::str::from_utf8(t).ok())
        .ok_or_else(|| format!("no {HEADER_TARGET} header"))?
        .to_string();
    wactor_runtime::check_emit_topic(&target)?;
    let due = header(&event.headers, HEADER_DELIVER_AT)
        .and_then(parse_ms)
        .ok_or_else(|| format!("no {HEADER_DELIVER_AT} header"))?;
    Ok(Pending {
        target,
        due_ms: due.min(read_at_ms.saturating_add(max_delay_ms())),
    })
}

/// The record a held delayed record becomes when due: its target, its key
/// and value, its headers without the host's delay headers.
pub fn delivery(event: &wactor_store::StoredEvent, target: &str) -> OutRecord {
    OutRecord {
        topic: target.to_string(),
        partition: None,
        key: event.key.clone(),
        payload: event.payload.clone(),
        headers: event
            .headers
            .iter()
            .filter_map(|h| {
                let name = String::from_utf8(h.name.clone()).ok()?;
                (!is_delay_header(&name)).then(|| (name, h.value.clone()))
            })
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> (String, Option<Vec<u8>>) {
        (name.to_string(), Some(value.as_bytes().to_vec()))
    }

    #[test]
    fn a_delayed_record_carries_its_target_and_time_and_delivers_without_them() {
        let record = delayed_record(
            "g",
            "reminders",
            Some(b"k".to_vec()),
            Some(b"v".to_vec()),
            &[h("trace", "t"), h(HEADER_DELAY_MS, "5")],
            77,
        );
        assert_eq!(record.topic, "g.delayed");
        let event = Event {
            topic: record.topic.clone(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: record.key.clone(),
            payload: record.payload.clone(),
            headers: record.headers.clone(),
            attempt: 1,
        };
        let pending = pending_of(&event, 0).unwrap();
        assert_eq!(
            pending,
            Pending {
                target: "reminders".into(),
                due_ms: 77
            }
        );
        let stored = crate::event::to_stored(&event);
        let out = delivery(&stored, &pending.target);
        assert_eq!(out.topic, "reminders");
        assert_eq!(out.headers, vec![h("trace", "t")]);
        assert_eq!(out.payload.as_deref(), Some(b"v".as_slice()));
        // Forged: a reserved target, or a time too far away.
        let mut forged = event.clone();
        forged.headers = vec![
            h(HEADER_TARGET, "wactor.registry"),
            h(HEADER_DELIVER_AT, "1"),
        ];
        assert!(pending_of(&forged, 0).is_err());
        forged.headers = vec![
            h(HEADER_TARGET, "ok"),
            h(HEADER_DELIVER_AT, &i64::MAX.to_string()),
        ];
        assert_eq!(pending_of(&forged, 0).unwrap().due_ms, max_delay_ms());
    }
}
