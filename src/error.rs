//! Error types: configuration, store and session errors.

use std::error::Error as StdError;

/// A boxed error from a store backend, kept as the `source()` of a [`StoreError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An invalid [`SessionLayer`](crate::SessionLayer) configuration, reported when the layer is
/// built rather than at the first request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No secret was given, or the list of secrets is empty.
    #[error("a non-empty secret is required to sign session cookies")]
    MissingSecret,
    /// One of the secrets is the empty string.
    #[error("secret number {0} is empty")]
    EmptySecret(usize),
    /// The cookie name is empty or has characters a cookie name may not have.
    #[error("invalid cookie name {0:?}")]
    InvalidName(String),
    /// A cookie attribute (`path`, `domain`) has `;`, a control character or a non-ASCII byte.
    #[error("invalid cookie {attribute} {value:?}")]
    InvalidAttribute {
        /// The attribute's name.
        attribute: &'static str,
        /// The rejected value.
        value: String,
    },
    /// `SameSite=None` (or `Auto`, which is `None` over HTTPS) needs `Secure` set to `Always` or
    /// `Auto`; browsers drop such a cookie otherwise.
    #[error("SameSite=None requires the Secure attribute (secure: true or auto)")]
    SameSiteNoneWithoutSecure,
    /// A `__Host-` cookie must be Secure, have no Domain and have `Path=/`.
    #[error("a __Host- cookie must be Secure, have no Domain and Path=/")]
    HostPrefix,
    /// A `__Secure-` cookie must be Secure.
    #[error("a __Secure- cookie must be Secure")]
    SecurePrefix,
    /// A timeout (such as [`absolute_timeout`](crate::SessionLayer::absolute_timeout)) is zero
    /// or negative.
    #[error("session timeout must be positive, not {0}")]
    InvalidTimeout(time::Duration),
}

/// An error reported by a [`SessionStore`](crate::SessionStore).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached (connection refused, lost, or not yet established).
    /// Requests that need the store answer `503 Service Unavailable`.
    #[error("session store unavailable")]
    Unavailable(#[source] BoxError),
    /// The backend did not answer in time. Requests answer `503 Service Unavailable`.
    #[error("session store timed out")]
    Timeout,
    /// The backend answered with an error. Requests answer `500 Internal Server Error`.
    #[error("session store backend error")]
    Backend(#[source] BoxError),
    /// The store's capacity is exhausted (for example [`MemoryStore`](crate::MemoryStore)'s cap).
    #[error("session store is full")]
    Full,
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Self::Backend(err.into())
    }

    /// Wraps a connection error.
    pub fn unavailable(err: impl Into<BoxError>) -> Self {
        Self::Unavailable(err.into())
    }

    /// True when the error means the backend is down or slow, so that `503` fits.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout | Self::Full)
    }
}

/// An error from a [`Session`](crate::Session) method.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be serialized to, or deserialized from, JSON.
    #[error("session value is not representable as JSON")]
    Json(#[from] serde_json::Error),
    /// `reload` found no session in the store (express: "failed to load session").
    #[error("failed to load session")]
    NotFound,
    /// The session was destroyed (by this request or a concurrent one) and cannot be used.
    #[error("session was destroyed")]
    Destroyed,
    /// A save kept conflicting with concurrent writers beyond the retry limit.
    #[error("session save conflicted with concurrent writers too many times")]
    Conflict,
    /// The serialized session is larger than the configured maximum.
    #[error("session record of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The record's size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The key is reserved by express-session's record format (`cookie`, `id`, method names).
    #[error("session key {0:?} is reserved")]
    ReservedKey(String),
    /// No id could be generated that the store did not already hold.
    #[error("could not generate an unused session id")]
    IdCollision,
}

impl SessionError {
    /// The HTTP status a response should carry when this error ends a request.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::Store(e) if e.is_unavailable() => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
