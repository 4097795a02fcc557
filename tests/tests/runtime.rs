//! End-to-end tests of the runtime API (`wactor_runtime`) on real
//! components: the examples and the fixture actors, compiled to
//! wasm32-wasip2 by this crate's build script.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wactor_runtime::{
    ActorSettings, CacheOutcome, CallResult, Event, InstanceMode, Invocation, Limits, LoadedActor,
    Outcome, Runtime, RuntimeError, RuntimeSettings, StateWrite, TrapKind,
};
use wactor_tests::{guest_bytes, MapState};

/// One runtime for the tests that do not look at the cache.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::new(RuntimeSettings::default()).unwrap_or_else(|e| panic!("{e}")))
}

fn settings(name: &str, mode: InstanceMode) -> ActorSettings {
    let mut settings = ActorSettings::new(name);
    settings.instance_mode = mode;
    settings
}

fn with_config(mut settings: ActorSettings, config: &[(&str, &str)]) -> ActorSettings {
    settings.config = Arc::new(
        config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    );
    settings
}

fn load(name: &str, settings: ActorSettings) -> LoadedActor {
    runtime()
        .load(&guest_bytes(name), settings)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn event(topic: &str, key: &str, payload: &str) -> Event {
    Event {
        topic: topic.to_string(),
        partition: 0,
        offset: 7,
        timestamp_ms: None,
        key: Some(key.as_bytes().to_vec()),
        payload: Some(payload.as_bytes().to_vec()),
        headers: Vec::new(),
        attempt: 1,
    }
}

/// The payload of an example's `event.json`.
fn sample_payload(example: &str) -> String {
    let path = format!(
        "{}/../examples/{example}/event.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    json["payload"].to_string()
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// Runs one event and applies its effects to `state` (as the host does on
/// `done`).
async fn run(actor: &LoadedActor, event: &Event, state: &Arc<MapState>) -> Invocation {
    let invocation = actor.invoke(event, state.clone()).await;
    state.apply(&invocation.effects);
    invocation
}

fn assert_done(inv: &Invocation) {
    assert_eq!(
        inv.result,
        CallResult::Returned(Outcome::Done),
        "logs: {:?}",
        inv.logs
    );
}

#[tokio::test]
async fn echo_emits_the_event_to_the_echo_topic_with_its_key_and_headers() {
    let actor = load("echo", settings("echo", InstanceMode::Fresh));
    let mut ev = event("orders", "order-1001", &sample_payload("echo"));
    ev.headers.push(("trace-id".into(), Some(b"abc".to_vec())));
    let inv = actor.invoke(&ev, MapState::new()).await;
    assert_done(&inv);
    assert_eq!(inv.effects.emits.len(), 1);
    let record = &inv.effects.emits[0];
    assert_eq!(record.topic, "orders.echo");
    assert_eq!(record.key.as_deref(), Some(&b"order-1001"[..]));
    assert_eq!(record.payload, ev.payload);
    assert_eq!(
        record.headers,
        vec![("trace-id".to_string(), Some(b"abc".to_vec()))]
    );
}

#[tokio::test]
async fn search_indexer_indexes_the_sample_post() {
    let actor = load("search-indexer", settings("search", InstanceMode::Fresh));
    let state = MapState::new();
    let inv = run(
        &actor,
        &event("posts", "P-1", &sample_payload("search-indexer")),
        &state,
    )
    .await;
    assert_done(&inv);
    assert_eq!(inv.effects.emits.len(), 1);
    let change = json(inv.effects.emits[0].payload_bytes());
    assert_eq!(inv.effects.emits[0].topic, "search.index.changed");
    assert_eq!(change["action"], "indexed");
    assert_eq!(change["post_id"], "P-1");
    assert!(
        change["added_terms"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "camry")),
        "{change}"
    );
    assert_eq!(
        json(state.get_text("term:camry").unwrap_or_default().as_bytes()),
        serde_json::json!(["P-1"])
    );
    assert_eq!(
        json(state.get_text("post:P-1").unwrap_or_default().as_bytes())["version"],
        1
    );
}

#[tokio::test]
async fn search_indexer_applies_updates_deletes_and_ignores_stale_events() {
    let actor = load("search-indexer", settings("search", InstanceMode::Warm));
    let state = MapState::new();
    let post = |kind: &str, version: u64, title: &str| {
        let payload = serde_json::json!({
            "type": kind, "post_id": "P-9", "version": version, "title": title, "body": "", "author": "U-1"
        });
        event("posts", "P-9", &payload.to_string())
    };
    let postings = |term: &str| -> serde_json::Value {
        state
            .get_text(&format!("term:{term}"))
            .map(|text| json(text.as_bytes()))
            .unwrap_or(serde_json::json!([]))
    };

    assert_done(&run(&actor, &post("post.created", 1, "Camry white"), &state).await);
    assert_done(&run(&actor, &post("post.updated", 2, "Camry red"), &state).await);
    assert_eq!(postings("white"), serde_json::json!([]));
    assert_eq!(postings("red"), serde_json::json!(["P-9"]));

    // A redelivered old update: done, but no effects at all.
    let stale = run(&actor, &post("post.updated", 1, "Camry white"), &state).await;
    assert_done(&stale);
    assert!(stale.effects.is_empty(), "{:?}", stale.effects);
    assert!(
        stale.logs.iter().any(|l| l.message.contains("stale")),
        "{:?}",
        stale.logs
    );

    let deleted = run(&actor, &post("post.deleted", 3, ""), &state).await;
    assert_done(&deleted);
    assert_eq!(
        json(deleted.effects.emits[0].payload_bytes())["action"],
        "deleted"
    );
    assert_eq!(postings("camry"), serde_json::json!([]));

    // A late create of an older version must not resurrect the post.
    let late = run(&actor, &post("post.created", 1, "Camry white"), &state).await;
    assert_done(&late);
    assert!(late.effects.is_empty());
    assert_eq!(postings("camry"), serde_json::json!([]));
    let tombstone = json(state.get_text("post:P-9").unwrap_or_default().as_bytes());
    assert_eq!(
        (tombstone["deleted"].clone(), tombstone["version"].clone()),
        (true.into(), 3.into())
    );
}

#[tokio::test]
async fn search_indexer_declares_a_malformed_payload_dead() {
    let actor = load("search-indexer", settings("search", InstanceMode::Fresh));
    for payload in ["not json", r#"{"type":"post.created","post_id":"P-1"}"#] {
        let inv = actor
            .invoke(&event("posts", "P-1", payload), MapState::new())
            .await;
        match &inv.result {
            CallResult::Returned(Outcome::Dead { reason }) => {
                assert!(reason.contains("malformed JSON payload"), "{reason}")
            }
            other => panic!("{payload}: {other:?}"),
        }
        assert!(inv.effects.is_empty());
    }
}

#[tokio::test]
async fn an_actor_that_exits_is_a_trap_that_says_so() {
    let actor = load("fixture-trap", settings("trap", InstanceMode::Warm));
    let inv = actor
        .invoke(&event("t", "k", "exit"), MapState::new())
        .await;
    match &inv.result {
        CallResult::Trapped(trap) => assert!(
            trap.message.contains("the actor exited (status 1)"),
            "{trap:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_panic_is_a_trap_carrying_the_panic_message() {
    let actor = load("fixture-trap", settings("trap", InstanceMode::Warm));
    let inv = actor.invoke(&event("t", "k", ""), MapState::new()).await;
    match &inv.result {
        CallResult::Trapped(trap) => {
            assert_eq!(trap.kind, TrapKind::Panic);
            assert!(
                trap.message.contains("fixture trap: boom at offset 7"),
                "{}",
                trap.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(inv.effects.is_empty());
    assert!(
        inv.logs
            .iter()
            .any(|l| l.message.contains("about to panic")),
        "{:?}",
        inv.logs
    );
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_its_deadline_and_the_host_goes_on() {
    let deadline = Duration::from_millis(200);
    let mut loop_settings = settings("loop", InstanceMode::Warm);
    loop_settings.limits = Limits {
        call_timeout: deadline,
        ..Limits::default()
    };
    let actor = load("fixture-loop", loop_settings);
    let started = Instant::now();
    let inv = actor.invoke(&event("t", "k", ""), MapState::new()).await;
    let took = started.elapsed();
    match &inv.result {
        CallResult::Trapped(trap) => assert_eq!(trap.kind, TrapKind::Deadline, "{}", trap.message),
        other => panic!("{other:?}"),
    }
    assert!(
        took >= deadline,
        "stopped after {took:?}, before its deadline"
    );
    assert!(took < deadline * 10, "stopped only after {took:?}");
    assert_eq!(
        actor.idle_instances(),
        0,
        "an interrupted instance is not kept"
    );

    // The same runtime still runs actors.
    let noop = load("fixture-noop", settings("noop", InstanceMode::Fresh));
    assert_done(&noop.invoke(&event("t", "k", ""), MapState::new()).await);
}

#[tokio::test]
async fn unbounded_recursion_is_a_trap_of_its_own_call_and_the_host_goes_on() {
    let actor = load("fixture-recurse", settings("recurse", InstanceMode::Warm));
    let started = Instant::now();
    let inv = actor.invoke(&event("t", "k", ""), MapState::new()).await;
    match &inv.result {
        // A stack overflow is neither a panic nor a deadline nor the
        // memory limit: wasmtime's "call stack exhausted" (or, should the
        // guest's own stack run out first, an out-of-bounds access).
        CallResult::Trapped(trap) => assert_eq!(trap.kind, TrapKind::Other, "{}", trap.message),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(actor.idle_instances(), 0, "a trapped instance is not kept");
    // Again: a second overflow on a new instance, then a neighbour runs.
    let again = actor.invoke(&event("t", "k", ""), MapState::new()).await;
    assert!(
        matches!(again.result, CallResult::Trapped(_)),
        "{:?}",
        again.result
    );
    let noop = load("fixture-noop", settings("noop", InstanceMode::Fresh));
    assert_done(&noop.invoke(&event("t", "k", ""), MapState::new()).await);
}

#[tokio::test]
async fn unbounded_allocation_is_stopped_at_the_memory_limit() {
    let mut hog_settings = settings("hog", InstanceMode::Warm);
    hog_settings.limits = Limits {
        memory_bytes: 16 * 1024 * 1024,
        ..Limits::default()
    };
    let actor = load("fixture-memory-hog", hog_settings);
    let inv = actor.invoke(&event("t", "k", ""), MapState::new()).await;
    match &inv.result {
        CallResult::Trapped(trap) => {
            assert_eq!(trap.kind, TrapKind::MemoryLimit, "{}", trap.message);
            assert!(
                trap.message.contains(&(16 * 1024 * 1024).to_string()),
                "{}",
                trap.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(actor.idle_instances(), 0);
}

#[tokio::test]
async fn effects_of_a_retry_are_dropped() {
    let actor = load(
        "fixture-emit-then-retry",
        settings("etr", InstanceMode::Fresh),
    );
    let state = MapState::new();
    let inv = run(&actor, &event("t", "k", ""), &state).await;
    match &inv.result {
        // The actor saw its own pending write during the call...
        CallResult::Returned(Outcome::Retry { reason, .. }) => {
            assert!(reason.contains("read back: true"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // ...but nothing of it survives the retry.
    assert!(inv.effects.is_empty(), "{:?}", inv.effects);
    assert!(state.snapshot().is_empty());
}

#[tokio::test]
async fn flaky_actor_retries_until_its_attempt_passes_fail_times() {
    let actor = load(
        "fixture-flaky",
        with_config(
            settings("flaky", InstanceMode::Warm),
            &[("fail_times", "2")],
        ),
    );
    let mut ev = event("jobs", "k", "payload");
    for attempt in 1..=2 {
        ev.attempt = attempt;
        let inv = actor.invoke(&ev, MapState::new()).await;
        assert!(
            matches!(inv.result, CallResult::Returned(Outcome::Retry { .. })),
            "{:?}",
            inv.result
        );
        assert!(inv.effects.is_empty());
    }
    ev.attempt = 3;
    let inv = actor.invoke(&ev, MapState::new()).await;
    assert_done(&inv);
    assert_eq!(inv.effects.emits[0].topic, "jobs.out");
}

#[tokio::test]
async fn scripted_actor_follows_its_payload() {
    let actor = load(
        "fixture-scripted",
        with_config(settings("scripted", InstanceMode::Warm), &[("label", "v1")]),
    );
    let mut ev = event("in", "user-1", r#"{"seq": 4, "fail_until_attempt": 1}"#);
    let inv = actor.invoke(&ev, MapState::new()).await;
    assert!(
        matches!(inv.result, CallResult::Returned(Outcome::Retry { .. })),
        "{:?}",
        inv.result
    );
    ev.attempt = 2;
    let inv = actor.invoke(&ev, MapState::new()).await;
    assert_done(&inv);
    let record = &inv.effects.emits[0];
    assert_eq!(record.topic, "in.out");
    assert_eq!(record.key.as_deref(), Some(&b"user-1"[..]));
    assert_eq!(
        json(record.payload_bytes()),
        serde_json::json!({"key": "user-1", "seq": 4, "attempt": 2, "label": "v1", "offset": 7, "partition": 0})
    );
    let dead = actor
        .invoke(&event("in", "k", r#"{"dead": true}"#), MapState::new())
        .await;
    assert_eq!(
        dead.result,
        CallResult::Returned(Outcome::Dead {
            reason: "scripted dead".into()
        })
    );
    let not_json = actor
        .invoke(&event("in", "k", "plain text"), MapState::new())
        .await;
    assert_done(&not_json);
}

#[tokio::test]
async fn checker_declares_an_out_of_order_seq_dead() {
    let actor = load("fixture-checker", settings("checker", InstanceMode::Warm));
    let state = MapState::new();
    assert_done(&run(&actor, &event("in", "a", r#"{"seq": 1}"#), &state).await);
    let second = run(&actor, &event("in", "a", r#"{"seq": 2}"#), &state).await;
    assert_done(&second);
    assert_eq!(
        json(second.effects.emits[0].payload_bytes()),
        serde_json::json!({"key": "a", "seq": 2, "label": ""})
    );
    assert_eq!(second.effects.emits[0].topic, "in.seen");
    let violation = run(&actor, &event("in", "a", r#"{"seq": 2}"#), &state).await;
    assert_eq!(
        violation.result,
        CallResult::Returned(Outcome::Dead {
            reason: "order violation: seq 2 after 2".into()
        })
    );
    // Another key has its own sequence.
    assert_done(&run(&actor, &event("in", "b", r#"{"seq": 1}"#), &state).await);
}

#[tokio::test]
async fn sleeping_actor_yields_and_finishes() {
    let actor = load(
        "fixture-sleep",
        with_config(
            settings("sleep", InstanceMode::Fresh),
            &[("sleep_ms", "30")],
        ),
    );
    let inv = actor.invoke(&event("t", "k", ""), MapState::new()).await;
    assert_done(&inv);
    assert!(
        inv.duration >= Duration::from_millis(30),
        "{:?}",
        inv.duration
    );
}

#[tokio::test]
async fn a_warm_instance_is_reused_and_a_trapped_one_is_not() {
    let actor = load("fixture-scripted", settings("warm", InstanceMode::Warm));
    let ok = event("in", "k", "{}");
    let trap = event("in", "k", r#"{"trap": true}"#);

    let first = actor.invoke(&ok, MapState::new()).await;
    assert_done(&first);
    assert!(first.fresh_instance);
    let second = actor.invoke(&ok, MapState::new()).await;
    assert!(!second.fresh_instance, "the warm instance was not reused");
    assert_eq!(actor.idle_instances(), 1);

    let trapped = actor.invoke(&trap, MapState::new()).await;
    assert!(matches!(trapped.result, CallResult::Trapped(_)));
    assert!(!trapped.fresh_instance);
    assert_eq!(
        actor.idle_instances(),
        0,
        "a trapped instance must be dropped"
    );
    let after = actor.invoke(&ok, MapState::new()).await;
    assert_done(&after);
    assert!(
        after.fresh_instance,
        "the call after a trap must get a new instance"
    );
}

#[tokio::test]
async fn fresh_mode_gives_every_event_a_new_instance() {
    let actor = load("fixture-noop", settings("fresh", InstanceMode::Fresh));
    for _ in 0..3 {
        let inv = actor.invoke(&event("t", "k", ""), MapState::new()).await;
        assert_done(&inv);
        assert!(inv.fresh_instance);
    }
    assert_eq!(actor.idle_instances(), 0);
}

#[tokio::test]
async fn warm_instances_are_replaced_after_max_uses() {
    let mut warm = settings("uses", InstanceMode::Warm);
    warm.max_uses_per_instance = 2;
    let actor = load("fixture-noop", warm);
    let fresh: Vec<bool> = {
        let mut fresh = Vec::new();
        for _ in 0..5 {
            fresh.push(
                actor
                    .invoke(&event("t", "k", ""), MapState::new())
                    .await
                    .fresh_instance,
            );
        }
        fresh
    };
    assert_eq!(fresh, vec![true, false, true, false, true]);
}

#[tokio::test]
async fn the_artifact_cache_is_hit_on_reload_and_a_corrupt_artifact_is_recompiled() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let with_cache = || {
        Runtime::new(RuntimeSettings {
            cache_dir: Some(dir.path().to_path_buf()),
            ..RuntimeSettings::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let bytes = guest_bytes("fixture-noop");

    let first = with_cache();
    let loaded = first
        .load(&bytes, ActorSettings::new("noop"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.load_report().cache, CacheOutcome::Compiled);
    let again = first
        .load(&bytes, ActorSettings::new("noop"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.load_report().cache, CacheOutcome::Hit);
    drop(first);

    // A restarted host loads without compiling.
    let restarted = with_cache();
    let hit = restarted
        .load(&bytes, ActorSettings::new("noop"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hit.load_report().cache, CacheOutcome::Hit);
    assert_done(&hit.invoke(&event("t", "k", ""), MapState::new()).await);

    // Corrupt every artifact: the next load recompiles and works.
    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    std::fs::write(&artifacts[0], b"garbage, not an artifact").unwrap_or_else(|e| panic!("{e}"));
    let recovered = with_cache();
    let recompiled = recovered
        .load(&bytes, ActorSettings::new("noop"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recompiled.load_report().cache, CacheOutcome::Compiled);
    assert_done(
        &recompiled
            .invoke(&event("t", "k", ""), MapState::new())
            .await,
    );
    let healed = with_cache()
        .load(&bytes, ActorSettings::new("noop"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        healed.load_report().cache,
        CacheOutcome::Hit,
        "the bad artifact was replaced"
    );
}

fn load_error(bytes: &[u8]) -> RuntimeError {
    match runtime().load(bytes, ActorSettings::new("bad")) {
        Ok(_) => panic!("loaded something that is not an actor"),
        Err(err) => err,
    }
}

#[test]
fn bytes_that_are_not_wasm_are_refused() {
    let err = load_error(b"this is not wasm at all");
    assert!(matches!(err, RuntimeError::NotWasm(_)), "{err:?}");
    assert!(err.to_string().contains("magic bytes"), "{err}");
}

#[test]
fn a_core_module_is_refused_as_not_a_component() {
    let err = load_error(b"\0asm\x01\0\0\0");
    assert!(matches!(err, RuntimeError::NotAComponent), "{err:?}");
    assert!(err.to_string().contains("not a component"), "{err}");
}

#[test]
fn a_truncated_component_is_refused_as_invalid() {
    let bytes = guest_bytes("fixture-noop");
    let err = load_error(&bytes[..bytes.len() / 2]);
    assert!(matches!(err, RuntimeError::Invalid(_)), "{err:?}");
}

#[test]
fn a_component_of_another_world_is_refused_naming_the_missing_export() {
    let err = load_error(&guest_bytes("fixture-wrong-world"));
    assert!(
        matches!(
            err,
            RuntimeError::MissingExport(_) | RuntimeError::WrongWorld(_)
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("handle"), "{text}");
}

#[test]
fn a_component_built_for_contract_0_1_0_is_refused_with_a_message_that_says_to_rebuild() {
    let err = load_error(&guest_bytes("fixture-contract-v01"));
    assert!(matches!(err, RuntimeError::WrongWorld(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("built for wactor:actor@0.1.0")
            && text.contains("rebuild against wactor-sdk 0.2 / wactor:actor@0.2.0"),
        "{text}"
    );
}

#[tokio::test]
async fn a_tombstone_reaches_the_actor_as_none_and_an_emitted_tombstone_has_no_value() {
    let actor = load("fixture-nulls", settings("nulls", InstanceMode::Fresh));
    let mut tombstone = event("users", "user-7", "");
    tombstone.payload = None;
    tombstone.headers = vec![
        ("emit-tombstone".into(), Some(b"users.compacted".to_vec())),
        ("gone".into(), None),
    ];
    let inv = actor.invoke(&tombstone, MapState::new()).await;
    assert_done(&inv);
    let emitted = &inv.effects.emits;
    assert_eq!(emitted[0].topic, "users.compacted");
    assert!(emitted[0].is_tombstone());
    assert_eq!(emitted[0].key.as_deref(), Some(&b"user-7"[..]));
    let report = json(emitted[1].payload_bytes());
    assert_eq!(report["tombstone"], true);
    assert_eq!(
        report["headers"],
        serde_json::json!([["emit-tombstone", "users.compacted"], ["gone", null]])
    );
    assert_eq!(emitted[1].headers[1], ("gone".to_string(), None));

    let empty = event("users", "user-8", "");
    let inv = actor.invoke(&empty, MapState::new()).await;
    assert_done(&inv);
    let report = json(inv.effects.emits[0].payload_bytes());
    assert_eq!(report["tombstone"], false);
    assert_eq!(report["payload_len"], 0);
}

#[test]
fn validate_returns_the_sha256_of_a_good_component() {
    let bytes = guest_bytes("echo");
    let sha = runtime().validate(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sha, wactor_runtime::sha256_hex(&bytes));
    assert_eq!(sha.len(), 64);
}

#[tokio::test]
async fn state_writes_of_a_done_call_are_returned_and_deletes_are_recorded() {
    // search-indexer: an update that removes a term deletes its posting list.
    let actor = load("search-indexer", settings("si", InstanceMode::Fresh));
    let state = MapState::new();
    let post = |version: u64, title: &str| {
        event("posts", "P-1", &serde_json::json!({"type": "post.updated", "post_id": "P-1", "version": version, "title": title}).to_string())
    };
    run(&actor, &post(1, "alpha beta"), &state).await;
    let inv = run(&actor, &post(2, "beta"), &state).await;
    assert_eq!(
        inv.effects.state_writes.get("term:alpha"),
        Some(&StateWrite::Delete)
    );
    assert!(state.get_text("term:alpha").is_none());
}

#[tokio::test]
async fn every_engine_configuration_runs_fresh_and_warm_instances() {
    use wactor_runtime::{AllocatorChoice, EngineSettings};
    let configs = [
        EngineSettings {
            pagemap_reset: false,
            recycle_host_state: false,
            ..EngineSettings::default()
        },
        EngineSettings {
            allocator: AllocatorChoice::OnDemand,
            ..EngineSettings::default()
        },
        EngineSettings::default(),
    ];
    for engine in configs {
        let runtime = Runtime::new(RuntimeSettings {
            engine: engine.clone(),
            ..RuntimeSettings::default()
        })
        .unwrap_or_else(|e| panic!("{engine:?}: {e}"));
        if engine.allocator == AllocatorChoice::OnDemand {
            assert!(!runtime.pooling() && !runtime.pagemap_reset());
        }
        let bytes = guest_bytes("fixture-scripted");
        for mode in [InstanceMode::Fresh, InstanceMode::Warm] {
            let actor = runtime
                .load(&bytes, settings("cfg", mode))
                .unwrap_or_else(|e| panic!("{e}"));
            for seq in 0..3 {
                let inv = actor
                    .invoke(
                        &event("in", "k", &format!(r#"{{"seq": {seq}}}"#)),
                        MapState::new(),
                    )
                    .await;
                assert_done(&inv);
                assert_eq!(
                    json(inv.effects.emits[0].payload_bytes())["seq"],
                    seq,
                    "{engine:?} {mode:?}"
                );
                assert!(
                    inv.logs.is_empty(),
                    "no output carried over: {:?}",
                    inv.logs
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_wait_for_a_free_instance_slot_instead_of_failing() {
    let small = Runtime::new(RuntimeSettings {
        engine: wactor_runtime::EngineSettings {
            pool_instances: 2,
            ..wactor_runtime::EngineSettings::default()
        },
        ..RuntimeSettings::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    if !small.pooling() {
        eprintln!("no pooling allocator on this machine: nothing to exhaust");
        return;
    }
    let actor = small
        .load(
            &guest_bytes("fixture-sleep"),
            with_config(
                settings("slots", InstanceMode::Fresh),
                &[("sleep_ms", "100")],
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    // Six calls at once on two slots: four wait for a slot, none fails.
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let actor = actor.clone();
            tokio::spawn(async move { actor.invoke(&event("t", "k", ""), MapState::new()).await })
        })
        .collect();
    let started = Instant::now();
    for call in calls {
        let inv = call.await.unwrap_or_else(|e| panic!("{e}"));
        assert_done(&inv);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "two slots serve six 100 ms calls in three rounds, took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_inactive_version_gives_back_its_idle_instances() {
    let actor = load("fixture-noop", settings("idle", InstanceMode::Warm));
    for _ in 0..3 {
        assert_done(&actor.invoke(&event("t", "k", ""), MapState::new()).await);
    }
    assert_eq!(actor.idle_instances(), 1);
    assert_eq!(actor.set_retired(true), 1);
    assert_eq!(actor.idle_instances(), 0);
    // A call of a retired version (still running at the swap) keeps nothing.
    assert_done(&actor.invoke(&event("t", "k", ""), MapState::new()).await);
    assert_eq!(actor.idle_instances(), 0);
    // Active again (a rollback): warm instances are kept again.
    actor.set_retired(false);
    assert_done(&actor.invoke(&event("t", "k", ""), MapState::new()).await);
    assert_eq!(actor.idle_instances(), 1);
}
