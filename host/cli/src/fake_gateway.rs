//! A stand-in payment gateway for `wactor dev`, so that the
//! daily-settlement example runs end to end on one machine.
//!
//! `GET /transactions?date=YYYY-MM-DD&page=N&page_size=S` answers the
//! day's transactions: three to seven per day, the same every time for a
//! date (ids `<date>-001`, ...), paged. With `fail_first` set, the first
//! that many requests of each date answer 503 (to watch retries). Nothing
//! else is implemented.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

/// The running stand-in; it stops when dropped.
pub struct FakeGateway {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Gateway {
    fail_first: u32,
    /// Requests seen per date, for `fail_first` (at most 10,000 dates).
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

#[derive(Deserialize)]
struct TransactionsQuery {
    date: String,
    #[serde(default = "one")]
    page: u32,
    #[serde(default = "hundred")]
    page_size: u32,
}

fn one() -> u32 {
    1
}

fn hundred() -> u32 {
    100
}

/// Starts the stand-in on `127.0.0.1:port`.
pub async fn start(port: u16, fail_first: u32) -> Result<FakeGateway> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/transactions", get(transactions))
        .with_state(Gateway {
            fail_first,
            seen: Arc::default(),
        });
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "stand-in gateway stopped");
        }
    });
    Ok(FakeGateway { addr, task })
}

/// The day's transactions: 3 to 7, from the date's digits.
fn day(date: &str) -> Vec<serde_json::Value> {
    let seed: u32 = date.bytes().map(u32::from).sum();
    let count = 3 + seed % 5;
    (1..=count)
        .map(|n| {
            serde_json::json!({
                "id": format!("{date}-{n:03}"),
                "amount": 1000 * u64::from((seed + n) % 97 + 1),
                "currency": "SAR",
                "merchant": format!("merchant-{}", (seed + n) % 13),
            })
        })
        .collect()
}

async fn transactions(
    State(gateway): State<Gateway>,
    Query(query): Query<TransactionsQuery>,
) -> (StatusCode, Json<serde_json::Value>) {
    let valid = query.date.len() == 10
        && query.date.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && query.page >= 1
        && (1..=1000).contains(&query.page_size);
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "date=YYYY-MM-DD, page >= 1, page_size 1..1000"})),
        );
    }
    let attempt = {
        let mut seen = match gateway.seen.lock() {
            Ok(seen) => seen,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() >= 10_000 && !seen.contains_key(&query.date) {
            seen.clear();
        }
        let n = seen.entry(query.date.clone()).or_insert(0);
        *n += 1;
        *n
    };
    if attempt <= gateway.fail_first {
        tracing::info!(target: "wactor::dev", date = %query.date, "stand-in gateway: 503 (fail_first)");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "try again"})),
        );
    }
    let all = day(&query.date);
    let size = query.page_size as usize;
    let start = (query.page as usize - 1).saturating_mul(size);
    let page: Vec<_> = all.into_iter().skip(start).take(size).collect();
    (
        StatusCode::OK,
        Json(serde_json::json!({ "date": query.date, "page": query.page, "transactions": page })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_the_same_every_time_and_between_three_and_seven() {
        assert_eq!(day("2024-07-10"), day("2024-07-10"));
        for date in ["2024-07-10", "2024-07-11", "2024-01-01", "1999-12-31"] {
            let n = day(date).len();
            assert!((3..=7).contains(&n), "{date}: {n}");
        }
        assert_eq!(day("2024-07-10")[0]["id"], "2024-07-10-001");
    }
}
