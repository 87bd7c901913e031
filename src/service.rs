//! [`SessionService`]: the middleware that loads sessions before the handler and saves them
//! after it.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{header::SET_COOKIE, uri::Scheme, Request, Response, StatusCode};
use time::OffsetDateTime;
use tower_service::Service;

use crate::{
    cookie::{self, add_clamped},
    error::SessionError,
    session::{created_at, Session, Shared},
};

/// The middleware made by [`SessionLayer`](crate::SessionLayer).
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

/// The future of a [`SessionService`] call.
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

/// Whether the request arrived over TLS, as express's `issecure`.
fn is_secure<B>(req: &Request<B>, proxy: Option<bool>) -> bool {
    if req.uri().scheme() == Some(&Scheme::HTTPS) {
        return true;
    }
    if proxy != Some(true) {
        return false;
    }
    req.headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn error_response<B: Default>(err: &SessionError) -> Response<B> {
    tracing::error!(error = err as &dyn std::error::Error, cause = ?std::error::Error::source(err), "session store failure");
    let mut res = Response::new(B::default());
    *res.status_mut() = err.status();
    res
}

/// Loads the session a request's cookie points to, or starts a new one (no store call).
async fn load(shared: &Arc<Shared>, cookie_id: Option<String>, secure: bool) -> Result<Session, SessionError> {
    let Some(id) = cookie_id else {
        return Ok(Session::generate(Arc::clone(shared), None, secure));
    };
    let config = &shared.config;
    let touch_on_load = !config.resave && config.touch_after.is_none();
    let record = if touch_on_load {
        // Touch as express will at the end of the request, in the same round trip as the load.
        // If the session turns out to have another lifetime, `finish` touches again.
        let expires = config.cookie.max_age.map(|d| add_clamped(OffsetDateTime::now_utc(), d));
        shared.store.load_and_touch(&id, expires).await?
    } else {
        shared.store.load(&id).await?
    };
    let Some(record) = record else {
        tracing::debug!("session cookie refers to no live session; starting a new one");
        return Ok(Session::generate(Arc::clone(shared), Some(id), secure));
    };
    match shared.decoded.decode(&id, &record.data, config.max_record_size) {
        Ok((cookie, data)) => {
            let mut unstamped = false;
            if let Some(limit) = config.absolute_timeout {
                match created_at(&data) {
                    Some(created) if add_clamped(created, limit) <= OffsetDateTime::now_utc() => {
                        tracing::info!("session reached its absolute timeout; destroyed, starting a new one");
                        shared.store.destroy(&id).await?;
                        shared.decoded.forget(&id);
                        return Ok(Session::generate(Arc::clone(shared), Some(id), secure));
                    }
                    Some(_) => {}
                    None => unstamped = true,
                }
            }
            let touched = touch_on_load.then(|| config.cookie.max_age.map(|d| d.whole_milliseconds() as i64));
            let session = Session::loaded(Arc::clone(shared), id, record, cookie, data, secure, touched);
            if unstamped {
                session.record_created_now();
            }
            Ok(session)
        }
        Err(e) => {
            tracing::warn!(error = %e, "corrupt session record discarded; starting a new session");
            shared.store.destroy(&id).await?;
            Ok(Session::generate(Arc::clone(shared), Some(id), secure))
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // Call the service that was polled ready; keep a fresh clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let config = &shared.config;
            // Mounted twice, or outside the cookie's path: pass through, as express does.
            if req.extensions().get::<Session>().is_some() || !req.uri().path().starts_with(&config.cookie.path) {
                return inner.call(req).await;
            }
            let secure = is_secure(&req, config.proxy);
            let cookie_id = cookie::find_session_id(req.headers(), &config.name, &shared.keys);
            let session = match load(&shared, cookie_id, secure).await {
                Ok(session) => session,
                Err(e) => return Ok(error_response(&e)),
            };
            req.extensions_mut().insert(session.clone());
            let mut res = inner.call(req).await?;
            match session.finish().await {
                Ok(Some(set_cookie)) => match cookie::header_value(set_cookie) {
                    Some(v) => {
                        res.headers_mut().append(SET_COOKIE, v);
                    }
                    None => tracing::error!("session cookie has characters a header cannot carry; not sent"),
                },
                Ok(None) => {}
                Err(e) => {
                    if e.status() == StatusCode::INTERNAL_SERVER_ERROR && !matches!(e, SessionError::Store(_)) {
                        tracing::error!(error = %e, "session could not be saved");
                    }
                    return Ok(error_response(&e));
                }
            }
            Ok(res)
        })
    }
}
