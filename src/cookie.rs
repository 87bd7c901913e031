//! The session cookie: signing and verifying the id, reading it from `Cookie` headers,
//! the per-session cookie attributes, and `Set-Cookie` in express-session's byte format.

use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use http::{header::COOKIE, HeaderMap, HeaderValue};
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;
use time::{
    format_description::FormatItem,
    macros::{datetime, format_description},
    Duration, OffsetDateTime, UtcOffset,
};

use crate::config::{CookieConfig, Priority, SameSite, Secure, MAX_COOKIE_VALUE_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Length of an unpadded base64 HMAC-SHA256: 32 bytes → 43 characters.
const SIGNATURE_LEN: usize = 43;

/// What `encodeURIComponent` leaves alone: `A–Z a–z 0–9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// `Date.prototype.toUTCString`'s IMF-fixdate, which express writes in `Expires`.
const IMF_FIXDATE: &[FormatItem<'static>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");

/// Signs `id` with `secret` as cookie-signature does: `id + "." + base64(HMAC-SHA256)` without
/// padding. The `s:` prefix is not included.
///
/// ```
/// let signed = express_session::cookie::sign("zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M", b"keyboard cat");
/// assert_eq!(signed, "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk");
/// ```
pub fn sign(id: &str, secret: &[u8]) -> String {
    Keys::new([secret]).sign(id)
}

/// The layer's secrets, each keyed into HMAC-SHA256 once (the key's inner and outer blocks
/// hashed at start-up, not on every request): the first signs, all verify, in order.
#[derive(Clone)]
pub(crate) struct Keys(Vec<HmacSha256>);

impl Keys {
    pub(crate) fn new<K: AsRef<[u8]>>(secrets: impl IntoIterator<Item = K>) -> Self {
        Self(
            secrets
                .into_iter()
                .map(|s| HmacSha256::new_from_slice(s.as_ref()).expect("HMAC accepts keys of any length"))
                .collect(),
        )
    }

    /// `id + "." + base64(HMAC-SHA256)` with the first key.
    fn sign(&self, id: &str) -> String {
        let mut m = self.0[0].clone();
        m.update(id.as_bytes());
        let mut out = String::with_capacity(id.len() + 1 + SIGNATURE_LEN);
        out.push_str(id);
        out.push('.');
        STANDARD_NO_PAD.encode_string(m.finalize().into_bytes(), &mut out);
        out
    }

    /// As [`unsign`], with these keys.
    fn unsign<'a>(&self, value: &'a str) -> Option<&'a str> {
        let dot = value.rfind('.')?;
        let (id, sig) = (&value[..dot], &value[dot + 1..]);
        if sig.len() != SIGNATURE_LEN {
            return None;
        }
        let mut mac = [0u8; 33];
        let n = STANDARD_NO_PAD.decode_slice(sig, &mut mac).ok()?;
        let sig = &mac[..n];
        self.0.iter().find_map(|key| {
            let mut m = key.clone();
            m.update(id.as_bytes());
            m.verify_slice(sig).ok().map(|()| id)
        })
    }

    /// [`cookie_value`] with the first key.
    pub(crate) fn cookie_value(&self, id: &str) -> String {
        let mut signed = String::with_capacity(2 + id.len() + 1 + SIGNATURE_LEN);
        signed.push_str("s:");
        signed.push_str(&self.sign(id));
        encode_uri_component(&signed)
    }
}

/// Verifies a signed value (`id.signature`, without `s:`) against each secret in order and
/// returns the id if one matches. The split is at the last `.`; the signature must be exactly
/// the 43 canonical base64 characters of the MAC, compared in constant time.
///
/// ```
/// use express_session::cookie::unsign;
/// let v = "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk";
/// assert_eq!(unsign(v, &[b"keyboard cat".to_vec()]), Some("zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M"));
/// assert_eq!(unsign(v, &[b"another".to_vec()]), None);
/// ```
pub fn unsign<'a>(value: &'a str, secrets: &[Vec<u8>]) -> Option<&'a str> {
    Keys::new(secrets).unsign(value)
}

/// Percent-encodes as JavaScript's `encodeURIComponent`.
///
/// ```
/// assert_eq!(express_session::cookie::encode_uri_component("s:a+b/c"), "s%3Aa%2Bb%2Fc");
/// ```
pub fn encode_uri_component(value: &str) -> String {
    // Collected piece by piece (the escapes are 3 bytes each), not through `Display`.
    let mut out = String::with_capacity(value.len() + 12);
    out.extend(utf8_percent_encode(value, URI_COMPONENT));
    out
}

/// The cookie value express-session writes for `id`: `encodeURIComponent("s:" + sign(id))`.
///
/// ```
/// let v = express_session::cookie::cookie_value("zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M", b"keyboard cat");
/// assert_eq!(v, "s%3AzqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH%2BiPnRpk");
/// ```
pub fn cookie_value(id: &str, secret: &[u8]) -> String {
    Keys::new([secret]).cookie_value(id)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Decodes one raw cookie value as the `cookie` npm package does (unquote, then
/// `decodeURIComponent` only when there is a `%`, keeping the raw value when decoding fails),
/// and then verifies it. Returns the session id when the value is `s:` + a valid signature.
fn verify_value(raw: &[u8], keys: &Keys) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_COOKIE_VALUE_LEN {
        return None;
    }
    let raw = match raw {
        [b'"', inner @ .., b'"'] => inner,
        _ => raw,
    };
    let raw = std::str::from_utf8(raw).ok()?;
    if !raw.contains('%') {
        return verify_signed(raw, keys);
    }
    // Decoding never lengthens: a session cookie's value fits the stack buffer.
    let mut small = [0u8; 128];
    let mut large = Vec::new();
    let buf = if raw.len() <= small.len() {
        &mut small[..]
    } else {
        large.resize(raw.len(), 0);
        &mut large[..]
    };
    match decode_uri_component(raw, buf) {
        Some(decoded) => verify_signed(decoded, keys),
        None => verify_signed(raw, keys),
    }
}

/// The id in `s:` + a signed value, if the signature verifies.
fn verify_signed(value: &str, keys: &Keys) -> Option<String> {
    let signed = value.strip_prefix("s:")?;
    // express-session treats an empty id as no id, even when its signature is valid.
    keys.unsign(signed).filter(|id| !id.is_empty()).map(str::to_owned)
}

/// JavaScript's `decodeURIComponent` of `raw` into `buf` (at least as long as `raw`): `None`
/// where it throws, that is on a `%` not followed by two hex digits anywhere in the value, or
/// escapes that do not form UTF-8.
fn decode_uri_component<'b>(raw: &str, buf: &'b mut [u8]) -> Option<&'b str> {
    let b = raw.as_bytes();
    let well_formed = b.iter().enumerate().filter(|&(_, &c)| c == b'%').all(|(i, _)| {
        b.get(i + 1..i + 3)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    let n = buf
        .iter_mut()
        .zip(percent_decode(b))
        .map(|(slot, byte)| *slot = byte)
        .count();
    std::str::from_utf8(&buf[..n]).ok()
}

/// Finds the session id in a request's `Cookie` header fields.
///
/// Every field is read (HTTP/2 may split cookies over several), byte by byte, so a foreign
/// cookie with odd bytes spoils nothing. Pairs without `=` are skipped. Every pair with the
/// session cookie's name is tried in order and the first whose signature verifies wins.
pub(crate) fn find_session_id(headers: &HeaderMap, name: &str, keys: &Keys) -> Option<String> {
    let mut candidates = 0usize;
    for field in headers.get_all(COOKIE) {
        for pair in field.as_bytes().split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if trim(&pair[..eq]) != name.as_bytes() {
                continue;
            }
            candidates += 1;
            if let Some(id) = verify_value(trim(&pair[eq + 1..]), keys) {
                if candidates > 1 {
                    tracing::debug!("session cookie sent more than once; the first valid one is used");
                }
                return Some(id);
            }
        }
    }
    if candidates > 0 {
        tracing::warn!("session cookie with a bad or unknown signature ignored");
    }
    None
}

/// The cookie attributes of one session, kept with the session in the store (express's
/// `req.session.cookie`).
///
/// New sessions get them from the layer's cookie options; loaded sessions from their record, so
/// changing the layer's options affects new sessions only. Handlers change them through
/// [`Session::update_cookie`](crate::Session::update_cookie).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCookie {
    pub(crate) original_max_age: Option<i64>,
    pub(crate) expires: Option<OffsetDateTime>,
    /// `Path`; default `/`.
    pub path: String,
    /// `Domain`; default none (host-only).
    pub domain: Option<String>,
    /// `HttpOnly`; default true.
    pub http_only: bool,
    /// `Secure`: `None` leaves it out of the stored record, as express does when unset.
    pub secure: Option<bool>,
    /// `SameSite`; `None` leaves the attribute out. Never [`SameSite::Auto`] (resolved at creation).
    pub same_site: Option<SameSite>,
    /// `Partitioned` (CHIPS); `None` leaves it out of the stored record.
    pub partitioned: Option<bool>,
    /// `Priority`.
    pub priority: Option<Priority>,
}

impl SessionCookie {
    /// A cookie with no attributes, standing in until a pending new session starts.
    pub(crate) fn unset() -> Self {
        Self {
            original_max_age: None,
            expires: None,
            path: String::new(),
            domain: None,
            http_only: false,
            secure: None,
            same_site: None,
            partitioned: None,
            priority: None,
        }
    }

    /// The cookie of a session created now, from the layer's options.
    pub(crate) fn from_config(c: &CookieConfig, secure_request: bool, now: OffsetDateTime) -> Self {
        let mut cookie = Self {
            original_max_age: None,
            expires: None,
            path: c.path.clone(),
            domain: c.domain.clone(),
            http_only: c.http_only,
            secure: match c.secure {
                None => None,
                Some(Secure::Always) => Some(true),
                Some(Secure::Never) => Some(false),
                Some(Secure::Auto) => Some(secure_request),
            },
            same_site: match c.same_site {
                Some(SameSite::Auto) if secure_request => Some(SameSite::None),
                Some(SameSite::Auto) => Some(SameSite::Lax),
                other => other,
            },
            partitioned: c.partitioned,
            priority: c.priority,
        };
        if let Some(expires) = c.expires {
            cookie.set_expires_at(Some(expires), now);
        }
        if let Some(max_age) = c.max_age {
            cookie.set_max_age_at(Some(max_age), now);
        }
        cookie
    }

    /// The time left until the cookie expires (express's `cookie.maxAge` getter); `None` for a
    /// browser-session cookie.
    pub fn max_age(&self) -> Option<Duration> {
        self.expires.map(|e| e - OffsetDateTime::now_utc())
    }

    /// The lifetime the cookie gets on every touch (`cookie.originalMaxAge`).
    pub fn original_max_age(&self) -> Option<Duration> {
        self.original_max_age.map(Duration::milliseconds)
    }

    /// When the cookie expires; `None` for a browser-session cookie.
    pub fn expires(&self) -> Option<OffsetDateTime> {
        self.expires
    }

    /// Sets the lifetime from now (express's `cookie.maxAge = ms`); `None` makes it a
    /// browser-session cookie.
    pub fn set_max_age(&mut self, max_age: Option<Duration>) {
        self.set_max_age_at(max_age, OffsetDateTime::now_utc());
    }

    /// Sets the expiry (express's `cookie.expires = date`); the lifetime becomes the time left.
    pub fn set_expires(&mut self, expires: Option<OffsetDateTime>) {
        self.set_expires_at(expires, OffsetDateTime::now_utc());
    }

    pub(crate) fn set_max_age_at(&mut self, max_age: Option<Duration>, now: OffsetDateTime) {
        self.set_expires_at(max_age.map(|d| add_clamped(now, d)), now);
    }

    pub(crate) fn set_expires_at(&mut self, expires: Option<OffsetDateTime>, now: OffsetDateTime) {
        // JavaScript dates have millisecond precision: computing at finer precision would let
        // a later touch land just before the configured expiry, a second early in `Expires`.
        let (expires, now) = (expires.map(js_date), js_date(now));
        self.expires = expires;
        self.original_max_age = expires.map(|e| clamp_ms(e - now));
    }

    /// Express's `resetMaxAge`: the cookie lives `original_max_age` from now.
    pub(crate) fn touch_at(&mut self, now: OffsetDateTime) {
        if let Some(ms) = self.original_max_age {
            self.set_max_age_at(Some(Duration::milliseconds(ms)), now);
        }
    }

    fn attributes(&self, out: &mut String) {
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        out.push_str("; Path=");
        out.push_str(&self.path);
    }

    fn flags(&self, out: &mut String) {
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure == Some(true) {
            out.push_str("; Secure");
        }
        if self.partitioned == Some(true) {
            out.push_str("; Partitioned");
        }
        if let Some(p) = self.priority {
            out.push_str("; Priority=");
            out.push_str(p.as_attr());
        }
        if let Some(s) = self.same_site {
            out.push_str("; SameSite=");
            out.push_str(s.as_attr());
        }
    }

    /// The `Set-Cookie` value, in express-session's attribute order.
    pub(crate) fn set_cookie(&self, name: &str, value: &str) -> String {
        let mut out = String::with_capacity(name.len() + value.len() + 96);
        out.push_str(name);
        out.push('=');
        out.push_str(value);
        self.attributes(&mut out);
        if let Some(expires) = self.expires {
            out.push_str("; Expires=");
            out.push_str(&http_date(expires));
        }
        self.flags(&mut out);
        out
    }

    /// A `Set-Cookie` that makes the browser drop the cookie (used after `destroy`).
    pub(crate) fn clear_cookie(&self, name: &str) -> String {
        let mut out = String::with_capacity(name.len() + 96);
        out.push_str(name);
        out.push('=');
        self.attributes(&mut out);
        out.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        self.flags(&mut out);
        out
    }
}

/// Adds a duration, saturating at the limits of the calendar instead of overflowing.
pub(crate) fn add_clamped(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    })
}

/// An instant as a JavaScript `Date` holds it and a record can carry it: in UTC, truncated to
/// whole milliseconds, and within the four-digit years of an ISO string (an offset can put a
/// stored time up to a day outside them, where converting it to UTC would panic).
pub(crate) fn js_date(t: OffsetDateTime) -> OffsetDateTime {
    let (first, last) = (datetime!(0000-01-01 0:00 UTC), datetime!(9999-12-31 23:59:59.999 UTC));
    let t = match t.checked_to_offset(UtcOffset::UTC) {
        Some(utc) => utc.clamp(first, last),
        None if t.offset().is_negative() => last,
        None => first,
    };
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

fn clamp_ms(d: Duration) -> i64 {
    i64::try_from(d.whole_milliseconds()).unwrap_or(if d.is_negative() { i64::MIN } else { i64::MAX })
}

/// Formats an instant as `Date.prototype.toUTCString` does.
pub(crate) fn http_date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(IMF_FIXDATE)
        .unwrap_or_else(|_| "Fri, 31 Dec 9999 23:59:59 GMT".to_owned())
}

/// Builds a header value from text that was assembled from validated parts.
pub(crate) fn header_value(s: String) -> Option<HeaderValue> {
    HeaderValue::try_from(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const ID: &str = "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M";
    const VALUE: &str = "s%3AzqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH%2BiPnRpk";

    fn keys(list: &[&str]) -> Keys {
        Keys::new(list)
    }

    fn secrets(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn golden_vector_matches_reference() {
        // The MAC inside our signature, against the reference's HMAC-SHA256 in hex.
        let signed = sign(ID, b"keyboard cat");
        let mac = STANDARD_NO_PAD.decode(signed.rsplit('.').next().unwrap()).unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "3ab6617d32c01c7435d5ba72ccaadbbd7e19177a60e04d9543a707fa23e74699");
        assert_eq!(
            format!("s:{}", sign(ID, b"keyboard cat")),
            "s:zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk"
        );
        assert_eq!(cookie_value(ID, b"keyboard cat"), VALUE);
        let h = headers(&[format!("connect.sid={VALUE}").as_bytes()]);
        assert_eq!(
            find_session_id(&h, "connect.sid", &keys(&["keyboard cat"])).as_deref(),
            Some(ID)
        );
        assert_eq!(find_session_id(&h, "connect.sid", &keys(&["other"])), None);
    }

    #[test]
    fn set_cookie_matches_reference_examples() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        let mut config = CookieConfig {
            same_site: None,
            ..CookieConfig::default()
        };
        config.max_age = Some(Duration::days(1));
        let c = SessionCookie::from_config(&config, false, now);
        assert_eq!(
            c.set_cookie("connect.sid", VALUE),
            format!("connect.sid={VALUE}; Path=/; Expires=Fri, 02 Jan 2026 12:00:00 GMT; HttpOnly")
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
            c.set_cookie("connect.sid", VALUE),
            format!("connect.sid={VALUE}; Path=/; HttpOnly")
        );
        let config = CookieConfig {
            max_age: Some(Duration::hours(1)),
            secure: Some(Secure::Always),
            same_site: Some(SameSite::Lax),
            domain: Some("example.com".into()),
            ..CookieConfig::default()
        };
        let c = SessionCookie::from_config(&config, false, now);
        assert_eq!(
            c.set_cookie("connect.sid", VALUE),
            format!(
                "connect.sid={VALUE}; Domain=example.com; Path=/; Expires=Thu, 01 Jan 2026 13:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
            )
        );
    }

    #[test]
    fn every_attribute_in_express_order() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        let config = CookieConfig {
            max_age: Some(Duration::hours(1)),
            secure: Some(Secure::Always),
            same_site: Some(SameSite::Strict),
            domain: Some("a.example".into()),
            path: "/app".into(),
            partitioned: Some(true),
            priority: Some(Priority::High),
            ..CookieConfig::default()
        };
        let c = SessionCookie::from_config(&config, false, now);
        assert_eq!(
            c.set_cookie("n", "v"),
            "n=v; Domain=a.example; Path=/app; Expires=Thu, 01 Jan 2026 13:00:00 GMT; HttpOnly; Secure; Partitioned; Priority=High; SameSite=Strict"
        );
    }

    #[test]
    fn auto_options_resolve_at_creation() {
        let now = OffsetDateTime::now_utc();
        let config = CookieConfig {
            secure: Some(Secure::Auto),
            same_site: Some(SameSite::Auto),
            ..CookieConfig::default()
        };
        let c = SessionCookie::from_config(&config, true, now);
        assert_eq!((c.secure, c.same_site), (Some(true), Some(SameSite::None)));
        let c = SessionCookie::from_config(&config, false, now);
        assert_eq!((c.secure, c.same_site), (Some(false), Some(SameSite::Lax)));
    }

    #[test]
    fn bad_signatures_are_rejected() {
        let k = secrets(&["keyboard cat"]);
        let good = "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk";
        assert!(unsign(good, &k).is_some());
        for bad in [
            "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpl",
            "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRp",
            "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpkX",
            "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk.x",
            "x.zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk",
            "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7N.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk",
            "OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk",
            ".OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpk",
            "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M",
            "",
        ] {
            assert_eq!(unsign(bad, &k), None, "{bad}");
        }
        // Non-canonical base64: same bytes but trailing bits set.
        assert_eq!(
            unsign(
                "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH+iPnRpl",
                &k
            ),
            None
        );
    }

    #[test]
    fn rotation_verifies_with_every_secret_in_order() {
        let signed = sign(ID, b"old");
        assert_eq!(unsign(&signed, &secrets(&["new", "old"])), Some(ID));
        assert_eq!(unsign(&signed, &secrets(&["new"])), None);
    }

    #[test]
    fn header_parsing_survives_hostile_neighbours() {
        let k = keys(&["keyboard cat"]);
        let find = |vals: &[&[u8]]| find_session_id(&headers(vals), "connect.sid", &k);
        let good = format!("connect.sid={VALUE}");
        assert_eq!(
            find(&[format!("foo=1; a; =x; ;; {good}").as_bytes()]).as_deref(),
            Some(ID)
        );
        assert_eq!(find(&[b"x=\xff\xfe; ", good.as_bytes()]).as_deref(), Some(ID));
        assert_eq!(find(&[b"a=1", good.as_bytes()]).as_deref(), Some(ID));
        assert_eq!(
            find(&[format!("connect.sid=garbage; {good}").as_bytes()]).as_deref(),
            Some(ID)
        );
        assert_eq!(
            find(&[format!("connect.sid=\"{VALUE}\"").as_bytes()]).as_deref(),
            Some(ID)
        );
        assert_eq!(
            find(&[format!("  connect.sid =\t{VALUE} ").as_bytes()]).as_deref(),
            Some(ID)
        );
        let raw = format!("connect.sid=s:{}", sign(ID, b"keyboard cat"));
        assert_eq!(find(&[raw.as_bytes()]).as_deref(), Some(ID));
        for bad in [
            "connect.sid=",
            "connect.sid",
            "connect.sid=%zz",
            "connect.sid=%FF%FE",
            "connect.sid=zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M",
            "_ga=GA1.2; theme=dark",
        ] {
            assert_eq!(find(&[bad.as_bytes()]), None, "{bad}");
        }
        // One broken escape spoils the decoding of the whole value, as in JavaScript.
        let odd_value = cookie_value("ab%zz", b"keyboard cat");
        assert_eq!(
            find(&[format!("connect.sid={odd_value}").as_bytes()]).as_deref(),
            Some("ab%zz")
        );
        let half = odd_value.replacen("%25zz", "%zz", 1);
        assert_eq!(find(&[format!("connect.sid={half}").as_bytes()]), None);
        // A validly signed empty id is no id.
        assert_eq!(
            find(&[format!("connect.sid={}", cookie_value("", b"keyboard cat")).as_bytes()]),
            None
        );
        let huge = format!("connect.sid=s%3A{}", "A".repeat(8 * 1024));
        assert_eq!(find(&[huge.as_bytes()]), None);
    }

    #[test]
    fn touch_never_moves_a_fixed_expiry_earlier() {
        let at = datetime!(2026-01-04 12:00:00 UTC);
        let now = datetime!(2026-01-01 11:59:59.123_456_789 UTC);
        let config = CookieConfig {
            expires: Some(at),
            ..CookieConfig::default()
        };
        let mut c = SessionCookie::from_config(&config, false, now);
        c.touch_at(now + Duration::nanoseconds(1));
        assert_eq!(c.expires, Some(at));
        assert!(c.set_cookie("n", "v").contains("Expires=Sun, 04 Jan 2026 12:00:00 GMT"));
    }

    #[test]
    fn expiry_past_the_calendar_ends_clamps_instead_of_panicking() {
        // Seen while fuzzing the record codec: 9999-12-31 23:00 at -03:00 is past year 9999 in
        // UTC, where converting it for `Expires` or for the stored record panicked.
        let now = datetime!(2026-01-01 12:00:00 UTC);
        let mut c = SessionCookie::from_config(&CookieConfig::default(), false, now);
        c.set_expires_at(Some(datetime!(9999-12-31 23:00 -03:00)), now);
        assert_eq!(c.expires, Some(datetime!(9999-12-31 23:59:59.999 UTC)));
        assert!(c
            .set_cookie("n", "v")
            .contains("; Expires=Fri, 31 Dec 9999 23:59:59 GMT"));
        c.set_expires_at(Some(datetime!(0000-01-01 0:00 +01:00)), now);
        assert_eq!(c.expires, Some(datetime!(0000-01-01 0:00 UTC)));
        assert!(c
            .set_cookie("n", "v")
            .contains("; Expires=Sat, 01 Jan 0000 00:00:00 GMT"));
    }

    #[test]
    fn extreme_lifetimes_clamp_instead_of_panicking() {
        let now = OffsetDateTime::now_utc();
        let mut c = SessionCookie::from_config(&CookieConfig::default(), false, now);
        c.set_max_age_at(Some(Duration::MAX), now);
        assert!(c.expires.unwrap().year() >= 9999);
        let _ = c.set_cookie("n", "v");
        c.set_max_age_at(Some(Duration::MIN), now);
        let _ = c.set_cookie("n", "v");
    }
}
