//! Fuzzing in `cargo test`: proptest properties over the parsers that see untrusted input, the
//! same properties the cargo-fuzz targets in `fuzz/` check for longer (see the README's
//! "Fuzzing").
//!
//! - `Cookie` request headers, as bytes in one or several fields, through a real
//!   `SessionLayer` over a `CountingStore<MemoryStore>`: never a panic or a 5xx, never a store
//!   call unless a value is validly signed, and a validly signed cookie is found whatever noise
//!   surrounds it (security.md §3, rows 2–13 and 26).
//! - `cookie::unsign`: it accepts exactly the values one of its secrets signed.
//! - A stored record's JSON through `codec::decode`: never a panic, on arbitrary text and on
//!   valid records with changes; whatever decodes re-encodes with `codec::encode` to a record that
//!   decodes to the same again, and encoding is then a fixed point.

use std::{convert::Infallible, sync::Arc};

use express_session::{
    cookie::{cookie_value, sign, unsign},
    CountingStore, MemoryStore, Record, Session, SessionLayer, SessionStore, DEFAULT_MAX_RECORD_SIZE,
};
use http::{header, HeaderValue, Request, Response, StatusCode};
use proptest::prelude::*;
use serde_json::Value;
use tower::{Layer, ServiceExt};

#[path = "../fuzz/src/record_check.rs"]
mod record_check;
use record_check::check_record;

const NAME: &str = "connect.sid";
const SECRET: &[u8] = b"fuzz props secret";
const OLD_SECRET: &[u8] = b"retired fuzz props secret";
const STORED_ID: &str = "propStoredSessionId0123456789abcd";
/// Signed with the retired secret, never stored.
const UNKNOWN_ID: &str = "propUnknownSessionId0123456789abc";
const STORED_RECORD: &str =
    r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"prop"}"#;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
    let session = req
        .extensions()
        .get::<Session>()
        .cloned()
        .expect("the layer is installed");
    let state = if session.is_new() { "new" } else { "loaded" };
    let user = session.get::<String>("user").unwrap_or_default();
    Ok(Response::new(format!("{state} {user}")))
}

/// What one request got, and the store calls it made.
#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    body: String,
    set_cookies: usize,
    loads: u64,
    calls: u64,
}

/// Sends `GET /` with these `Cookie` fields through a fresh layer whose store holds
/// [`STORED_ID`]'s session.
fn send(fields: &[Vec<u8>]) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let store = CountingStore::new(Arc::new(MemoryStore::new()));
        let created = store.inner().create(STORED_ID, &Record::new(STORED_RECORD, None)).await;
        assert!(created.expect("memory store"));
        let layer = SessionLayer::new(store.clone())
            .secrets([SECRET, OLD_SECRET])
            .build()
            .expect("a valid configuration");
        let mut req = Request::get("/");
        for f in fields {
            req = req.header(header::COOKIE, HeaderValue::from_bytes(f).expect("header bytes"));
        }
        let res = layer
            .layer(tower::service_fn(handler))
            .oneshot(req.body(String::new()).unwrap())
            .await
            .unwrap_or_else(|e| match e {});
        let counts = store.counts();
        Outcome {
            status: res.status(),
            set_cookies: res.headers().get_all(header::SET_COOKIE).iter().count(),
            body: res.into_body(),
            loads: counts.load + counts.load_and_touch,
            calls: counts.total(),
        }
    })
}

/// Bytes a `Cookie` field can carry: tab, visible ASCII, space and obs-text.
fn header_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff]
}

/// A run of header bytes, dense in the pieces a cookie parser reacts to, and never validly
/// signed (forging an HMAC is out of a fuzzer's reach), though often close: the session's name
/// with `s:` and a value of the right shape, or a real signed value with one byte changed.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(NAME.as_bytes().to_vec()),
        Just(b"=".to_vec()),
        Just(b"; ".to_vec()),
        Just(b";".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"s:".to_vec()),
        Just(b"s%3A".to_vec()),
        "%[0-9a-fA-Fz]{0,2}".prop_map(String::into_bytes),
        "[ \t]{1,3}".prop_map(String::into_bytes),
        "[A-Za-z0-9_-]{0,33}\\.[A-Za-z0-9+/]{43}".prop_map(String::into_bytes),
        (0..80usize, header_byte()).prop_map(|(at, b)| {
            let mut v = cookie_value(STORED_ID, SECRET).into_bytes();
            let at = at % v.len();
            v[at] = if v[at] == b { b'!' } else { b };
            v
        }),
        prop::collection::vec(header_byte(), 0..24),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// How a valid signed value is written.
#[derive(Clone, Copy, Debug)]
enum Form {
    Encoded,
    Raw,
    Quoted,
    Escaped,
}

fn written(id: &str, secret: &[u8], form: Form) -> String {
    let raw = format!("s:{}", sign(id, secret));
    match form {
        Form::Encoded => cookie_value(id, secret),
        Form::Raw => raw,
        Form::Quoted => format!("\"{}\"", cookie_value(id, secret)),
        Form::Escaped => raw.bytes().map(|b| format!("%{b:02x}")).collect(),
    }
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        Just(Form::Encoded),
        Just(Form::Raw),
        Just(Form::Quoted),
        Just(Form::Escaped)
    ]
}

/// Where a validly signed cookie of an id the store does not know goes, beside the stored one.
#[derive(Clone, Copy, Debug)]
enum Unknown {
    Absent,
    Before,
    After,
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_cookie_headers_never_fail_and_never_reach_the_store(fields in prop::collection::vec(noise(), 0..4)) {
        let out = send(&fields);
        prop_assert_eq!(out.status, StatusCode::OK, "{:?}", out);
        prop_assert_eq!(out.calls, 0, "store called for {:?}", fields);
        prop_assert_eq!((out.body.as_str(), out.set_cookies), ("new ", 0));
    }

    #[test]
    fn signed_cookie_is_found_whatever_noise_surrounds_it(
        before in noise(),
        after in noise(),
        fields_before in prop::collection::vec(noise(), 0..3),
        fields_after in prop::collection::vec(noise(), 0..3),
        name_pad in "[ \t]{0,2}",
        value_pad in "[ \t]{0,2}",
        form in form(),
        unknown in prop_oneof![Just(Unknown::Absent), Just(Unknown::Before), Just(Unknown::After)],
    ) {
        let pair = |id: &str, secret: &[u8]| format!("{name_pad}{NAME}{name_pad}={value_pad}{}{value_pad}", written(id, secret, form));
        let mut field = before;
        if matches!(unknown, Unknown::Before) {
            field.extend_from_slice(format!(";{};", pair(UNKNOWN_ID, OLD_SECRET)).as_bytes());
        }
        field.extend_from_slice(format!(";{};", pair(STORED_ID, SECRET)).as_bytes());
        if matches!(unknown, Unknown::After) {
            field.extend_from_slice(format!(";{};", pair(UNKNOWN_ID, OLD_SECRET)).as_bytes());
        }
        field.extend_from_slice(&after);
        let fields: Vec<Vec<u8>> = fields_before.into_iter().chain([field]).chain(fields_after).collect();
        let out = send(&fields);
        prop_assert_eq!(out.status, StatusCode::OK, "{:?}", out);
        prop_assert_eq!(out.loads, 1, "{:?}", fields);
        // The first validly signed value wins.
        let expected = if matches!(unknown, Unknown::Before) { "new " } else { "loaded prop" };
        prop_assert_eq!(out.body.as_str(), expected, "{:?}", fields);
    }

    #[test]
    fn unsign_accepts_exactly_what_its_secrets_signed(
        value in prop_oneof![any::<String>(), "[A-Za-z0-9_.-]{0,40}\\.[A-Za-z0-9+/]{42,44}"],
        id in any::<String>(),
        change in (any::<usize>(), any::<char>()),
        secrets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..4),
        signer in any::<prop::sample::Index>(),
    ) {
        prop_assert_eq!(unsign(&value, &secrets).map(str::to_owned), signed_by_one_of(&value, &secrets));
        let signed = sign(&id, signer.get::<Vec<u8>>(&secrets));
        prop_assert_eq!(unsign(&signed, &secrets), Some(id.as_str()));
        let mut chars: Vec<char> = signed.chars().collect();
        let at = change.0 % chars.len();
        chars[at] = change.1;
        let changed: String = chars.into_iter().collect();
        prop_assert_eq!(unsign(&changed, &secrets).map(str::to_owned), signed_by_one_of(&changed, &secrets));
        if changed != signed && at > id.chars().count() {
            // A change in the signature itself is always refused.
            prop_assert_eq!(unsign(&changed, &secrets), None);
        }
    }

    #[test]
    fn decode_of_arbitrary_text_never_panics_and_reencodes_to_a_fixed_point(
        text in prop_oneof![any::<String>(), json_text()],
        max_len in prop_oneof![Just(DEFAULT_MAX_RECORD_SIZE), 0..64usize],
    ) {
        check_record(&text, max_len);
    }

    #[test]
    fn decode_of_changed_records_never_panics_and_reencodes_to_a_fixed_point(
        record in record_text(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), 0..4usize, json_text()), 0..3),
    ) {
        check_record(&record, DEFAULT_MAX_RECORD_SIZE);
        let mut text = record;
        for (at, len, with) in changes {
            let start = floor_boundary(&text, at.index(text.len() + 1));
            let end = floor_boundary(&text, (start + len).min(text.len()));
            text.replace_range(start..end, &with);
            check_record(&text, DEFAULT_MAX_RECORD_SIZE);
        }
    }
}

/// Whether one of `secrets` signed `value`, by signing again: the id is all before the last `.`.
fn signed_by_one_of(value: &str, secrets: &[Vec<u8>]) -> Option<String> {
    let (id, _) = value.rsplit_once('.')?;
    secrets.iter().any(|s| sign(id, s) == value).then(|| id.to_owned())
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Short JSON-ish text: fragments a record is made of, and anything.
fn json_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"cookie\":".to_owned()),
        Just("\"".to_owned()),
        Just("null".to_owned()),
        json_scalar(),
        cookie_field().prop_map(|(k, v)| format!("\"{k}\":{v}")),
        "\\PC{0,6}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

/// A JSON scalar as text, edge values included.
fn json_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| Value::from(f).to_string()),
        Just("1e308".to_owned()),
        Just("-0".to_owned()),
        Just("1.5e-400".to_owned()),
        Just("123456789012345678901234567890".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        any::<String>().prop_map(|s| Value::from(s).to_string()),
        date().prop_map(|d| format!("\"{d}\"")),
    ]
}

/// RFC 3339 date-times, valid and not, with offsets, fractions of any length and leap seconds;
/// half of them on the first or the last day of the years `time` and an ISO string share.
fn date() -> impl Strategy<Value = String> {
    let day = prop_oneof![
        (0u32..=9999, 1u32..=12, 1u32..=31),
        Just((0, 1, 1)),
        Just((9999, 12, 31)),
    ];
    let offset = prop_oneof![
        Just("Z".to_owned()),
        Just("z".to_owned()),
        Just("+00:00".to_owned()),
        Just("-00:00".to_owned()),
        (any::<bool>(), 0u32..=23, 0u32..=59)
            .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
    ];
    (day, 0u32..=23, 0u32..=59, 0u32..=60, "(\\.[0-9]{1,10})?", offset)
        .prop_map(|((y, mo, d), h, mi, s, frac, off)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}"))
}

/// One field of a stored `cookie` object, of the right type or not.
fn cookie_field() -> impl Strategy<Value = (&'static str, String)> {
    let name = prop::sample::select(vec![
        "originalMaxAge",
        "expires",
        "path",
        "domain",
        "httpOnly",
        "secure",
        "sameSite",
        "partitioned",
        "priority",
        "other",
    ]);
    let value = prop_oneof![
        json_scalar(),
        date().prop_map(|d| format!("\"{d}\"")),
        prop::sample::select(vec![
            "\"strict\"",
            "\"Lax\"",
            "\"NONE\"",
            "\"high\"",
            "\"low\"",
            "\"/\"",
            "[]",
            "{}"
        ])
        .prop_map(str::to_owned),
    ];
    (name, value)
}

/// A record in express's shape: a `cookie` object of edge-valued fields, then data keys
/// (reserved ones and repeats included) with scalar values.
fn record_text() -> impl Strategy<Value = String> {
    let fields = prop::collection::vec(cookie_field(), 0..8);
    let key = prop_oneof![
        prop::sample::select(vec!["user", "views", "cookie", "id", "__proto__", "save", "a"]).prop_map(str::to_owned),
        any::<String>(),
    ];
    let data = prop::collection::vec((key, json_scalar()), 0..5);
    (fields, data).prop_map(|(fields, data)| {
        let cookie: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let mut text = format!("{{\"cookie\":{{{}}}", cookie.join(","));
        for (k, v) in data {
            text.push(',');
            text.push_str(&Value::from(k).to_string());
            text.push(':');
            text.push_str(&v);
        }
        text.push('}');
        text
    })
}
