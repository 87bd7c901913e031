//! # express-session for tower and axum
//!
//! Node's [express-session](https://github.com/expressjs/session) for Rust: every request gets
//! a [`Session`], identified by a signed cookie and kept server-side in a pluggable
//! [`SessionStore`]. Every express-session option and method is here, under its Rust-case
//! name, and the wire formats are express's byte for byte: a session started by an Express
//! app is read by a Rust one with the same secret and store, and back.
//!
//! ## Quick start (axum)
//!
//! ```
//! use axum::{routing::get, Router};
//! use express_session::{MemoryStore, Session, SessionLayer};
//!
//! async fn set(session: Session) -> &'static str {
//!     session.insert("user", "alice").unwrap();
//!     "set"
//! }
//!
//! async fn read(session: Session) -> String {
//!     session.get::<String>("user").unwrap_or_else(|| "nobody".into())
//! }
//!
//! # fn main() -> Result<(), express_session::ConfigError> {
//! let app: Router = Router::new()
//!     .route("/", get(set))
//!     .route("/get", get(read))
//!     .layer(SessionLayer::new(MemoryStore::new()).secret("keyboard cat").build()?);
//! # Ok(()) }
//! ```
//!
//! ## Plain tower
//!
//! [`SessionLayer`] is a tower `Layer` for any `Service<http::Request<B>>`; the handler finds
//! the [`Session`] in the request's extensions:
//!
//! ```
//! use express_session::{MemoryStore, Session, SessionLayer};
//! use tower::{service_fn, Layer};
//!
//! let svc = SessionLayer::new(MemoryStore::new()).secret("s3cret").layer(service_fn(
//!     |req: http::Request<String>| async move {
//!         let session = req.extensions().get::<Session>().unwrap().clone();
//!         session.insert("seen", true).unwrap();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     },
//! ));
//! ```
//!
//! ## What happens on a request
//!
//! Exactly what express-session does (its rules for when to save, touch and send
//! `Set-Cookie`), with three deliberate differences, all safer:
//!
//! - the store save finishes **before** the response head is sent, so a redirect after login
//!   always finds the session saved;
//! - [`Session::destroy`] also clears the cookie in the browser;
//! - the cookie is `SameSite=Lax` unless you say otherwise, and `resave` and
//!   `save_uninitialized` default to `false` (express's defaults are deprecated).
//!
//! A request without a session gets a new one that starts when something first uses it: a
//! route that never touches its session (static files, health checks) costs no id, no store
//! call and no cookie, and a custom [`genid`](SessionLayer::genid) runs only for sessions that
//! are used (express calls it at the start of every such request).
//!
//! Bad cookies (malformed, unsigned, tampered, oversized, duplicated) mean "no session": no
//! store lookup, never an error. A store failure ends the request with an opaque `500`, or `503`
//! if the store is down or slow, and a `tracing` error with the cause: it never silently treats
//! the user as logged out, and never overwrites their record.
//!
//! ## Concurrency
//!
//! Requests of one session may run at once and lose nothing:
//!
//! 1. Changes to **different keys** made at the same time all survive. For the same key, the
//!    last save wins. Removing a key is a change like any other. [`Session::update`] re-applies
//!    its function to the freshest stored value, so concurrent increments all count.
//! 2. After [`Session::destroy`] or [`Session::regenerate`] returns, no request that loaded the
//!    old session can bring it back: its save finds the record gone, writes nothing and logs a
//!    warning.
//! 3. No lock is held across handlers, and no request waits for another session's. A save is
//!    one compare-and-set on the record's content; on a conflict the request's own changes are
//!    replayed onto the current record and the save is retried (up to
//!    [`SessionLayer::max_save_retries`] times, then [`SessionError::Conflict`]).
//!
//! Saves of one session through one layer take turns, only for the length of the store call:
//! a save that finds another save of the same session in flight waits for it, and the next
//! turn writes all the saves that queued meanwhile in one compare-and-set, each request's
//! changes replayed in the order they arrived, on top of the record the turn before wrote. So
//! 64 simultaneous writers of one session in one process cost a handful of store writes, with
//! no conflict and no retry (express-session and tower-sessions write each request's whole
//! session back, so concurrent writers overwrite each other's changes).
//! Conflicts, with their merge and retry, happen only between processes sharing a store.
//!
//! ## Timeouts
//!
//! - **Idle**: [`SessionLayer::max_age`]. Every request of a session moves its expiry in the
//!   store forward by it (express's touch), so a session unused for that long is gone: the store
//!   no longer serves it, whatever the browser still sends. Without `max_age`, the cookie lasts
//!   until the browser closes and the store keeps the record one day after its last use
//!   ([`store::DEFAULT_TTL`]). [`SessionLayer::touch_after`] trades precision for fewer writes.
//! - **Absolute**: [`SessionLayer::absolute_timeout`]. A session older than this ends at its
//!   next request, however active it has been; [`Session::regenerate`] at login starts the
//!   clock again. express-session, tower-sessions and actix-session have no such limit.
//!
//! ```
//! use express_session::{time::Duration, MemoryStore, SessionLayer};
//! let sessions = SessionLayer::new(MemoryStore::new())
//!     .secret("keyboard cat")
//!     .max_age(Duration::minutes(30))
//!     .absolute_timeout(Duration::hours(12))
//!     .build()?;
//! # Ok::<(), express_session::ConfigError>(())
//! ```
//!
//! ## Stores
//!
//! | store | feature | for |
//! |---|---|---|
//! | [`MemoryStore`] | `memory` (default) | one process; swept, capped, never leaks |
//! | [`SqliteStore`] | `sqlite` | one machine, kept across restarts; a file, nothing to run |
//! | [`PostgresStore`] | `postgres` | PostgreSQL, connect-pg-simple 10's table and rows |
//! | [`MySqlStore`] | `mysql` | MySQL or MariaDB, express-mysql-session 3's table and rows |
//! | [`RedisStore`] | `redis` | Redis or Redis Cluster, connect-redis 9's keys and values |
//!
//! Write your own by implementing [`SessionStore`]; its docs state the contract, and the
//! `conformance` suite (feature `test-util`) checks it.
//!
//! ## Security notes
//!
//! - Call [`Session::regenerate`] at login and at every change of privilege.
//! - Serve over HTTPS with [`Secure::Always`] (or [`Secure::Auto`] behind a proxy with
//!   [`SessionLayer::proxy`]); consider a `__Host-` cookie name, which the layer checks.
//! - Secrets: at least 32 random bytes. Rotate by putting the new secret first in
//!   [`SessionLayer::secrets`]; cookies signed by the old ones keep working.
//! - Session ids are 192-bit CSPRNG values; they are never logged.
//!
//! ## From express-session
//!
//! | express-session | here |
//! |---|---|
//! | `name` | [`SessionLayer::name`] |
//! | `secret` (string / array) | [`SessionLayer::secret`] / [`SessionLayer::secrets`] |
//! | `resave` | [`SessionLayer::resave`] (default `false`) |
//! | `saveUninitialized` | [`SessionLayer::save_uninitialized`] (default `false`) |
//! | `rolling` | [`SessionLayer::rolling`] |
//! | `unset` | [`SessionLayer::unset`] with [`Unset`] |
//! | `proxy` | [`SessionLayer::proxy`] |
//! | `genid` | [`SessionLayer::genid`] |
//! | `store` | [`SessionLayer::new`]`(store)` |
//! | `cookie.path`, `.domain`, `.httpOnly` | [`SessionLayer::path`], [`SessionLayer::domain`], [`SessionLayer::http_only`] |
//! | `cookie.secure` (`true`/`false`/`'auto'`) | [`SessionLayer::secure`] with [`Secure`] |
//! | `cookie.sameSite` | [`SessionLayer::same_site`] with [`SameSite`] (default `Lax`) |
//! | `cookie.maxAge`, `cookie.expires` | [`SessionLayer::max_age`], [`SessionLayer::expires`] |
//! | `cookie.partitioned`, `cookie.priority` | [`SessionLayer::partitioned`], [`SessionLayer::priority`] |
//! | `req.session.x = v` / `req.session.x` | [`Session::insert`] / [`Session::get`] |
//! | `delete req.session.x` | [`Session::remove`] |
//! | `req.session.regenerate/destroy/reload/save/touch` | [`Session::regenerate`], [`Session::destroy`], [`Session::reload`], [`Session::save`], [`Session::touch`] |
//! | `req.session.cookie.maxAge = ms` | [`Session::update_cookie`] with [`SessionCookie::set_max_age`] |
//! | `req.session = null` | [`Session::unset`] |
//! | `req.sessionID` | [`Session::id`] |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
mod config;
pub mod cookie;
mod decoded;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod layer;
mod service;
mod session;
pub mod store;
mod turns;

pub use config::{
    Priority, SameSite, Secure, Unset, CREATED_AT_KEY, DEFAULT_MAX_RECORD_SIZE, DEFAULT_MAX_SAVE_RETRIES, DEFAULT_NAME,
    MAX_COOKIE_VALUE_LEN,
};
pub use cookie::SessionCookie;
pub use error::{BoxError, ConfigError, SessionError, StoreError};
#[cfg(feature = "axum")]
pub use extract::SessionMissing;
pub use layer::SessionLayer;
pub use service::{ResponseFuture, SessionService};
pub use session::{generate_id, Session};
#[cfg(feature = "memory")]
pub use store::memory::MemoryStore;
#[cfg(feature = "mysql")]
pub use store::mysql::MySqlStore;
#[cfg(feature = "postgres")]
pub use store::postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use store::redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use store::sqlite::SqliteStore;
pub use store::{CountingStore, Record, SessionStore, StoreCounts, Update};
pub use time;
