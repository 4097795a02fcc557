//! The optional batch export (`handle-batch`, world
//! `wactor:actor/actor-batch`) through the runtime API, on real components
//! built with the SDK's `export_actor!(X, batch)` (`fixture-batch`,
//! `fixture-noop-batch`), by the Python and JavaScript SDKs
//! (`examples/echo-batch-py`, `examples/echo-batch-js`: `batch = true`) and by
//! hand (`fixture-batch-hostile`): each
//! event's effects follow its own outcome, reads see only the event's own
//! writes, and a batch that fails as a whole (a trap, its deadline, a
//! guest that breaks the contract) runs its events again one by one. And
//! the same through Kafka (librdkafka's mock cluster): a partition's
//! worker hands lane heads to the actor in batches, per-key order and
//! state hold, and a poison event dies alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use support::{eventually, manifest, produce, read_at_least, Host, Kafka};

use wactor_runtime::{
    ActorSettings, BatchInvocation, CallResult, Event, InstanceMode, LoadedActor, LogLevel,
    Outcome, Runtime, RuntimeSettings, StateWrite, TrapKind,
};
use wactor_tests::{guest_bytes, MapState};

const WAIT: Duration = Duration::from_secs(60);

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::new(RuntimeSettings::default()).unwrap_or_else(|e| panic!("{e}")))
}

fn load(name: &str, settings: ActorSettings) -> LoadedActor {
    runtime()
        .load(&guest_bytes(name), settings)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn warm(name: &str) -> ActorSettings {
    let mut settings = ActorSettings::new(name);
    settings.instance_mode = InstanceMode::Warm;
    settings
}

/// Events at offsets 10, 11, ... of `bookings[0]`, key `k<offset>`, one
/// per payload.
fn events(payloads: &[&str]) -> Vec<Event> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let offset = 10 + i as i64;
            Event {
                topic: "bookings".into(),
                partition: 0,
                offset,
                timestamp_ms: None,
                key: Some(format!("k{offset}").into_bytes()),
                payload: Some(payload.as_bytes().to_vec()),
                headers: Vec::new(),
                attempt: 1,
            }
        })
        .collect()
}

async fn batch(actor: &LoadedActor, events: &[Event], state: &Arc<MapState>) -> BatchInvocation {
    let refs: Vec<&Event> = events.iter().collect();
    actor
        .invoke_batch(&refs, state.clone(), vec![None; events.len()])
        .await
}

fn emitted_json(invocation: &wactor_runtime::Invocation) -> Vec<serde_json::Value> {
    invocation
        .effects
        .emits
        .iter()
        .map(|record| {
            serde_json::from_slice(record.payload.as_deref().unwrap_or_default())
                .unwrap_or_else(|e| panic!("not JSON: {e}"))
        })
        .collect()
}

fn messages(invocation: &wactor_runtime::Invocation) -> Vec<&str> {
    invocation
        .logs
        .iter()
        .map(|line| line.message.as_str())
        .collect()
}

#[test]
fn only_warm_versions_with_handle_batch_take_batches() {
    assert!(load("fixture-noop-batch", warm("a")).takes_batches());
    assert!(load("fixture-batch", warm("b")).takes_batches());
    assert!(!load("fixture-noop", warm("c")).takes_batches());
    let mut fresh = warm("d");
    fresh.instance_mode = InstanceMode::Fresh;
    assert!(
        !load("fixture-noop-batch", fresh).takes_batches(),
        "a fresh instance per event leaves no room for a batch"
    );
}

#[tokio::test]
async fn each_events_effects_and_logs_follow_its_own_outcome() {
    let actor = load("fixture-batch", warm("scripted-batch"));
    let state = MapState::new();
    let events = events(&[
        r#"{"seq": 1, "state_key": "a"}"#,
        r#"{"seq": 2, "state_key": "b", "dead": true}"#,
        r#"{"seq": 3, "state_key": "c", "retry": true}"#,
        r#"{"seq": 4, "state_key": "d"}"#,
    ]);
    let result = batch(&actor, &events, &state).await;
    assert!(result.fallback.is_none(), "{:?}", result.fallback);
    let [first, dead, retry, last] = &result.invocations[..] else {
        panic!("{} invocations", result.invocations.len());
    };
    assert_eq!(first.result, CallResult::Returned(Outcome::Done));
    assert!(
        matches!(&dead.result, CallResult::Returned(Outcome::Dead { reason }) if reason == "scripted dead")
    );
    assert!(matches!(
        &retry.result,
        CallResult::Returned(Outcome::Retry { .. })
    ));
    assert_eq!(last.result, CallResult::Returned(Outcome::Done));
    // The dead and retried events emitted and wrote too, before their
    // outcome: none of it is kept.
    for failed in [dead, retry] {
        assert!(failed.effects.emits.is_empty() && failed.effects.state_writes.is_empty());
    }
    for (done, key, offset, seq) in [(first, "a", 10, 1), (last, "d", 13, 4)] {
        let out = emitted_json(done);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            (out[0]["offset"].as_i64(), out[0]["seq"].as_i64()),
            (Some(offset), Some(seq))
        );
        assert_eq!(
            done.effects.state_writes.get(key),
            Some(&StateWrite::Set(offset.to_string().into_bytes()))
        );
        assert_eq!(done.effects.state_writes.len(), 1);
        // Records are keyed by their own event's key.
        assert_eq!(
            done.effects.emits[0].key.as_deref(),
            Some(format!("k{offset}").as_bytes())
        );
    }
    // Each event's log line is its own.
    for (invocation, offset) in result.invocations.iter().zip(10..) {
        assert_eq!(
            messages(invocation),
            vec![format!("event {offset}").as_str()],
            "logs of offset {offset}"
        );
    }
    // The warm instance went back to the pool: the batch did not trap.
    assert_eq!(actor.idle_instances(), 1);
}

#[tokio::test]
async fn an_event_reads_the_store_and_its_own_writes_not_its_neighbours() {
    let actor = load("fixture-batch", warm("reads"));
    let state = MapState::new();
    state.set("shared", "stored");
    let events = events(&[
        r#"{"state_key": "shared"}"#,
        r#"{"state_key": "shared"}"#,
        r#"{"state_key": "shared"}"#,
    ]);
    let result = batch(&actor, &events, &state).await;
    assert!(result.fallback.is_none(), "{:?}", result.fallback);
    for (invocation, offset) in result.invocations.iter().zip(10..) {
        let out = emitted_json(invocation);
        assert_eq!(
            out[0]["read"].as_str(),
            Some("stored"),
            "offset {offset} read another event's write: {out:?}"
        );
        assert_eq!(
            invocation.effects.state_writes.get("shared"),
            Some(&StateWrite::Set(offset.to_string().into_bytes()))
        );
    }
}

#[tokio::test]
async fn a_trap_runs_each_event_again_alone_and_only_the_poison_fails() {
    let actor = load("fixture-batch", warm("poison"));
    let state = MapState::new();
    let events = events(&[
        r#"{"seq": 1}"#,
        r#"{"seq": 2, "trap": true}"#,
        r#"{"seq": 3}"#,
    ]);
    let result = batch(&actor, &events, &state).await;
    let fallback = result.fallback.as_ref().expect("the batch trapped");
    assert_eq!(fallback.kind, TrapKind::Panic, "{fallback}");
    assert!(
        fallback.message.contains("scripted trap at offset 11"),
        "{fallback}"
    );
    let [first, poison, last] = &result.invocations[..] else {
        panic!("{} invocations", result.invocations.len());
    };
    for done in [first, last] {
        assert_eq!(done.result, CallResult::Returned(Outcome::Done));
        assert_eq!(emitted_json(done).len(), 1);
    }
    assert!(
        matches!(&poison.result, CallResult::Trapped(trap) if trap.kind == TrapKind::Panic),
        "{:?}",
        poison.result
    );
    assert!(poison.effects.emits.is_empty());
    // Every event's logs say that it ran again, then hold its own run's.
    for (invocation, offset) in result.invocations.iter().zip(10..) {
        let lines = messages(invocation);
        assert!(
            lines[0].starts_with("the batch of 3 events this event came in failed"),
            "{lines:?}"
        );
        assert_eq!(invocation.logs[0].level, LogLevel::Warn);
        assert!(
            lines.contains(&format!("event {offset}").as_str()),
            "{lines:?}"
        );
    }
}

#[tokio::test]
async fn a_batch_past_its_deadline_runs_its_events_again_each_with_a_deadline_of_its_own() {
    let mut settings = warm("slow");
    settings.limits.call_timeout = Duration::from_millis(400);
    let actor = load("fixture-batch", settings);
    let state = MapState::new();
    // 4 × 150 ms: past 400 ms as one call, well within it one by one.
    let slow = r#"{"sleep_ms": 150}"#;
    let events = events(&[slow, slow, slow, slow]);
    let result = batch(&actor, &events, &state).await;
    let fallback = result.fallback.as_ref().expect("the batch ran out of time");
    assert_eq!(fallback.kind, TrapKind::Deadline, "{fallback}");
    for invocation in &result.invocations {
        assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
        assert_eq!(emitted_json(invocation).len(), 1);
    }
}

#[tokio::test]
async fn a_guest_that_breaks_the_batch_contract_has_its_events_run_one_by_one() {
    let actor = load("fixture-batch-hostile", warm("hostile"));
    let state = MapState::new();
    for (mode, says) in [
        ("short", "returned 2 outcomes for 3 events"),
        ("backwards", "indexes must increase"),
        ("out-of-range", "begin-event(3) in a batch of 3 events"),
        ("early-effect", "before the first batch.begin-event"),
    ] {
        let events = events(&[mode, "x", "y"]);
        let result = batch(&actor, &events, &state).await;
        let fallback = result
            .fallback
            .as_ref()
            .unwrap_or_else(|| panic!("{mode}: the batch was taken"));
        assert!(fallback.message.contains(says), "{mode}: {fallback}");
        for (invocation, offset) in result.invocations.iter().zip(10..) {
            assert_eq!(
                invocation.result,
                CallResult::Returned(Outcome::Done),
                "{mode}"
            );
            let out = emitted_json(invocation);
            assert_eq!(out.len(), 1, "{mode}: {out:?}");
            assert_eq!(out[0]["via"], "handle", "{mode}: {out:?}");
            assert_eq!(out[0]["offset"], offset, "{mode}: {out:?}");
        }
    }
    // Without effects, a batch need not say which event it works on.
    let result = batch(&actor, &events(&["skip", "x"]), &state).await;
    assert!(result.fallback.is_none(), "{:?}", result.fallback);
    for invocation in &result.invocations {
        assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
        assert!(invocation.effects.emits.is_empty());
    }
    // And done right, the batch is taken as it is.
    let result = batch(&actor, &events(&["fine", "x"]), &state).await;
    assert!(result.fallback.is_none(), "{:?}", result.fallback);
    for invocation in &result.invocations {
        assert_eq!(emitted_json(invocation)[0]["via"], "batch");
    }
}

#[tokio::test]
async fn one_event_or_an_actor_without_the_export_goes_through_handle() {
    let state = MapState::new();
    let hostile = load("fixture-batch-hostile", warm("single"));
    let result = batch(&hostile, &events(&["fine"]), &state).await;
    assert!(result.fallback.is_none());
    assert_eq!(emitted_json(&result.invocations[0])[0]["via"], "handle");
    let plain = load("fixture-scripted", warm("plain"));
    let result = batch(&plain, &events(&["{}", "{}"]), &state).await;
    assert!(result.fallback.is_none());
    assert_eq!(result.invocations.len(), 2);
    for invocation in &result.invocations {
        assert_eq!(invocation.result, CallResult::Returned(Outcome::Done));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_kafka_batches_keep_per_key_order_and_state_and_a_poison_event_dies_alone() {
    let kafka = Kafka::start();
    kafka.topic("batchy", 1);
    kafka.topic("batchy.out", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let spec = manifest(
        "batchy",
        "batchy",
        "max_in_flight = 64\n[retry]\nmax_attempts = 1",
    );
    let (consumer, _slot) = host.run("fixture-batch", &spec).await;

    // 30 keys × 10 events, each reading and writing its key's state; the
    // poison event and the dead one come among the first heads, so they
    // share a batch with others.
    let keys = 30;
    let per_key = 10;
    let mut records = Vec::new();
    for seq in 0..per_key {
        for k in 0..keys {
            let key = format!("key-{k}");
            records.push((
                Some(key.clone()),
                format!("{{\"seq\": {seq}, \"state_key\": \"{key}\"}}"),
            ));
        }
        if seq == 0 {
            records.push((Some("poison".into()), r#"{"seq": 0, "trap": true}"#.into()));
            records.push((Some("doomed".into()), r#"{"seq": 0, "dead": true}"#.into()));
            records.push((Some("poison".into()), r#"{"seq": 1}"#.into()));
        }
    }
    produce(&kafka.brokers, "batchy", &records).await;

    let expected = keys * per_key + 1;
    let out = read_at_least(&kafka.brokers, "batchy.out", expected, WAIT).await;
    let dead_letters = host.store.dead_letters();
    assert!(eventually(WAIT, || dead_letters.len() == 2).await);
    // Nothing more comes: the records a failed batch emitted were dropped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out_again = read_at_least(
        &kafka.brokers,
        "batchy.out",
        expected + 1,
        Duration::from_secs(2),
    )
    .await;
    consumer.stop().await;
    assert_eq!(out_again.len(), expected, "each done event emitted once");

    let mut by_key: BTreeMap<String, Vec<(i64, i64, Option<String>)>> = BTreeMap::new();
    for record in &out {
        let json = record.json();
        by_key
            .entry(json["key"].as_str().unwrap().to_string())
            .or_default()
            .push((
                json["seq"].as_i64().unwrap(),
                json["offset"].as_i64().unwrap(),
                json["read"].as_str().map(str::to_string),
            ));
    }
    for k in 0..keys {
        let key = format!("key-{k}");
        let seen = &by_key[&key];
        let seqs: Vec<i64> = seen.iter().map(|(seq, ..)| *seq).collect();
        assert_eq!(
            seqs,
            (0..per_key as i64).collect::<Vec<_>>(),
            "{key} in order"
        );
        // Each event read what the key's previous event wrote: its offset.
        assert_eq!(seen[0].2, None, "{key}");
        for pair in seen.windows(2) {
            assert_eq!(pair[1].2, Some(pair[0].1.to_string()), "{key}: {seen:?}");
        }
    }
    assert_eq!(
        by_key["poison"]
            .iter()
            .map(|(seq, ..)| *seq)
            .collect::<Vec<_>>(),
        [1]
    );
    assert!(!by_key.contains_key("doomed"));

    let page = dead_letters.list(&Default::default(), 10, None).unwrap();
    let mut deaths: Vec<(String, String)> = page
        .items
        .iter()
        .map(|dead| {
            (
                String::from_utf8_lossy(dead.event.key.as_deref().unwrap()).into_owned(),
                dead.attempts.last().unwrap().error.clone(),
            )
        })
        .collect();
    deaths.sort();
    assert_eq!(deaths[0].0, "doomed");
    assert_eq!(deaths[0].1, "scripted dead");
    assert_eq!(deaths[1].0, "poison");
    assert!(
        deaths[1].1.contains("scripted trap at offset 30"),
        "{deaths:?}"
    );

    let calls = |result: &str| {
        host.metrics
            .batch_calls_total
            .with_label_values(&["batchy", result])
            .get()
    };
    assert!(calls("batch") > 0, "no batch was taken");
    assert!(calls("fallback") >= 1, "the poison event's batch failed");
    let batched = host
        .metrics
        .batched_events_total
        .with_label_values(&["batchy"])
        .get();
    assert!(
        batched >= 2 * (calls("batch") + calls("fallback")),
        "batches hold at least two events: {batched}"
    );
}

/// A Python or JavaScript actor whose actor.toml says `batch = true` is
/// built against the world `actor-batch` (`wactor build`) and takes
/// batches through the SDK's `handle-batch`: the handler runs on each
/// event, and each event's emit follows its own outcome. The middle
/// event's echo topic starts with `_` and is refused (a `Retry`, no emit);
/// its neighbours keep theirs.
async fn an_sdk_batch_actor_keeps_each_events_emit_apart(example: &str) {
    let bytes = std::fs::read(wactor_tests::language_guest(example)).unwrap();
    let mut settings = warm(example);
    settings.limits.memory_bytes = 128 * 1024 * 1024;
    let actor = runtime()
        .load(&bytes, settings)
        .unwrap_or_else(|e| panic!("loading {example}: {e}"));
    assert!(actor.takes_batches(), "{example} exports handle-batch");
    let mut events = events(&["first", "second", "third"]);
    events[1].topic = "_internal".into();
    let result = batch(&actor, &events, &MapState::new()).await;
    assert!(result.fallback.is_none(), "{:?}", result.fallback);
    let outcomes: Vec<&CallResult> = result.invocations.iter().map(|i| &i.result).collect();
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                CallResult::Returned(Outcome::Done),
                CallResult::Returned(Outcome::Retry { .. }),
                CallResult::Returned(Outcome::Done)
            ]
        ),
        "{outcomes:?}"
    );
    let emitted: Vec<Vec<(String, Vec<u8>)>> = result
        .invocations
        .iter()
        .map(|invocation| {
            invocation
                .effects
                .emits
                .iter()
                .map(|record| {
                    (
                        record.topic.clone(),
                        record.payload.clone().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(
        emitted,
        vec![
            vec![("bookings.echo".to_string(), b"first".to_vec())],
            vec![],
            vec![("bookings.echo".to_string(), b"third".to_vec())],
        ]
    );
}

#[tokio::test]
async fn a_python_actor_built_with_batch_true_takes_batches() {
    an_sdk_batch_actor_keeps_each_events_emit_apart("echo-batch-py").await;
}

#[tokio::test]
async fn a_javascript_actor_built_with_batch_true_takes_batches() {
    an_sdk_batch_actor_keeps_each_events_emit_apart("echo-batch-js").await;
}
