//! Lean Rust actors: the fixtures of `tests/build.rs`'s `LEAN_GUESTS`,
//! built for `wasm32-unknown-unknown` and made components with
//! `wit-component` (what `wactor build` does for `lean = true`), run on the
//! real runtime. What a lean build must keep: the contract's behaviour,
//! the panic message (it has no stderr; the SDK logs it), and an allocator
//! that works past its initial arena and stops at the memory limit.

use std::sync::OnceLock;

use wactor_runtime::{
    ActorSettings, CallResult, Event, InstanceMode, Invocation, Limits, LoadedActor, Outcome,
    Runtime, RuntimeSettings, TrapKind,
};
use wactor_tests::{guest_bytes, MapState};

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::new(RuntimeSettings::default()).unwrap_or_else(|e| panic!("{e}")))
}

fn load(name: &str, mode: InstanceMode, limits: Limits) -> LoadedActor {
    let mut settings = ActorSettings::new(name);
    settings.instance_mode = mode;
    settings.limits = limits;
    runtime()
        .load(&guest_bytes(name), settings)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn event(offset: i64, payload: Vec<u8>) -> Event {
    Event {
        topic: "orders".to_string(),
        partition: 0,
        offset,
        timestamp_ms: None,
        key: Some(b"order-1".to_vec()),
        payload: Some(payload),
        headers: vec![("trace-id".into(), Some(b"abc".to_vec()))],
        attempt: 1,
    }
}

fn assert_done(inv: &Invocation) {
    assert!(
        matches!(inv.result, CallResult::Returned(Outcome::Done)),
        "{:?} (logs {:?})",
        inv.result,
        inv.logs
    );
}

/// The interfaces a component imports, by name (`wactor:actor/types@0.2.0`).
fn imports(name: &str) -> Vec<String> {
    let decoded = wit_component::decode(&guest_bytes(name))
        .unwrap_or_else(|e| panic!("decoding {name}: {e:#}"));
    let wit_component::DecodedWasm::Component(resolve, world) = decoded else {
        panic!("{name} is not a component");
    };
    resolve.worlds[world]
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        // Interfaces (`ns:pkg/name@version`), not the types the world
        // `use`s from them (`event`, `outcome`).
        .filter(|name| name.contains(':'))
        .collect()
}

#[test]
fn a_lean_component_imports_no_wasi_interface() {
    let lean = imports("fixture-noop-lean");
    assert!(!lean.is_empty());
    assert!(
        lean.iter().all(|name| name.starts_with("wactor:actor/")),
        "{lean:?}"
    );
    // The same crate built for wasm32-wasip2 imports std's WASI interfaces:
    // the difference a lean build makes.
    let wasip2 = imports("fixture-noop");
    assert!(
        wasip2
            .iter()
            .any(|name| name.starts_with("wasi:cli/stderr")),
        "{wasip2:?}"
    );
}

#[tokio::test]
async fn a_lean_actor_handles_events_in_fresh_and_warm_instances() {
    for mode in [InstanceMode::Fresh, InstanceMode::Warm] {
        let actor = load("fixture-noop-lean", mode, Limits::default());
        // Enough calls that fresh instances reuse instance slots whose
        // memory an earlier instance wrote.
        for offset in 0..200 {
            assert_done(
                &actor
                    .invoke(&event(offset, b"{}".to_vec()), MapState::new())
                    .await,
            );
        }
    }
}

#[tokio::test]
async fn a_lean_actor_allocates_past_its_initial_arena() {
    // echo copies the payload into the record it emits: a 3 MiB payload
    // takes the allocator well past its 256 KiB arena into grown memory,
    // in a fresh instance and again in a warm one that keeps its heap.
    for mode in [InstanceMode::Fresh, InstanceMode::Warm] {
        let actor = load("echo-lean", mode, Limits::default());
        for (offset, size) in [(1, 3 << 20), (2, 10), (3, 700 << 10)] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let ev = event(offset, payload);
            let inv = actor.invoke(&ev, MapState::new()).await;
            assert_done(&inv);
            assert_eq!(inv.effects.emits.len(), 1, "{mode:?} {size}");
            let record = &inv.effects.emits[0];
            assert_eq!(record.topic, "orders.echo");
            assert_eq!(record.payload, ev.payload, "{mode:?} {size}");
            assert_eq!(record.headers, ev.headers);
        }
    }
}

#[tokio::test]
async fn a_lean_actors_panic_is_a_trap_carrying_the_panic_message() {
    for mode in [InstanceMode::Fresh, InstanceMode::Warm] {
        let actor = load("fixture-trap-lean", mode, Limits::default());
        let inv = actor.invoke(&event(7, Vec::new()), MapState::new()).await;
        match &inv.result {
            CallResult::Trapped(trap) => {
                assert_eq!(trap.kind, TrapKind::Panic, "{mode:?}");
                assert!(
                    trap.message.contains("panicked at")
                        && trap.message.contains("fixture trap: boom at offset 7"),
                    "{mode:?}: {}",
                    trap.message
                );
            }
            other => panic!("{mode:?}: {other:?}"),
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
}

#[tokio::test]
async fn an_error_line_quoting_a_panic_is_not_the_panic_message_of_an_abort() {
    // The trap fixture logs "upstream said: thread 'main' panicked at
    // foo.rs:1:1: quoted" at error level and aborts: lean or not, the trap
    // must not present that text as its panic.
    for name in ["fixture-trap-lean", "fixture-trap"] {
        let actor = load(name, InstanceMode::Warm, Limits::default());
        let inv = actor
            .invoke(&event(3, b"quote".to_vec()), MapState::new())
            .await;
        match &inv.result {
            CallResult::Trapped(trap) => {
                assert!(!trap.message.contains("quoted"), "{name}: {}", trap.message)
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_lean_actors_unbounded_allocation_is_stopped_at_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 16 * 1024 * 1024,
        ..Limits::default()
    };
    let actor = load("fixture-memory-hog-lean", InstanceMode::Warm, limits);
    let inv = actor.invoke(&event(1, Vec::new()), MapState::new()).await;
    match &inv.result {
        CallResult::Trapped(trap) => {
            assert_eq!(trap.kind, TrapKind::MemoryLimit, "{}", trap.message)
        }
        other => panic!("{other:?}"),
    }
    // The host goes on: the next actor's call is unaffected.
    let noop = load("fixture-noop-lean", InstanceMode::Fresh, Limits::default());
    assert_done(&noop.invoke(&event(2, Vec::new()), MapState::new()).await);
}
