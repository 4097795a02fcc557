//! The Rust guest SDK for wactor actors.
//!
//! An actor is a WebAssembly component that the wactor host calls once per
//! Kafka event. This crate wraps the `wactor:actor` WIT contract (generated
//! with `wit-bindgen`) in plain Rust types, so that an actor is a type with
//! one function:
//!
//! ```no_run
//! use wactor_sdk::emit::{self, Record};
//! use wactor_sdk::{Actor, Event, Handled, Outcome};
//!
//! struct Echo;
//!
//! impl Actor for Echo {
//!     fn handle(event: Event) -> Handled {
//!         emit::send(Record::new("echo.out", event.payload().to_vec()))?;
//!         Ok(Outcome::Done)
//!     }
//! }
//!
//! wactor_sdk::export_actor!(Echo);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`: the
//! `.wasm` file in `target/wasm32-wasip2/release/` is a component ready to
//! upload (no adapter step).
//!
//! Or build it lean, for `wasm32-unknown-unknown`, and make the module a
//! component (`wactor build` with `lean = true` in actor.toml, or
//! `wasm-tools component new`): it then imports none of the WASI
//! interfaces std brings in and a fresh instance costs about a fifth less,
//! but std's clocks, `std::env::vars` and stdio do not work. For that target the SDK sets the global
//! allocator and a panic hook that logs the panic message (docs/actors.md,
//! "Lean Rust builds").
//!
//! # Outcomes and `?`
//!
//! [`Actor::handle`] returns [`Handled`], which is
//! `Result<Outcome, Outcome>`: both sides are an [`Outcome`], and the error
//! side exists so that `?` can end the call early. The SDK's error types
//! convert into the outcome that is right for them:
//!
//! | error                       | outcome                               |
//! |-----------------------------|---------------------------------------|
//! | [`PayloadError`] (bad JSON) | [`Outcome::Dead`]: retrying cannot fix it |
//! | [`config::MissingConfig`]   | [`Outcome::Dead`]: the manifest must change |
//! | [`emit::EmitError`]         | [`Outcome::Retry`] (or `Dead` if the value could not be encoded) |
//! | [`state::Rejected`]         | [`Outcome::Retry`]: a refused write; the reason names the limit |
//! | [`state::StateError`]       | [`Outcome::Retry`] (or `Dead` if the value could not be encoded) |
//! | [`http::Error`]             | [`Outcome::Retry`]                    |
//!
//! Anything else you map yourself, e.g.
//! `.map_err(|e| Outcome::retry(format!("...: {e}")))?`.
//!
//! # Effects are transactional
//!
//! Records sent with [`emit`] and writes made with [`state`] are applied by
//! the host only if the call ends with [`Outcome::Done`]. On `Retry`, `Dead`
//! or a trap (a panic, the call deadline, the memory limit) they are dropped,
//! so a retried call starts from the same state as the first try. Outbound
//! HTTP calls ([`http`]) are *not* transactional: make them idempotent (an
//! `Idempotency-Key` header) because a retried event makes them again.
//!
//! # A complete actor
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use wactor_sdk::{config, emit, http, state, Actor, Event, Handled, Outcome};
//!
//! #[derive(Deserialize)]
//! struct OrderPlaced {
//!     order_id: String,
//!     total_cents: u64,
//! }
//!
//! #[derive(Serialize)]
//! struct Receipt<'a> {
//!     order_id: &'a str,
//!     charged: u64,
//! }
//!
//! struct Charger;
//!
//! impl Actor for Charger {
//!     fn handle(event: Event) -> Handled {
//!         // A payload that is not the expected JSON can never succeed: `?` makes it dead.
//!         let order: OrderPlaced = event.json()?;
//!
//!         // Idempotency: a redelivered event finds its marker and does nothing.
//!         let marker = format!("charged:{}", order.order_id);
//!         if state::get(&marker).is_some() {
//!             wactor_sdk::debug!("order {} already charged", order.order_id);
//!             return Ok(Outcome::Done);
//!         }
//!
//!         // A missing config value is dead too: only a new manifest fixes it.
//!         let base = config::require("payments_url")?;
//!         let response = http::Request::post(format!("{base}/charges"))
//!             .header("Idempotency-Key", order.order_id.as_str())
//!             .json(&serde_json::json!({ "amount": order.total_cents }))
//!             .send()?; // transport errors and timeouts retry
//!
//!         match response.status {
//!             200..=299 => {}
//!             429 | 500..=599 => {
//!                 return Err(Outcome::retry(format!("payments said {}", response.status)))
//!             }
//!             status => return Err(Outcome::dead(format!("payments refused: {status}"))),
//!         }
//!
//!         state::set(&marker, b"1")?; // a write over a per-call limit retries
//!         let receipt = Receipt { order_id: &order.order_id, charged: order.total_cents };
//!         emit::send_json("orders.charged", &receipt)?;
//!         wactor_sdk::info!("charged order {}", order.order_id);
//!         Ok(Outcome::Done)
//!     }
//! }
//!
//! wactor_sdk::export_actor!(Charger);
//! # fn main() {}
//! ```
//!
//! # Layout
//!
//! - [`actor`]: the [`Actor`] trait, [`Handled`] and the [`export_actor!`] macro.
//! - [`event`]: [`Event`], the typed Kafka record an actor receives.
//! - [`outcome`]: [`Outcome`] and the conversions that make `?` work.
//! - [`emit`]: records to publish when the call is done.
//! - [`state`]: the actor's own key-value state.
//! - [`config`]: the actor's configuration values from its manifest.
//! - [`logging`]: log lines into the host's tracing, behind the
//!   [`trace!`], [`debug!`], [`info!`], [`warn!`] and [`error!`] macros.
//! - [`http`]: a blocking HTTP client over `wasi:http/outgoing-handler`.
//! - [`bindings`]: the raw `wit-bindgen` output, for anything the typed
//!   modules do not cover. With [`batch_bindings`] it is the only place
//!   that knows the WIT.
//! - [`batch_bindings`]: the same for world `actor-batch` (what
//!   `export_actor!(MyActor, batch)` builds), sharing every type with
//!   [`bindings`]; only the `wactor:actor/batch` import and the exports are
//!   its own.
//!
//! The crate also compiles for the native target (the imports become stubs
//! that panic when called), so it can sit in a workspace next to a host and
//! the pure parts of an actor can be unit-tested natively.

#![warn(missing_docs)]

// The generated `export!` macro refers to this crate as `wactor_sdk`, also
// from inside it.
extern crate self as wactor_sdk;

pub mod actor;
pub mod config;
pub mod emit;
pub mod event;
pub mod http;
mod lean;
pub mod logging;
pub mod outcome;
pub mod state;

pub use actor::{Actor, Handled};
pub use event::{Event, PayloadError};
pub use outcome::Outcome;

/// The raw bindings that `wit-bindgen` generates for the `wactor:actor`
/// world, including the WASI interfaces it uses (`wasi:http`, `wasi:io`,
/// `wasi:clocks`).
///
/// Prefer the typed modules of this crate; these are here for what they do
/// not cover (for example streaming HTTP bodies).
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "actor",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "wactor_sdk::bindings",
        runtime_path: "wactor_sdk::__private::wit_bindgen::rt",
    });
}

/// The raw bindings of the `wactor:actor` world `actor-batch`: the world
/// of an actor that also exports `handle-batch` (see
/// [`export_actor!`]'s `batch` form).
///
/// Every interface the two worlds share is mapped onto [`bindings`], so
/// the WIT types here *are* those of [`bindings`] (one
/// `bindings::wactor::actor::types::Event` type, not two); what is new is
/// the `wactor:actor/batch` import ([`batch_bindings::wactor::actor::batch`])
/// and this world's [`Guest`](batch_bindings::Guest) trait and `export!`
/// macro. A component that does not use `export_actor!(T, batch)` does not
/// import `wactor:actor/batch`: an import that is never called is left out
/// of the component.
#[allow(missing_docs, clippy::all)]
pub mod batch_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "actor-batch",
        with: {
            "wactor:actor/types@0.2.0": crate::bindings::wactor::actor::types,
            "wactor:actor/logging@0.2.0": crate::bindings::wactor::actor::logging,
            "wactor:actor/emit@0.2.0": crate::bindings::wactor::actor::emit,
            "wactor:actor/state@0.2.0": crate::bindings::wactor::actor::state,
            "wactor:actor/config@0.2.0": crate::bindings::wactor::actor::config,
            "wactor:actor/batch@0.2.0": generate,
            "wasi:http/outgoing-handler@0.2.12": crate::bindings::wasi::http::outgoing_handler,
            "wasi:http/types@0.2.12": crate::bindings::wasi::http::types,
            "wasi:io/error@0.2.12": crate::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::wasi::clocks::monotonic_clock,
        },
        pub_export_macro: true,
        default_bindings_module: "wactor_sdk::batch_bindings",
        runtime_path: "wactor_sdk::__private::wit_bindgen::rt",
    });
}

/// Items the macros of this crate expand to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::actor::{dispatch, dispatch_batch};
    pub use wit_bindgen;
}
