//! The one encoding of a session record: express-session's `JSON.stringify(session)`.
//!
//! ```json
//! {"cookie":{"originalMaxAge":86400000,"expires":"2026-01-02T12:00:00.000Z","httpOnly":true,"path":"/"},"views":3}
//! ```
//!
//! The `cookie` object comes first, its keys in express's order with unset ones left out; the
//! data keys follow in insertion order (a loaded session keeps the stored order).

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
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly as JSON.stringify for every string it accepts.
    out.push_str(&Value::from(s).to_string());
}

/// Writes the `cookie` object of a record.
fn encode_cookie(c: &SessionCookie, out: &mut String) {
    out.push_str("{\"originalMaxAge\":");
    match c.original_max_age {
        Some(ms) => out.push_str(&ms.to_string()),
        None => out.push_str("null"),
    }
    if let Some(p) = c.partitioned {
        out.push_str(if p {
            ",\"partitioned\":true"
        } else {
            ",\"partitioned\":false"
        });
    }
    if let Some(p) = c.priority {
        out.push_str(",\"priority\":\"");
        out.push_str(p.as_json());
        out.push('"');
    }
    out.push_str(",\"expires\":");
    match c.expires {
        Some(e) => {
            out.push('"');
            out.push_str(&iso_date(e));
            out.push('"');
        }
        None => out.push_str("null"),
    }
    if let Some(s) = c.secure {
        out.push_str(if s { ",\"secure\":true" } else { ",\"secure\":false" });
    }
    out.push_str(if c.http_only {
        ",\"httpOnly\":true"
    } else {
        ",\"httpOnly\":false"
    });
    if let Some(d) = &c.domain {
        out.push_str(",\"domain\":");
        push_json_str(out, d);
    }
    out.push_str(",\"path\":");
    push_json_str(out, &c.path);
    if let Some(s) = c.same_site {
        out.push_str(",\"sameSite\":\"");
        out.push_str(s.as_json());
        out.push('"');
    }
    out.push('}');
}

/// Encodes a session as express-session's stored JSON document.
pub fn encode(cookie: &SessionCookie, data: &Data) -> String {
    let mut out = String::with_capacity(160 + data.len() * 24);
    out.push_str("{\"cookie\":");
    encode_cookie(cookie, &mut out);
    for (k, v) in data {
        out.push(',');
        push_json_str(&mut out, k);
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

/// The `cookie` object's fields as stored, each kept whatever its JSON type (a field of the
/// wrong type reads as unset, as before); read straight from the text, without building a map.
#[derive(Default)]
struct RawCookie {
    original_max_age: Option<Value>,
    expires: Option<Value>,
    path: Option<Value>,
    domain: Option<Value>,
    http_only: Option<Value>,
    secure: Option<Value>,
    same_site: Option<Value>,
    partitioned: Option<Value>,
    priority: Option<Value>,
}

/// The value of a record's `cookie` key: its fields if it is an object, `None` for any other
/// JSON value (which express cannot load either).
struct CookieField(Option<RawCookie>);

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
                let mut c = RawCookie::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    // A repeated field: the last one counts, as in `JSON.parse`.
                    let slot = match key.as_ref() {
                        "originalMaxAge" => &mut c.original_max_age,
                        "expires" => &mut c.expires,
                        "path" => &mut c.path,
                        "domain" => &mut c.domain,
                        "httpOnly" => &mut c.http_only,
                        "secure" => &mut c.secure,
                        "sameSite" => &mut c.same_site,
                        "partitioned" => &mut c.partitioned,
                        "priority" => &mut c.priority,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(CookieField(Some(c)))
            }
        }
        d.deserialize_any(V)
    }
}

impl RawCookie {
    fn into_cookie(self) -> SessionCookie {
        let expires = match &self.expires {
            // As `new Date(s)` holds it, so that it is written back as it was read.
            Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339).ok().map(js_date),
            _ => None,
        };
        let original_max_age = match &self.original_max_age {
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            _ => None,
        };
        let same_site = match &self.same_site {
            Some(Value::Bool(true)) => Some(SameSite::Strict),
            Some(Value::String(s)) => [
                ("strict", SameSite::Strict),
                ("lax", SameSite::Lax),
                ("none", SameSite::None),
            ]
            .into_iter()
            .find_map(|(name, v)| s.eq_ignore_ascii_case(name).then_some(v)),
            _ => None,
        };
        let priority = match &self.priority {
            Some(Value::String(s)) => [
                ("low", Priority::Low),
                ("medium", Priority::Medium),
                ("high", Priority::High),
            ]
            .into_iter()
            .find_map(|(name, v)| s.eq_ignore_ascii_case(name).then_some(v)),
            _ => None,
        };
        let bool_of = |v: &Option<Value>| v.as_ref().and_then(Value::as_bool);
        SessionCookie {
            original_max_age,
            expires,
            path: match self.path {
                Some(Value::String(p)) => p,
                _ => "/".to_owned(),
            },
            domain: match self.domain {
                Some(Value::String(d)) => Some(d),
                _ => None,
            },
            http_only: bool_of(&self.http_only).unwrap_or(true),
            secure: bool_of(&self.secure),
            same_site,
            partitioned: bool_of(&self.partitioned),
            priority,
        }
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
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
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
        Some(CookieField(Some(raw))) => Ok((raw.into_cookie(), doc.data)),
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
