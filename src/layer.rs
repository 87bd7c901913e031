//! [`SessionLayer`]: the builder of every option, and the tower `Layer`.

use std::{fmt, sync::Arc};

use time::{Duration, OffsetDateTime};
use tower_layer::Layer;

use crate::{
    config::{Config, Priority, SameSite, Secure, Unset},
    error::ConfigError,
    service::SessionService,
    session::Shared,
    store::SessionStore,
};

/// Adds sessions to every request: express-session's middleware, as a tower [`Layer`].
///
/// The layer is its own builder: each option is a consuming setter named after the
/// express-session option, and states its default. [`build`](Self::build) checks the
/// configuration and returns a [`ConfigError`] for a missing secret or a cookie attribute that
/// could break or inject into `Set-Cookie`.
///
/// ```
/// use axum::{routing::get, Router};
/// use express_session::{MemoryStore, SessionLayer};
///
/// # fn main() -> Result<(), express_session::ConfigError> {
/// let sessions = SessionLayer::new(MemoryStore::new())
///     .secret("a long random secret")
///     .max_age(time::Duration::hours(8))
///     .build()?;
/// let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(sessions);
/// # Ok(()) }
/// ```
///
/// # Panics
/// [`Layer::layer`] panics if the configuration is invalid and [`build`](Self::build) was not
/// called: the app fails at start-up, never at a request. Call `build()?` to get the error
/// as a value instead.
#[derive(Clone)]
#[must_use]
pub struct SessionLayer {
    config: Config,
    store: Arc<dyn SessionStore>,
    built: Option<Arc<Shared>>,
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty => |$c:ident, $v:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name(mut self, $v: $ty) -> Self {
            let $c = &mut self.config;
            $body;
            self.built = None;
            self
        }
    };
}

impl SessionLayer {
    /// A layer keeping sessions in `store`. Set at least a [`secret`](Self::secret).
    pub fn new(store: impl SessionStore) -> Self {
        Self::with_store(Arc::new(store))
    }

    /// A layer over a store that is already shared (for example one you also use elsewhere).
    pub fn with_store(store: Arc<dyn SessionStore>) -> Self {
        Self {
            config: Config::default(),
            store,
            built: None,
        }
    }

    setter! {
        /// The cookie name (express `name`). Default `connect.sid`. A `__Host-` name is checked
        /// for `Secure`, no `Domain` and `Path=/`.
        name: impl Into<String> => |c, v| c.name = v.into()
    }

    setter! {
        /// The one secret that signs and verifies cookies (express `secret` as a string). Use at
        /// least 32 random bytes. Required; no default.
        secret: impl AsRef<[u8]> => |c, v| c.secrets = vec![v.as_ref().to_vec()]
    }

    /// Several secrets, for rotation (express `secret` as an array): the first signs every
    /// cookie, all of them verify, tried in order. Rotate by putting the new secret first and
    /// keeping the old ones until their cookies have expired.
    pub fn secrets<I, K>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        self.config.secrets = secrets.into_iter().map(|k| k.as_ref().to_vec()).collect();
        self.built = None;
        self
    }

    setter! {
        /// Write back unmodified sessions on every request (express `resave`). Default `false`
        /// (express's deprecated default is `true`; `false` avoids needless writes and races).
        resave: bool => |c, v| c.resave = v
    }

    setter! {
        /// Save new sessions even if the handler put nothing in them, and send their cookie
        /// (express `saveUninitialized`). Default `false` (express's deprecated default is
        /// `true`; `false` helps with cookie-consent law and avoids empty records).
        save_uninitialized: bool => |c, v| c.save_uninitialized = v
    }

    setter! {
        /// Send the cookie on every response, pushing its expiry forward (express `rolling`).
        /// Default `false`.
        rolling: bool => |c, v| c.rolling = v
    }

    setter! {
        /// What [`Session::unset`](crate::Session::unset) does to the stored session (express
        /// `unset`). Default [`Unset::Keep`].
        unset: Unset => |c, v| c.unset = v
    }

    setter! {
        /// Trust `X-Forwarded-Proto` to tell whether a request is secure (express `proxy`):
        /// `true` reads its first comma-separated value; `false` trusts only the request URI's
        /// scheme. Default: not set, which behaves as `false` (tower has no "trust proxy" of its
        /// own). Used for [`Secure::Auto`], [`SameSite::Auto`] and the secure-cookie gate.
        proxy: bool => |c, v| c.proxy = Some(v)
    }

    /// How new session ids are made (express `genid`). Default: 24 CSPRNG bytes in URL-safe
    /// base64, as express's `uid-safe(24)`. An id must not contain `;` or control characters;
    /// a generator with little entropy makes sessions guessable.
    ///
    /// Unlike express, which draws an id for every request that arrives without a session, the
    /// layer calls it when a new session is first used (read, written, or asked for its id), or
    /// saved because of `save_uninitialized`: a request that never touches its session costs
    /// no id.
    pub fn genid<F>(mut self, genid: F) -> Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        self.config.genid = Some(Arc::new(genid));
        self.built = None;
        self
    }

    setter! {
        /// The cookie's `Path` (express `cookie.path`). Default `/`. Requests whose path does
        /// not start with it get no session, as in express.
        path: impl Into<String> => |c, v| c.cookie.path = v.into()
    }

    setter! {
        /// The cookie's `Domain` (express `cookie.domain`). Default: none (host-only, safest).
        domain: impl Into<String> => |c, v| c.cookie.domain = Some(v.into())
    }

    setter! {
        /// The cookie's `HttpOnly` (express `cookie.httpOnly`). Default `true`.
        http_only: bool => |c, v| c.cookie.http_only = v
    }

    setter! {
        /// The cookie's `Secure` (express `cookie.secure`). Default: not set (express's
        /// default). Use [`Secure::Always`] in production over HTTPS, or [`Secure::Auto`].
        secure: Secure => |c, v| c.cookie.secure = Some(v)
    }

    setter! {
        /// The cookie's `SameSite` (express `cookie.sameSite`); `None` leaves it out.
        /// Default `Some(SameSite::Lax)`: our one default that differs from express (which
        /// leaves it out), because it blocks most cross-site request forgery.
        same_site: Option<SameSite> => |c, v| c.cookie.same_site = v
    }

    setter! {
        /// How long the cookie and the stored session live after each touch (express
        /// `cookie.maxAge`). Default: none, a browser-session cookie (stores then keep the
        /// record for one day after its last use).
        max_age: Duration => |c, v| { c.cookie.max_age = Some(v); c.cookie.expires = None }
    }

    setter! {
        /// A fixed expiry for new sessions' cookies (express `cookie.expires`; discouraged, as
        /// in express: prefer [`max_age`](Self::max_age)). Default: none.
        expires: OffsetDateTime => |c, v| { c.cookie.expires = Some(v); c.cookie.max_age = None }
    }

    setter! {
        /// The cookie's `Partitioned` (CHIPS; express `cookie.partitioned`). Default: not set.
        partitioned: bool => |c, v| c.cookie.partitioned = Some(v)
    }

    setter! {
        /// The cookie's `Priority` (express `cookie.priority`). Default: not set.
        priority: Priority => |c, v| c.cookie.priority = Some(v)
    }

    setter! {
        /// With `resave` off, touch an unmodified session in the store at most once per
        /// `interval` instead of on every request (connect-mongo's `touchAfter`). Saves store
        /// writes on read-heavy traffic; the price is that the store's expiry may lag the
        /// cookie's by up to `interval`, so a session can end that much earlier than its cookie
        /// says. Default: not set (express: touch on every request).
        touch_after: Duration => |c, v| c.touch_after = Some(v)
    }

    setter! {
        /// The longest a session may live, however active it is (OWASP ASVS 7.3.2): a session
        /// older than this is destroyed when it is next loaded and the request starts a new one,
        /// as for a session that expired. Default: not set (express has no such limit).
        ///
        /// The idle timeout is [`max_age`](Self::max_age) (without one, the store's one day):
        /// every request moves the session's expiry forward by it, so a session unused for that
        /// long ends. This one does not move. Its clock starts when the session is created, or
        /// [regenerated](crate::Session::regenerate) (at login), and is kept in the session
        /// under [`CREATED_AT_KEY`](crate::CREATED_AT_KEY). A session that has no such key yet
        /// (made by a Node app, or before this option was set) is given one, now, on its first
        /// load here, which costs one save. Node apps sharing the store keep the key as data,
        /// but do not enforce the limit. A zero or negative duration is a
        /// [`ConfigError::InvalidTimeout`].
        ///
        /// ```
        /// use express_session::{time::Duration, MemoryStore, SessionLayer};
        /// let sessions = SessionLayer::new(MemoryStore::new())
        ///     .secret("keyboard cat")
        ///     .max_age(Duration::minutes(30))       // idle: 30 minutes without a request
        ///     .absolute_timeout(Duration::hours(12)) // absolute: 12 hours after login
        ///     .build()?;
        /// # Ok::<(), express_session::ConfigError>(())
        /// ```
        absolute_timeout: Duration => |c, v| c.absolute_timeout = Some(v)
    }

    setter! {
        /// The largest serialized session accepted, on save and on load. Larger records fail to
        /// save with [`SessionError::TooLarge`](crate::SessionError::TooLarge) and are treated as
        /// corrupt when loaded. Default 1 MiB.
        max_record_size: usize => |c, v| c.max_record_size = v
    }

    setter! {
        /// How often a save that meets concurrent writers is merged and retried before it fails
        /// with [`SessionError::Conflict`](crate::SessionError::Conflict). Default 100.
        ///
        /// Saves of one session through this layer never conflict with each other: they take
        /// turns and write together (see the crate docs, "Concurrency"). Conflicts come from
        /// other processes (or other layers) writing the same session; under such contention
        /// each round lets at least one writer through, and after a few conflicts a retry first
        /// waits a short random time (at most 5 ms) so that writers spread out.
        max_save_retries: u32 => |c, v| c.max_save_retries = v
    }

    /// Checks the configuration; call it at start-up to get a [`ConfigError`] as a value.
    ///
    /// ```
    /// use express_session::{ConfigError, MemoryStore, SessionLayer};
    /// let err = SessionLayer::new(MemoryStore::new()).build().unwrap_err();
    /// assert!(matches!(err, ConfigError::MissingSecret));
    /// let err = SessionLayer::new(MemoryStore::new()).secret("s").domain("a.com; Domain=b.com").build().unwrap_err();
    /// assert!(matches!(err, ConfigError::InvalidAttribute { .. }));
    /// ```
    ///
    /// # Errors
    /// The first problem found.
    pub fn build(mut self) -> Result<Self, ConfigError> {
        self.config.validate()?;
        self.built = Some(Arc::new(Shared {
            keys: crate::cookie::Keys::new(&self.config.secrets),
            config: self.config.clone(),
            store: Arc::clone(&self.store),
            turns: crate::turns::SaveTurns::new(),
            decoded: crate::decoded::DecodedCache::new(),
            empty: Arc::default(),
        }));
        Ok(self)
    }

    fn shared(&self) -> Arc<Shared> {
        match &self.built {
            Some(shared) => Arc::clone(shared),
            None => match self.clone().build() {
                Ok(built) => built.built.expect("build sets it"),
                Err(e) => panic!("invalid session configuration: {e}"),
            },
        }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.shared())
    }
}
