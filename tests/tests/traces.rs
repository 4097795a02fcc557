//! Traces (issue 14, part 3): a real `wactor serve` exporting over
//! OTLP/HTTP to a small receiver in the test. One trace runs from the
//! producer's `traceparent` header through the `process` span of the call,
//! the `send` span of the record it emits (whose `traceparent` header the
//! record carries) and the CLIENT span of its outbound HTTP request (whose
//! `traceparent` the called server receives). Bad `traceparent` headers
//! start new traces and never fail an event; with traces off, a valid one
//! is passed on unchanged.
//!
//! The actor is the payment-reversal example: one wallet call (to a
//! [`TestServer`]) and one emitted record per cancelled booking.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use support::{read_until, Kafka, ServeProcess};
use wactor_kafka::OutRecord;
use wactor_tests::{Recorded, Reply, TestServer};

const WAIT: Duration = Duration::from_secs(60);
const BOOKINGS: &str = "traces.bookings";
const COMPLETED: &str = "traces.completed";

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// How the host exports (or not).
enum Export<'a> {
    /// `[telemetry] otlp_endpoint` in host.toml.
    File(&'a TestServer),
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` = this URL.
    Env(String),
    /// Traces off.
    Off,
}

/// Starts `wactor serve` in `dir` running payment-reversal against
/// `wallet`, exporting as `export` says.
fn serve(dir: &Path, brokers: &str, wallet: &TestServer, export: Export<'_>) -> ServeProcess {
    serve_with(dir, brokers, wallet, export, "", &[])
}

/// [`serve`], with `tables` (TOML tables) added to the manifest and `env`
/// set for the host.
fn serve_with(
    dir: &Path,
    brokers: &str,
    wallet: &TestServer,
    export: Export<'_>,
    tables: &str,
    env: &[(&str, &str)],
) -> ServeProcess {
    let config = dir.join("host.toml");
    // A test may have written (and changed) it already.
    if !config.exists() {
        ServeProcess::write_config(dir, brokers, "manage_topics = false");
    }
    if let Export::File(otlp) = export {
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"wactor-traces-test\"\n",
            otlp.url()
        ));
        std::fs::write(&config, text).unwrap();
    }
    support::write_actor(
        dir,
        "payment-reversal",
        "payment-reversal",
        &format!(
            "name = \"payment-reversal\"\ntopics = [\"{BOOKINGS}\"]\n\
             allowed_hosts = [\"{}\"]\n\
             [config]\nwallet_url = \"{}\"\ncompleted_topic = \"{COMPLETED}\"\n{tables}",
            wallet.host_port(),
            wallet.url()
        ),
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("host.log"))
        .unwrap();
    let mut command = std::process::Command::new(wactor_tests::wactor_bin());
    command
        .arg("serve")
        .arg("--config")
        .arg(&config)
        // Spans are exported whatever the log filter says.
        .env("WACTOR_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log);
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    if let Export::Env(url) = export {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", url);
    }
    command.envs(env.iter().copied());
    let child = command.spawn().expect("start wactor serve");
    ServeProcess { child, config }
}

/// A receiver that answers every export with an empty protobuf response.
fn otlp_receiver() -> TestServer {
    let server = TestServer::start().unwrap();
    for _ in 0..64 {
        server.reply(Reply::status(200).header("content-type", "application/x-protobuf"));
    }
    server
}

fn booking(id: &str) -> Vec<u8> {
    serde_json::json!({
        "type": "booking.cancelled",
        "booking_id": id,
        "customer_id": "C-1",
        "reservation_id": format!("R-{id}"),
        "amount": {"value": 100, "currency": "IDR"}
    })
    .to_string()
    .into_bytes()
}

fn record(id: &str, headers: Headers) -> OutRecord {
    OutRecord {
        topic: BOOKINGS.into(),
        partition: Some(0),
        key: Some(id.as_bytes().to_vec()),
        payload: Some(booking(id)),
        headers,
    }
}

/// Record headers: (name, value), null values as `None`.
type Headers = Vec<(String, Option<Vec<u8>>)>;

fn header(name: &str, value: impl Into<Vec<u8>>) -> (String, Option<Vec<u8>>) {
    (name.to_string(), Some(value.into()))
}

/// Every span the receiver got, and the `service.name` of each export.
fn received(otlp: &TestServer) -> (Vec<Span>, Vec<String>) {
    let mut spans = Vec::new();
    let mut services = Vec::new();
    for request in otlp.requests() {
        assert_eq!(request.path, "/v1/traces", "{request:?}");
        assert_eq!(
            request.header("content-type"),
            Some("application/x-protobuf")
        );
        let export = ExportTraceServiceRequest::decode(request.body.as_slice()).unwrap();
        for resource in export.resource_spans {
            if let Some(resource) = &resource.resource {
                if let Some(name) = attr(&resource.attributes, "service.name") {
                    services.push(name);
                }
            }
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    (spans, services)
}

/// An attribute's value as text.
fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn traceparent(trace: &str, span: &str) -> String {
    format!("00-{trace}-{span}-01")
}

/// The wallet's requests once there are `n`.
async fn wallet_requests(wallet: &TestServer, n: usize) -> Vec<Recorded> {
    assert!(
        support::eventually(WAIT, || wallet.requests().len() >= n).await,
        "the wallet got {} of {n} requests",
        wallet.requests().len()
    );
    wallet.requests()
}

fn span_named<'a>(spans: &'a [Span], name: &str, trace: &[u8]) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name && s.trace_id == trace)
        .unwrap_or_else(|| panic!("no span {name:?} in trace {}: {spans:#?}", hex(trace)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_runs_from_the_producers_header_through_process_send_and_outbound_http() {
    let kafka = Kafka::start();
    kafka.topic(BOOKINGS, 1);
    kafka.topic(COMPLETED, 1);
    let wallet = TestServer::start().unwrap();
    let otlp = otlp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let host = serve(dir.path(), &kafka.brokers, &wallet, Export::File(&otlp));

    support::produce_raw(
        &kafka.settings(),
        &[record(
            "B-1",
            vec![
                header("traceparent", traceparent(TRACE, PARENT)),
                header("tracestate", "vendor=abc"),
            ],
        )],
    )
    .await;
    let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, |r| !r.is_empty()).await;
    assert_eq!(emitted.len(), 1, "{}", host_log(dir.path()));
    let requests = wallet_requests(&wallet, 1).await;
    // SIGTERM: the last batch goes out at exit.
    assert!(host.terminate(), "{}", host_log(dir.path()));

    let (spans, services) = received(&otlp);
    assert!(
        services.iter().all(|s| s == "wactor-traces-test"),
        "{services:?}"
    );
    let trace = hex_bytes(TRACE);

    // process: the record's traceparent is its parent.
    let process = span_named(&spans, &format!("process {BOOKINGS}"), &trace);
    assert_eq!(hex(&process.parent_span_id), PARENT);
    assert_eq!(process.kind, SpanKind::Consumer as i32);
    assert_eq!(process.trace_state, "vendor=abc");
    let a = |key: &str| attr(&process.attributes, key);
    assert_eq!(a("messaging.system").as_deref(), Some("kafka"));
    assert_eq!(a("messaging.operation.type").as_deref(), Some("process"));
    assert_eq!(a("messaging.destination.name").as_deref(), Some(BOOKINGS));
    assert_eq!(
        a("messaging.destination.partition.id").as_deref(),
        Some("0")
    );
    assert_eq!(a("messaging.kafka.offset").as_deref(), Some("0"));
    assert_eq!(a("messaging.kafka.message.key").as_deref(), Some("B-1"));
    assert_eq!(
        a("messaging.consumer.group.name").as_deref(),
        Some("wactor.payment-reversal")
    );
    assert_eq!(a("wactor.actor").as_deref(), Some("payment-reversal"));
    assert_eq!(a("wactor.actor.version").as_deref(), Some("1"));
    assert_eq!(a("wactor.attempt").as_deref(), Some("1"));

    // send: a child of process; the emitted record carries its context.
    let send = span_named(&spans, &format!("send {COMPLETED}"), &trace);
    assert_eq!(send.parent_span_id, process.span_id);
    assert_eq!(send.kind, SpanKind::Producer as i32);
    assert_eq!(
        attr(&send.attributes, "messaging.destination.name").as_deref(),
        Some(COMPLETED)
    );
    assert_eq!(
        emitted[0].headers.get("traceparent"),
        Some(&traceparent(TRACE, &hex(&send.span_id)))
    );
    assert_eq!(
        emitted[0].headers.get("tracestate").map(String::as_str),
        Some("vendor=abc")
    );

    // The wallet call: a CLIENT child of process; the request carries it.
    let client = span_named(&spans, "POST", &trace);
    assert_eq!(client.parent_span_id, process.span_id);
    assert_eq!(client.kind, SpanKind::Client as i32);
    let c = |key: &str| attr(&client.attributes, key);
    assert_eq!(c("http.request.method").as_deref(), Some("POST"));
    assert_eq!(c("server.address").as_deref(), Some("127.0.0.1"));
    let port = wallet.host_port().rsplit_once(':').unwrap().1.to_string();
    assert_eq!(c("server.port"), Some(port));
    assert_eq!(
        c("url.full"),
        Some(format!("{}/reservations/R-B-1/reverse", wallet.url()))
    );
    assert_eq!(c("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(
        requests[0].header("traceparent"),
        Some(traceparent(TRACE, &hex(&client.span_id)).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_attempt_is_a_process_span_of_its_own_under_the_records_parent() {
    let kafka = Kafka::start();
    kafka.topic(BOOKINGS, 1);
    kafka.topic(COMPLETED, 1);
    let wallet = TestServer::start().unwrap();
    // The first call fails (a retry), the second succeeds.
    wallet.reply(Reply::status(503));
    let otlp = otlp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let host = serve_with(
        dir.path(),
        &kafka.brokers,
        &wallet,
        Export::File(&otlp),
        "[retry]\ninitial_backoff = \"100ms\"\njitter = \"none\"\n",
        &[],
    );
    support::produce_raw(
        &kafka.settings(),
        &[record(
            "B-retry",
            vec![header("traceparent", traceparent(TRACE, PARENT))],
        )],
    )
    .await;
    let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, |r| !r.is_empty()).await;
    assert_eq!(emitted.len(), 1, "{}", host_log(dir.path()));
    let requests = wallet_requests(&wallet, 2).await;
    assert!(host.terminate(), "{}", host_log(dir.path()));

    let (spans, _) = received(&otlp);
    let trace = hex_bytes(TRACE);
    let mut processes: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == format!("process {BOOKINGS}") && s.trace_id == trace)
        .collect();
    processes.sort_by_key(|s| attr(&s.attributes, "wactor.attempt"));
    assert_eq!(processes.len(), 2, "{spans:#?}");
    for (i, process) in processes.iter().enumerate() {
        assert_eq!(hex(&process.parent_span_id), PARENT);
        assert_eq!(
            attr(&process.attributes, "wactor.attempt"),
            Some((i + 1).to_string())
        );
        // Each attempt's wallet call is its child, and says so in its
        // request.
        let client = spans
            .iter()
            .find(|s| s.name == "POST" && s.parent_span_id == process.span_id)
            .unwrap_or_else(|| panic!("no wallet call under attempt {}", i + 1));
        assert_eq!(
            requests[i].header("traceparent"),
            Some(traceparent(TRACE, &hex(&client.span_id)).as_str())
        );
    }
    // The failed attempt is an error; only the one that was done emitted.
    let error = opentelemetry_proto::tonic::trace::v1::status::StatusCode::Error as i32;
    assert_eq!(processes[0].status.as_ref().map(|s| s.code), Some(error));
    assert_eq!(
        attr(&processes[0].attributes, "outcome").as_deref(),
        Some("retry")
    );
    let sends: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == format!("send {COMPLETED}"))
        .collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].parent_span_id, processes[1].span_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_traceparent_headers_start_new_traces_and_the_events_are_still_done() {
    let kafka = Kafka::start();
    kafka.topic(BOOKINGS, 1);
    kafka.topic(COMPLETED, 1);
    let wallet = TestServer::start().unwrap();
    let otlp = otlp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let host = serve(dir.path(), &kafka.brokers, &wallet, Export::Env(otlp.url()));

    let good = traceparent(TRACE, PARENT);
    let zero = traceparent(&"0".repeat(32), PARENT);
    let bad: Vec<(&str, Headers)> = vec![
        (
            "B-utf8",
            vec![header("traceparent", b"00-\xff\xfe-\x80".to_vec())],
        ),
        (
            "B-version",
            vec![header("traceparent", format!("ff-{TRACE}-{PARENT}-01"))],
        ),
        ("B-zero", vec![header("traceparent", zero)]),
        (
            "B-long",
            vec![header(
                "traceparent",
                format!("{good}-{}", "a".repeat(10_000)),
            )],
        ),
        (
            "B-twice",
            vec![
                header("traceparent", good.clone()),
                header("traceparent", traceparent(TRACE, "1111111111111111")),
            ],
        ),
        ("B-null", vec![("traceparent".to_string(), None)]),
    ];
    let records: Vec<OutRecord> = bad
        .iter()
        .map(|(id, headers)| record(id, headers.clone()))
        .collect();
    support::produce_raw(&kafka.settings(), &records).await;
    let n = records.len();
    let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, move |r| r.len() >= n).await;
    assert_eq!(emitted.len(), n, "{}", host_log(dir.path()));
    wallet_requests(&wallet, n).await;
    assert!(host.terminate(), "{}", host_log(dir.path()));

    let (spans, _) = received(&otlp);
    let processes: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == format!("process {BOOKINGS}"))
        .collect();
    assert_eq!(processes.len(), n, "{processes:#?}");
    let mut traces = BTreeMap::new();
    for process in &processes {
        // A root of a trace of its own, never the header's.
        assert!(
            process.parent_span_id.is_empty(),
            "{process:#?} in {:#?}",
            spans
                .iter()
                .map(|s| (
                    &s.name,
                    hex(&s.trace_id),
                    hex(&s.span_id),
                    hex(&s.parent_span_id)
                ))
                .collect::<Vec<_>>()
        );
        assert_ne!(hex(&process.trace_id), TRACE);
        assert_ne!(hex(&process.trace_id), "0".repeat(32));
        let key = attr(&process.attributes, "messaging.kafka.message.key").unwrap();
        traces.insert(hex(&process.trace_id), key);
    }
    assert_eq!(traces.len(), n, "each event a trace of its own");
    // Each emitted record carries its new trace.
    for record in &emitted {
        let header = record.headers.get("traceparent").unwrap();
        let trace = &header[3..35];
        assert!(traces.contains_key(trace), "{header} not among {traces:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_traces_off_a_valid_traceparent_is_passed_on_unchanged() {
    let kafka = Kafka::start();
    kafka.topic(BOOKINGS, 1);
    kafka.topic(COMPLETED, 1);
    let wallet = TestServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = serve(dir.path(), &kafka.brokers, &wallet, Export::Off);

    let incoming = traceparent(TRACE, PARENT);
    support::produce_raw(
        &kafka.settings(),
        &[
            record("B-on", vec![header("traceparent", incoming.clone())]),
            record("B-none", vec![]),
            // A tracestate that would inject a header into the outbound
            // request, and one far over the limit: neither is passed on.
            record(
                "B-crlf",
                vec![
                    header("traceparent", incoming.clone()),
                    header("tracestate", "a=1\r\nx-injected: yes"),
                ],
            ),
            record(
                "B-huge",
                vec![
                    header("traceparent", incoming.clone()),
                    header("tracestate", format!("a={}", "b".repeat(100_000))),
                ],
            ),
        ],
    )
    .await;
    let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, |r| r.len() >= 4).await;
    assert_eq!(emitted.len(), 4, "{}", host_log(dir.path()));
    let requests = wallet_requests(&wallet, 4).await;
    assert!(host.terminate(), "{}", host_log(dir.path()));

    let by_key = |key: &str| {
        emitted
            .iter()
            .find(|r| r.key.as_deref() == Some(key))
            .unwrap()
    };
    assert_eq!(by_key("B-on").headers.get("traceparent"), Some(&incoming));
    assert_eq!(by_key("B-none").headers.get("traceparent"), None);
    let request_of = |id: &str| {
        requests
            .iter()
            .find(|r| r.header("idempotency-key") == Some(id))
            .unwrap()
    };
    assert_eq!(
        request_of("B-on").header("traceparent"),
        Some(incoming.as_str())
    );
    assert_eq!(request_of("B-none").header("traceparent"), None);
    for id in ["B-crlf", "B-huge"] {
        let request = request_of(id);
        assert_eq!(request.header("traceparent"), Some(incoming.as_str()));
        assert_eq!(request.header("tracestate"), None, "{request:?}");
        assert_eq!(request.header("x-injected"), None, "{request:?}");
        assert_eq!(by_key(id).headers.get("traceparent"), Some(&incoming));
        assert_eq!(by_key(id).headers.get("tracestate"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collector_that_is_down_fails_no_event_and_holds_up_no_exit() {
    let kafka = Kafka::start();
    kafka.topic(BOOKINGS, 1);
    kafka.topic(COMPLETED, 1);
    let wallet = TestServer::start().unwrap();
    // A port nothing listens on.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let host = serve(dir.path(), &kafka.brokers, &wallet, Export::Env(down));

    let incoming = traceparent(TRACE, PARENT);
    support::produce_raw(
        &kafka.settings(),
        &[record("B-down", vec![header("traceparent", incoming)])],
    )
    .await;
    let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, |r| !r.is_empty()).await;
    assert_eq!(emitted.len(), 1, "{}", host_log(dir.path()));
    // Still one trace, the send span's.
    let header = emitted[0].headers.get("traceparent").unwrap();
    assert!(header.starts_with(&format!("00-{TRACE}-")), "{header}");
    let stopping = std::time::Instant::now();
    assert!(host.terminate(), "{}", host_log(dir.path()));
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "exit took {:?}",
        stopping.elapsed()
    );
    let log = host_log(dir.path());
    assert!(log.contains("cannot export traces"), "{log}");
}

/// A collector that takes connections and never answers.
fn hanging_collector() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collector_that_never_answers_stalls_no_event_and_holds_up_the_exit_at_most_the_flush_bound(
) {
    let kafka = Kafka::start();
    kafka.topic(BOOKINGS, 1);
    kafka.topic(COMPLETED, 1);
    let wallet = TestServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Batches every 100 ms: the first export hangs (for the exporter's
    // 10 s timeout) while the later events run.
    let host = serve_with(
        dir.path(),
        &kafka.brokers,
        &wallet,
        Export::Env(hanging_collector()),
        "",
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    support::produce_raw(&kafka.settings(), &[record("B-h1", vec![])]).await;
    let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, |r| !r.is_empty()).await;
    assert_eq!(emitted.len(), 1, "{}", host_log(dir.path()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records: Vec<OutRecord> = (2..=5)
        .map(|i| record(&format!("B-h{i}"), vec![]))
        .collect();
    let produced = std::time::Instant::now();
    support::produce_raw(&kafka.settings(), &records).await;
    let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, |r| r.len() >= 5).await;
    assert_eq!(emitted.len(), 5, "{}", host_log(dir.path()));
    assert!(
        produced.elapsed() < Duration::from_secs(8),
        "events waited for the collector: {:?}",
        produced.elapsed()
    );
    let stopping = std::time::Instant::now();
    assert!(host.terminate(), "{}", host_log(dir.path()));
    // The drain, and at most the 5 s flush bound, not the export's 10 s.
    assert!(
        stopping.elapsed() < Duration::from_secs(9),
        "exit took {:?}",
        stopping.elapsed()
    );
    let log = host_log(dir.path());
    assert!(
        log.contains("traces not fully exported at shutdown"),
        "{log}"
    );
}

/// A free local port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET <path>` on `127.0.0.1:<port>`.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

/// The value of the unlabelled metric `name` in a Prometheus text body.
fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collector_that_refuses_every_export_is_logged_once_and_counted_in_the_metrics() {
    let kafka = Kafka::start();
    kafka.topic(BOOKINGS, 1);
    kafka.topic(COMPLETED, 1);
    let wallet = TestServer::start().unwrap();
    let otlp = TestServer::start().unwrap();
    for _ in 0..200 {
        otlp.reply(Reply::status(500));
    }
    let dir = tempfile::tempdir().unwrap();
    // The API on a known port, for /metrics.
    let port = free_port();
    ServeProcess::write_config(dir.path(), &kafka.brokers, "manage_topics = false");
    let config = dir.path().join("host.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&config, text).unwrap();
    let host = serve_with(
        dir.path(),
        &kafka.brokers,
        &wallet,
        Export::Env(otlp.url()),
        "",
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );

    for i in 1..=3 {
        support::produce_raw(&kafka.settings(), &[record(&format!("B-r{i}"), vec![])]).await;
        let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, move |r| r.len() >= i).await;
        assert_eq!(emitted.len(), i, "{}", host_log(dir.path()));
        // A batch (and its failed export) of its own.
        assert!(
            support::eventually(WAIT, || otlp.requests().len() >= i).await,
            "{}",
            host_log(dir.path())
        );
    }
    let mut failures = None;
    assert!(
        support::eventually(WAIT, || {
            failures = http_get(port, "/metrics")
                .and_then(|text| metric(&text, "wactor_trace_export_failures_total"));
            failures >= Some(3)
        })
        .await,
        "failures: {failures:?}; {}",
        host_log(dir.path())
    );
    assert!(host.terminate(), "{}", host_log(dir.path()));
    let log = host_log(dir.path());
    assert_eq!(
        log.matches("cannot export traces").count(),
        1,
        "one warning for the run of failures: {log}"
    );
}

fn host_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("host.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_that_is_not_sampled_is_propagated_but_not_recorded() {
    let kafka = Kafka::start();
    kafka.topic(BOOKINGS, 1);
    kafka.topic(COMPLETED, 1);
    let wallet = TestServer::start().unwrap();
    let otlp = otlp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let host = serve(dir.path(), &kafka.brokers, &wallet, Export::File(&otlp));
    let unsampled = format!("00-{TRACE}-{PARENT}-00");
    support::produce_raw(
        &kafka.settings(),
        &[
            record(
                "B-unsampled",
                vec![
                    header("traceparent", unsampled),
                    header("tracestate", "vendor=abc"),
                ],
            ),
            // A sampled one after it, so that an export surely happened.
            record("B-sampled", vec![]),
        ],
    )
    .await;
    let emitted = read_until(&kafka.brokers, COMPLETED, WAIT, |r| r.len() >= 2).await;
    assert_eq!(emitted.len(), 2, "{}", host_log(dir.path()));
    let requests = wallet_requests(&wallet, 2).await;
    assert!(host.terminate(), "{}", host_log(dir.path()));

    // Passed on: the same trace, not sampled, its state kept; the span
    // ids are the host's own (the next service's parent).
    let record = emitted
        .iter()
        .find(|r| r.key.as_deref() == Some("B-unsampled"))
        .unwrap();
    let header = record.headers.get("traceparent").unwrap();
    assert!(header.starts_with(&format!("00-{TRACE}-")), "{header}");
    assert!(header.ends_with("-00"), "{header}");
    assert!(!header.contains(PARENT), "{header}");
    assert_eq!(
        record.headers.get("tracestate").map(String::as_str),
        Some("vendor=abc")
    );
    let request = requests
        .iter()
        .find(|r| r.header("idempotency-key") == Some("B-unsampled"))
        .unwrap();
    let sent = request.header("traceparent").unwrap();
    assert!(
        sent.starts_with(&format!("00-{TRACE}-")) && sent.ends_with("-00"),
        "{sent}"
    );
    // Not recorded: no span of that trace reached the collector, the
    // other event's did.
    let (spans, _) = received(&otlp);
    let trace = hex_bytes(TRACE);
    assert!(spans.iter().all(|s| s.trace_id != trace), "{spans:#?}");
    assert!(
        spans
            .iter()
            .any(|s| s.name == format!("process {BOOKINGS}")),
        "{spans:#?}"
    );
}
