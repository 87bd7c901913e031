//! The one encoding of a session record: express-session's `JSON.stringify(session)`.
//!
//! ```json
//! {"cookie":{"originalMaxAge":86400000,"expires":"2026-01-02T12:00:00.000Z","httpOnly":true,"path":"/"},"views":3}
//! ```
//!
//! The `cookie` object comes first, its keys in express's order with unset ones left out; the
//! data keys follow in insertion order (a loaded session keeps the stored order).

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{
    config::{Priority, SameSite},
    cookie::{js_date, SessionCookie},
};

/// The session data: JSON values by key, in insertion order.
pub type Data = Map<String, Value>;

/// Keys that express-session never loads into a session, because they collide with its
/// methods or with `Object.prototype`; a record holding them is read without them.
pub const RESERVED_KEYS: &[&str] = &[
    "cookie",
    "id",
    "req",
    "touch",
    "resetMaxAge",
    "save",
    "reload",
    "destroy",
    "regenerate",
    "constructor",
    "toString",
    "toLocaleString",
    "valueOf",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "__proto__",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
];

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text is not a JSON object.
    #[error("session record is not a JSON object")]
    NotAnObject(#[source] Option<serde_json::Error>),
    /// The object has no `cookie` object.
    #[error("session record has no cookie object")]
    MissingCookie,
    /// The record is longer than the configured limit.
    #[error("session record of {0} bytes is over the size limit")]
    TooLarge(usize),
}

/// Formats an instant as JavaScript's `Date.prototype.toISOString`: `2026-01-02T12:00:00.000Z`.
pub fn iso_date(t: OffsetDateTime) -> String {
    let mut out = Vec::with_capacity(24);
    write_iso_date(&mut out, t);
    String::from_utf8_lossy(&out).into_owned()
}

fn write_iso_date(out: &mut Vec<u8>, t: OffsetDateTime) {
    use std::io::Write as _;
    let t = t.to_offset(time::UtcOffset::UTC);
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
}

/// Writes `value` as JSON. serde_json escapes strings exactly as `JSON.stringify` does for
/// every string it accepts and writes integers as JavaScript does; floats go through
/// [`JsNumbers`].
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Strings, numbers and JSON values serialize without error, and a Vec takes any write.
    let _ = value.serialize(&mut serde_json::Serializer::with_formatter(&mut *out, JsNumbers));
}

/// serde_json's compact output, but with floating-point numbers written as JavaScript's
/// `JSON.stringify` writes them (`1e+21`, not `1e21`; `100`, not `100.0`; `-0` as `0`), so a
/// record this crate writes is the text express-session would write for the same values.
struct JsNumbers;

impl serde_json::ser::Formatter for JsNumbers {
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, value: f64) -> std::io::Result<()> {
        if value.is_finite() {
            writer.write_all(ryu_js::Buffer::new().format_finite(value).as_bytes())
        } else {
            // What `JSON.stringify` writes for NaN and ±Infinity (serde_json's values never
            // hold them; typed values might).
            writer.write_all(b"null")
        }
    }

    fn write_f32<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, value: f32) -> std::io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

/// Writes the `cookie` object of a record.
fn encode_cookie(c: &SessionCookie, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"originalMaxAge\":");
    match c.original_max_age {
        Some(ms) => write_json(out, &ms),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(p) = c.partitioned {
        out.extend_from_slice(if p {
            b",\"partitioned\":true"
        } else {
            b",\"partitioned\":false"
        });
    }
    if let Some(p) = c.priority {
        out.extend_from_slice(b",\"priority\":\"");
        out.extend_from_slice(p.as_json().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"expires\":");
    match c.expires {
        Some(e) => {
            out.push(b'"');
            write_iso_date(out, e);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    if let Some(s) = c.secure {
        out.extend_from_slice(if s { b",\"secure\":true" } else { b",\"secure\":false" });
    }
    out.extend_from_slice(if c.http_only {
        b",\"httpOnly\":true"
    } else {
        b",\"httpOnly\":false"
    });
    if let Some(d) = &c.domain {
        out.extend_from_slice(b",\"domain\":");
        write_json(out, d);
    }
    out.extend_from_slice(b",\"path\":");
    write_json(out, &c.path);
    if let Some(s) = c.same_site {
        out.extend_from_slice(b",\"sameSite\":\"");
        out.extend_from_slice(s.as_json().as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
}

/// Encodes a session as express-session's stored JSON document.
pub fn encode(cookie: &SessionCookie, data: &Data) -> String {
    let mut out = Vec::with_capacity(128 + data.len() * 32);
    out.extend_from_slice(b"{\"cookie\":");
    encode_cookie(cookie, &mut out);
    for (k, v) in data {
        out.push(b',');
        write_json(&mut out, k);
        out.push(b':');
        write_json(&mut out, v);
    }
    out.push(b'}');
    // Only UTF-8 was written: the conversion checks and keeps it.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A key of a record's object: borrowed from the text unless it holds escapes, so reading the
/// `cookie` object's keys allocates nothing.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// One field of the `cookie` object, whatever its JSON type: the scalars a cookie attribute can
/// be, and `Other` for the rest (arrays and objects are skipped, not built).
enum Field<'de> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'de, str>),
    Other,
}

impl<'de> serde::Deserialize<'de> for Field<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess};
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Field<'de>, E> {
                Ok(Field::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Field<'de>, E> {
                Ok(Field::Int(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Field<'de>, E> {
                // Past i64, as serde_json's `Number::as_f64` would hold it.
                Ok(i64::try_from(n).map_or(Field::Float(n as f64), Field::Int))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Field<'de>, E> {
                Ok(Field::Float(n))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s)))
            }
            fn visit_unit<E>(self) -> Result<Field<'de>, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl Field<'_> {
    fn bool(&self) -> Option<bool> {
        match *self {
            Field::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn one_of<T: Copy>(&self, names: &[(&str, T)]) -> Option<T> {
        match self {
            Field::Str(s) => names
                .iter()
                .find_map(|&(name, v)| s.eq_ignore_ascii_case(name).then_some(v)),
            _ => None,
        }
    }
}

/// The value of a record's `cookie` key as the session's cookie, read field by field straight
/// from the text: `None` for any JSON value but an object (which express cannot load either).
/// A field of the wrong type reads as unset; a repeated field: the last one counts, as in
/// `JSON.parse`; unknown fields are skipped.
struct CookieField(Option<SessionCookie>);

impl<'de> serde::Deserialize<'de> for CookieField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, SeqAccess};
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CookieField;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<CookieField, E> {
                Ok(CookieField(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<CookieField, E> {
                Ok(CookieField(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<CookieField, E> {
                Ok(CookieField(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<CookieField, E> {
                Ok(CookieField(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<CookieField, E> {
                Ok(CookieField(None))
            }
            fn visit_unit<E>(self) -> Result<CookieField, E> {
                Ok(CookieField(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CookieField, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(CookieField(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<CookieField, A::Error> {
                let mut c = SessionCookie {
                    original_max_age: None,
                    expires: None,
                    path: String::new(),
                    domain: None,
                    http_only: true,
                    secure: None,
                    same_site: None,
                    partitioned: None,
                    priority: None,
                };
                let mut path = None;
                while let Some(Key(key)) = map.next_key()? {
                    let field = match key.as_ref() {
                        "originalMaxAge" | "expires" | "path" | "domain" | "httpOnly" | "secure" | "sameSite"
                        | "partitioned" | "priority" => map.next_value::<Field<'de>>()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    match key.as_ref() {
                        "originalMaxAge" => {
                            c.original_max_age = match field {
                                Field::Int(n) => Some(n),
                                Field::Float(f) => Some(f as i64),
                                _ => None,
                            }
                        }
                        // As `new Date(s)` holds it, so that it is written back as it was read.
                        "expires" => {
                            c.expires = match &field {
                                Field::Str(s) => OffsetDateTime::parse(s, &Rfc3339).ok().map(js_date),
                                _ => None,
                            }
                        }
                        "path" => {
                            path = match field {
                                Field::Str(s) => Some(s.into_owned()),
                                _ => None,
                            }
                        }
                        "domain" => {
                            c.domain = match field {
                                Field::Str(s) => Some(s.into_owned()),
                                _ => None,
                            }
                        }
                        "httpOnly" => c.http_only = field.bool().unwrap_or(true),
                        "secure" => c.secure = field.bool(),
                        "sameSite" => {
                            c.same_site = match field {
                                Field::Bool(true) => Some(SameSite::Strict),
                                _ => field.one_of(&[
                                    ("strict", SameSite::Strict),
                                    ("lax", SameSite::Lax),
                                    ("none", SameSite::None),
                                ]),
                            }
                        }
                        "partitioned" => c.partitioned = field.bool(),
                        _ => {
                            c.priority = field.one_of(&[
                                ("low", Priority::Low),
                                ("medium", Priority::Medium),
                                ("high", Priority::High),
                            ])
                        }
                    }
                }
                c.path = path.unwrap_or_else(|| "/".to_owned());
                Ok(CookieField(Some(c)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole record: its `cookie` field (`None` if there is none), and the data keys in order,
/// reserved ones dropped.
struct Doc {
    cookie: Option<CookieField>,
    data: Data,
}

impl<'de> serde::Deserialize<'de> for Doc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Doc;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a session record object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
                let mut doc = Doc {
                    cookie: None,
                    data: Data::new(),
                };
                while let Some(Key(key)) = map.next_key()? {
                    if key == "cookie" {
                        // A repeated `cookie`: the last one counts, as in `JSON.parse`.
                        doc.cookie = Some(map.next_value()?);
                        continue;
                    }
                    let value: Value = map.next_value()?;
                    if !RESERVED_KEYS.contains(&key.as_ref()) {
                        doc.data.insert(key.into_owned(), value);
                    }
                }
                Ok(doc)
            }
        }
        d.deserialize_map(V)
    }
}

/// Decodes a stored record, by express-session's load rules: the `cookie` object is required,
/// its attributes become the session's, reserved keys are dropped, the other keys are the data.
pub fn decode(text: &str, max_len: usize) -> Result<(SessionCookie, Data), DecodeError> {
    if text.len() > max_len {
        return Err(DecodeError::TooLarge(text.len()));
    }
    let doc: Doc = serde_json::from_str(text).map_err(|e| DecodeError::NotAnObject(Some(e)))?;
    match doc.cookie {
        Some(CookieField(Some(cookie))) => Ok((cookie, doc.data)),
        _ => Err(DecodeError::MissingCookie),
    }
}

/// Order-sensitive equality of two JSON values, as comparing their `JSON.stringify` output would
/// be (serde_json's own `==` ignores key order).
pub(crate) fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => same_data(a, b),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_json(x, y)),
        _ => a == b,
    }
}

/// Order-sensitive equality of two data maps.
pub(crate) fn same_data(a: &Data, b: &Data) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CookieConfig, Secure};
    use time::{macros::datetime, Duration};

    #[test]
    fn encodes_reference_documents() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        let config = CookieConfig {
            max_age: Some(Duration::days(1)),
            same_site: None,
            ..CookieConfig::default()
        };
        let c = SessionCookie::from_config(&config, false, now);
        let mut data = Data::new();
        data.insert("views".into(), 3.into());
        assert_eq!(
            encode(&c, &data),
            r#"{"cookie":{"originalMaxAge":86400000,"expires":"2026-01-02T12:00:00.000Z","httpOnly":true,"path":"/"},"views":3}"#
        );
        let c = SessionCookie::from_config(
            &CookieConfig {
                same_site: None,
                ..CookieConfig::default()
            },
            false,
            now,
        );
        assert_eq!(
            encode(&c, &Data::new()),
            r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}}"#
        );
        let config = CookieConfig {
            max_age: Some(Duration::hours(1)),
            secure: Some(Secure::Always),
            domain: Some("example.com".into()),
            same_site: Some(SameSite::Lax),
            ..CookieConfig::default()
        };
        let c = SessionCookie::from_config(&config, false, now);
        let mut data = Data::new();
        data.insert("user".into(), serde_json::json!({"id": 42}));
        let text = encode(&c, &data);
        assert_eq!(
            text,
            r#"{"cookie":{"originalMaxAge":3600000,"expires":"2026-01-01T13:00:00.000Z","secure":true,"httpOnly":true,"domain":"example.com","path":"/","sameSite":"lax"},"user":{"id":42}}"#
        );
        let (c2, d2) = decode(&text, usize::MAX).unwrap();
        assert_eq!(c2, c);
        assert!(same_data(&d2, &data));
    }

    #[test]
    fn decode_follows_express_load_rules() {
        let text = r#"{"cookie":{"originalMaxAge":5,"expires":"2026-01-01T13:00:00.000Z","httpOnly":false,"path":"/x","sameSite":true,"priority":"High","partitioned":true},"b":1,"save":2,"id":"x","constructor":1,"a":"é"}"#;
        let (c, d) = decode(text, usize::MAX).unwrap();
        assert_eq!(c.original_max_age, Some(5));
        assert_eq!(c.expires, Some(datetime!(2026-01-01 13:00:00 UTC)));
        assert!(!c.http_only);
        assert_eq!(
            (c.path.as_str(), c.same_site, c.priority, c.partitioned),
            ("/x", Some(SameSite::Strict), Some(Priority::High), Some(true))
        );
        assert_eq!(d.keys().collect::<Vec<_>>(), ["b", "a"]);
        for bad in ["", "null", "[1]", "{}", r#"{"cookie":1}"#, "not json", "{\"cookie\":{}"] {
            assert!(decode(bad, usize::MAX).is_err(), "{bad}");
        }
        assert!(matches!(decode(text, 10), Err(DecodeError::TooLarge(_))));
    }

    #[test]
    fn decode_is_lenient_as_before_and_strict_where_express_is() {
        // Fields of the wrong type read as unset; unknown cookie fields are ignored.
        let (c, data) = decode(
            r#"{"cookie":{"path":5,"httpOnly":"no","expires":7,"sameSite":"LAX","x":[1,{"y":2}]},"a":1}"#,
            1024,
        )
        .unwrap();
        assert_eq!((c.path.as_str(), c.http_only, c.expires), ("/", true, None));
        assert_eq!(c.same_site, Some(SameSite::Lax));
        assert!(same_data(&data, &serde_json::from_str(r#"{"a":1}"#).unwrap()));
        // A repeated key: the last one counts, in the first one's place, as JSON.parse does.
        let (c, data) = decode(
            r#"{"a":1,"cookie":{"path":"/a","path":"/b"},"b":2,"a":3,"cookie":{"path":"/c"}}"#,
            1024,
        )
        .unwrap();
        assert_eq!(c.path, "/c");
        assert!(same_data(&data, &serde_json::from_str(r#"{"a":3,"b":2}"#).unwrap()));
        // No cookie object: not loadable, whatever else `cookie` holds.
        for text in [
            r#"{"a":1}"#,
            r#"{"cookie":null}"#,
            r#"{"cookie":[{"path":"/"}]}"#,
            r#"{"cookie":"x"}"#,
        ] {
            assert!(matches!(decode(text, 1024), Err(DecodeError::MissingCookie)), "{text}");
        }
        for text in ["[]", "1", "\"s\"", "null", "{", "{\"cookie\":{}} x", ""] {
            assert!(matches!(decode(text, 1024), Err(DecodeError::NotAnObject(_))), "{text}");
        }
    }

    #[test]
    fn unicode_keys_and_values_round_trip() {
        let c = SessionCookie::from_config(&CookieConfig::default(), false, OffsetDateTime::now_utc());
        let mut data = Data::new();
        data.insert("clé \"😀\"\n".into(), "välue\u{2028}\u{0}".into());
        let text = encode(&c, &data);
        let (_, d) = decode(&text, usize::MAX).unwrap();
        assert!(same_data(&d, &data));
    }

    #[test]
    fn expires_is_read_as_a_javascript_date_so_it_is_written_back_as_read() {
        // Found by fuzzing (`fuzz/`, tests/fuzz_props.rs): a fraction finer than a millisecond
        // changed on every save; an offset that put the instant before year 0000 was written
        // as `-001-…`, which reads back as no expiry; and past year 9999, encoding panicked.
        for (stored, written) in [
            ("2026-01-01T00:00:00.0001Z", "2026-01-01T00:00:00.000Z"),
            ("9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.999Z"),
            ("2026-06-30T23:59:60Z", "2026-06-30T23:59:59.999Z"),
            ("2026-01-01T12:00:00.5+05:30", "2026-01-01T06:30:00.500Z"),
            ("0000-01-01T00:00:00+00:01", "0000-01-01T00:00:00.000Z"),
            ("9999-12-31T23:00:00.000-03:00", "9999-12-31T23:59:59.999Z"),
        ] {
            let (c, data) = decode(&format!(r#"{{"cookie":{{"expires":"{stored}"}}}}"#), 1024).unwrap();
            let text = encode(&c, &data);
            assert!(text.contains(&format!(r#""expires":"{written}""#)), "{stored}: {text}");
            assert_eq!(decode(&text, 1024).unwrap().0, c, "{stored}");
        }
    }

    #[test]
    fn floats_in_session_data_survive_a_load_and_save_bit_for_bit() {
        // Found by fuzzing: without serde_json's `float_roundtrip`, the shortest text of some
        // floats (as JavaScript writes them too) read as the float next to it, so every save
        // by Rust moved a number Node had stored.
        let text = r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"x":4.5000000000000005e+300,"y":0.30000000000000004}"#;
        let (c, data) = decode(text, 1024).unwrap();
        assert_eq!(encode(&c, &data), text);
    }

    #[test]
    fn equality_is_order_sensitive() {
        let a: Data = serde_json::from_str(r#"{"a":1,"b":{"x":1,"y":2}}"#).unwrap();
        let b: Data = serde_json::from_str(r#"{"b":{"x":1,"y":2},"a":1}"#).unwrap();
        let c: Data = serde_json::from_str(r#"{"a":1,"b":{"y":2,"x":1}}"#).unwrap();
        assert!(same_data(&a, &a.clone()));
        assert!(!same_data(&a, &b));
        assert!(!same_data(&a, &c));
    }
}
