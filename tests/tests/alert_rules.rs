//! The Prometheus alerting rules shipped in `ops/prometheus/` are valid,
//! pass their unit tests, and name only metrics the host exports:
//!
//! - `promtool check rules ops/prometheus/wactor-alerts.yml`;
//! - `promtool test rules ops/prometheus/wactor-alerts.test.yml`, where
//!   every alert has a case that fires and one that does not;
//! - every `wactor_*` metric the rules name (with a `_bucket`, `_sum` or
//!   `_count` suffix for a histogram) is registered by the host, with the
//!   labels its selectors match on. The names and labels are read from the
//!   host's sources (every `Opts::new`/`HistogramOpts::new` under `host/`):
//!   the metrics crate's registry lists only series that have a value, so
//!   it cannot list the names of a fresh host.
//!
//! promtool comes with Prometheus (Debian's `prometheus` package); CI
//! installs it (`.ci/run`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const RULES: &str = "ops/prometheus/wactor-alerts.yml";
const RULE_TESTS: &str = "ops/prometheus/wactor-alerts.test.yml";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Runs `promtool <args>` in the repository root and fails the test, with
/// promtool's output, unless it succeeds.
fn promtool(args: &[&str]) {
    let output = match Command::new("promtool")
        .args(args)
        .current_dir(repo_root())
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed: it checks and unit-tests {RULES}. Install it with \
             `apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu; .ci/run \
             does this), or put the promtool binary of a Prometheus release \
             (https://prometheus.io/download/) on PATH"
        ),
        Err(err) => panic!("cannot run promtool: {err}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`promtool {}` failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        output.status
    );
}

#[test]
fn promtool_checks_the_rules() {
    promtool(&["check", "rules", RULES]);
}

#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    promtool(&["test", "rules", RULE_TESTS]);
}

/// Rust sources under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text of the string literal that starts `text` (after whitespace).
fn leading_literal(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('"')?;
    rest.split('"').next()
}

/// The value of `const NAME: &str = "...";` in `source`.
fn const_str<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let at = source.find(&format!("const {name}: &str ="))?;
    let rest = &source[at..];
    leading_literal(&rest[rest.find('=')? + 1..])
}

/// Metrics the host registers, by name, with their label names: every
/// `Opts::new(NAME, ...)` / `HistogramOpts::new(NAME, ...)` in the host's
/// crates (NAME a literal or a `&str` constant of the same file) and the
/// label list (`&["actor", ...]`) that follows it.
fn host_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("host")).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut metrics = BTreeMap::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for (at, _) in source.match_indices("Opts::new(") {
            let args = &source[at + "Opts::new(".len()..];
            let name = match leading_literal(args) {
                Some(name) => name,
                None => {
                    let ident = args.trim_start().split([',', ')']).next().unwrap().trim();
                    match const_str(&source, ident) {
                        Some(name) => name,
                        None => continue,
                    }
                }
            };
            if !name.starts_with("wactor_") {
                continue;
            }
            // The label list of this metric's statement only: an
            // unlabelled metric has none, whatever follows it.
            let statement = &args[..args.find(';').unwrap_or(args.len())];
            let labels = statement
                .find("&[")
                .map(|start| {
                    let list = &statement[start + 2..];
                    list[..list.find(']').unwrap()]
                        .split(',')
                        .map(|l| l.trim().trim_matches('"').to_string())
                        .filter(|l| !l.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            metrics.insert(name.to_string(), labels);
        }
    }
    metrics
}

/// `wactor_*` metric names in `text`, each with the label names of the
/// selector that follows it (`name{label="..."}`), if any. Recording rule
/// names (`level:wactor_metric:ops`) are not metric names of the host.
fn named_metrics(text: &str) -> Vec<(String, Vec<String>)> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_name_char(c)) {
        let token_len = rest[start..]
            .find(|c: char| !is_name_char(c))
            .unwrap_or(rest.len() - start);
        let token = &rest[start..start + token_len];
        let after = &rest[start + token_len..];
        if token.starts_with("wactor_") && !token.contains(':') {
            let labels = after
                .strip_prefix('{')
                .and_then(|s| s.find('}').map(|end| &s[..end]))
                .map(|selector| {
                    selector
                        .split(',')
                        .filter_map(|m| {
                            let label = m.split(['=', '!']).next().unwrap().trim();
                            (!label.is_empty()).then(|| label.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((token.to_string(), labels));
        }
        rest = after;
    }
    out
}

#[test]
fn the_rules_name_only_metrics_and_labels_the_host_exports() {
    let host = host_metrics();
    // The scan found the metrics crate's metrics and the registry's.
    for known in [
        "wactor_events_total",
        "wactor_call_duration_seconds",
        "wactor_offsets_skipped_total",
        "wactor_loaded_versions",
        "wactor_trace_export_failures_total",
    ] {
        assert!(
            host.contains_key(known),
            "the scan of host/ missed {known}: {:?}",
            host.keys()
        );
    }
    // An unlabelled counter (read from the trace exporter at each scrape).
    assert_eq!(
        host.get("wactor_trace_export_failures_total"),
        Some(&BTreeSet::new())
    );
    assert_eq!(
        host.get("wactor_consumer_lag"),
        Some(&["actor", "partition", "topic"].map(String::from).into()),
    );

    let rules = std::fs::read_to_string(repo_root().join(RULES)).unwrap();
    let named = named_metrics(&rules);
    assert!(named.len() > 10, "{named:?}");
    // Prometheus adds these to every scraped series.
    let target_labels = ["job", "instance", "__name__"];
    let mut problems = Vec::new();
    for (name, labels) in &named {
        let exported = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .chain([name.as_str()])
            .find_map(|n| host.get(n));
        let Some(exported) = exported else {
            problems.push(format!("{name} is not a metric the host exports"));
            continue;
        };
        for label in labels {
            if !exported.contains(label) && !target_labels.contains(&label.as_str()) {
                problems.push(format!(
                    "{name} has no label {label} (its labels: {exported:?})"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{RULES} names what the host does not export:\n{}\nhost metrics: {:?}",
        problems.join("\n"),
        host.keys()
    );
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_test_case_and_says_what_to_do() {
    let rules = std::fs::read_to_string(repo_root().join(RULES)).unwrap();
    let tests = std::fs::read_to_string(repo_root().join(RULE_TESTS)).unwrap();

    // Each alert's rule text: from its `- alert:` line to the next rule.
    let mut alerts = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in rules.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("- alert:") || trimmed.starts_with("- record:") {
            if let Some((name, body)) = current.take() {
                alerts.insert(name, body);
            }
            if let Some(name) = trimmed.strip_prefix("- alert:") {
                current = Some((name.trim().to_string(), String::new()));
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((name, body)) = current {
        alerts.insert(name, body);
    }
    assert!(alerts.len() >= 10, "{:?}", alerts.keys());

    // alertname -> (a case expecting it to fire, a case expecting none).
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut lines = tests.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line.trim_start().strip_prefix("alertname:") else {
            continue;
        };
        let expected = lines.next().unwrap_or_default().trim();
        let case = cases.entry(name.trim().to_string()).or_default();
        if expected == "exp_alerts: []" {
            case.1 = true;
        } else if expected == "exp_alerts:" {
            case.0 = true;
        }
    }

    let mut problems = Vec::new();
    for (name, body) in &alerts {
        match cases.get(name) {
            Some((true, true)) => {}
            Some((fires, _)) => problems.push(format!(
                "{name}: no test case where it {}",
                if *fires { "stays quiet" } else { "fires" }
            )),
            None => problems.push(format!("{name}: no test case in {RULE_TESTS}")),
        }
        for needed in ["severity:", "summary:", "description:", "runbook:"] {
            if !body.contains(needed) {
                problems.push(format!("{name}: no {needed}"));
            }
        }
    }
    for name in cases.keys() {
        if !alerts.contains_key(name) {
            problems.push(format!("{RULE_TESTS} tests {name}, which {RULES} lacks"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
