//! The server `bench/run.sh` measures: five small routes behind the session layer.
//!
//! Run with `cargo run --release --example bench_server` (MemoryStore) or
//! `BENCH_STORE=redis cargo run --release --features redis --example bench_server`.
//!
//! - `GET /hello`: no session use (the layer's cost on a request that never touches it);
//! - `GET /`: sets `user`, so a request without a cookie creates a session;
//! - `GET /get`: reads `user`;
//! - `GET /inc`: adds one to the counter `n` with [`Session::update`], which loses no
//!   increment to concurrent requests of the same session;
//! - `GET /count`: reads `n`, so the benchmark can count lost updates.
//!
//! Settings, from the environment (or the first argument for the store):
//! `BENCH_STORE` = `memory` (default) or `redis`; `REDIS_URL` (default
//! `redis://127.0.0.1:6379`); `BENCH_PREFIX`, the Redis key prefix (default `bench-rs:`);
//! `PORT` (default 3000); `RUST_LOG` (default `warn`, so store faults are logged to stderr). It
//! listens on 127.0.0.1 only. The layer keeps express-session's behaviour with this crate's
//! defaults (`resave` and `save_uninitialized` off).

use axum::{http::StatusCode, routing::get, Router};
use express_session::{MemoryStore, Session, SessionError, SessionLayer};

/// The secret every contender in the benchmark signs its cookies with.
const SECRET: &str = "bench secret";

fn status(e: SessionError) -> StatusCode {
    e.status()
}

async fn set(session: Session) -> Result<&'static str, StatusCode> {
    session.insert("user", "alice").map_err(status)?;
    Ok("set")
}

async fn read(session: Session) -> String {
    session.get::<String>("user").unwrap_or_else(|| "nobody".into())
}

async fn inc(session: Session) -> Result<String, StatusCode> {
    let n = session
        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
        .map_err(status)?;
    Ok(n.to_string())
}

async fn count(session: Session) -> String {
    session.get::<u64>("n").unwrap_or(0).to_string()
}

/// The bench routes over a session layer.
fn app(sessions: SessionLayer) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/", get(set))
        .route("/get", get(read))
        .route("/inc", get(inc))
        .route("/count", get(count))
        .layer(sessions)
}

async fn layer(kind: &str) -> Result<SessionLayer, Box<dyn std::error::Error>> {
    match kind {
        "memory" => Ok(SessionLayer::new(MemoryStore::new())),
        #[cfg(feature = "redis")]
        "redis" => {
            let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let prefix = std::env::var("BENCH_PREFIX").unwrap_or_else(|_| "bench-rs:".into());
            let store = express_session::store::redis::RedisStore::builder()
                .prefix(prefix)
                .connect(url.as_str())
                .await?;
            Ok(SessionLayer::new(store))
        }
        #[cfg(not(feature = "redis"))]
        "redis" => Err("this build has no Redis store: build with --features redis".into()),
        other => Err(format!("BENCH_STORE must be memory or redis, not {other:?}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Warnings only (a store fault, a tampered cookie): a benchmark that sees errors says why,
    // and a clean run logs nothing.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let kind = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BENCH_STORE").ok())
        .unwrap_or_else(|| "memory".into());
    let sessions = layer(&kind).await?.secret(SECRET).build()?;
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse()?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("bench_server ({kind}) listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(sessions)).await?;
    Ok(())
}
