//! Lean builds: what an actor built for `wasm32-unknown-unknown` needs that
//! Rust's std does not give it there.
//!
//! A lean actor is the same crate built with `--target
//! wasm32-unknown-unknown` and made a component with `wasm-tools component
//! new` (or `wactor build` with `lean = true`; docs/actors.md, "Lean Rust
//! builds"). It imports only the contract's interfaces it calls (the
//! `wactor:actor` ones; `wasi:http` and what it uses for HTTP calls): none
//! of the thirteen WASI interfaces that std pulls into a `wasm32-wasip2`
//! build (stdio, environment, exit, terminals, `wasi:io`), so a fresh
//! instance resolves and links far fewer functions (docs/benchmarks.md,
//! "A lean build").
//!
//! This module owns, for that target only:
//! - **the global allocator**: `dlmalloc`, as std's own, but fed first from
//!   a 256 KiB zeroed static arena (part of the module's initial memory)
//!   and only then by `memory.grow`. std's allocator grows memory at its
//!   first allocation; a fresh instance that grows its memory costs the
//!   host two `mprotect` calls and a TLB flush on every CPU when the slot
//!   is reused.
//! - **the panic hook**: std has no stderr here, so the hook sends the panic
//!   message (`panicked at src/lib.rs:9:5:\n<message>`) as an error log
//!   line; the host reads it from there for the trap's message.
//!
//! It does not make the rest of std work: `std::time::SystemTime::now`,
//! `Instant::now`, `std::env::vars` and `set_var` panic on this target,
//! and `HashMap`'s `RandomState` has the same keys in every instance.
//! On every other target this module is empty.

#[cfg(all(
    target_arch = "wasm32",
    target_os = "unknown",
    not(target_feature = "atomics")
))]
mod allocator {
    use core::arch::wasm32::memory_grow;
    use core::cell::{Cell, UnsafeCell};
    use core::ptr::null_mut;
    use std::alloc::{GlobalAlloc, Layout};

    use dlmalloc::{Allocator, Dlmalloc};

    /// A wasm page, the unit of `memory.grow`.
    const PAGE: usize = 65_536;

    /// Bytes of the arena the allocator starts with.
    const ARENA_BYTES: usize = 4 * PAGE;

    /// The first memory dlmalloc gets: zeroed static memory, so the
    /// linker makes the module's initial memory this much larger instead
    /// of the allocator growing it at run time. Zero pages cost a fresh
    /// instance nothing until written.
    #[repr(C, align(16))]
    struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

    // SAFETY: no threads on this target (see `ArenaThenGrow`).
    unsafe impl Sync for Arena {}

    static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));

    /// Memory for dlmalloc: first [`ARENA`] (once), then pages from
    /// `memory.grow`.
    struct ArenaThenGrow {
        claimed: Cell<bool>,
    }

    // SAFETY: this target has no threads (no `atomics` feature, checked by
    // the module's `cfg`), so nothing is ever shared or sent.
    unsafe impl Send for ArenaThenGrow {}

    // SAFETY: every region returned is memory of this module that no one
    // else uses: the arena (handed out once), or pages `memory.grow` just
    // added.
    unsafe impl Allocator for ArenaThenGrow {
        fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
            if size <= ARENA_BYTES && !self.claimed.replace(true) {
                return (ARENA.0.get().cast(), ARENA_BYTES, 0);
            }
            let pages = size.div_ceil(PAGE);
            let previous = memory_grow(0, pages);
            if previous == usize::MAX {
                return (null_mut(), 0, 0);
            }
            ((previous * PAGE) as *mut u8, pages * PAGE, 0)
        }

        fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
            null_mut()
        }

        fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
            false
        }

        fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
            false
        }

        fn can_release_part(&self, _flags: u32) -> bool {
            false
        }

        fn allocates_zeros(&self) -> bool {
            // True (the arena is zeroed static memory handed out once, and
            // grown pages are zero), but this port of dlmalloc has no
            // mmapped chunks, so its `calloc` clears memory either way:
            // nothing relies on this answer.
            true
        }

        fn page_size(&self) -> usize {
            PAGE
        }
    }

    /// The lean build's global allocator.
    struct LeanAllocator(UnsafeCell<Dlmalloc<ArenaThenGrow>>);

    // SAFETY: no threads on this target (see `ArenaThenGrow`).
    unsafe impl Sync for LeanAllocator {}

    // SAFETY: forwards to dlmalloc, which upholds `GlobalAlloc`'s contract;
    // the `UnsafeCell` is only reached by the one thread there is, and
    // dlmalloc does not call back into the allocator.
    unsafe impl GlobalAlloc for LeanAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            unsafe { (*self.0.get()).malloc(layout.size(), layout.align()) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            unsafe { (*self.0.get()).calloc(layout.size(), layout.align()) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { (*self.0.get()).free(ptr, layout.size(), layout.align()) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            unsafe { (*self.0.get()).realloc(ptr, layout.size(), layout.align(), new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: LeanAllocator = LeanAllocator(UnsafeCell::new(Dlmalloc::new_with_allocator(
        ArenaThenGrow {
            claimed: Cell::new(false),
        },
    )));
}

/// Installs the panic hook that logs the panic message, once per instance.
/// A no-op on targets with a stderr (where std's own hook writes it).
#[inline]
pub(crate) fn install_panic_hook() {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                crate::logging::log(crate::logging::Level::Error, &info.to_string());
            }));
        });
    }
}
