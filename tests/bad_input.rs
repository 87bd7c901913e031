//! The bad-input table of `security.md` §3, row by row (the rows that apply to a session
//! middleware): each input gets the safe answer — no session, no store call where the table
//! says none, never a panic, never a 500 for a client's mistake, 503 when the store is down
//! and a cookie is present, and a corrupt record replaced by a new session under a new id.

mod common;

use std::sync::Arc;

use axum::{
    body::Body,
    http::{header::COOKIE, HeaderValue, Request, StatusCode},
};
use common::{cookie_for, sid_of, value_for, DynStore, Fault, Harness, Reply};
use express_session::{
    cookie::{cookie_value, sign},
    time::{Duration, OffsetDateTime},
    ConfigError, MemoryStore, Record, SessionLayer, SessionStore,
};

fn harness() -> Harness {
    Harness::new(Arc::new(MemoryStore::new()) as DynStore, |l| l)
}

/// A harness with one stored session (`user = "bob"`); returns it, the cookie pair and the id.
async fn with_session() -> (Harness, String, String) {
    let h = harness();
    let r = h.get("/set", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    h.counting.reset();
    (h, cookie, id)
}

/// Sends `GET /get` with these raw `Cookie` header fields (bytes, one per field).
async fn get_with_fields(h: &Harness, fields: &[&[u8]]) -> Reply {
    let mut req = Request::get("/get");
    for f in fields {
        req = req.header(COOKIE, HeaderValue::from_bytes(f).expect("valid header bytes"));
    }
    h.send(req.body(Body::empty()).unwrap()).await
}

/// The request was treated as carrying no session: 200, no data, no cookie, no store call.
#[track_caller]
fn assert_absent(h: &Harness, r: &Reply, what: &str) {
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "none"), "{what}: {r:?}");
    assert!(r.set_cookies.is_empty(), "{what}: {r:?}");
    assert_eq!(h.counts().total(), 0, "{what}: store touched");
}

// Row 1.
#[tokio::test]
async fn no_cookie_header_is_absent_without_store_calls() {
    let h = harness();
    let r = h.get("/get", None).await;
    assert_absent(&h, &r, "no cookie");
    // Only a write makes a session (and a cookie).
    let r = h.get("/set", None).await;
    assert!(r.session_cookie().is_some());
    assert_eq!(h.counts().create, 1);
}

// Row 2.
#[tokio::test]
async fn unrelated_cookies_only_are_absent() {
    let h = harness();
    let r = get_with_fields(&h, &[b"_ga=GA1.2.3.4; theme=dark; connect.sidx=1; xconnect.sid=2"]).await;
    assert_absent(&h, &r, "unrelated");
}

// Row 3.
#[tokio::test]
async fn malformed_pieces_do_not_hide_the_session_cookie() {
    let (h, cookie, _) = with_session().await;
    for header in [
        format!("foo=1; a; =x; ;; {cookie}"),
        format!(";;;{cookie};;;"),
        format!("=; ==; a==b; {cookie}; trailing"),
        format!("\"unbalanced; {cookie}"),
    ] {
        let r = get_with_fields(&h, &[header.as_bytes()]).await;
        r.assert_ok("bob");
    }
}

// Row 4.
#[tokio::test]
async fn non_utf8_bytes_elsewhere_do_not_hide_the_session_cookie() {
    let (h, cookie, _) = with_session().await;
    let mut header = b"x=\xff\xfe; y=caf\xe9; ".to_vec();
    header.extend_from_slice(cookie.as_bytes());
    header.extend_from_slice(b"; z=\x80");
    get_with_fields(&h, &[&header]).await.assert_ok("bob");
    // Non-UTF-8 in the session value itself: absent.
    h.counting.reset();
    let r = get_with_fields(&h, &[b"connect.sid=s%3A\xff\xfe.abc"]).await;
    assert_absent(&h, &r, "non-UTF-8 session value");
}

// Row 5.
#[tokio::test]
async fn several_cookie_header_fields_are_read_as_one_list() {
    let (h, cookie, _) = with_session().await;
    get_with_fields(&h, &[b"a=1; b=2", cookie.as_bytes(), b"c=3"])
        .await
        .assert_ok("bob");
}

// Row 6.
#[tokio::test]
async fn duplicate_session_cookies_first_valid_wins() {
    let h = harness();
    let a = h.get("/set", None).await.cookie();
    let b = h.get("/count", None).await.cookie();
    h.counting.reset();
    // Both valid: the first one.
    let r = get_with_fields(&h, &[format!("{a}; {b}").as_bytes()]).await;
    r.assert_ok("bob");
    assert_eq!(h.reads(), 1, "one lookup only");
    let r = get_with_fields(&h, &[format!("{b}; {a}").as_bytes()]).await;
    r.assert_ok("none");
    // An invalid one first (a tossed cookie with a bad signature) does not shadow a valid one.
    let r = get_with_fields(&h, &[format!("connect.sid=s%3Aforged.sig; {a}").as_bytes()]).await;
    r.assert_ok("bob");
    let r = get_with_fields(&h, &[b"connect.sid=", a.as_bytes()]).await;
    r.assert_ok("bob");
}

// Row 7.
#[tokio::test]
async fn empty_value_is_absent_without_lookup() {
    let h = harness();
    for header in ["connect.sid=", "connect.sid", "connect.sid=\"\"", "connect.sid= ; a=1"] {
        let r = get_with_fields(&h, &[header.as_bytes()]).await;
        assert_absent(&h, &r, header);
    }
}

// Row 7, signed: a correctly signed empty id is still no id (express treats "" as none).
#[tokio::test]
async fn signed_empty_id_is_absent_without_lookup() {
    let h = harness();
    let header = format!("connect.sid={}", value_for(""));
    assert!(header.starts_with("connect.sid=s%3A."), "{header}");
    let r = get_with_fields(&h, &[header.as_bytes()]).await;
    assert_absent(&h, &r, "signed empty id");
    // It does not shadow a valid cookie after it either.
    let (h, cookie, _) = with_session().await;
    get_with_fields(&h, &[format!("{header}; {cookie}").as_bytes()])
        .await
        .assert_ok("bob");
}

// Row 8.
#[tokio::test]
async fn oversized_value_is_absent_without_lookup() {
    let (h, cookie, id) = with_session().await;
    let big = format!("connect.sid=s%3A{id}{}.{}", "A".repeat(8 * 1024), "B".repeat(43));
    let r = get_with_fields(&h, &[big.as_bytes()]).await;
    assert_absent(&h, &r, "8 KiB value");
    // A huge header made of other cookies still finds the session.
    let noise: String = (0..2000).map(|i| format!("c{i}=v{i}; ")).collect();
    get_with_fields(&h, &[format!("{noise}{cookie}").as_bytes()])
        .await
        .assert_ok("bob");
}

// Row 9.
#[tokio::test]
async fn wrong_length_or_alphabet_is_absent_without_lookup() {
    let (h, _, id) = with_session().await;
    let signed = sign(&id, common::SECRET.as_bytes());
    let sig = &signed[signed.rfind('.').unwrap() + 1..];
    for value in [
        "malformed".to_owned(),
        "s%3A".to_owned(),
        "s%3A.".to_owned(),
        format!("s%3A{id}."),
        format!("s%3A{id}.{sig}="),
        format!("s%3A{id}.{}", &sig[..42]),
        format!("s%3A{id}.{}", "A".repeat(43)),
        format!("s%3A{id}.{}", "=".repeat(43)),
    ] {
        let r = get_with_fields(&h, &[format!("connect.sid={value}").as_bytes()]).await;
        assert_absent(&h, &r, &value);
    }
    // The URL-safe alphabet instead of the standard one (when the signature has a `+` or `/`).
    let url_safe = sig.replace('+', "-").replace('/', "_");
    if url_safe != sig {
        let r = get_with_fields(&h, &[format!("connect.sid=s%3A{id}.{url_safe}").as_bytes()]).await;
        assert_absent(&h, &r, "URL-safe signature");
    }
    // Non-canonical base64: the same bytes but different trailing bits.
    let last = sig.chars().last().unwrap();
    let twin = match last {
        'A'..='Y' | 'a'..='y' | '0'..='8' => (last as u8 + 1) as char,
        _ => 'A',
    };
    let value = format!("s%3A{id}.{}{twin}", &sig[..42]);
    let r = get_with_fields(&h, &[format!("connect.sid={value}").as_bytes()]).await;
    assert_absent(&h, &r, "non-canonical signature");
}

// Row 10.
#[tokio::test]
async fn percent_encoding_valid_is_read_as_express_and_broken_is_absent() {
    let (h, cookie, id) = with_session().await;
    // Express decodes the value (decodeURIComponent) before unsigning: the raw form, and an
    // over-encoded form of the same signed string, are the same session.
    let raw = format!("connect.sid=s:{}", sign(&id, common::SECRET.as_bytes()));
    get_with_fields(&h, &[raw.as_bytes()]).await.assert_ok("bob");
    let over: String = cookie["connect.sid=".len()..].replacen("s%3A", "%73%3a", 1).to_owned();
    get_with_fields(&h, &[format!("connect.sid={over}").as_bytes()])
        .await
        .assert_ok("bob");
    h.counting.reset();
    for value in ["%zz", "%FF", "%E0%A4%A", "%", "s%3A%", "%41%41%41%41"] {
        let r = get_with_fields(&h, &[format!("connect.sid={value}").as_bytes()]).await;
        assert_absent(&h, &r, value);
    }
    // decodeURIComponent fails as a whole on one broken escape, and the raw value is kept: a
    // value that would verify only once its valid escapes were decoded is no session.
    let odd = Harness::new(Arc::new(MemoryStore::new()) as DynStore, |l| l.genid(|| "ab%zz".into()));
    let r = odd.get("/set", None).await;
    assert_eq!(r.cookie(), format!("connect.sid={}", value_for("ab%zz")));
    odd.get("/get", Some(&r.cookie())).await.assert_ok("bob");
    let half_encoded = r.cookie().replacen("%25zz", "%zz", 1);
    odd.counting.reset();
    let r = get_with_fields(&odd, &[half_encoded.as_bytes()]).await;
    assert_absent(&odd, &r, "valid escapes beside a broken one");
    // A broken escape next to a valid signed value: the raw string is kept, which does not verify.
    let broken = format!("{cookie}%zz");
    let r = get_with_fields(&h, &[broken.as_bytes()]).await;
    assert_absent(&h, &r, "valid value + broken escape");
}

// Row 11.
#[tokio::test]
async fn unsigned_id_is_absent_without_lookup() {
    let (h, _, id) = with_session().await;
    for value in [id.clone(), format!("s%3A{id}"), format!("s:{id}")] {
        let r = get_with_fields(&h, &[format!("connect.sid={value}").as_bytes()]).await;
        assert_absent(&h, &r, &value);
    }
}

// Row 12.
#[tokio::test]
async fn tampered_signature_or_id_is_absent_without_lookup() {
    let (h, cookie, id) = with_session().await;
    // Flip one character of the id (keep the signature).
    let mut chars: Vec<char> = id.chars().collect();
    chars[0] = if chars[0] == 'a' { 'b' } else { 'a' };
    let other: String = chars.into_iter().collect();
    let tampered_id = cookie.replacen(&id, &other, 1);
    let r = get_with_fields(&h, &[tampered_id.as_bytes()]).await;
    assert_absent(&h, &r, "tampered id");
    // Signed with a key not in the list.
    let foreign = format!("connect.sid={}", cookie_value(&id, b"some other secret"));
    let r = get_with_fields(&h, &[foreign.as_bytes()]).await;
    assert_absent(&h, &r, "foreign key");
    // A write after a tampered cookie makes a new session under a new id.
    let r = h
        .send(
            Request::get("/set")
                .header(COOKIE, tampered_id.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_ne!(r.sid(), id);
    assert_ne!(r.sid(), other);
}

// Row 13.
#[tokio::test]
async fn signature_with_extra_bytes_is_absent_without_lookup() {
    let (h, _, id) = with_session().await;
    let signed = sign(&id, common::SECRET.as_bytes());
    let sig = signed[signed.rfind('.').unwrap() + 1..].to_owned();
    let enc = |s: &str| express_session::cookie::encode_uri_component(&format!("s:{s}"));
    for signed_value in [
        format!("garbage.{signed}"),
        format!("{signed}garbage"),
        format!("{signed}.garbage"),
        format!("{signed}="),
        format!("{id}.{}", &sig[..20]),
        sig.clone(),
        format!(".{sig}"),
        format!("{signed}\u{0}"),
        format!("{signed} "),
    ] {
        let r = get_with_fields(&h, &[format!("connect.sid={}", enc(&signed_value)).as_bytes()]).await;
        assert_absent(&h, &r, &signed_value);
    }
}

// Row 14.
#[tokio::test]
async fn retired_key_is_accepted_and_resigned_with_the_current_key() {
    let old = Harness::new(Arc::new(MemoryStore::new()) as DynStore, |l| {
        l.secret("old key").max_age(Duration::hours(1))
    });
    let r = old.get("/set", None).await;
    let (old_cookie, id) = (r.cookie(), r.sid());
    let rotated = old.reconfigured(|l| {
        l.secrets(["new key", "old key"])
            .max_age(Duration::hours(1))
            .rolling(true)
    });
    let r = rotated.get("/get", Some(&old_cookie)).await;
    r.assert_ok("bob");
    assert_eq!(r.cookie(), format!("connect.sid={}", cookie_value(&id, b"new key")));
    // Once the old key is dropped, the re-signed cookie still works and the old one does not.
    let new_only = old.reconfigured(|l| l.secret("new key"));
    new_only.get("/get", Some(&r.cookie())).await.assert_ok("bob");
    new_only.counting.reset();
    let r = new_only.get("/get", Some(&old_cookie)).await;
    assert_absent(&new_only, &r, "retired key removed");
}

// Row 15.
#[tokio::test]
async fn valid_signature_unknown_id_is_never_adopted() {
    let h = harness();
    let forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let r = h.get("/set", Some(&cookie_for(forged))).await;
    r.assert_ok("set");
    assert_ne!(r.sid(), forged);
    assert_eq!(h.record(forged).await, None);
    assert_eq!(h.counts().load_and_touch + h.counts().load, 1);
    // Without a write nothing is created and no cookie is sent.
    h.counting.reset();
    let r = h.get("/get", Some(&cookie_for(forged))).await;
    r.assert_ok("none");
    r.assert_no_cookie();
    assert_eq!(h.writes(), 0);
}

// Row 16.
#[tokio::test]
async fn expired_record_still_in_store_is_not_found() {
    let (h, cookie, id) = with_session().await;
    // Age the record in place: it is physically there, but expired.
    h.raw
        .touch(&id, Some(OffsetDateTime::now_utc() - Duration::seconds(1)))
        .await
        .unwrap();
    let r = h.get("/set", Some(&cookie)).await;
    r.assert_ok("set");
    assert_ne!(r.sid(), id);
    assert_eq!(h.record(&id).await, None);
}

// Row 17.
#[tokio::test]
async fn undecodable_record_is_corrupt_new_session_new_id_old_deleted() {
    for bad in [
        "random-thing-which-is-not-json",
        "",
        "null",
        "[]",
        "{}",
        r#"{"cookie":1}"#,
        r#"{"cookie":null,"user":"bob"}"#,
        r#"{"cookie":{"path":"/"},"user":"bob""#,
        "{\"cookie\":{}, \"a\": \"\\ud800\"}x",
    ] {
        let (h, cookie, id) = with_session().await;
        h.overwrite(&id, bad).await;
        // A request that writes: a new session under a new id.
        let r = h.get("/set", Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{bad:?}: {r:?}");
        assert_ne!(r.sid(), id, "{bad:?}");
        assert_eq!(h.record(&id).await, None, "{bad:?}: old record kept");
        // A request that does not write: no session, old record gone, no cookie.
        let (h, cookie, id) = with_session().await;
        h.overwrite(&id, bad).await;
        let r = h.get("/get", Some(&cookie)).await;
        r.assert_ok("none");
        r.assert_no_cookie();
        assert_eq!(h.record(&id).await, None, "{bad:?}");
    }
}

// Row 17, lenient side: odd but decodable cookie fields never break a load.
#[tokio::test]
async fn odd_cookie_fields_in_record_do_not_panic() {
    for cookie_json in [
        r#"{"originalMaxAge":1e300,"expires":"+275760-09-13T00:00:00.000Z"}"#,
        r#"{"originalMaxAge":-1e300,"expires":"garbage"}"#,
        r#"{"originalMaxAge":"x","expires":12,"path":7,"httpOnly":"yes","sameSite":"weird","priority":3}"#,
        r#"{"originalMaxAge":9223372036854775807,"expires":null}"#,
        r#"{"originalMaxAge":-9223372036854775808,"expires":null}"#,
    ] {
        let (h, cookie, id) = with_session().await;
        h.overwrite(&id, &format!(r#"{{"cookie":{cookie_json},"user":"bob"}}"#))
            .await;
        let h2 = h.reconfigured(|l| l.rolling(true).resave(true));
        let r = h2.get("/count", Some(&cookie)).await;
        assert_ne!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{cookie_json}: {r:?}");
    }
}

// Row 18.
#[tokio::test]
async fn huge_payload_on_save_fails_with_500_and_writes_nothing() {
    let h = harness();
    let r = h.get("/big?kb=2048", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, ""));
    r.assert_no_cookie();
    assert_eq!(h.writes(), 0);
    // The same for an existing session: the stored record is left as it was.
    let (h, cookie, id) = with_session().await;
    let before = h.record(&id).await.unwrap();
    let r = h.get("/big?kb=2048", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.counts().update, 0);
    assert_eq!(h.record(&id).await.unwrap(), before);
}

// Row 19.
#[tokio::test]
async fn huge_blob_on_load_is_treated_as_corrupt() {
    let h = Harness::new(Arc::new(MemoryStore::new()) as DynStore, |l| {
        l.max_record_size(64 * 1024)
    });
    let id = express_session::generate_id();
    let blob = format!(
        r#"{{"cookie":{{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}},"user":"bob","blob":"{}"}}"#,
        "x".repeat(128 * 1024)
    );
    assert!(h.raw.create(&id, &Record::new(blob, None)).await.unwrap());
    let r = h.get("/set", Some(&cookie_for(&id))).await;
    r.assert_ok("set");
    assert_ne!(r.sid(), id);
    assert_eq!(h.record(&id).await, None, "oversized record deleted");
}

// Row 20.
#[tokio::test]
async fn store_down_with_cookie_is_503_and_without_cookie_untouched() {
    let (h, cookie, id) = with_session().await;
    let before = h.record(&id).await.unwrap();
    h.faulty.set(Fault::ReadsDown);
    for path in ["/get", "/set"] {
        let r = h.get(path, Some(&cookie)).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, ""),
            "{path}"
        );
        r.assert_no_cookie();
    }
    assert_eq!(h.writes(), 0, "fail closed: nothing overwritten");
    assert_eq!(h.record(&id).await.unwrap(), before);
    // No cookie: the store is not needed.
    h.counting.reset();
    h.faulty.set(Fault::AllTimeout);
    h.get("/get", None).await.assert_ok("none");
    assert_eq!(h.counts().total(), 0);
}

// Row 22.
#[tokio::test]
async fn session_id_outside_the_cookie_is_ignored() {
    let (h, cookie, id) = with_session().await;
    let value = value_for(&id);
    let r = h
        .send(
            Request::get(format!("/get?connect.sid={value}&sid={id}"))
                .header("x-session", value.as_str())
                .header("authorization", format!("Bearer {id}"))
                .header("x-connect-sid", cookie.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_absent(&h, &r, "id outside the cookie");
}

// Row 24.
#[test]
fn untrusted_cookie_attributes_are_rejected_at_build_time() {
    let layer = || SessionLayer::new(MemoryStore::new()).secret("s");
    assert!(matches!(
        layer().domain("a.com; Domain=.b.com").build(),
        Err(ConfigError::InvalidAttribute { .. })
    ));
    assert!(matches!(
        layer().path("/\r\nSet-Cookie: evil=1").build(),
        Err(ConfigError::InvalidAttribute { .. })
    ));
    assert!(matches!(
        layer().name("sid; Domain=.b.com").build(),
        Err(ConfigError::InvalidName(_))
    ));
}

// Row 24, ids: whatever genid returns is percent-encoded, never an attribute.
#[tokio::test]
async fn hostile_generated_id_cannot_inject_attributes() {
    let h = Harness::new(Arc::new(MemoryStore::new()) as DynStore, |l| {
        l.genid(|| "x; Domain=.evil.example; HttpOnly=\r\n".into())
    });
    let r = h.get("/set", None).await;
    r.assert_ok("set");
    let sc = r.session_cookie().unwrap();
    assert_eq!(sc.matches("; ").count(), 3, "{sc}");
    assert!(!sc.contains("evil.example;") && !sc.contains('\r'), "{sc}");
    assert_eq!(sid_of(sc), "x; Domain=.evil.example; HttpOnly=\r\n");
    h.get("/get", Some(&r.cookie())).await.assert_ok("bob");
}

// Row 25.
#[tokio::test]
async fn extreme_lifetimes_clamp_and_never_panic() {
    for d in [
        Duration::MAX,
        Duration::MIN,
        Duration::ZERO,
        Duration::milliseconds(i64::MAX),
    ] {
        let h = Harness::new(Arc::new(MemoryStore::new()) as DynStore, move |l| l.max_age(d));
        let r = h.get("/set", None).await;
        assert_eq!(r.status, StatusCode::OK, "{d}: {r:?}");
    }
    let h = Harness::new(Arc::new(MemoryStore::new()) as DynStore, |l| l.max_age(Duration::MAX));
    let r = h.get("/set", None).await;
    let sc = r.session_cookie().unwrap();
    assert!(sc.contains("Expires=Fri, 31 Dec 9999 23:59:59 GMT"), "{sc}");
    for ms in [i64::MAX, i64::MIN, -1, 0] {
        let r = h.get(&format!("/max_age?ms={ms}"), Some(&r.cookie())).await;
        assert_ne!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{ms}: {r:?}");
    }
}

// Row 26: a bounded, deterministic fuzz of Cookie headers and stored records.
#[tokio::test]
async fn arbitrary_cookie_headers_and_records_never_panic_or_500() {
    let (h, cookie, id) = with_session().await;
    let pieces: &[&[u8]] = &[
        b"connect.sid=",
        b"s%3A",
        b"s:",
        id.as_bytes(),
        b".",
        b";",
        b"=",
        b" ",
        b"\"",
        b"%",
        b"%zz",
        b"\xff",
        b"\t",
        cookie.as_bytes(),
        b"A",
        b"+/",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..500 {
        let n = (next() % 8) as usize;
        let mut header = Vec::new();
        for _ in 0..n {
            header.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
        }
        let Ok(value) = HeaderValue::from_bytes(&header) else {
            continue;
        };
        let req = Request::get("/count")
            .header(COOKIE, value)
            .body(Body::empty())
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{:?}: {r:?}",
            String::from_utf8_lossy(&header)
        );
    }
    let json_pieces = [
        "{",
        "}",
        "\"cookie\"",
        ":",
        ",",
        "{\"expires\":",
        "null",
        "1e999",
        "\"x\"",
        "[",
        "]",
    ];
    for _ in 0..300 {
        let (h, cookie, id) = with_session().await;
        let n = (next() % 10) as usize;
        let text: String = (0..n)
            .map(|_| json_pieces[(next() % json_pieces.len() as u64) as usize])
            .collect();
        h.overwrite(&id, &text).await;
        let r = h.get("/count", Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{text:?}: {r:?}");
    }
}
