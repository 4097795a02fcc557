//! A stand-in wallet service for `wactor dev`, so that the
//! payment-reversal example runs end to end on one machine.
//!
//! `POST /reservations/{id}/reverse` answers 200 the first time a
//! reservation is reversed and 409 after that, as the real service the
//! example is written against does. Nothing else is implemented.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

/// The running stand-in; it stops when dropped.
pub struct FakeWallet {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWallet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Reversed = Arc<Mutex<HashSet<String>>>;

/// Starts the stand-in on `127.0.0.1:port`.
pub async fn start(port: u16) -> Result<FakeWallet> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let reversed: Reversed = Arc::default();
    let app = Router::new()
        .route("/reservations/{id}/reverse", post(reverse))
        .with_state(reversed);
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "stand-in wallet stopped");
        }
    });
    Ok(FakeWallet { addr, task })
}

async fn reverse(
    State(reversed): State<Reversed>,
    Path(id): Path<String>,
) -> (StatusCode, Json<serde_json::Value>) {
    let first = match reversed.lock() {
        Ok(mut set) => set.insert(id.clone()),
        Err(poisoned) => poisoned.into_inner().insert(id.clone()),
    };
    if first {
        tracing::info!(target: "wactor::dev", reservation = %id, "stand-in wallet: reservation reversed");
        (
            StatusCode::OK,
            Json(serde_json::json!({ "reservation_id": id, "status": "reversed" })),
        )
    } else {
        (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "reservation_id": id, "status": "already reversed" })),
        )
    }
}
