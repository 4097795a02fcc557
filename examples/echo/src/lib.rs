//! `echo`: re-publishes each event (payload, key and headers) to another
//! topic. A tombstone is echoed as a tombstone, a null header value as a
//! null one.
//!
//! Config:
//! - `out_topic`: where to publish; default `<source topic>.echo`.
//!
//! The smallest useful actor: it shows the shape of every actor (a type,
//! [`Actor::handle`], [`export_actor!`](wactor_sdk::export_actor)) and that
//! an emit is published only when the call returns `Done`.

use wactor_sdk::emit::{self, Record};
use wactor_sdk::{config, Actor, Event, Handled, Outcome};

/// The actor.
struct Echo;

impl Actor for Echo {
    fn handle(event: Event) -> Handled {
        let topic = config::get_or("out_topic", &format!("{}.echo", event.topic));
        wactor_sdk::debug!(
            "echoing {} bytes from {}/{}@{} to {topic}",
            event.payload().len(),
            event.topic,
            event.partition,
            event.offset
        );

        let mut record = match event.payload {
            Some(payload) => Record::new(topic, payload),
            None => Record::tombstone(topic),
        };
        if let Some(key) = event.key {
            record = record.key(key);
        }
        for (name, value) in event.headers {
            record = match value {
                Some(value) => record.header(name, value),
                None => record.null_header(name),
            };
        }
        // The host refuses a record only for a limit or an empty topic;
        // `?` turns that into a retry.
        emit::send(record)?;
        Ok(Outcome::Done)
    }
}

wactor_sdk::export_actor!(Echo);
