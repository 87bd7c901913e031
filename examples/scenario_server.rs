//! The scenario server: one `SessionLayer` in front of a fixed set of routes, driven over HTTP
//! by a test runner that compares it with the same server written on Node's express-session
//! (`tests/interop/scenario_server.js`). It follows the scenario-server protocol, version 1
//! (`/work/shared/conformance/PROTOCOL.md`); `tests/scenarios.rs` is the runner.
//!
//! Run with `SESSION_CONFIG='{"secret":"s","store":{"type":"memory"}}' PORT=4000 cargo run
//! --example scenario_server` (add `--features redis` for `{"type":"redis",…}` stores).
//!
//! # Configuration
//!
//! `SESSION_CONFIG` keys map onto the layer's options with express's meaning of an **absent**
//! key, not our library's defaults: absent `resave` and `saveUninitialized` mean `true`, an
//! absent `cookie.sameSite` means no `SameSite` attribute. `trustProxy` (Express's
//! `trust proxy`) has no counterpart in tower; when `proxy` is absent it is emulated in front of
//! the layer by giving the request an `https` URI when the first `X-Forwarded-Proto` value,
//! trimmed, is exactly `https` (case-sensitive, as Express). `genid: {"fixed": id}` is a
//! `genid` closure. `unset` other than `keep`/`destroy`, `secret: []`, and any option our layer
//! refuses when it is built exit with status 2. A config without `secret` is accepted: our layer
//! cannot be built without one, so the server itself answers every request under `cookie.path`
//! with `500 secret option required for sessions`, as express-session does at request time.
//!
//! # Store counters
//!
//! `/_store/stats` counts, in express-session's terms, the store calls the middleware and the
//! session methods make. Our store trait has other verbs; the mapping is:
//!
//! | our call | counted as |
//! |---|---|
//! | `load` | `get` |
//! | `load_and_touch` | `get`, then `touch` if the record was found |
//! | `create`, `update` | `set` (each attempt, conflict retries included) |
//! | `touch` | `touch` |
//! | `destroy` | `destroy` |
//!
//! `delayMs` delays every `create`/`update` (before an injected fault, so failing writes are
//! delayed too). `/_store/fail` arms faults per express operation (`get` fails `load` and the
//! load half of `load_and_touch`; `code=ENOENT` on `get` means "not found"). The admin routes
//! use the store directly and count nothing.
//!
//! # Where we differ from express-session on purpose
//!
//! - **Store disconnected**: express runs the request without a session (fail-open); our
//!   harness store answers every call with [`StoreError::Unavailable`] and the layer answers
//!   `503` whenever it needs the store (fail closed). Requests that need no store call still run.
//!   These calls are counted: the middleware did make them.
//! - **Store errors in the middleware** (load, the end-of-request save or touch) give an opaque
//!   `500` (`503` for unavailability) with an empty body; express puts the error's message in the
//!   body. Errors returned to a handler by a session method are shown with their message here,
//!   as an Express error handler would.
//! - **`destroy()`** also sends a `Set-Cookie` that clears the cookie; express sends none.
//! - **A corrupt record** (no `cookie` object) is discarded and a new session started; express
//!   fails the request with `500`.
//! - **The save finishes before the response head is sent**; express sends the head first.
//! - **`touch` on load**: with `resave: false`, the store touch of an unmodified session happens
//!   in the same round trip as the load, so a request that then modifies the session counts a
//!   `touch` as well as its `set`.
//! - **A cookie-only change** (`/set-maxage`, `/cookie-attr` without a data change, with
//!   `resave: false`) is not stored: our `touch` only moves the expiry, as connect-redis's
//!   `EXPIRE` does, while express's MemoryStore `touch` rewrites the stored cookie.
//! - **Concurrent requests** of one session that change different keys both keep their
//!   changes (our save merges); with express the last writer overwrites the whole session.
//! - **`regenerate()` of a session that was never stored** (it came without a cookie) makes no
//!   store call for the old id; express always calls `destroy` for it.
//! - **Duplicated session cookies**: the first one whose signature verifies wins; express takes
//!   the first occurrence even when it is invalid.
//! - **Options our layer refuses at build time** (`sameSite: "none"` without `secure`,
//!   `__Host-`/`__Secure-` names without their attributes) make the server exit; an unknown
//!   `cookie.priority` is ignored (express fails to serialize the cookie and sends none).

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::SeqCst},
        Arc, Mutex,
    },
    time::Duration as StdDuration,
};

use async_trait::async_trait;
use axum::{body::Body, extract::Request, response::Response, routing::any, Router};
use express_session::{
    codec::iso_date,
    time::{format_description::well_known::Rfc3339, Duration, OffsetDateTime},
    MemoryStore, Priority, Record, SameSite, Secure, Session, SessionCookie, SessionError, SessionLayer, SessionStore,
    StoreError, Unset, Update,
};
use http::{header, uri::Scheme, StatusCode, Uri};
use serde_json::{json, Value};
use tower::{service_fn, Layer};

const MAX_WAIT_MS: u64 = 10_000;

fn die(message: &str) -> ! {
    eprintln!("scenario_server: {message}");
    std::process::exit(2)
}

// --- the store behind the middleware, with counters, delays and faults -----------------------

/// The backends the protocol names, with the admin operations our `SessionStore` trait lacks.
enum Backend {
    Memory(MemoryStore),
    #[cfg(feature = "redis")]
    Redis(express_session::store::redis::RedisStore),
}

impl Backend {
    fn store(&self) -> &dyn SessionStore {
        match self {
            Self::Memory(s) => s,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s,
        }
    }

    async fn length(&self) -> Result<usize, StoreError> {
        match self {
            Self::Memory(s) => {
                s.sweep();
                Ok(s.len())
            }
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.len().await,
        }
    }

    async fn clear(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.clear(),
            #[cfg(feature = "redis")]
            Self::Redis(s) => {
                s.clear().await?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Op {
    Get,
    Set,
    Destroy,
    Touch,
}

impl Op {
    const ALL: [Op; 4] = [Op::Get, Op::Set, Op::Destroy, Op::Touch];

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == s)
    }

    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Destroy => "destroy",
            Op::Touch => "touch",
        }
    }
}

struct Fault {
    remaining: u64,
    message: String,
    code: Option<String>,
}

/// The injected error: its message is what `Display` shows, as `Error(M)` in Node.
#[derive(Debug)]
struct Injected(String);

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Injected {}

/// What an armed fault does to a call.
enum Outcome {
    Proceed,
    NotFound,
    Fail(StoreError),
}

struct Harness {
    backend: Backend,
    counts: [AtomicU64; 4],
    faults: Mutex<HashMap<Op, Fault>>,
    connected: AtomicBool,
    write_delay: Option<StdDuration>,
}

impl Harness {
    fn faults(&self) -> std::sync::MutexGuard<'_, HashMap<Op, Fault>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a call, applies the write delay, the connection state and any armed fault.
    async fn begin(&self, op: Op) -> Outcome {
        self.counts[op as usize].fetch_add(1, SeqCst);
        if op == Op::Set {
            if let Some(d) = self.write_delay {
                tokio::time::sleep(d).await;
            }
        }
        if !self.connected.load(SeqCst) {
            return Outcome::Fail(StoreError::unavailable(Injected("store disconnected".into())));
        }
        let mut faults = self.faults();
        let Some(fault) = faults.get_mut(&op).filter(|f| f.remaining > 0) else {
            return Outcome::Proceed;
        };
        fault.remaining -= 1;
        if op == Op::Get && fault.code.as_deref() == Some("ENOENT") {
            return Outcome::NotFound;
        }
        Outcome::Fail(StoreError::backend(Injected(fault.message.clone())))
    }

    fn stats(&self) -> Value {
        let mut o = serde_json::Map::new();
        for op in Op::ALL {
            o.insert(op.name().into(), self.counts[op as usize].load(SeqCst).into());
        }
        Value::Object(o)
    }

    fn reset_stats(&self) {
        for c in &self.counts {
            c.store(0, SeqCst);
        }
    }
}

#[async_trait]
impl SessionStore for Harness {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        match self.begin(Op::Get).await {
            Outcome::Proceed => self.backend.store().load(id).await,
            Outcome::NotFound => Ok(None),
            Outcome::Fail(e) => Err(e),
        }
    }

    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        let Some(mut record) = self.load(id).await? else {
            return Ok(None);
        };
        self.touch(id, expires).await?;
        record.expires = expires;
        Ok(Some(record))
    }

    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        match self.begin(Op::Set).await {
            Outcome::Fail(e) => Err(e),
            _ => self.backend.store().create(id, record).await,
        }
    }

    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        match self.begin(Op::Set).await {
            Outcome::Fail(e) => Err(e),
            _ => self.backend.store().update(id, record, expected).await,
        }
    }

    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        match self.begin(Op::Touch).await {
            Outcome::Fail(e) => Err(e),
            _ => self.backend.store().touch(id, expires).await,
        }
    }

    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        match self.begin(Op::Destroy).await {
            Outcome::Fail(e) => Err(e),
            _ => self.backend.store().destroy(id).await,
        }
    }
}

// --- configuration ---------------------------------------------------------------------------

struct App {
    harness: Arc<Harness>,
    cookie_path: String,
    /// Emulate Express's `trust proxy` (only when `proxy` is absent).
    trust_proxy: bool,
}

fn bool_key(cfg: &Value, key: &str) -> Option<bool> {
    match cfg.get(key) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => die(&format!("{key} must be a boolean, not {other}")),
    }
}

fn same_site(v: &Value) -> Option<SameSite> {
    match v {
        Value::Bool(true) => Some(SameSite::Strict),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "strict" => Some(SameSite::Strict),
            "lax" => Some(SameSite::Lax),
            "none" => Some(SameSite::None),
            "auto" => Some(SameSite::Auto),
            _ => None,
        },
        _ => None,
    }
}

fn priority(v: &str) -> Option<Priority> {
    match v.to_ascii_lowercase().as_str() {
        "low" => Some(Priority::Low),
        "medium" => Some(Priority::Medium),
        "high" => Some(Priority::High),
        _ => None,
    }
}

/// Applies `SESSION_CONFIG` to a layer; exits on options express-session would reject too.
fn configure(cfg: &Value, mut layer: SessionLayer) -> SessionLayer {
    if let Some(name) = cfg.get("name").and_then(Value::as_str) {
        layer = layer.name(name);
    }
    match cfg.get("secret") {
        Some(Value::String(s)) => layer = layer.secret(s),
        Some(Value::Array(list)) if list.is_empty() => die("secret option array must contain one or more strings"),
        Some(Value::Array(list)) => {
            let secrets: Vec<&str> = list
                .iter()
                .map(|s| s.as_str().unwrap_or_else(|| die("secrets must be strings")))
                .collect();
            layer = layer.secrets(secrets);
        }
        Some(other) => die(&format!("unsupported secret {other}")),
        None => {}
    }
    // express-session's (deprecated) defaults for absent keys.
    layer = layer
        .resave(bool_key(cfg, "resave").unwrap_or(true))
        .save_uninitialized(bool_key(cfg, "saveUninitialized").unwrap_or(true))
        .rolling(bool_key(cfg, "rolling").unwrap_or(false));
    match cfg.get("unset") {
        None => {}
        Some(v) if v == "keep" => layer = layer.unset(Unset::Keep),
        Some(v) if v == "destroy" => layer = layer.unset(Unset::Destroy),
        Some(other) => die(&format!("unset option must be \"destroy\" or \"keep\", not {other}")),
    }
    if let Some(proxy) = bool_key(cfg, "proxy") {
        layer = layer.proxy(proxy);
    }
    if let Some(fixed) = cfg.get("genid").and_then(|g| g.get("fixed")) {
        let fixed = match fixed {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        layer = layer.genid(move || fixed.clone());
    }
    let cookie = cfg.get("cookie").cloned().unwrap_or(json!({}));
    // Express leaves SameSite out unless configured; our layer's default is Lax.
    layer = layer.same_site(cookie.get("sameSite").and_then(same_site));
    if let Some(path) = cookie.get("path").and_then(Value::as_str) {
        layer = layer.path(path);
    }
    if let Some(domain) = cookie.get("domain").and_then(Value::as_str) {
        layer = layer.domain(domain);
    }
    if let Some(h) = cookie.get("httpOnly").and_then(Value::as_bool) {
        layer = layer.http_only(h);
    }
    match cookie.get("secure") {
        Some(Value::Bool(true)) => layer = layer.secure(Secure::Always),
        Some(Value::Bool(false)) => layer = layer.secure(Secure::Never),
        Some(Value::String(s)) if s == "auto" => layer = layer.secure(Secure::Auto),
        _ => {}
    }
    if let Some(ms) = cookie.get("maxAge").and_then(Value::as_i64) {
        layer = layer.max_age(Duration::milliseconds(ms));
    }
    if let Some(p) = cookie.get("partitioned").and_then(Value::as_bool) {
        layer = layer.partitioned(p);
    }
    if let Some(p) = cookie.get("priority").and_then(Value::as_str) {
        match priority(p) {
            Some(p) => layer = layer.priority(p),
            None => eprintln!("scenario_server: unknown cookie.priority {p:?} ignored"),
        }
    }
    layer
}

async fn backend(store_cfg: &Value) -> Backend {
    match store_cfg.get("type").and_then(Value::as_str) {
        Some("memory") => Backend::Memory(MemoryStore::new()),
        #[cfg(feature = "redis")]
        Some("redis") => {
            let url = store_cfg
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or("redis://127.0.0.1:6379");
            let prefix = store_cfg.get("prefix").and_then(Value::as_str).unwrap_or("sess:");
            match express_session::store::redis::RedisStore::builder()
                .prefix(prefix)
                .connect(url)
                .await
            {
                Ok(store) => Backend::Redis(store),
                Err(e) => die(&format!("cannot connect to redis: {e}")),
            }
        }
        other => die(&format!(
            "unsupported store {other:?} (redis needs the `redis` feature)"
        )),
    }
}

// --- HTTP helpers ------------------------------------------------------------------------------

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(body.into()))
        .expect("valid response")
}

fn ok(body: impl Into<String>) -> Response {
    text(StatusCode::OK, body)
}

fn json_response(v: &Value) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .expect("valid response")
}

fn query(uri: &Uri) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned()
    };
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// An error a session method returned to the handler, as an Express error handler shows it:
/// the status, and the innermost message (for an injected store fault, its own message).
/// A route that failed: its status and text body.
struct Fail(StatusCode, String);

impl From<Fail> for Response {
    fn from(Fail(status, message): Fail) -> Self {
        text(status, message)
    }
}

fn method_error(e: &SessionError) -> Fail {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = s.to_string();
        source = s.source();
    }
    Fail(e.status(), message)
}

fn cookie_json(c: &SessionCookie) -> Value {
    let same_site = match c.same_site {
        Some(SameSite::Strict) => json!("strict"),
        Some(SameSite::Lax) => json!("lax"),
        Some(SameSite::None) => json!("none"),
        _ => Value::Null,
    };
    let priority = match c.priority {
        Some(Priority::Low) => json!("low"),
        Some(Priority::Medium) => json!("medium"),
        Some(Priority::High) => json!("high"),
        _ => Value::Null,
    };
    json!({
        "maxAge": c.max_age().map(|d| d.whole_milliseconds() as i64),
        "originalMaxAge": c.original_max_age().map(|d| d.whole_milliseconds() as i64),
        "expires": c.expires().map(iso_date),
        "path": c.path,
        "domain": c.domain,
        "httpOnly": c.http_only,
        "secure": c.secure == Some(true),
        "sameSite": same_site,
        "partitioned": c.partitioned == Some(true),
        "priority": priority,
    })
}

/// The optional `key` + `val`/`json` of a route, set on the session.
fn set_from_query(session: &Session, q: &HashMap<String, String>) -> Result<(), Fail> {
    let Some(key) = q.get("key") else {
        return Ok(());
    };
    let value = match (q.get("json"), q.get("val")) {
        (Some(j), _) => {
            serde_json::from_str(j).map_err(|e| Fail(StatusCode::INTERNAL_SERVER_ERROR, format!("bad json: {e}")))?
        }
        (None, Some(v)) => Value::String(v.clone()),
        (None, None) => return Ok(()),
    };
    session.insert_value(key, value).map_err(|e| method_error(&e))
}

fn parse_attr(v: &str) -> Value {
    serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()))
}

// --- the session routes ------------------------------------------------------------------------

async fn session_route(req: Request) -> Response {
    let q = query(req.uri());
    let route = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
    let session = req.extensions().get::<Session>().cloned();
    if let Some(ms) = q.get("wait").and_then(|w| w.parse::<u64>().ok()) {
        tokio::time::sleep(StdDuration::from_millis(ms.min(MAX_WAIT_MS))).await;
    }
    match route.as_str() {
        "" | "noop" => return ok("ok"),
        "other-cookie" => {
            let cookie = format!(
                "{}={}; Path=/; HttpOnly",
                q.get("name").map_or("", String::as_str),
                q.get("val").map_or("", String::as_str)
            );
            let mut res = ok("ok");
            match http::HeaderValue::try_from(cookie) {
                Ok(v) => {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
                Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "bad cookie"),
            }
            return res;
        }
        _ => {}
    }
    const SESSION_ROUTES: &[&str] = &[
        "set",
        "get",
        "del",
        "readd",
        "inc",
        "data",
        "keys",
        "id",
        "regenerate",
        "destroy",
        "save",
        "reload",
        "touch",
        "cookie",
        "set-maxage",
        "set-expires",
        "cookie-attr",
        "null-session",
        "error",
    ];
    if !SESSION_ROUTES.contains(&route.as_str()) {
        return text(StatusCode::NOT_FOUND, "unknown route");
    }
    let Some(session) = session else {
        return ok("no-session");
    };
    match session_action(&route, &session, &q).await {
        Ok(res) => res,
        Err(fail) => fail.into(),
    }
}

async fn session_action(route: &str, session: &Session, q: &HashMap<String, String>) -> Result<Response, Fail> {
    let key = || q.get("key").cloned().unwrap_or_default();
    let data = |s: &Session| Value::Object(s.data());
    Ok(match route {
        "set" => {
            set_from_query(session, q)?;
            ok("ok")
        }
        "get" => match session.get_value(&key()) {
            None => ok(""),
            Some(Value::String(s)) => ok(s),
            Some(v) => ok(v.to_string()),
        },
        "del" => {
            session.remove(&key());
            ok("ok")
        }
        "readd" => {
            let k = key();
            if let Some(v) = session.remove(&k) {
                session.insert_value(&k, v).map_err(|e| method_error(&e))?;
            }
            ok("ok")
        }
        "inc" => {
            let k = q.get("key").cloned().unwrap_or_else(|| "count".into());
            let n = session
                .update(&k, |n: Option<i64>| n.unwrap_or(0) + 1)
                .map_err(|e| method_error(&e))?;
            ok(n.to_string())
        }
        "data" => json_response(&data(session)),
        "keys" => {
            let mut keys = session.keys();
            keys.push("cookie".into());
            keys.sort();
            ok(keys.join(","))
        }
        "id" => ok(session.id()),
        "regenerate" => {
            session.regenerate().await.map_err(|e| method_error(&e))?;
            set_from_query(session, q)?;
            ok(session.id())
        }
        "destroy" => {
            session.destroy().await.map_err(|e| method_error(&e))?;
            ok("ok")
        }
        "save" => {
            set_from_query(session, q)?;
            session.save().await.map_err(|e| method_error(&e))?;
            ok("saved")
        }
        "reload" => {
            set_from_query(session, q)?;
            session.reload().await.map_err(|e| method_error(&e))?;
            if q.get("save").map(String::as_str) == Some("1") {
                session.save().await.map_err(|e| method_error(&e))?;
            }
            json_response(&data(session))
        }
        "touch" => {
            session.touch();
            json_response(&cookie_json(&session.cookie()))
        }
        "cookie" => json_response(&cookie_json(&session.cookie())),
        "set-maxage" | "set-expires" => {
            let ms = match q.get("ms").map(String::as_str) {
                None | Some("null") => None,
                Some(n) => Some(
                    n.parse::<i64>()
                        .map_err(|_| Fail(StatusCode::INTERNAL_SERVER_ERROR, "bad ms".into()))?,
                ),
            };
            if route == "set-maxage" {
                session.update_cookie(|c| c.set_max_age(ms.map(Duration::milliseconds)));
            } else {
                let at = ms.and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok());
                session.update_cookie(|c| c.set_expires(at));
            }
            set_from_query(session, q)?;
            ok("ok")
        }
        "cookie-attr" => {
            session.update_cookie(|c| {
                for (k, v) in q {
                    let v = parse_attr(v);
                    match k.as_str() {
                        "httpOnly" => c.http_only = v.as_bool().unwrap_or(c.http_only),
                        "secure" => c.secure = v.as_bool(),
                        "sameSite" => c.same_site = same_site(&v).filter(|s| *s != SameSite::Auto),
                        "domain" => c.domain = v.as_str().map(str::to_owned),
                        "path" => c.path = v.as_str().map_or_else(|| c.path.clone(), str::to_owned),
                        "partitioned" => c.partitioned = v.as_bool(),
                        "priority" => c.priority = v.as_str().and_then(priority),
                        _ => {}
                    }
                }
            });
            ok("ok")
        }
        "null-session" => {
            session.unset();
            ok("ok")
        }
        "error" => {
            set_from_query(session, q)?;
            text(StatusCode::INTERNAL_SERVER_ERROR, "boom")
        }
        _ => text(StatusCode::NOT_FOUND, "unknown route"),
    })
}

// --- the admin routes ------------------------------------------------------------------------

async fn admin(app: Arc<App>, req: Request) -> Response {
    let q = query(req.uri());
    let h = &app.harness;
    let store = h.backend.store();
    let sid = q.get("sid").cloned().unwrap_or_default();
    let op = req.uri().path().trim_start_matches("/_store/").to_owned();
    let failed = |e: StoreError| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    match op.as_str() {
        "stats" => json_response(&h.stats()),
        "reset" => {
            h.reset_stats();
            h.faults().clear();
            h.connected.store(true, SeqCst);
            match h.backend.clear().await {
                Ok(()) => ok("ok"),
                Err(e) => failed(e),
            }
        }
        "reset-stats" => {
            h.reset_stats();
            ok("ok")
        }
        "get" => match store.load(&sid).await {
            Ok(Some(record)) => Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(record.data))
                .expect("valid response"),
            Ok(None) => text(StatusCode::NOT_FOUND, "not found"),
            Err(e) => failed(e),
        },
        "put" => {
            let Some(v) = q.get("json").and_then(|j| serde_json::from_str::<Value>(j).ok()) else {
                return text(StatusCode::BAD_REQUEST, "bad json");
            };
            let expires = v
                .get("cookie")
                .and_then(|c| c.get("expires"))
                .and_then(Value::as_str)
                .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok());
            let record = Record::new(v.to_string(), expires);
            let put = async {
                store.destroy(&sid).await?;
                store.create(&sid, &record).await
            };
            match put.await {
                Ok(_) => ok("ok"),
                Err(e) => failed(e),
            }
        }
        "destroy" => match store.destroy(&sid).await {
            Ok(()) => ok("ok"),
            Err(e) => failed(e),
        },
        "length" => match h.backend.length().await {
            Ok(n) => ok(n.to_string()),
            Err(e) => failed(e),
        },
        "clear" => match h.backend.clear().await {
            Ok(()) => ok("ok"),
            Err(e) => failed(e),
        },
        "fail" => {
            let Some(op) = q.get("op").and_then(|o| Op::parse(o)) else {
                return text(StatusCode::BAD_REQUEST, "bad op");
            };
            let fault = Fault {
                remaining: q.get("count").and_then(|c| c.parse().ok()).unwrap_or(1),
                message: q.get("message").cloned().unwrap_or_else(|| "injected".into()),
                code: q.get("code").cloned(),
            };
            h.faults().insert(op, fault);
            ok("ok")
        }
        "disconnect" => {
            h.connected.store(false, SeqCst);
            ok("ok")
        }
        "connect" => {
            h.connected.store(true, SeqCst);
            ok("ok")
        }
        _ => text(StatusCode::NOT_FOUND, "unknown route"),
    }
}

/// Express's `trust proxy`: the request counts as secure when the first `X-Forwarded-Proto`
/// value, trimmed, is exactly `https`. Our layer's `proxy(false)` trusts the URI's scheme, so
/// the request gets an `https` URI.
fn apply_trust_proxy(req: &mut Request) {
    let secure = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim() == "https");
    if !secure {
        return;
    }
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(Scheme::HTTPS);
    parts.authority = Some(http::uri::Authority::from_static("127.0.0.1"));
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

#[tokio::main]
async fn main() {
    let raw = std::env::var("SESSION_CONFIG").unwrap_or_else(|_| die("SESSION_CONFIG is not set"));
    let cfg: Value = serde_json::from_str(&raw).unwrap_or_else(|e| die(&format!("SESSION_CONFIG is not JSON: {e}")));
    if !cfg.is_object() {
        die("SESSION_CONFIG must be a JSON object");
    }
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| die("PORT is not set"));
    let store_cfg = cfg.get("store").cloned().unwrap_or(json!({"type": "memory"}));
    let write_delay = store_cfg
        .get("delayMs")
        .and_then(Value::as_u64)
        .filter(|&ms| ms > 0)
        .map(StdDuration::from_millis);
    let harness = Arc::new(Harness {
        backend: backend(&store_cfg).await,
        counts: Default::default(),
        faults: Mutex::default(),
        connected: AtomicBool::new(true),
        write_delay,
    });
    let layer = configure(&cfg, SessionLayer::with_store(harness.clone()));
    let has_secret = cfg.get("secret").is_some();
    let layer = if has_secret {
        Some(
            layer
                .build()
                .unwrap_or_else(|e| die(&format!("session options rejected: {e}"))),
        )
    } else {
        None
    };
    let app = Arc::new(App {
        harness,
        cookie_path: cfg
            .get("cookie")
            .and_then(|c| c.get("path"))
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_owned(),
        trust_proxy: cfg.get("proxy").is_none() && bool_key(&cfg, "trustProxy") == Some(true),
    });

    let routes = service_fn(|req: Request| async move { Ok::<_, Infallible>(session_route(req).await) });
    let sessions = layer.map(|l| l.layer(routes));
    let front = {
        let app = Arc::clone(&app);
        service_fn(move |mut req: Request| {
            let app = Arc::clone(&app);
            let sessions = sessions.clone();
            async move {
                if app.trust_proxy {
                    apply_trust_proxy(&mut req);
                }
                let res = match sessions {
                    Some(mut svc) => tower::Service::call(&mut svc, req).await?,
                    None if req.uri().path().starts_with(&app.cookie_path) => {
                        text(StatusCode::INTERNAL_SERVER_ERROR, "secret option required for sessions")
                    }
                    None => session_route(req).await,
                };
                Ok::<_, Infallible>(res)
            }
        })
    };
    let admin_app = Arc::clone(&app);
    let router = Router::new()
        .route(
            "/_store/{op}",
            any(move |req: Request| {
                let app = Arc::clone(&admin_app);
                async move { admin(app, req).await }
            }),
        )
        .fallback_service(front);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| die(&format!("cannot listen on 127.0.0.1:{port}: {e}")));
    eprintln!("scenario_server: listening on 127.0.0.1:{port}");
    if let Err(e) = axum::serve(listener, router).await {
        die(&format!("server failed: {e}"));
    }
}
