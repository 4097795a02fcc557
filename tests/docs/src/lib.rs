//! The ```` ```rust ```` blocks of `docs/*.md`, as doctests.
//!
//! `build.rs` turns each `docs/NAME.md` into `$OUT_DIR/NAME.md.rs`: every
//! fenced `rust` block becomes the doc comment of an empty module named
//! `NAME_md_line_N` (N: the line of its opening fence), tagged `no_run` (the
//! SDK's WIT imports panic natively; compiling is the point). The generated
//! file keeps each block's lines at their line numbers in the Markdown file,
//! so a compile error's `NAME.md.rs:LINE:COL` is the line in `docs/NAME.md`.
//!
//! `cargo test -p wactor-docs --doc` compiles them all. A block that cannot
//! compile against the SDK (a fragment, host-side code) is fenced
//! ```` ```rust,ignore ```` in the Markdown with the reason in a sentence
//! before it, or completed with hidden `# ` lines as rustdoc allows.
//!
//! Nothing here is compiled outside `cfg(doctest)`.

#[cfg(doctest)]
include!(concat!(env!("OUT_DIR"), "/docs.rs"));
