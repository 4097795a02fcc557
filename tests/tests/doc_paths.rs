//! Every repository path a document names exists: docs that point at files
//! that moved or never existed mislead the next reader (issue 10).
//! Checked: README.md, docs/*.md and the doc comments of the Rust sources
//! (host/, sdk/, tests/src), paths in backticks that start with a
//! top-level directory of the repository.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

const ROOTS: &[&str] = &[
    "host/",
    "tests/",
    "examples/",
    "sdk/",
    "sdk-python/",
    "sdk-js/",
    "ops/",
    "wit/",
    "docs/",
    ".ci/",
    "third_party/",
];

/// Backticked spans of `text` that look like repository paths.
fn named_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        // Odd pieces are inside backticks.
        if i % 2 == 0 || span.contains(char::is_whitespace) {
            continue;
        }
        if !ROOTS.iter().any(|root| span.starts_with(root)) {
            continue;
        }
        // Placeholders and patterns name no single file.
        if span.contains(['*', '<', '>', '{', '$']) {
            continue;
        }
        let path = span.split([':', '#']).next().unwrap_or(span);
        out.push(path.trim_end_matches(['.', ',', ')']).to_string());
    }
    out
}

#[test]
fn every_path_a_document_names_exists() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut documents = vec![repo.join("README.md")];
    for entry in std::fs::read_dir(repo.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    for dir in ["host", "sdk", "tests/src"] {
        rust_sources(&repo.join(dir), &mut documents);
    }
    let mut missing = Vec::new();
    let mut checked = 0;
    for document in &documents {
        let text = std::fs::read_to_string(document).unwrap();
        for path in named_paths(&text) {
            checked += 1;
            if !repo.join(&path).exists() {
                missing.push(format!(
                    "{}: {path}",
                    document.strip_prefix(repo).unwrap().display()
                ));
            }
        }
    }
    assert!(checked > 20, "the docs name paths ({checked} found)");
    assert!(
        missing.is_empty(),
        "paths named but missing:\n{}",
        missing.join("\n")
    );
}

/// The `.rs` files under `dir`, build output left out.
fn rust_sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn paths_are_found_in_backticks_only() {
    let text = "see `host/kafka/src/worker.rs`, `host/cli` and host/x.rs; \
                `tests/fixtures/*` `docs/api.md:12` `wactor dev`";
    assert_eq!(
        named_paths(text),
        ["host/kafka/src/worker.rs", "host/cli", "docs/api.md"]
    );
}
