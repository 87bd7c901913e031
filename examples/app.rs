//! The reference app: express-session's best-known example, in Rust.
//!
//! Run with `cargo run --example app`, then open <http://127.0.0.1:3000/> and follow the link.
//! `PORT` changes the port. Sessions live in memory; to keep them across restarts in a SQLite
//! file, run `SESSION_STORE=sqlite:sessions.db cargo run --example app --features sqlite`.
//!
//! The Express original:
//!
//! ```js
//! app.use(session({ secret: 'gfg-key', resave: false, saveUninitialized: true }));
//! app.get('/', (req, res) => { req.session.gfgUser = 'geeksforgeeks'; res.send('Hey Geek! …'); });
//! app.get('/get', (req, res) => res.send(`Session variable: ${req.session.gfgUser || 'No session set'}`));
//! ```

use axum::{response::Html, routing::get, Router};
use express_session::{MemoryStore, Session, SessionLayer, SessionStore};

async fn set(session: Session) -> Result<Html<&'static str>, express_session::SessionError> {
    session.insert("gfgUser", "geeksforgeeks")?;
    Ok(Html(
        "Hey Geek! Session is set! Now Go to <a href=\"/get\">/get</a> to retrieve the session.",
    ))
}

async fn read(session: Session) -> Html<String> {
    let user = session.get::<String>("gfgUser");
    Html(format!(
        "Session variable: {}",
        user.as_deref().unwrap_or("No session set")
    ))
}

/// The session layer of the Express original: `secret: 'gfg-key', resave: false,
/// saveUninitialized: true`.
pub(crate) fn sessions() -> Result<SessionLayer, express_session::ConfigError> {
    sessions_over(MemoryStore::new())
}

/// The same layer over another store.
pub(crate) fn sessions_over(store: impl SessionStore) -> Result<SessionLayer, express_session::ConfigError> {
    SessionLayer::new(store)
        .secret("gfg-key")
        .resave(false)
        .save_uninitialized(true)
        .build()
}

/// The app's router, over any session layer (`tests/reference_app.rs` serves it too).
pub(crate) fn app(sessions: SessionLayer) -> Router {
    Router::new()
        .route("/", get(set))
        .route("/get", get(read))
        .layer(sessions)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let sessions = match std::env::var("SESSION_STORE").unwrap_or_default().as_str() {
        "" => sessions()?,
        spec => match spec.strip_prefix("sqlite:") {
            Some(path) => sqlite_sessions(path).await?,
            None => return Err(format!("SESSION_STORE must be sqlite:<path>, not {spec:?}").into()),
        },
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("Server is running on http://{}", listener.local_addr()?);
    axum::serve(listener, app(sessions)).await?;
    Ok(())
}

/// `SESSION_STORE=sqlite:<path>`: the app's layer over a SQLite file (created if missing).
#[cfg(feature = "sqlite")]
async fn sqlite_sessions(path: &str) -> Result<SessionLayer, Box<dyn std::error::Error>> {
    Ok(sessions_over(express_session::SqliteStore::open(path).await?)?)
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite_sessions(_path: &str) -> Result<SessionLayer, Box<dyn std::error::Error>> {
    Err("SESSION_STORE=sqlite:<path> needs the sqlite feature: cargo run --example app --features sqlite".into())
}
