//! Run with: `PORT=4100 STORE=redis cargo run --example interop_server --features redis,postgres,mysql`
//!
//! The Rust twin of `tests/interop/node_app.js`: the same routes, the same environment variables
//! and the same session options. `tests/interop_node.rs` starts both on one store with one secret
//! and one cookie name, and checks that each app reads, changes, regenerates, destroys and
//! expires what the other one wrote.
//!
//! Environment (as `node_app.js`; an empty value counts as unset):
//! - `PORT`: the port on 127.0.0.1 (required; `0` picks a free one);
//! - `SESSION_SECRET`: a JSON array of secrets if it starts with `[`, the first one signing;
//!   otherwise one plain secret (default `keyboard cat`);
//! - `SESSION_NAME`: the cookie name (default `connect.sid`);
//! - `STORE`: `redis`, `postgres`, `mysql` or `memory` (default `memory`);
//! - `REDIS_URL` (default `redis://127.0.0.1:6379`), `REDIS_PREFIX` (connect-redis's `sess:`
//!   when unset; an empty prefix is allowed, as there);
//! - `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), `PG_TABLE` (default
//!   `session`), `PG_SCHEMA` (must exist); the table is created if missing, as
//!   connect-pg-simple's `createTableIfMissing` does;
//! - `MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`), `MYSQL_TABLE` (default
//!   `sessions`); the table is created if missing, as express-mysql-session does;
//! - `MAX_AGE_MS`: the cookie's `maxAge` in milliseconds (unset: a browser-session cookie).
//!
//! Session options: `resave` and `saveUninitialized` off, and express-session's defaults for
//! the rest, including no `SameSite` attribute (this crate's own default is `Lax`), so both apps
//! write the same cookie and the same stored document.
//!
//! Routes (any method, `text/plain` unless noted):
//! - `/set?key=K&val=V`: stores the string `V` under `K` → `ok` (`400` without `key` or `val`,
//!   or for a key express-session reserves);
//! - `/get?key=K`: the value, strings as they are and anything else as JSON; empty if absent;
//! - `/data`: the session's data as a JSON object (`application/json`);
//! - `/id`: the session id;
//! - `/regenerate`: a new, empty session under a new id → the new id;
//! - `/destroy`: deletes the session → `ok`;
//! - `/inc?key=K` (default `count`): adds one to the integer under `K` (absent, or not an
//!   integer: 0) → the new value;
//! - `/health`: `ok`, without the session layer.
//!
//! Prints `listening <port>` on stdout once the store is usable and the port accepts
//! connections; SIGTERM or Ctrl-C stops it.

use std::{error::Error, sync::Arc};

use axum::{
    extract::Query,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::any,
    Json, Router,
};
use express_session::{
    store::{mysql::MySqlStore, postgres::PostgresStore},
    RedisStore, Session, SessionError, SessionLayer, SessionStore,
};
use serde::Deserialize;
use serde_json::Value;

/// A variable of the environment; empty counts as unset, as in `node_app.js`.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `SESSION_SECRET`: a JSON array of strings, or one plain secret.
fn secrets(raw: &str) -> Result<Vec<String>, Box<dyn Error>> {
    if raw.trim_start().starts_with('[') {
        let list: Vec<String> =
            serde_json::from_str(raw).map_err(|e| format!("SESSION_SECRET: expected a JSON array of strings: {e}"))?;
        Ok(list)
    } else {
        Ok(vec![raw.to_owned()])
    }
}

/// The store named by `STORE`, ready for use (connected, table created).
async fn store(kind: &str) -> Result<Arc<dyn SessionStore>, Box<dyn Error>> {
    match kind {
        #[cfg(feature = "memory")]
        "memory" => Ok(Arc::new(express_session::MemoryStore::new())),
        "redis" => {
            let url = env("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
            let mut builder = RedisStore::builder();
            // As node_app.js: the prefix is used whenever the variable exists, even empty.
            if let Ok(prefix) = std::env::var("REDIS_PREFIX") {
                builder = builder.prefix(prefix);
            }
            Ok(Arc::new(builder.connect(url.as_str()).await?))
        }
        "postgres" => {
            let url = env("DATABASE_URL").unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
            let mut store = PostgresStore::connect(&url).await?;
            if let Some(table) = env("PG_TABLE") {
                store = store.table_name(&table)?;
            }
            if let Some(schema) = env("PG_SCHEMA") {
                store = store.schema_name(&schema)?;
            }
            store.migrate().await?;
            Ok(Arc::new(store))
        }
        "mysql" => {
            let url = env("MYSQL_URL").unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".into());
            let mut store = MySqlStore::connect(&url).await?;
            if let Some(table) = env("MYSQL_TABLE") {
                store = store.table_name(&table)?;
            }
            store.migrate().await?;
            Ok(Arc::new(store))
        }
        other => Err(format!("STORE must be redis, postgres, mysql or memory, not {other:?}").into()),
    }
}

#[derive(Deserialize)]
struct Params {
    key: Option<String>,
    val: Option<String>,
}

fn bad_request(msg: &'static str) -> Response {
    (StatusCode::BAD_REQUEST, msg).into_response()
}

async fn set(session: Session, Query(p): Query<Params>) -> Response {
    let (Some(key), Some(val)) = (p.key, p.val) else {
        return bad_request("key and val are required");
    };
    match session.insert(&key, val) {
        Ok(()) => "ok".into_response(),
        Err(SessionError::ReservedKey(_)) => bad_request("reserved key"),
        Err(e) => e.into_response(),
    }
}

async fn get(session: Session, Query(p): Query<Params>) -> String {
    match p.key.and_then(|key| session.get_value(&key)) {
        None => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
    }
}

async fn data(session: Session) -> Json<express_session::codec::Data> {
    Json(session.data())
}

async fn id(session: Session) -> String {
    session.id()
}

async fn regenerate(session: Session) -> Result<String, SessionError> {
    session.regenerate().await?;
    Ok(session.id())
}

async fn destroy(session: Session) -> Result<&'static str, SessionError> {
    session.destroy().await?;
    Ok("ok")
}

async fn inc(session: Session, Query(p): Query<Params>) -> Response {
    let key = p.key.filter(|k| !k.is_empty()).unwrap_or_else(|| "count".into());
    match session.update(&key, |n: Option<i64>| n.unwrap_or(0).saturating_add(1)) {
        Ok(n) => n.to_string().into_response(),
        Err(SessionError::ReservedKey(_)) => bad_request("reserved key"),
        Err(e) => e.into_response(),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let port: u16 = env("PORT").ok_or("PORT is not set")?.parse()?;
    let store = store(&env("STORE").unwrap_or_else(|| "memory".into())).await?;

    let mut sessions = SessionLayer::with_store(store)
        .secrets(secrets(
            &env("SESSION_SECRET").unwrap_or_else(|| "keyboard cat".into()),
        )?)
        .name(env("SESSION_NAME").unwrap_or_else(|| "connect.sid".into()))
        .resave(false)
        .save_uninitialized(false)
        .same_site(None);
    if let Some(ms) = env("MAX_AGE_MS") {
        let ms: i64 = ms.parse().map_err(|e| format!("MAX_AGE_MS: {e}"))?;
        sessions = sessions.max_age(time::Duration::milliseconds(ms));
    }
    let sessions = sessions.build()?;

    let app = Router::new()
        .route("/set", any(set))
        .route("/get", any(get))
        .route("/data", any(data))
        .route("/id", any(id))
        .route("/regenerate", any(regenerate))
        .route("/destroy", any(destroy))
        .route("/inc", any(inc))
        .fallback(|| async { (StatusCode::NOT_FOUND, "unknown route") })
        .layer(sessions)
        // Added after the layer, so it is served without a session, as in node_app.js.
        .route("/health", any(|| async { "ok" }));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening {}", listener.local_addr()?.port());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
