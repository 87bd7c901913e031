//! Helpers shared by the HTTP-level test files: a test app with one route per session
//! operation, requests through `tower::ServiceExt::oneshot` (no network), a store wrapper that
//! injects faults, and checks for `Set-Cookie` headers.
//!
//! A test file uses them with `mod common;`. The store-generic behaviour suite is in
//! [`http_suite`] (see its docs for how to run it against another store).

// Each test file uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

pub mod http_suite;
pub mod proxy;

use std::sync::{
    atomic::{AtomicU8, Ordering},
    Arc,
};

use async_trait::async_trait;
use axum::{
    body::Body,
    extract::Extension,
    http::{header, HeaderValue, Request, Response, StatusCode, Uri},
    response::IntoResponse,
    Router,
};
use express_session::{
    cookie::cookie_value, time, CountingStore, Record, Session, SessionLayer, SessionStore, StoreCounts, StoreError,
    Update,
};
use http_body_util::BodyExt;
use time::{format_description::FormatItem, macros::format_description, Duration, OffsetDateTime};
use tower::ServiceExt;

/// The secret every test layer signs with unless a test says otherwise.
pub const SECRET: &str = "keyboard cat";

/// The store any test request may hit, made of: the layer → counting → fault injection → the
/// real store.
pub type DynStore = Arc<dyn SessionStore>;

/// Which store calls fail, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing fails.
    None,
    /// Reads (`load`, `load_and_touch`) fail as unavailable (→ 503).
    ReadsDown,
    /// Reads fail with a backend error (→ 500).
    ReadsBroken,
    /// Writes (`create`, `update`, `touch`, `destroy`) fail as unavailable.
    WritesDown,
    /// Writes fail with a backend error.
    WritesBroken,
    /// Every call times out (→ 503).
    AllTimeout,
}

impl Fault {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::ReadsDown,
            2 => Self::ReadsBroken,
            3 => Self::WritesDown,
            4 => Self::WritesBroken,
            5 => Self::AllTimeout,
            _ => Self::None,
        }
    }
    fn to_u8(self) -> u8 {
        match self {
            Self::None => 0,
            Self::ReadsDown => 1,
            Self::ReadsBroken => 2,
            Self::WritesDown => 3,
            Self::WritesBroken => 4,
            Self::AllTimeout => 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("injected fault")]
struct Injected;

/// A store wrapper whose calls fail on demand (the switch is shared by clones).
#[derive(Clone)]
pub struct FaultyStore {
    inner: DynStore,
    fault: Arc<AtomicU8>,
}

impl FaultyStore {
    /// Wraps `inner`, healthy at first.
    pub fn new(inner: DynStore) -> Self {
        Self {
            inner,
            fault: Arc::default(),
        }
    }

    /// Makes later calls fail as `fault` says.
    pub fn set(&self, fault: Fault) {
        self.fault.store(fault.to_u8(), Ordering::SeqCst);
    }

    fn check(&self, write: bool) -> Result<(), StoreError> {
        match (Fault::from_u8(self.fault.load(Ordering::SeqCst)), write) {
            (Fault::ReadsDown, false) | (Fault::WritesDown, true) => Err(StoreError::unavailable(Injected)),
            (Fault::ReadsBroken, false) | (Fault::WritesBroken, true) => Err(StoreError::backend(Injected)),
            (Fault::AllTimeout, _) => Err(StoreError::Timeout),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl SessionStore for FaultyStore {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.check(false)?;
        self.inner.load(id).await
    }
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        self.check(false)?;
        self.inner.load_and_touch(id, expires).await
    }
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        self.check(true)?;
        self.inner.create(id, record).await
    }
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        self.check(true)?;
        self.inner.update(id, record, expected).await
    }
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.touch(id, expires).await
    }
    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.check(true)?;
        self.inner.destroy(id).await
    }
}

/// A store wrapper that remembers every id created through it, so a test on a shared backend
/// can delete what it wrote ([`cleanup`](Self::cleanup)).
pub struct TrackedStore<S> {
    inner: S,
    created: std::sync::Mutex<Vec<String>>,
}

impl<S: SessionStore> TrackedStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            created: std::sync::Mutex::default(),
        }
    }

    /// Destroys every record created through this wrapper.
    pub async fn cleanup(&self) {
        let ids = std::mem::take(&mut *self.created.lock().unwrap());
        for id in ids {
            self.inner.destroy(&id).await.expect("cleanup destroy");
        }
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for TrackedStore<S> {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.inner.load(id).await
    }
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        self.inner.load_and_touch(id, expires).await
    }
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        self.created.lock().unwrap().push(id.to_owned());
        self.inner.create(id, record).await
    }
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        self.inner.update(id, record, expected).await
    }
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        self.inner.touch(id, expires).await
    }
    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.inner.destroy(id).await
    }
}

/// One test app: a router behind a session layer, and handles on its store.
#[derive(Clone)]
pub struct Harness {
    /// The app (the routes of [`dispatch`] behind the layer).
    pub app: Router,
    /// The store as the layer sees it, counting calls.
    pub counting: CountingStore<DynStore>,
    /// The fault switch between the counter and the real store.
    pub faulty: FaultyStore,
    /// The real store, for reading and writing records behind the layer's back.
    pub raw: DynStore,
}

impl Harness {
    /// An app over `store`, with the layer's defaults plus [`SECRET`], then `configure`.
    pub fn new(store: DynStore, configure: impl FnOnce(SessionLayer) -> SessionLayer) -> Self {
        let faulty = FaultyStore::new(Arc::clone(&store));
        let counting = CountingStore::new(Arc::new(faulty.clone()) as DynStore);
        Self::with_layer(store, faulty, counting, configure)
    }

    /// A second app over the same store (and counters) with another configuration, as a
    /// redeployed server would be.
    pub fn reconfigured(&self, configure: impl FnOnce(SessionLayer) -> SessionLayer) -> Self {
        Self::with_layer(
            Arc::clone(&self.raw),
            self.faulty.clone(),
            self.counting.clone(),
            configure,
        )
    }

    fn with_layer(
        raw: DynStore,
        faulty: FaultyStore,
        counting: CountingStore<DynStore>,
        configure: impl FnOnce(SessionLayer) -> SessionLayer,
    ) -> Self {
        let layer = configure(SessionLayer::new(counting.clone()).secret(SECRET))
            .build()
            .expect("valid test configuration");
        let app = Router::new()
            .fallback(dispatch)
            .layer(layer)
            .layer(Extension(Arc::clone(&raw)));
        Self {
            app,
            counting,
            faulty,
            raw,
        }
    }

    /// Sends `GET path` with an optional `Cookie` header.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    /// Sends any request.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        send(&self.app, req).await
    }

    /// The store counts so far.
    pub fn counts(&self) -> StoreCounts {
        self.counting.counts()
    }

    /// Store calls that write (create, update, touch, destroy).
    pub fn writes(&self) -> u64 {
        let c = self.counts();
        c.create + c.update + c.touch + c.destroy
    }

    /// Store calls that read (load, load_and_touch).
    pub fn reads(&self) -> u64 {
        let c = self.counts();
        c.load + c.load_and_touch
    }

    /// The raw stored text under `id`, if live.
    pub async fn record(&self, id: &str) -> Option<String> {
        self.raw.load(id).await.unwrap().map(|r| r.data)
    }

    /// The stored record under `id`, which must exist.
    pub async fn full_record(&self, id: &str) -> Record {
        self.raw.load(id).await.unwrap().expect("record exists")
    }

    /// Replaces the stored text under `id` behind the layer's back (compare-and-set).
    pub async fn overwrite(&self, id: &str, data: &str) {
        self.try_overwrite(id, data).await.expect("store accepts the text");
    }

    /// As [`overwrite`](Self::overwrite), but a store that refuses the text (a JSON column
    /// refuses text that is not JSON) answers with its error.
    pub async fn try_overwrite(&self, id: &str, data: &str) -> Result<(), StoreError> {
        let current = self.full_record(id).await;
        let next = Record::new(data, current.expires);
        assert_eq!(self.raw.update(id, &next, &current).await?, Update::Done);
        Ok(())
    }
}

/// Sends a request through `app` with `oneshot`.
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.expect("infallible");
    Reply::read(res).await
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// Every `Set-Cookie` header, in order.
    pub set_cookies: Vec<String>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// Reads a response.
    pub async fn read(res: Response<Body>) -> Self {
        let status = res.status();
        let set_cookies = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ASCII Set-Cookie").to_owned())
            .collect();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        Self {
            status,
            set_cookies,
            body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
        }
    }

    /// The session's `Set-Cookie` (for the cookie `name`), if any; fails if there are two.
    pub fn session_cookie_named(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        let mut found = self.set_cookies.iter().filter(|c| c.starts_with(&prefix));
        let first = found.next().map(String::as_str);
        assert!(
            found.next().is_none(),
            "two session Set-Cookie headers: {:?}",
            self.set_cookies
        );
        first
    }

    /// The `connect.sid` `Set-Cookie`, if any.
    pub fn session_cookie(&self) -> Option<&str> {
        self.session_cookie_named("connect.sid")
    }

    /// The `name=value` pair to send back, from the `connect.sid` `Set-Cookie`, which must exist.
    pub fn cookie(&self) -> String {
        let sc = self
            .session_cookie()
            .unwrap_or_else(|| panic!("expected a Set-Cookie, got {self:?}"));
        pair(sc).to_owned()
    }

    /// The session id in the `connect.sid` `Set-Cookie`, which must exist.
    pub fn sid(&self) -> String {
        sid_of(&self.cookie())
    }

    /// Asserts a 200 with this body.
    #[track_caller]
    pub fn assert_ok(&self, body: &str) {
        assert_eq!((self.status, self.body.as_str()), (StatusCode::OK, body), "{self:?}");
    }

    /// Asserts there is no `Set-Cookie` at all.
    #[track_caller]
    pub fn assert_no_cookie(&self) {
        assert!(
            self.set_cookies.is_empty(),
            "unexpected Set-Cookie: {:?}",
            self.set_cookies
        );
    }
}

/// `name=value` of a `Set-Cookie` line.
pub fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

/// The session id inside a `name=value` cookie pair or a `Set-Cookie` line: percent-decoded,
/// without `s:` and the signature (read the way express's tests read it, independently of the
/// library's own parser).
pub fn sid_of(cookie: &str) -> String {
    let value = pair(cookie).split_once('=').expect("name=value").1;
    let decoded = percent_decode(value);
    let signed = decoded.strip_prefix("s:").expect("signed value");
    signed[..signed.rfind('.').expect("signature")].to_owned()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The value express-session puts in the cookie for `id` under [`SECRET`].
pub fn value_for(id: &str) -> String {
    cookie_value(id, SECRET.as_bytes())
}

/// A `name=value` cookie pair carrying `id`, signed with [`SECRET`].
pub fn cookie_for(id: &str) -> String {
    format!("connect.sid={}", value_for(id))
}

const IMF_FIXDATE: &[FormatItem<'static>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");

/// Formats as `Date.prototype.toUTCString` (what `Expires` carries).
pub fn http_date(t: OffsetDateTime) -> String {
    t.format(IMF_FIXDATE).unwrap()
}

/// The `Expires` instant of a `Set-Cookie` line, if it has one.
pub fn expires_of(set_cookie: &str) -> Option<OffsetDateTime> {
    let v = set_cookie.split("; ").find_map(|a| a.strip_prefix("Expires="))?;
    Some(
        time::PrimitiveDateTime::parse(v, IMF_FIXDATE)
            .expect("IMF-fixdate")
            .assume_utc(),
    )
}

/// Asserts `actual` is exactly `expected`, where `expected` may write the `Expires` attribute
/// as `Expires=<in N s>`: then the actual date must be now + N seconds (±3 s, for slow
/// machines) and everything else byte for byte.
#[track_caller]
pub fn assert_set_cookie(actual: &str, expected: &str) {
    let Some(start) = expected.find("Expires=<in ") else {
        assert_eq!(actual, expected);
        return;
    };
    let rest = &expected[start + "Expires=<in ".len()..];
    let secs: i64 = rest[..rest.find(" s>").expect("placeholder")].parse().unwrap();
    let exp = expires_of(actual).unwrap_or_else(|| panic!("no Expires in {actual}"));
    let want = OffsetDateTime::now_utc() + Duration::seconds(secs);
    assert!(
        (exp - want).abs() <= Duration::seconds(3),
        "Expires {exp} is not now + {secs} s in {actual}"
    );
    let normalized = expected.replacen(
        &format!("Expires=<in {secs} s>"),
        &format!("Expires={}", http_date(exp)),
        1,
    );
    assert_eq!(actual, normalized);
}

/// The JSON `cookie.expires` of a stored record, as text.
pub fn stored_expires(record: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(record).unwrap();
    v["cookie"]["expires"].as_str().map(str::to_owned)
}

/// The JSON `cookie.originalMaxAge` of a stored record.
pub fn stored_original_max_age(record: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(record).unwrap();
    v["cookie"]["originalMaxAge"].as_i64()
}

fn query(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
}

fn fail(status: StatusCode, e: impl std::fmt::Display) -> Response<Body> {
    (status, e.to_string()).into_response()
}

/// The test app's only handler: the last path segment names the operation, so any path under
/// any `cookie.path` reaches it. Without a session (outside the cookie path) it answers
/// `no session`. Operations:
///
/// - `noop` (or anything unknown): `ok`, touches nothing;
/// - `set`: `user = "bob"`; `get`: the user or `none`; `count`: increments `count`, answers it;
/// - `id`: the session id; `new`: `new` or `old`;
/// - `regenerate`: regenerates, answers the user after it; `login`: regenerate then `user = "alice"`;
/// - `destroy`, `touch`, `unset` (after `x = 1`), `count_unset` (count, unset at 2);
/// - `save` (`hit = true`, then `save()`), `reload_save` (`hit`, `reload`, `save`),
///   `save_then_set` (`hit`, `save`, then `user = "carol"`);
/// - `cookie_only`: only the cookie's max age changes (one day); `destroy_then_set`: destroy,
///   then try to write (answers `refused` when the write is refused);
/// - `reload`: changes `user` to `alice` in the store behind the session's back, then reloads;
///   answers `before/after`; `reload_missing`: deletes the record, then reloads (500 + message);
/// - `max_age?ms=N`: count + cookie max age N ms; `expires_null[_hit]`, `expires_epoch`;
/// - `cookie_attrs`: `httpOnly = false`, `secure = true`; `secure_false`: `secure = false`;
/// - `other_cookie`: `set` plus the handler's own `Set-Cookie: previous=cookieValue`;
/// - `big?kb=N`: stores a string of N KiB.
async fn dispatch(uri: Uri, Extension(raw): Extension<DynStore>, session: Option<Session>) -> Response<Body> {
    let Some(session) = session else {
        return "no session".into_response();
    };
    let op = uri.path().rsplit('/').next().unwrap_or("");
    let user = |s: &Session| s.get::<String>("user").unwrap_or_else(|| "none".into());
    let r: Result<String, express_session::SessionError> = async {
        Ok(match op {
            "set" => {
                session.insert("user", "bob")?;
                "set".into()
            }
            "get" => user(&session),
            "count" => session
                .update("count", |n: Option<u64>| n.unwrap_or(0) + 1)?
                .to_string(),
            "id" => session.id(),
            "new" => (if session.is_new() { "new" } else { "old" }).into(),
            "regenerate" => {
                session.regenerate().await?;
                user(&session)
            }
            "login" => {
                session.regenerate().await?;
                session.insert("user", "alice")?;
                "logged in".into()
            }
            "destroy" => {
                session.destroy().await?;
                "destroyed".into()
            }
            "clear" => {
                session.clear();
                "cleared".into()
            }
            "touch" => {
                session.touch();
                "touched".into()
            }
            "unset" => {
                session.insert("x", 1)?;
                session.unset();
                "unset".into()
            }
            "count_unset" => {
                let n = session.update("count", |n: Option<u64>| n.unwrap_or(0) + 1)?;
                if n == 2 {
                    session.unset();
                }
                n.to_string()
            }
            "save" => {
                session.insert("hit", true)?;
                session.save().await?;
                "saved".into()
            }
            "save_then_set" => {
                session.insert("hit", true)?;
                session.save().await?;
                session.insert("user", "carol")?;
                "saved".into()
            }
            "cookie_only" => {
                session.update_cookie(|c| c.set_max_age(Some(Duration::days(1))));
                "ok".into()
            }
            "destroy_then_set" => {
                session.destroy().await?;
                match session.insert("user", "mallory") {
                    Err(express_session::SessionError::Destroyed) => "refused".into(),
                    other => format!("{other:?}"),
                }
            }
            "reload_save" => {
                session.insert("hit", true)?;
                session.reload().await?;
                session.save().await?;
                "saved".into()
            }
            "reload" => {
                let id = session.id();
                let current = raw.load(&id).await?.expect("record to change");
                let changed = Record::new(current.data.replace("\"bob\"", "\"alice\""), current.expires);
                assert_eq!(raw.update(&id, &changed, &current).await?, Update::Done);
                let before = user(&session);
                session.reload().await?;
                format!("{before}/{}", user(&session))
            }
            "reload_missing" => {
                raw.destroy(&session.id()).await?;
                session.reload().await?;
                "reloaded".into()
            }
            "max_age" => {
                let ms: i64 = query(&uri, "ms").and_then(|v| v.parse().ok()).unwrap_or(0);
                let n = session.update("count", |n: Option<u64>| n.unwrap_or(0) + 1)?;
                session.update_cookie(|c| c.set_max_age(Some(Duration::milliseconds(ms))));
                n.to_string()
            }
            "expires_null" => {
                session.update_cookie(|c| c.set_expires(None));
                "ok".into()
            }
            "expires_null_hit" => {
                session.update_cookie(|c| c.set_expires(None));
                session.update("hit", |n: Option<u64>| n.unwrap_or(0) + 1)?;
                "ok".into()
            }
            "expires_epoch" => {
                session.update_cookie(|c| c.set_expires(Some(OffsetDateTime::UNIX_EPOCH)));
                "ok".into()
            }
            "cookie_attrs" => {
                session.update_cookie(|c| {
                    c.http_only = false;
                    c.secure = Some(true);
                });
                "ok".into()
            }
            "secure_false" => {
                session.update_cookie(|c| c.secure = Some(false));
                "ok".into()
            }
            "other_cookie" => {
                session.insert("user", "bob")?;
                "ok".into()
            }
            "big" => {
                let kb: usize = query(&uri, "kb").and_then(|v| v.parse().ok()).unwrap_or(1);
                session.insert("blob", "x".repeat(kb * 1024))?;
                "big".into()
            }
            _ => "ok".into(),
        })
    }
    .await;
    match r {
        Ok(body) if op == "other_cookie" => {
            let mut res = body.into_response();
            let own = HeaderValue::from_static("previous=cookieValue; Path=/");
            res.headers_mut().append(header::SET_COOKIE, own);
            res
        }
        Ok(body) => body.into_response(),
        Err(e @ express_session::SessionError::NotFound) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => e.into_response(),
    }
}
