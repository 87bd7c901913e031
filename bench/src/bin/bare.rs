//! The baseline: the bench routes on bare axum, no session layer. `/`, `/get`, `/inc` and
//! `/count` answer what a session-less app could (a constant), so the run measures axum and
//! hyper alone.

use axum::{routing::get, Router};

#[tokio::main]
async fn main() {
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/", get(|| async { "set" }))
        .route("/get", get(|| async { "alice" }))
        .route("/inc", get(|| async { "1" }))
        .route("/count", get(|| async { "0" }));
    express_session_bench_peers::serve(app).await;
}
