//! The axum extractor for [`Session`].

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::{request::Parts, StatusCode};

use crate::{error::SessionError, session::Session};

/// Handlers may return `Result<_, SessionError>` and use `?`: the error becomes an opaque `500`
/// (`503` when the store is unavailable), with the cause in a `tracing` error.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        tracing::error!(error = &self as &dyn std::error::Error, cause = ?std::error::Error::source(&self), "session error");
        self.status().into_response()
    }
}

/// The rejection when a handler asks for a [`Session`] but the request has none: the
/// [`SessionLayer`](crate::SessionLayer) is not in front of the route, or the path is outside
/// the cookie's `path`. Answers `500`; take `Option<Session>` to handle it yourself.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no session on this request: is SessionLayer applied, and is the path inside cookie.path?")]
#[non_exhaustive]
pub struct SessionMissing;

impl IntoResponse for SessionMissing {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, "session missing").into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionMissing;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or(SessionMissing)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}
