//! What the fuzz targets share: a real `SessionLayer` over a `CountingStore<MemoryStore>` holding
//! one session, a reference reading of `Cookie` headers to check the layer against, and the
//! record checks.
//!
//! Everything goes through the crate's public API, as an application's requests and a store's
//! records do.

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
};

use express_session::{
    cookie::{cookie_value, sign, unsign},
    CountingStore, MemoryStore, Record, Session, SessionLayer, SessionStore, MAX_COOKIE_VALUE_LEN,
};
use http::{header, HeaderValue, Request, Response, StatusCode};
use tower::{util::BoxCloneSyncService, Layer, ServiceExt};

mod record_check;

/// The session cookie's name (express's default).
pub const NAME: &str = "connect.sid";
/// The id of the one stored session.
pub const STORED_ID: &str = "fuzzStoredSessionId0123456789abcd";
/// An id that is validly signed (with the retired secret) but has no session in the store.
pub const UNKNOWN_ID: &str = "fuzzUnknownSessionId0123456789abc";
/// The current secret, which signs new cookies.
pub const SECRET: &[u8] = b"fuzz secret";
/// A retired secret, still accepted.
pub const OLD_SECRET: &[u8] = b"old fuzz secret";
/// The stored session's record.
pub const STORED_RECORD: &str =
    r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"fuzz"}"#;

/// Both secrets, as the layer holds them.
pub fn secrets() -> Vec<Vec<u8>> {
    vec![SECRET.to_vec(), OLD_SECRET.to_vec()]
}

/// The cookie value (`encodeURIComponent("s:" + signed)`) for the stored session, or for the
/// unknown one.
pub fn signed_value(stored: bool) -> String {
    if stored {
        cookie_value(STORED_ID, SECRET)
    } else {
        cookie_value(UNKNOWN_ID, OLD_SECRET)
    }
}

/// `s:` + the signed id, not percent-encoded.
pub fn raw_signed_value(stored: bool) -> String {
    if stored {
        format!("s:{}", sign(STORED_ID, SECRET))
    } else {
        format!("s:{}", sign(UNKNOWN_ID, OLD_SECRET))
    }
}

type Service = BoxCloneSyncService<Request<String>, Response<String>, Infallible>;

/// The layer under test, its store and a runtime to drive it, made once per process.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    /// The store, with its call counters.
    pub store: CountingStore<Arc<MemoryStore>>,
    service: Service,
}

/// The handler behind the layer: answers `new` or `loaded`, then the stored `user` if any; on
/// `/write` it also changes the session, so the layer saves it.
async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
    let session = req
        .extensions()
        .get::<Session>()
        .cloned()
        .expect("the layer is installed");
    if req.uri().path() == "/write" {
        // Always a change, whatever the record held.
        let flipped = !session.get::<bool>("written").unwrap_or(false);
        session.insert("written", flipped).expect("a live session");
    }
    let user = session.get::<String>("user").unwrap_or_default();
    let state = if session.is_new() { "new" } else { "loaded" };
    Ok(Response::new(format!("{state} {user}")))
}

/// The process's harness.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let store = CountingStore::new(Arc::new(MemoryStore::new()));
        let layer = SessionLayer::new(store.clone())
            .secrets([SECRET, OLD_SECRET])
            .build()
            .expect("a valid configuration");
        let service = BoxCloneSyncService::new(layer.layer(tower::service_fn(handler)));
        Harness {
            runtime,
            store,
            service,
        }
    })
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The handler's body: `new …` or `loaded …`.
    pub body: String,
    /// How many `Set-Cookie` fields came back.
    pub set_cookies: usize,
}

impl Harness {
    /// Stores `text` as the record of [`STORED_ID`], replacing whatever was there, and resets the
    /// counters.
    pub fn store_record(&self, text: &str) {
        self.runtime.block_on(async {
            let inner = self.store.inner();
            inner.destroy(STORED_ID).await.expect("memory store");
            assert!(inner
                .create(STORED_ID, &Record::new(text, None))
                .await
                .expect("memory store"));
        });
        self.store.reset();
    }

    /// The stored text of [`STORED_ID`], read straight from the memory store.
    pub fn stored_record(&self) -> Option<String> {
        let record = self.runtime.block_on(self.store.inner().load(STORED_ID));
        record.expect("memory store").map(|r| r.data)
    }

    /// Sends `GET path` with these `Cookie` fields; fields that are not valid header bytes
    /// (control characters) are left out, as no HTTP server would pass them on.
    pub fn get(&self, path: &str, fields: &[Vec<u8>]) -> Reply {
        let mut req = Request::get(path);
        for f in fields {
            if let Ok(v) = HeaderValue::from_bytes(f) {
                req = req.header(header::COOKIE, v);
            }
        }
        let req = req.body(String::new()).expect("a valid request");
        let res = self
            .runtime
            .block_on(self.service.clone().oneshot(req))
            .unwrap_or_else(|e| match e {});
        Reply {
            status: res.status(),
            set_cookies: res.headers().get_all(header::SET_COOKIE).iter().count(),
            body: res.into_body(),
        }
    }
}

/// The fields as the layer sees them: those that are valid header values.
pub fn valid_fields(fields: &[Vec<u8>]) -> Vec<Vec<u8>> {
    fields
        .iter()
        .filter(|f| HeaderValue::from_bytes(f).is_ok())
        .cloned()
        .collect()
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let Some(rest) = s.strip_prefix(b" ").or_else(|| s.strip_prefix(b"\t")) {
        s = rest;
    }
    while let Some(rest) = s.strip_suffix(b" ").or_else(|| s.strip_suffix(b"\t")) {
        s = rest;
    }
    s
}

/// JavaScript's `decodeURIComponent`: `None` where it throws.
fn js_decode_uri_component(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// The reference reading of `Cookie` fields, written apart from the crate's: every
/// `name=value` pair of every field in order; a pair named [`NAME`] whose value (at most
/// [`MAX_COOKIE_VALUE_LEN`] bytes, unquoted, percent-decoded as the `cookie` npm package does)
/// is `s:` + a non-empty id signed by one of `secrets` gives that id; the first such wins.
pub fn reference_session_id(fields: &[Vec<u8>], secrets: &[Vec<u8>]) -> Option<String> {
    fields.iter().flat_map(|f| f.split(|&b| b == b';')).find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (name, value) = (trim(&pair[..eq]), trim(&pair[eq + 1..]));
        if name != NAME.as_bytes() || value.is_empty() || value.len() > MAX_COOKIE_VALUE_LEN {
            return None;
        }
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        };
        let value = std::str::from_utf8(value).ok()?;
        let value = match value.contains('%') {
            true => js_decode_uri_component(value).unwrap_or_else(|| value.to_owned()),
            false => value.to_owned(),
        };
        let id = unsign(value.strip_prefix("s:")?, secrets)?;
        (!id.is_empty()).then(|| id.to_owned())
    })
}

/// Checks one record text against `decode` (see [`record_check`]); returns whether it decoded.
pub fn check_record(text: &str, max_len: usize) -> bool {
    record_check::check_record(text, max_len)
}
