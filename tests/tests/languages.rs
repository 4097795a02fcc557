//! The same behaviour from an actor in each language (issue 13): the
//! Python and JavaScript examples (`examples/*-py`, `examples/*-js`, built
//! with `wactor build`) pass the tests the Rust examples pass, on the
//! runtime API, through `wactor invoke`, and on librdkafka's mock cluster:
//! echo keeps payload, key, headers and tombstones; payment-reversal
//! reverses once (idempotency marker in state), retries a 5xx after the
//! wallet's Retry-After, declares a 404 and a malformed payload dead
//! without effects, and is denied a host that is not allowed.
//!
//! Each behaviour is one function taking a [`Lang`]; `each_language!`
//! makes a `rust`, `python` and `js` test of it. (The Rust payment-reversal
//! tests that lived in `runtime.rs` are these now.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use support::{eventually, manifest, produce, read_until, Host, Kafka};
use wactor_runtime::{
    ActorSettings, CallResult, Event, InstanceMode, LoadedActor, Outcome, Runtime, RuntimeSettings,
};
use wactor_tests::{guest, language_guest, wactor_bin, MapState, Reply, TestServer};

#[derive(Debug, Clone, Copy)]
enum Lang {
    Rust,
    Python,
    Js,
}

/// The component of `example` written in `lang`.
fn component(example: &str, lang: Lang) -> PathBuf {
    match lang {
        Lang::Rust => guest(example),
        Lang::Python => language_guest(&format!("{example}-py")),
        Lang::Js => language_guest(&format!("{example}-js")),
    }
}

macro_rules! each_language {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                use super::Lang;

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn rust() {
                    super::$test(Lang::Rust).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn python() {
                    super::$test(Lang::Python).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn js() {
                    super::$test(Lang::Js).await
                }
            }
        )*
    };
}

each_language!(
    echo_republishes_payload_key_headers_and_tombstones,
    payment_reversal_reverses_once_and_a_redelivery_does_nothing,
    payment_reversal_retries_a_503_after_the_wallets_retry_after,
    payment_reversal_declares_a_404_dead,
    payment_reversal_declares_a_malformed_payload_dead_without_calling_the_wallet,
    payment_reversal_is_denied_a_host_that_is_not_allowed,
    invoke_keeps_the_marker_across_invocations_and_exits_by_outcome,
    on_the_mock_cluster_a_cancelled_booking_is_reversed_once_through_a_503,
);

/// One runtime for the whole binary, with an artifact cache so that each
/// component compiles once (a Python component takes seconds).
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache = PathBuf::from(wactor_tests::GUESTS_DIR).join("artifact-cache");
        Runtime::new(RuntimeSettings {
            cache_dir: Some(cache),
            ..RuntimeSettings::default()
        })
        .expect("runtime")
    })
}

/// Loads `example` in `lang`; one load at a time so that the first
/// compiles and caches and the others load the artifact.
fn load(example: &str, lang: Lang, settings: ActorSettings) -> LoadedActor {
    static LOADING: Mutex<()> = Mutex::new(());
    let path = component(example, lang);
    let bytes = std::fs::read(&path).unwrap();
    let _one = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    runtime().load(&bytes, settings).expect("load")
}

fn settings(name: &str, config: &[(&str, &str)]) -> ActorSettings {
    let mut settings = ActorSettings::new(name);
    settings.instance_mode = InstanceMode::Fresh;
    settings.limits.memory_bytes = 128 * 1024 * 1024;
    settings.config = Arc::new(
        config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    settings
}

fn event(topic: &str, key: Option<&str>, payload: Option<&str>) -> Event {
    Event {
        topic: topic.to_string(),
        partition: 0,
        offset: 7,
        timestamp_ms: None,
        key: key.map(|k| k.as_bytes().to_vec()),
        payload: payload.map(|p| p.as_bytes().to_vec()),
        headers: Vec::new(),
        attempt: 1,
    }
}

fn example_dir(example: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example)
}

fn booking_payload() -> String {
    let text = std::fs::read_to_string(example_dir("payment-reversal").join("event.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["payload"].to_string()
}

fn booking() -> Event {
    event("bookings", Some("B-1001"), Some(&booking_payload()))
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

async fn run(
    actor: &LoadedActor,
    event: &Event,
    state: &Arc<MapState>,
) -> wactor_runtime::Invocation {
    let inv = actor.invoke(event, state.clone()).await;
    state.apply(&inv.effects);
    inv
}

fn payment(server: &TestServer, lang: Lang, allow: bool) -> LoadedActor {
    let mut settings = settings(
        "payment-reversal",
        &[
            ("wallet_url", &server.url()),
            ("timeout_ms", "3000"),
            ("completed_topic", "wallet.reversal.completed"),
        ],
    );
    if allow {
        settings.allowed_hosts = vec![server.host_port()].into();
    }
    load("payment-reversal", lang, settings)
}

async fn echo_republishes_payload_key_headers_and_tombstones(lang: Lang) {
    let actor = load(
        "echo",
        lang,
        settings("echo", &[("out_topic", "orders.echo")]),
    );
    let mut with_headers = event("orders", Some("order-7"), Some(r#"{"total_cents":1250}"#));
    with_headers.headers = vec![
        ("trace-id".into(), Some(b"abc".to_vec())),
        ("empty".into(), Some(Vec::new())),
        ("null".into(), None),
    ];
    let inv = actor.invoke(&with_headers, MapState::new()).await;
    assert_eq!(
        inv.result,
        CallResult::Returned(Outcome::Done),
        "{:?}",
        inv.logs
    );
    assert_eq!(inv.effects.emits.len(), 1);
    let record = &inv.effects.emits[0];
    assert_eq!(record.topic, "orders.echo");
    assert_eq!(record.key.as_deref(), Some(&b"order-7"[..]));
    assert_eq!(
        record.payload.as_deref(),
        Some(&br#"{"total_cents":1250}"#[..])
    );
    assert_eq!(
        record.headers, with_headers.headers,
        "header values, empty and null, kept"
    );

    // A tombstone is echoed as one; a missing key stays missing (the host
    // then uses the source key).
    let tombstone = event("orders", None, None);
    let inv = actor.invoke(&tombstone, MapState::new()).await;
    assert_eq!(
        inv.result,
        CallResult::Returned(Outcome::Done),
        "{:?}",
        inv.logs
    );
    assert_eq!(inv.effects.emits.len(), 1);
    assert_eq!(inv.effects.emits[0].payload, None, "a null value");
    assert_eq!(inv.effects.emits[0].key, None);
}

async fn payment_reversal_reverses_once_and_a_redelivery_does_nothing(lang: Lang) {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    server.reply(Reply::status(200).body(r#"{"status":"reversed"}"#));
    let actor = payment(&server, lang, true);
    let state = MapState::new();

    let first = run(&actor, &booking(), &state).await;
    assert_eq!(
        first.result,
        CallResult::Returned(Outcome::Done),
        "{:?}",
        first.logs
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/reservations/R-555/reverse");
    assert_eq!(requests[0].header("idempotency-key"), Some("B-1001"));
    assert_eq!(json(&requests[0].body)["amount"]["value"], 25000);
    assert_eq!(first.effects.emits.len(), 1);
    assert_eq!(first.effects.emits[0].topic, "wallet.reversal.completed");
    assert_eq!(
        json(first.effects.emits[0].payload_bytes())["booking_id"],
        "B-1001"
    );
    assert!(
        state.get_text("reversed:B-1001").is_some(),
        "{:?}",
        state.snapshot()
    );

    let second = run(&actor, &booking(), &state).await;
    assert_eq!(second.result, CallResult::Returned(Outcome::Done));
    assert!(second.effects.is_empty(), "{:?}", second.effects);
    assert_eq!(
        server.requests().len(),
        1,
        "the redelivery must not call the wallet"
    );
}

async fn payment_reversal_retries_a_503_after_the_wallets_retry_after(lang: Lang) {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    server.reply(Reply::status(503).header("Retry-After", "7"));
    let actor = payment(&server, lang, true);
    let state = MapState::new();
    let inv = run(&actor, &booking(), &state).await;
    assert_eq!(
        inv.result,
        CallResult::Returned(Outcome::Retry {
            reason: "wallet answered 503".into(),
            delay: Some(Duration::from_secs(7)),
        })
    );
    assert!(inv.effects.is_empty(), "emits and writes only on done");
    assert!(state.snapshot().is_empty());
}

async fn payment_reversal_declares_a_404_dead(lang: Lang) {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    server.reply(Reply::status(404).body("no such reservation"));
    let actor = payment(&server, lang, true);
    let inv = actor.invoke(&booking(), MapState::new()).await;
    assert_eq!(
        inv.result,
        CallResult::Returned(Outcome::Dead {
            reason: "wallet refused the reversal with 404: no such reservation".into()
        })
    );
    assert!(inv.effects.is_empty());
}

async fn payment_reversal_declares_a_malformed_payload_dead_without_calling_the_wallet(lang: Lang) {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    let actor = payment(&server, lang, true);
    for payload in [
        r#"{"type":"booking.cancelled","booking_id":"B-1"}"#,
        "{not json",
        "",
    ] {
        let inv = actor
            .invoke(
                &event("bookings", Some("B-1"), Some(payload)),
                MapState::new(),
            )
            .await;
        let reason = match &inv.result {
            CallResult::Returned(Outcome::Dead { reason }) => reason.clone(),
            other => panic!("{payload:?}: {other:?} {:?}", inv.logs),
        };
        assert!(
            reason.contains("malformed JSON payload"),
            "{payload:?}: {reason}"
        );
        if payload.starts_with("{\"type\"") {
            assert!(reason.contains("missing field"), "{reason}");
        }
        assert!(inv.effects.is_empty());
    }
    assert!(server.requests().is_empty());
}

async fn payment_reversal_is_denied_a_host_that_is_not_allowed(lang: Lang) {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    let actor = payment(&server, lang, false);
    let inv = actor.invoke(&booking(), MapState::new()).await;
    match &inv.result {
        CallResult::Returned(Outcome::Retry { reason, .. }) => {
            assert!(reason.contains("denied"), "{reason}")
        }
        other => panic!("{other:?} {:?}", inv.logs),
    }
    assert!(server.requests().is_empty(), "no connection may be made");
}

fn invoke(component: &Path, extra: &[&str]) -> Output {
    let cache = PathBuf::from(wactor_tests::GUESTS_DIR).join("artifact-cache");
    Command::new(wactor_bin())
        .arg("invoke")
        .arg(component)
        .arg("--event")
        .arg(example_dir("payment-reversal").join("event.json"))
        .arg("--cache-dir")
        .arg(cache)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

async fn invoke_keeps_the_marker_across_invocations_and_exits_by_outcome(lang: Lang) {
    let path = component("payment-reversal", lang);
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    server.reply(Reply::status(503).header("Retry-After", "30"));
    server.reply(Reply::status(404).body("no such reservation"));
    server.reply(Reply::status(200));
    let state = tempfile::tempdir().unwrap();
    let args = [
        "--config".to_string(),
        format!("wallet_url={}", server.url()),
        "--allow-host".to_string(),
        server.host_port(),
        "--state-dir".to_string(),
        state.path().display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();

    let busy = invoke(&path, &args);
    assert_eq!(busy.status.code(), Some(10), "{}", stdout(&busy));
    assert!(
        stdout(&busy).contains("outcome: retry after 30000 ms: wallet answered 503"),
        "{}",
        stdout(&busy)
    );
    let missing = invoke(&path, &args);
    assert_eq!(missing.status.code(), Some(11), "{}", stdout(&missing));
    let done = invoke(&path, &args);
    assert_eq!(done.status.code(), Some(0), "{}", stdout(&done));
    assert!(
        stdout(&done).contains("set reversed:B-1001"),
        "{}",
        stdout(&done)
    );
    let again = invoke(&path, &args);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    assert!(!stdout(&again).contains("record(s):"), "{}", stdout(&again));
    assert_eq!(
        server.requests().len(),
        3,
        "the fourth run found the marker"
    );
}

async fn on_the_mock_cluster_a_cancelled_booking_is_reversed_once_through_a_503(lang: Lang) {
    let server = TestServer::start().unwrap_or_else(|e| panic!("{e}"));
    server.reply(Reply::status(503).header("Retry-After", "1"));
    server.reply(Reply::status(200));
    let kafka = Kafka::start();
    kafka.topic("bookings", 2);
    kafka.topic("wallet.reversal.completed", 1);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), kafka.settings());
    let text = manifest(
        "payment-reversal",
        "bookings",
        &format!(
            "allowed_hosts = [\"{}\"]\n[retry]\nmax_attempts = 5\ninitial_backoff = \"100ms\"\n\
             [config]\nwallet_url = \"{}\"\ntimeout_ms = \"3000\"\n\
             completed_topic = \"wallet.reversal.completed\"\n",
            server.host_port(),
            server.url()
        ),
    );
    let version = host.load_component(&component("payment-reversal", lang), &text, 1);
    let slot = Arc::new(wactor_kafka::VersionSlot::new(version));
    let consumer = host.consume(slot).await;

    let payload = booking_payload();
    produce(
        &kafka.brokers,
        "bookings",
        &[(Some("B-1001".into()), payload.clone())],
    )
    .await;
    let completed = read_until(
        &kafka.brokers,
        "wallet.reversal.completed",
        Duration::from_secs(60),
        |r| !r.is_empty(),
    )
    .await;
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].json()["booking_id"], "B-1001");
    assert_eq!(server.requests().len(), 2, "the 503, then the reversal");

    // The same cancellation again (a producer's retry): handled, no call.
    produce(
        &kafka.brokers,
        "bookings",
        &[(Some("B-1001".into()), payload)],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(60), || host
            .metrics
            .render()
            .lines()
            .any(|l| l.starts_with("wactor_events_total")
                && l.contains("outcome=\"done\"")
                && l.ends_with(" 2")))
        .await,
        "{}",
        host.metrics.render()
    );
    assert_eq!(server.requests().len(), 2, "no second reversal");
    consumer.stop().await;
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn assert_passes(mut command: Command, what: &str) {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run {what}: {e}");
    });
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The Python and JavaScript SDKs' own unit tests (CPython's unittest and
/// Node's test runner, on their fake hosts) run with the workspace's.
#[test]
fn the_python_and_js_sdks_pass_their_unit_tests() {
    let mut python = Command::new("python3");
    python
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(repo().join("sdk-python"));
    assert_passes(python, "the Python SDK's tests");
    let mut node = Command::new("node");
    node.args(["--import", "./testing/register.mjs", "--test", "test/"])
        .current_dir(repo().join("sdk-js"));
    assert_passes(node, "the JS SDK's tests");
}

/// `wactor test` runs each Python and JavaScript example's unit tests with
/// the SDK this wactor carries.
#[test]
fn wactor_test_passes_on_each_python_and_js_example() {
    for example in [
        "echo-py",
        "payment-reversal-py",
        "echo-batch-py",
        "echo-js",
        "payment-reversal-js",
    ] {
        let mut command = Command::new(wactor_bin());
        command
            .arg("test")
            .arg(repo().join("examples").join(example));
        assert_passes(command, &format!("wactor test examples/{example}"));
    }
}
