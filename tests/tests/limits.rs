//! Hostile actors against the per-call limits, on real components (the
//! `fixture-hostile` guest does what its payload says): state writes past
//! `max_state_writes`/`max_state_bytes`, a flood of log lines and stdout,
//! emits to the host's internal topics. Nothing traps the host; a refused
//! state write or emit is reported to the actor, names the limit and
//! changes nothing; effects apply only on `done`; and the host's memory
//! stays bounded by the actor's limits.
//!
//! The tests run one at a time (a lock): one of them measures the
//! process's resident memory while the actor runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wactor_runtime::{
    ActorSettings, CallResult, Event, Invocation, Limits, LoadedActor, Outcome, Runtime,
    RuntimeSettings, StateWrite,
};
use wactor_tests::{guest_bytes, MapState};

const MIB: usize = 1024 * 1024;

/// One test at a time: the memory test must not see the others' memory.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::new(RuntimeSettings::default()).unwrap_or_else(|e| panic!("{e}")))
}

fn hostile(limits: Limits) -> LoadedActor {
    let mut settings = ActorSettings::new("hostile");
    settings.limits = limits;
    runtime()
        .load(&guest_bytes("fixture-hostile"), settings)
        .unwrap()
}

fn event(script: serde_json::Value) -> Event {
    Event {
        topic: "in".into(),
        partition: 0,
        offset: 1,
        timestamp_ms: None,
        key: Some(b"k".to_vec()),
        payload: Some(script.to_string().into_bytes()),
        headers: Vec::new(),
        attempt: 1,
    }
}

async fn call(actor: &LoadedActor, script: serde_json::Value) -> Invocation {
    actor.invoke(&event(script), MapState::new()).await
}

fn retry_reason(invocation: &Invocation) -> String {
    match &invocation.result {
        CallResult::Returned(Outcome::Retry { reason, .. }) => reason.clone(),
        other => panic!("expected a retry, got {other:?}"),
    }
}

fn dead_reason(invocation: &Invocation) -> String {
    match &invocation.result {
        CallResult::Returned(Outcome::Dead { reason }) => reason.clone(),
        other => panic!("expected dead, got {other:?}"),
    }
}

/// This process's resident set size in bytes (`VmRSS`).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .expect("VmRSS in /proc/self/status")
}

/// Samples the resident set size every millisecond until dropped; `peak`
/// is the highest seen.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss_bytes()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        RssSampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

#[tokio::test]
async fn an_actor_writing_twenty_32_mib_values_is_refused_and_host_memory_stays_bounded() {
    let _serial = SERIAL.lock().await;
    let limits = Limits {
        memory_bytes: 64 * MIB as u64,
        ..Limits::default()
    };
    let actor = hostile(limits);
    // Warm up: the instance, its memory slot and the allocator's arenas.
    let warm = call(&actor, serde_json::json!({})).await;
    assert_eq!(warm.result, CallResult::Returned(Outcome::Done));

    // The actor carries on past each refusal, so that all twenty values
    // pass through the host.
    let script = serde_json::json!({
        "state_sets": 20, "state_value_bytes": 32 * MIB, "past_refusals": true, "then": "retry"
    });
    let before = rss_bytes();
    let sampler = RssSampler::start();
    let invocation = call(&actor, script).await;
    let peak = sampler.finish();

    // The actor asked for a retry: that stands, and nothing is kept.
    assert_eq!(retry_reason(&invocation), "scripted retry");
    assert!(invocation.effects.is_empty());
    // It was told of every refusal.
    let refusals = invocation
        .logs
        .iter()
        .filter(|l| l.message.starts_with("state write refused:"))
        .filter(|l| l.message.contains("(limits.max_state_bytes)"))
        .count();
    assert_eq!(refusals, 20, "{:?}", invocation.logs);
    // 20 × 32 MiB is 640 MiB if the host kept the writes. Bounded, the
    // host holds one value while it is copied out of the guest (32 MiB) on
    // top of the guest's own memory (at most its 64 MiB limit).
    let grew = peak.saturating_sub(before);
    eprintln!(
        "resident memory before the call {} MiB, peak during it {} MiB",
        before / MIB as u64,
        peak / MIB as u64
    );
    assert!(
        grew < 160 * MIB as u64,
        "resident memory grew by {} MiB during the call (from {} MiB)",
        grew / MIB as u64,
        before / MIB as u64
    );

    // The same writes, stopping at the first refusal: the actor sees the
    // error from `state::set` and ends the call dead with it.
    let script = serde_json::json!({ "state_sets": 20, "state_value_bytes": 32 * MIB });
    let invocation = call(&actor, script).await;
    assert_eq!(
        dead_reason(&invocation),
        "state write refused: state write rejected: state: writing \"k0\" would make this \
         call's state writes 33554434 bytes; the limit is 16777216 (limits.max_state_bytes)"
    );
    assert!(invocation.effects.is_empty());
}

#[tokio::test]
async fn state_writes_within_the_limits_are_applied() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits::default());
    let invocation = call(
        &actor,
        serde_json::json!({ "state_sets": 10, "state_value_bytes": 1000 }),
    )
    .await;
    assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
    assert_eq!(invocation.effects.state_writes.len(), 10);
    assert_eq!(
        invocation.effects.state_writes.get("k9"),
        Some(&StateWrite::Set(vec![0x5A; 1000]))
    );
}

#[tokio::test]
async fn a_state_write_past_max_state_bytes_fails_in_the_actor_with_an_error_naming_the_limit() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits {
        max_state_bytes: MIB,
        ..Limits::default()
    });
    let invocation = call(
        &actor,
        serde_json::json!({ "state_sets": 3, "state_value_bytes": 400 * 1024 }),
    )
    .await;
    // The fixture ends the call dead with the error `state::set` returned.
    assert_eq!(
        dead_reason(&invocation),
        "state write refused: state write rejected: state: writing \"k2\" would make this \
         call's state writes 1228806 bytes; the limit is 1048576 (limits.max_state_bytes)"
    );
    assert!(
        invocation.effects.is_empty(),
        "a dead call applies nothing, not even the two writes that fitted"
    );
}

#[tokio::test]
async fn a_state_write_past_max_state_writes_fails_in_the_actor_with_an_error_naming_the_limit() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits {
        max_state_writes: 5,
        ..Limits::default()
    });
    let invocation = call(
        &actor,
        serde_json::json!({ "state_sets": 7, "state_value_bytes": 1 }),
    )
    .await;
    assert_eq!(
        dead_reason(&invocation),
        "state write refused: state write rejected: state: more than 5 keys written in one \
         call (limits.max_state_writes)"
    );
    assert!(invocation.effects.is_empty());
}

#[tokio::test]
async fn a_refused_state_write_changes_nothing_and_the_calls_other_effects_apply_only_on_done() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits {
        max_state_bytes: MIB,
        ..Limits::default()
    });
    // k0 and k1 fit, k2 is refused; the actor logs the refusal, goes on,
    // emits a record and returns `done`.
    let script = |then: &str| {
        serde_json::json!({
            "state_sets": 3, "state_value_bytes": 400 * 1024, "past_refusals": true,
            "emit_topic": "victim.in", "then": then
        })
    };
    let invocation = call(&actor, script("done")).await;
    assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
    let keys: Vec<&str> = invocation
        .effects
        .state_writes
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["k0", "k1"], "the refused write to k2 is not there");
    assert_eq!(
        invocation.effects.state_writes.get("k1"),
        Some(&StateWrite::Set(vec![0x5A; 400 * 1024]))
    );
    assert_eq!(invocation.effects.emits.len(), 1);
    assert!(
        invocation.logs.iter().any(|l| l.message
            == "state write refused: state write rejected: state: writing \"k2\" would make \
                this call's state writes 1228806 bytes; the limit is 1048576 \
                (limits.max_state_bytes)"),
        "{:?}",
        invocation.logs
    );

    // The same call ending in a retry applies nothing.
    let invocation = call(&actor, script("retry")).await;
    assert_eq!(retry_reason(&invocation), "scripted retry");
    assert!(invocation.effects.is_empty());
}

#[tokio::test]
async fn rewriting_one_key_counts_only_its_last_value_against_the_limits() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits {
        max_state_writes: 1,
        max_state_bytes: MIB,
        ..Limits::default()
    });
    let invocation = call(
        &actor,
        serde_json::json!({ "state_sets": 50, "state_value_bytes": 512 * 1024, "same_key": true }),
    )
    .await;
    assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
    assert_eq!(invocation.effects.state_writes.len(), 1);
}

#[tokio::test]
async fn limits_are_per_call_and_the_next_call_on_the_same_instance_starts_from_zero() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits {
        max_state_writes: 5,
        ..Limits::default()
    });
    let over = serde_json::json!({ "state_sets": 6, "state_value_bytes": 1 });
    let within = serde_json::json!({ "state_sets": 5, "state_value_bytes": 1 });
    dead_reason(&call(&actor, over).await);
    let invocation = call(&actor, within).await;
    assert!(!invocation.fresh_instance, "the warm instance is reused");
    assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
    assert_eq!(invocation.effects.state_writes.len(), 5);
}

#[tokio::test]
async fn emits_to_the_host_and_kafka_internal_topics_are_refused_and_the_actor_sees_why() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits::default());
    for topic in [
        "wactor.victim.retries",
        "wactor.victim.redrive",
        "payments.retries",
        "custom-group.redrive",
        "orders.victim.dlq",
        "Orders.Victim.DLQ",
        "wactor.registry",
        "__consumer_offsets",
        "__transaction_state",
        "_schemas",
    ] {
        // An empty payload: on a changelog it would be a tombstone.
        let invocation = call(&actor, serde_json::json!({ "emit_topic": topic })).await;
        let reason = dead_reason(&invocation);
        assert!(
            reason.starts_with(&format!(
                "emit refused: emit rejected: emit: topic {topic:?} is reserved"
            )),
            "{topic}: {reason}"
        );
        assert!(invocation.effects.is_empty(), "{topic}");
    }
    for (topic, why) in [("", "empty"), ("a b", "' '"), ("..", "not a valid")] {
        let invocation = call(&actor, serde_json::json!({ "emit_topic": topic })).await;
        let reason = dead_reason(&invocation);
        assert!(reason.contains(why), "{topic:?}: {reason}");
    }
    let invocation = call(&actor, serde_json::json!({ "emit_topic": "victim.in" })).await;
    assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
    assert_eq!(invocation.effects.emits.len(), 1, "other topics are fine");
}

#[tokio::test]
async fn a_flood_of_log_lines_keeps_at_most_the_per_call_lines_and_bytes() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits::default());
    let invocation = call(
        &actor,
        serde_json::json!({ "log_lines": 5000, "log_line_bytes": 8000 }),
    )
    .await;
    assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
    let bytes: usize = invocation.logs.iter().map(|l| l.message.len()).sum();
    assert!(
        bytes <= MIB + 100,
        "{bytes} bytes of log lines kept for one call"
    );
    assert!(invocation.logs.len() <= 1001);
    assert!(
        invocation.logs[0].message.len() <= 4096 + '…'.len_utf8(),
        "each line is cut at 4 KiB"
    );
    let last = invocation.logs.last().unwrap();
    assert!(
        last.message.ends_with("more log lines dropped)"),
        "{}",
        last.message
    );
}

#[tokio::test]
async fn ten_megabytes_on_stdout_keep_64_kib_of_output() {
    let _serial = SERIAL.lock().await;
    let actor = hostile(Limits::default());
    let invocation = call(&actor, serde_json::json!({ "stdout_bytes": 10_000_000 })).await;
    assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
    let bytes: usize = invocation.logs.iter().map(|l| l.message.len()).sum();
    assert!(bytes <= 64 * 1024 + 100, "{bytes} bytes of output kept");
    assert!(
        invocation
            .logs
            .iter()
            .any(|l| l.message.contains("more bytes of output dropped")),
        "the dropped output is counted"
    );
}
