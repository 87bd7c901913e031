//! Shared parts of the peer servers: start-up on loopback, and the bench routes written once
//! for each tower-sessions version.

use std::net::SocketAddr;

/// The signing key for the tower-sessions peers (they sign cookies, as express-session and
/// express-session for Rust do, so every contender pays for an HMAC).
pub const KEY: &[u8; 64] = b"bench secret, bench secret, bench secret, bench secret, bench!!!";

/// Serves `app` on 127.0.0.1:`PORT` (default 3000) until the process is killed.
pub async fn serve(app: axum::Router) {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind 127.0.0.1:PORT");
    println!("listening on http://{addr}");
    axum::serve(listener, app).await.expect("serve");
}

/// The bench routes over a tower-sessions `Session` type (0.14 and 0.15 have the same API).
#[macro_export]
macro_rules! tower_sessions_routes {
    ($ts:ident) => {{
        use axum::{http::StatusCode, routing::get, Router};
        use $ts::Session;

        fn fail<E>(_: E) -> StatusCode {
            StatusCode::INTERNAL_SERVER_ERROR
        }

        async fn set(session: Session) -> Result<&'static str, StatusCode> {
            session.insert("user", "alice").await.map_err(fail)?;
            Ok("set")
        }

        async fn read(session: Session) -> Result<String, StatusCode> {
            let user: Option<String> = session.get("user").await.map_err(fail)?;
            Ok(user.unwrap_or_else(|| "nobody".into()))
        }

        // tower-sessions has no atomic update: read, add one, write back (its documented way).
        async fn inc(session: Session) -> Result<String, StatusCode> {
            let n: u64 = session.get("n").await.map_err(fail)?.unwrap_or(0) + 1;
            session.insert("n", n).await.map_err(fail)?;
            Ok(n.to_string())
        }

        async fn count(session: Session) -> Result<String, StatusCode> {
            let n: Option<u64> = session.get("n").await.map_err(fail)?;
            Ok(n.unwrap_or(0).to_string())
        }

        Router::new()
            .route("/hello", get(|| async { "hello" }))
            .route("/", get(set))
            .route("/get", get(read))
            .route("/inc", get(inc))
            .route("/count", get(count))
    }};
}
