//! The web dashboard: one HTML page (`GET /`) and its script and style
//! (`/ui/app.js`, `/ui/app.css`), embedded in the binary. No build step
//! and no framework: the page calls the JSON API like any client, with the
//! token the user types (kept in `sessionStorage`, so it is gone when the
//! tab closes) when the host has tokens.
//!
//! The pages themselves are open; everything they show comes from `/v1`,
//! which needs the token. Untrusted text (payloads, keys, error messages)
//! is always inserted as text, never as HTML, and the content security
//! policy allows only this origin's script.
//!
//! The charts are drawn by uPlot (MIT, vendored unchanged in
//! `ui/vendor/`: `uPlot.iife.min.js` and `uPlot.min.css` of uPlot 1.6.32,
//! its licence in `uPlot.LICENSE`), served under `/ui/vendor/` with the
//! same policy: it styles its elements through the CSSOM, which
//! `style-src 'self'` allows.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::ApiState;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");
const UPLOT_JS: &str = include_str!("../ui/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../ui/vendor/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../ui/vendor/uPlot.LICENSE");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The routes of this module.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/app.js", get(app_js))
        .route("/ui/app.css", get(app_css))
        .route("/ui/vendor/uPlot.iife.min.js", get(uplot_js))
        .route("/ui/vendor/uPlot.min.css", get(uplot_css))
        .route("/ui/vendor/uPlot.LICENSE", get(uplot_license))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // `frame-ancestors 'none'` for browsers without CSP level 2:
            // no other site frames the page's buttons (clickjacking).
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn uplot_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", UPLOT_JS)
}

async fn uplot_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", UPLOT_CSS)
}

async fn uplot_license() -> impl IntoResponse {
    asset("text/plain; charset=utf-8", UPLOT_LICENSE)
}
