//! The admin API against a real registry: a temporary store, the Wasm
//! runtime, and librdkafka's in-process mock broker. Requests go through
//! `router(state).oneshot(request)`, so everything but the socket is real.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wactor_api::{router, ApiState, Auth};
use wactor_kafka::{DevCluster, KafkaSettings, Producer, SystemClock};
use wactor_metrics::Metrics;
use wactor_registry::{HostParts, Registry};
use wactor_runtime::{Runtime, RuntimeSettings};
use wactor_store::{AttemptOutcome, AttemptRecord, DeadLetter, Store, StoredEvent};

const BOUNDARY: &str = "wactor-test-boundary-7MA4YWxkTrZu0gW";

/// A host without the socket: registry, store, broker.
struct Host {
    state: ApiState,
    store: Store,
    // Dropped last: the consumers talk to it until then.
    _cluster: DevCluster,
}

impl Host {
    fn start(tokens: &[(&str, &str)], max_request_bytes: usize) -> Host {
        let cluster = DevCluster::start(1).unwrap();
        cluster.create_topic("orders", 2).unwrap();
        let mut kafka = KafkaSettings::new(cluster.bootstrap_servers());
        // The mock broker has no admin API for topics; it creates them on
        // first use (as `wactor dev` runs it).
        kafka.manage_topics = false;
        kafka.drain_timeout = std::time::Duration::from_secs(2);
        let store = Store::temporary().unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let registry = Arc::new(Registry::new(HostParts {
            store: store.clone(),
            runtime: Arc::new(Runtime::new(RuntimeSettings::default()).unwrap()),
            producer: Producer::new(&kafka).unwrap(),
            metrics: metrics.clone(),
            kafka,
            clock: Arc::new(SystemClock),
        }));
        let state = ApiState {
            registry,
            metrics,
            auth: Auth {
                tokens: tokens
                    .iter()
                    .map(|(name, token)| (name.to_string(), token.to_string()))
                    .collect(),
            },
            max_request_bytes,
            series: Arc::new(wactor_api::series::Series::new(
                wactor_api::series::DEV_STEP,
            )),
        };
        Host {
            state,
            store,
            _cluster: cluster,
        }
    }

    fn open() -> Host {
        Host::start(&[], 64 * 1024 * 1024)
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// POSTs `body` as JSON (`Value::Null`: no body).
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .unwrap(),
        )
        .await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Request::delete(path).body(Body::empty()).unwrap())
            .await
    }

    async fn upload(&self, actor: &str, manifest: &str, component: &[u8]) -> (StatusCode, Value) {
        self.send(upload_request(actor, manifest, component, "", None))
            .await
    }

    /// The registry as the API shows it: actors and each one's versions.
    async fn snapshot(&self) -> Value {
        let (_, actors) = self.get("/v1/actors").await;
        let mut versions = Vec::new();
        for actor in actors["items"].as_array().unwrap() {
            let name = actor["name"].as_str().unwrap();
            let (_, list) = self.get(&format!("/v1/actors/{name}/versions")).await;
            versions.push(list);
        }
        json!({"actors": actors["items"].as_array().unwrap().iter().map(|a| a["name"].clone()).collect::<Vec<_>>(),
               "versions": versions})
    }
}

fn manifest(name: &str, extra: &str) -> String {
    format!("name = \"{name}\"\ntopics = [\"orders\"]\n{extra}\n")
}

fn noop() -> Vec<u8> {
    wactor_tests::guest_bytes("fixture-noop")
}

fn multipart_body(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn upload_request(
    actor: &str,
    manifest: &str,
    component: &[u8],
    query: &str,
    token: Option<&str>,
) -> Request<Body> {
    let body = multipart_body(&[("manifest", manifest.as_bytes()), ("component", component)]);
    let mut request = Request::post(format!("/v1/actors/{actor}/versions{query}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body)).unwrap()
}

fn dead_letter(
    actor: &str,
    offset: i64,
    key: &[u8],
    payload: &[u8],
    dead_at_ms: i64,
) -> DeadLetter {
    DeadLetter {
        id: DeadLetter::make_id(actor, "orders", 0, offset),
        actor: actor.to_string(),
        version: 1,
        group: format!("wactor.{actor}"),
        event: StoredEvent {
            topic: "orders".into(),
            partition: 0,
            offset,
            timestamp_ms: Some(dead_at_ms - 100),
            key: Some(key.to_vec()),
            payload: Some(payload.to_vec()),
            headers: vec![wactor_store::StoredHeader::new(
                "trace",
                Some(b"abc".to_vec()),
            )],
        },
        attempts: vec![AttemptRecord {
            attempt: 1,
            started_at_ms: dead_at_ms - 50,
            duration_ms: 1.5,
            version: 1,
            outcome: AttemptOutcome::Dead,
            error: format!("card {offset} declined"),
        }],
        reason: format!("card {offset} declined"),
        kind: "actor_dead".into(),
        first_attempt_at_ms: dead_at_ms - 50,
        dead_at_ms,
        redrives: 0,
        blocking: false,
    }
}

// ---- auth ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_routes_refuse_requests_without_a_valid_token() {
    let host = Host::start(&[("ci", "s3cret")], 1 << 20);
    let response = router(host.state.clone())
        .oneshot(Request::get("/v1/actors").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
        "Bearer"
    );

    let (status, body) = host
        .send(
            Request::get("/v1/actors")
                .header(header::AUTHORIZATION, "Bearer wrong")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(body["error"], "invalid token");

    let (status, _) = host.get("/v1/actors/noop/series").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A mutating call without a token changes nothing.
    let (status, _) = host.upload("noop", &manifest("noop", ""), &noop()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = host
        .post("/v1/dead-letters/discard", json!({"all": true}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(host.store.registry().actors().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_is_accepted_and_names_the_uploader() {
    let host = Host::start(&[("ci", "s3cret"), ("ops", "other")], 64 << 20);
    let (status, body) = host
        .send(
            Request::get("/v1/actors")
                .header(header::AUTHORIZATION, "Bearer other")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"items": []}));

    let (status, body) = host
        .send(upload_request(
            "noop",
            &manifest("noop", ""),
            &noop(),
            "",
            Some("s3cret"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"]["uploaded_by"], "ci");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_the_dashboard_are_open() {
    let host = Host::start(&[("ci", "s3cret")], 1 << 20);
    let (status, body) = host.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["auth_required"], true);

    let response = router(host.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));

    for (path, kind) in [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/vendor/uPlot.iife.min.js", "text/javascript"),
        ("/ui/vendor/uPlot.min.css", "text/css"),
        ("/ui/vendor/uPlot.LICENSE", "text/plain"),
    ] {
        let response = router(host.state.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        // Not framed by another site, in browsers without CSP 2 either.
        assert_eq!(
            response.headers()[header::X_FRAME_OPTIONS],
            "DENY",
            "{path}"
        );
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_calls_are_allowed_and_made_by_local() {
    let host = Host::open();
    let (status, body) = host.upload("noop", &manifest("noop", ""), &noop()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"]["uploaded_by"], "local");
    let (_, history) = host.get("/v1/actors/noop/history").await;
    assert_eq!(history["items"][0]["by"], "local");
    assert_eq!(history["items"][0]["reason"], "deploy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_cross_site_and_rebound_requests_are_forbidden() {
    let host = Host::open();
    host.store
        .dead_letters()
        .put(&dead_letter("billing", 1, b"k", b"p", 1_000))
        .unwrap();
    // A page on another site posting to the API on the operator's machine.
    let (status, body) = host
        .send(
            Request::post("/v1/dead-letters/discard")
                .header(header::HOST, "127.0.0.1:7700")
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(r#"{"all": true}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "forbidden");
    // A DNS-rebinding page reads under its own name.
    let (status, _) = host
        .send(
            Request::get("/v1/dead-letters")
                .header(header::HOST, "evil.example:7700")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(host.store.dead_letters().len(), 1);

    // The dashboard (same origin) and programs (no Origin) pass.
    let (status, body) = host
        .send(
            Request::post("/v1/dead-letters/discard")
                .header(header::HOST, "localhost:7700")
                .header(header::ORIGIN, "http://localhost:7700")
                .body(Body::from(r#"{"all": true, "dry_run": true}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, body["matched"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
}

// ---- errors -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_actors_versions_and_routes_are_404() {
    let host = Host::open();
    for path in [
        "/v1/actors/ghost",
        "/v1/actors/ghost/versions",
        "/v1/actors/ghost/history",
        "/v1/actors/ghost/retries",
        "/v1/actors/ghost/series",
    ] {
        let (status, body) = host.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["code"], "unknown_actor", "{path}");
        assert_eq!(body["error"], "no actor named \"ghost\"");
    }
    let (status, body) = host.post("/v1/actors/ghost/rollback", Value::Null).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_actor"))
    );
    let (status, _) = host.post("/v1/actors/ghost/pause", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = host.delete("/v1/actors/ghost").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    host.upload("noop", &manifest("noop", ""), &noop()).await;
    let (status, body) = host
        .post("/v1/actors/noop/activate", json!({"version": 9}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "unknown_version");

    let (status, body) = host.get("/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_is_400_naming_the_field() {
    let host = Host::open();
    let (status, body) = host
        .upload("noop", &manifest("noop", "max_in_flight = 0"), &noop())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_manifest");
    assert_eq!(body["field"], "max_in_flight");
    assert!(
        body["error"].as_str().unwrap().contains("max_in_flight"),
        "{body}"
    );

    let (status, body) = host.upload("noop", "name = ", &noop()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_manifest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_component_is_400_not_a_webassembly_file() {
    let host = Host::open();
    let (status, body) = host
        .upload("noop", &manifest("noop", ""), b"#!/bin/sh\necho hi\n")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_component");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_for_another_actor_is_409() {
    let host = Host::open();
    let (status, body) = host.upload("noop", &manifest("other", ""), &noop()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "name_mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_413_with_a_json_error() {
    let host = Host::start(&[], 4096);
    // Announced with Content-Length: refused before it is read.
    let (status, body) = host
        .upload("noop", &manifest("noop", ""), &[0u8; 8192])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "too_large");
    assert!(body["error"].as_str().unwrap().contains("4096"), "{body}");

    // Streamed without a length: stopped while it is read.
    let payload = multipart_body(&[
        ("manifest", manifest("noop", "").as_bytes()),
        ("component", &[0u8; 8192]),
    ]);
    let stream = futures_stream(payload);
    let (status, body) = host
        .send(
            Request::post("/v1/actors/noop/versions")
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(stream)
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "too_large");

    // JSON bodies too.
    let big = json!({"all": true, "filter": {"error": "x".repeat(8192)}});
    let (status, body) = host
        .send(
            Request::post("/v1/dead-letters/discard")
                .body(futures_stream(big.to_string().into_bytes()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(host.store.registry().actors().unwrap().is_empty());
}

/// A body without a known length, in chunks.
fn futures_stream(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(1024).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_queries_are_400() {
    let host = Host::open();
    host.upload("noop", &manifest("noop", ""), &noop()).await;
    let (status, body) = host
        .send(
            Request::post("/v1/actors/noop/activate")
                .body(Body::from("{\"version\": \"two\"}"))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request");
    let (status, _) = host.get("/v1/dead-letters?limit=lots").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = host.get("/v1/dead-letters?since=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().starts_with("since:"),
        "{body}"
    );
    let (status, body) = host.get("/v1/dead-letters?after=zz").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

// ---- versions -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_deduplicated_and_versions_roll_back() {
    let host = Host::open();
    let component = noop();
    let (status, first) = host.upload("noop", &manifest("noop", ""), &component).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["created"], true);
    assert_eq!(first["activated"], true);
    assert_eq!(first["version"]["version"], 1);
    assert_eq!(first["version"]["size"], component.len());

    // The same bytes and manifest again: no new version.
    let (status, again) = host.upload("noop", &manifest("noop", ""), &component).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["version"]["version"], 1);

    // A changed manifest is a new version; without activation it waits.
    let (status, second) = host
        .send(upload_request(
            "noop",
            &manifest("noop", "[config]\nbuild = \"2\""),
            &component,
            "?activate=false",
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["version"]["version"], 2);
    assert_eq!(second["activated"], false);

    let (_, versions) = host.get("/v1/actors/noop/versions").await;
    let active: Vec<_> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(active, vec![(1, true), (2, false)]);

    let (status, body) = host
        .post("/v1/actors/noop/activate", json!({"version": 2}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["version"].as_u64(), body["previous"].as_u64()),
        (Some(2), Some(1))
    );

    // Rollback with an empty body goes back to the previous version.
    let (status, body) = host
        .send(
            Request::post("/v1/actors/noop/rollback")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["reason"], "rollback");

    let (_, actor) = host.get("/v1/actors/noop").await;
    assert_eq!(actor["active_version"], 1);
    assert!(actor["manifest"]
        .as_str()
        .unwrap()
        .contains("name = \"noop\""));
    let (_, history) = host.get("/v1/actors/noop/history").await;
    let reasons: Vec<_> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons, vec!["deploy", "activate", "rollback"]);

    let (status, body) = host
        .post("/v1/actors/noop/rollback", json!({"to": 2}))
        .await;
    assert_eq!(
        (status, body["version"].as_u64()),
        (StatusCode::OK, Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_with_nothing_to_go_back_to_is_409() {
    let host = Host::open();
    host.upload("noop", &manifest("noop", ""), &noop()).await;
    let (status, body) = host.post("/v1/actors/noop/rollback", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "nothing_to_roll_back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_leave_the_registry_unchanged() {
    let host = Host::open();
    host.upload("noop", &manifest("noop", ""), &noop()).await;
    let before = host.snapshot().await;
    let wrong_world = wactor_tests::guest_bytes("fixture-wrong-world");
    let refusals: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "noop",
            manifest("noop", "[config]\nx = \"1\""),
            b"garbage".to_vec(),
        ),
        ("noop", manifest("noop", "max_in_flight = 0"), noop()),
        ("noop", manifest("other", ""), noop()),
        ("noop", manifest("noop", "[config]\nx = \"2\""), wrong_world),
        ("fresh", manifest("fresh", ""), b"\0asm\x01\0\0\0".to_vec()),
    ];
    for (actor, text, component) in refusals {
        let (status, body) = host.upload(actor, &text, &component).await;
        assert!(status.is_client_error(), "{actor}: {status} {body}");
    }
    assert_eq!(host.snapshot().await, before);
    let (status, _) = host.get("/v1/actors/fresh").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_pause_resume_and_are_removed() {
    let host = Host::open();
    host.upload("noop", &manifest("noop", ""), &noop()).await;
    let (_, list) = host.get("/v1/actors").await;
    assert_eq!(list["items"][0]["name"], "noop");
    assert_eq!(list["items"][0]["topics"], json!(["orders"]));
    assert_eq!(list["items"][0]["group"], "wactor.noop");

    let (status, body) = host.post("/v1/actors/noop/pause", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["paused"].as_bool()),
        (Some("paused"), Some(true))
    );

    let (status, body) = host.post("/v1/actors/noop/resume", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["state"].as_str(), body["paused"].as_bool()),
        (Some("running"), Some(false))
    );

    let (status, body) = host.delete("/v1/actors/noop").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"removed": "noop"})));
    let (status, _) = host.get("/v1/actors/noop").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_show_the_sampled_points_of_an_actor() {
    let host = Host::open();
    host.upload("noop", &manifest("noop", ""), &noop()).await;
    let (status, body) = host.get("/v1/actors/noop/series").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"actor": "noop", "step_seconds": 2.0, "points": []})
    );

    let series = host.state.series.clone();
    let metrics = host.state.metrics.clone();
    let start = std::time::Instant::now();
    // The registry knows noop: it gets a point before it has metrics.
    let known: std::collections::BTreeSet<String> = ["noop".to_string()].into();
    series.sample(&metrics, Some(&known), None, 10_000, start);
    metrics
        .events_total
        .with_label_values(&["noop", "1", "done"])
        .inc_by(8);
    metrics
        .call_duration_seconds
        .with_label_values(&["noop"])
        .observe(0.002);
    series.sample(
        &metrics,
        Some(&known),
        None,
        12_000,
        start + std::time::Duration::from_secs(2),
    );
    let (status, body) = host.get("/v1/actors/noop/series").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{body}");
    assert_eq!(points[0]["p50_ms"], Value::Null);
    assert_eq!(points[1]["t_ms"], 12_000);
    assert_eq!(
        points[1]["rates"],
        json!({"done": 4.0, "retry": 0.0, "dead": 0.0, "trap": 0.0})
    );
    assert_eq!(points[1]["lag"], 0);
    let p50 = points[1]["p50_ms"].as_f64().unwrap();
    assert!((1.0..=5.0).contains(&p50), "{p50}");

    let (status, body) = host.get("/v1/actors/noop/series?since=10000").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["points"].as_array().unwrap().len(), 1, "{body}");
    // 0 is the epoch: every point (not "0 s back from now": none).
    let (status, body) = host.get("/v1/actors/noop/series?since=0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["points"].as_array().unwrap().len(), 2, "{body}");
    let (status, body) = host.get("/v1/actors/noop/series?since=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = host.get("/v1/actors/noop/series?until=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// ---- dead letters and retries ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_filtered_paged_and_shown() {
    let host = Host::open();
    let set = host.store.dead_letters();
    set.put(&dead_letter(
        "billing",
        1,
        b"cust-1",
        b"{\"amount\": 5}",
        1_000,
    ))
    .unwrap();
    set.put(&dead_letter(
        "billing",
        2,
        &[0xff, 0x01],
        &[0x00, 0xfe],
        2_000,
    ))
    .unwrap();
    set.put(&dead_letter("search", 3, b"cust-1", b"doc", 3_000))
        .unwrap();

    let (status, page) = host.get("/v1/dead-letters?total=true").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "search:orders:0:3",
            "billing:orders:0:2",
            "billing:orders:0:1"
        ]
    );
    assert_eq!(page["total"], 3);
    assert_eq!(page["next"], Value::Null);

    // Bytes: UTF-8 as text, the rest as base64.
    assert_eq!(
        page["items"][2]["event"]["payload"],
        json!({"text": "{\"amount\": 5}"})
    );
    assert_eq!(
        page["items"][1]["event"]["payload"],
        json!({"base64": "AP4="})
    );
    assert_eq!(page["items"][1]["event"]["key"], json!({"base64": "/wE="}));
    assert_eq!(
        page["items"][0]["event"]["headers"],
        json!([{"name": "trace", "value": {"text": "abc"}}])
    );

    let (_, page) = host.get("/v1/dead-letters?actor=billing&key=cust-1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], "billing:orders:0:1");
    let (_, page) = host.get("/v1/dead-letters?key=base64:/wE=").await;
    assert_eq!(page["items"][0]["id"], "billing:orders:0:2");
    let (_, page) = host
        .get("/v1/dead-letters?error=CARD%203&since=1970-01-01T00:00:02Z")
        .await;
    assert_eq!(page["items"][0]["id"], "search:orders:0:3");
    let (_, page) = host.get("/v1/dead-letters?until=2000&actor=").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    // Paging follows `next` without gaps or repeats.
    let (_, first) = host.get("/v1/dead-letters?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap();
    let (_, second) = host
        .get(&format!("/v1/dead-letters?limit=2&after={next}"))
        .await;
    assert_eq!(second["items"][0]["id"], "billing:orders:0:1");
    assert_eq!(second["next"], Value::Null);

    let (status, one) = host.get("/v1/dead-letters/billing:orders:0:1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["attempts"][0]["outcome"], "dead");
    assert_eq!(one["attempts"][0]["error"], "card 1 declined");
    assert_eq!(one["kind"], "actor_dead");
    let (status, body) = host.get("/v1/dead-letters/billing:orders:0:99").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_change_nothing_and_discards_remove() {
    let host = Host::open();
    let set = host.store.dead_letters();
    for offset in 1..=4 {
        let actor = if offset <= 3 { "billing" } else { "search" };
        set.put(&dead_letter(actor, offset, b"k", b"p", 1_000 * offset))
            .unwrap();
    }

    let (status, report) = host
        .post(
            "/v1/dead-letters/redrive",
            json!({"filter": {"actor": "billing"}, "dry_run": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["matched"].as_u64(), report["redriven"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(report["dry_run"], true);
    let (_, report) = host
        .post(
            "/v1/dead-letters/discard",
            json!({"all": true, "dry_run": true}),
        )
        .await;
    assert_eq!(
        (report["matched"].as_u64(), report["discarded"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(set.len(), 4);

    // No selection, an empty filter, or several at once: refused.
    for body in [
        json!({}),
        json!({"filter": {}}),
        json!({"id": "billing:orders:0:1", "all": true}),
        json!({"filter": {"actr": "billing"}, "dry_run": true}),
    ] {
        let (status, answer) = host.post("/v1/dead-letters/redrive", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        let (status, _) = host.post("/v1/dead-letters/discard", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(set.len(), 4);

    let (status, report) = host
        .post(
            "/v1/dead-letters/discard",
            json!({"filter": {"actor": "billing", "until": 2500}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["discarded"], 2);
    assert_eq!(set.len(), 2);

    let (status, report) = host.delete("/v1/dead-letters/search:orders:0:4").await;
    assert_eq!(
        (status, report["discarded"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (status, _) = host.delete("/v1/dead-letters/search:orders:0:4").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = host.get("/v1/dead-letters").await;
    let ids: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["billing:orders:0:3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_sends_the_dead_letter_back_and_removes_it() {
    let host = Host::open();
    host.upload("noop", &manifest("noop", ""), &noop()).await;
    host.store
        .dead_letters()
        .put(&dead_letter("noop", 7, b"k", b"p", 1_000))
        .unwrap();
    let (status, body) = host
        .post(
            "/v1/dead-letters/redrive",
            json!({"id": "noop:orders:0:7", "version": 5}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_version"))
    );

    let (status, report) = host
        .post(
            "/v1/dead-letters/redrive",
            json!({"id": "noop:orders:0:7", "rate": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["redriven"], 1, "{report}");
    assert_eq!(report["failed"], json!([]));
    let (status, _) = host.get("/v1/dead-letters/noop:orders:0:7").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_listed_and_an_unknown_one_cannot_be_hurried() {
    let host = Host::open();
    host.upload("noop", &manifest("noop", ""), &noop()).await;
    let (status, body) = host
        .get("/v1/actors/noop/retries?only_retrying=true&limit=10")
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"items": [], "unanswered_hosts": [], "truncated_hosts": []})
        )
    );
    let (status, body) = host
        .post(
            "/v1/actors/noop/retries/orders:0:key.6b:5/retry-now",
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = host.get("/v1/actors/noop/retries?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
