//! The one `bindgen!` of the `wactor:actor/actor` world.
//!
//! WASI and `wasi:http` types are mapped onto wasmtime-wasi's and
//! wasmtime-wasi-http's own bindings so that their linker functions serve
//! our world. Nothing outside this crate sees these types.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "wactor:actor/actor",
    imports: { "wactor:actor/state": trappable },
    exports: { default: async },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
    require_store_data_send: true,
});
