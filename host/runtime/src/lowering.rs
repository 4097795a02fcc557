//! Lowering events into a guest straight from the host's own [`Event`]s.
//!
//! Owns the borrowed views of `wactor:actor/types`' `event` and `header`
//! records ([`EventRef`], [`HeaderRef`]) and the typed `handle` and
//! `handle-batch` functions that take them ([`Exports`]). bindgen's owned
//! `wit::Event` needs a copy of the topic, key, payload and headers of every
//! event (an allocation for the topic, one each for a non-empty key and
//! payload, and for the headers' list and each header's name and value),
//! made only to be copied again into guest memory and dropped: wasmtime
//! lowers these views from the host's bytes directly, one copy into the
//! guest, no host allocation (but one `Vec` per event that has headers, and
//! one per batch).
//!
//! Does not own the calls themselves (deadlines, outcomes, instances: the
//! `actor` module), nor the contract's checks at load.

use wasmtime::component::{ComponentExportIndex, ComponentType, Instance, Lower, TypedFunc};
use wasmtime::AsContextMut;

use crate::bindings::wactor::actor::types as wit;
use crate::types::Event;

/// `wactor:actor/types.event`, borrowing an [`Event`]'s bytes. Lowers to
/// exactly what bindgen's `wit::Event` lowers to: wasmtime checks the
/// record's field names and types against the component's at
/// [`Exports::load`].
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct EventRef<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    #[component(name = "timestamp-ms")]
    timestamp_ms: Option<i64>,
    key: Option<&'a [u8]>,
    payload: Option<&'a [u8]>,
    headers: Vec<HeaderRef<'a>>,
    attempt: u32,
}

/// `wactor:actor/types.header`, borrowing a header of an [`Event`].
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct HeaderRef<'a> {
    name: &'a str,
    value: Option<&'a [u8]>,
}

impl<'a> EventRef<'a> {
    /// The view of `event` (allocates only for its headers, if any).
    pub(crate) fn of(event: &'a Event) -> Self {
        EventRef {
            topic: &event.topic,
            partition: event.partition,
            offset: event.offset,
            timestamp_ms: event.timestamp_ms,
            key: event.key.as_deref(),
            payload: event.payload.as_deref(),
            headers: event
                .headers
                .iter()
                .map(|(name, value)| HeaderRef {
                    name,
                    value: value.as_deref(),
                })
                .collect(),
            attempt: event.attempt,
        }
    }
}

/// `handle: func(event: event) -> outcome`, taking a borrowed event.
pub(crate) type Handle<'a> = TypedFunc<(EventRef<'a>,), (wit::Outcome,)>;

/// `handle-batch: func(events: list<event>) -> list<outcome>`, taking
/// borrowed events.
pub(crate) type HandleBatch<'a> = TypedFunc<(&'a [EventRef<'a>],), (Vec<wit::Outcome>,)>;

/// An instance's `handle` and, for a batch actor, `handle-batch`, checked
/// once against the borrowed views' types.
#[derive(Clone, Copy)]
pub(crate) struct Exports {
    handle: Handle<'static>,
    batch: Option<HandleBatch<'static>>,
}

impl Exports {
    /// Looks the exports up in `instance` and type-checks them (wasmtime
    /// compares every field name and type of `event`, `header` and
    /// `outcome`). Errors: an export missing or of another type.
    pub(crate) fn load(
        mut store: impl AsContextMut,
        instance: &Instance,
        handle: &ComponentExportIndex,
        batch: Option<&ComponentExportIndex>,
    ) -> wasmtime::Result<Self> {
        let handle = instance.get_typed_func(&mut store, handle)?;
        let batch = match batch {
            Some(index) => Some(instance.get_typed_func(&mut store, index)?),
            None => None,
        };
        Ok(Exports { handle, batch })
    }

    /// `handle`, for an event borrowed for `'a`. `TypedFunc` is covariant
    /// in its parameters, and so is `EventRef` in its lifetime: the function
    /// checked with `'static` serves any shorter borrow, without another
    /// check.
    pub(crate) fn handle<'a>(&self) -> Handle<'a> {
        self.handle
    }

    /// `handle-batch`, for events borrowed for `'a`; `None` for an actor
    /// without the export.
    pub(crate) fn batch<'a>(&self) -> Option<HandleBatch<'a>> {
        self.batch
    }
}
