//! Topic management against a broker without the admin API
//! (librdkafka's mock cluster, as `wactor broker` and `wactor dev` run it):
//! with `kafka.manage_topics = true` a host still starts its actors, the
//! unanswered CreateTopics falling back to creating topics by their first
//! use. Before, the consumer never started there ("cannot create
//! wactor.<actor>.retries: OperationTimedOut", retried in vain).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{eventually, manifest, produce, Host, Kafka};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_manages_topics_starts_on_a_broker_without_create_topics() {
    let kafka = Kafka::start();
    kafka.topic("managed", 2);
    let mut settings = kafka.settings();
    settings.manage_topics = true;
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path(), settings);
    let (consumer, _slot) = host
        .run("fixture-checker", &manifest("managed", "managed", ""))
        .await;
    produce(
        &kafka.brokers,
        "managed",
        &[(Some("k".into()), r#"{"seq": 1}"#.into())],
    )
    .await;
    let done = host
        .metrics
        .events_total
        .with_label_values(&["managed", "1", "done"]);
    assert!(
        eventually(Duration::from_secs(60), || done.get() == 1).await,
        "the actor handled its event"
    );
    consumer.stop().await;
}
