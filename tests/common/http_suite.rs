//! The HTTP behaviour suite, written once and run against every store.
//!
//! Each case is an async function over a store (`Arc<dyn SessionStore>`): it builds a test app
//! ([`Harness`]) over that store, sends requests through `oneshot`, and checks responses, store
//! call counts and the raw stored records (read with the store's own `load`, so nothing here
//! depends on one store's internals). The cases follow express-session's own test suite and
//! its decision rules (`/work/shared/reference/express-session.md` §1.2), with this crate's
//! deliberate differences (resave and saveUninitialized default to false, SameSite=Lax,
//! destroy clears the cookie, a corrupt record starts a new session).
//!
//! # Running it against a store
//!
//! In a test file (`tests/<store>.rs`):
//!
//! ```text
//! mod common;
//!
//! http_suite_tests!(async { Some(MyStore::connect(..).await) });
//! ```
//!
//! The expression is evaluated once per test and gives `Option<store>` (any `SessionStore`,
//! an `Arc` of one included); `None` skips, as `service_url` does for a service that is not
//! configured. Every case creates its own sessions with fresh random ids, so a shared backend
//! is fine, and a passing case deletes every record it created; use a unique key prefix or
//! table per test (`unique_name`) if the store needs one.
//! `cargo test --test <file> http_` runs them (every case name starts with `http_`).

use axum::http::StatusCode;
use express_session::{time, Priority, SameSite, Secure, SessionLayer, Unset};
use time::{Duration, OffsetDateTime};

use super::*;

/// Expands the suite into one `#[tokio::test]` per case, over the store that `$make` (an async
/// expression giving `Option<impl SessionStore>`) builds.
#[macro_export]
macro_rules! http_suite_tests {
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(store) = $make.await {
                    let store = ::std::sync::Arc::new($crate::common::TrackedStore::new(store));
                    $crate::common::http_suite::$case(store.clone()).await;
                    // Leave nothing behind in a shared backend.
                    store.cleanup().await;
                }
            }
        )*
    };
    ($make:expr) => {
        $crate::http_suite_tests!(@cases $make;
            http_unmodified_new_session_costs_nothing,
            http_modified_new_session_is_saved_with_express_cookie,
            http_session_loads_from_cookie,
            http_record_changed_by_another_writer_is_read_fresh,
            http_stored_json_shape_is_express,
            http_concurrent_first_requests_get_separate_sessions,
            http_save_uninitialized_true_saves_empty_session,
            http_save_uninitialized_false_still_saves_modified,
            http_resave_false_only_touches_unmodified_session,
            http_resave_true_writes_unmodified_session,
            http_resave_false_saves_modified_session,
            http_same_value_is_not_a_modification,
            http_cookie_resent_only_when_modified_with_expiry,
            http_browser_session_cookie_resent_only_when_rolling,
            http_rolling_resends_cookie_and_moves_expiry,
            http_rolling_does_not_force_uninitialized_cookie,
            http_rolling_with_save_uninitialized_sets_cookie,
            http_unset_keep_leaves_store_untouched,
            http_unset_destroy_deletes_record,
            http_unset_destroy_of_new_session_sends_nothing,
            http_tampered_cookie_starts_new_session_without_lookup,
            http_unsigned_cookie_starts_new_session_without_lookup,
            http_unknown_sid_gets_new_sid,
            http_expired_record_gets_new_sid,
            http_corrupt_record_starts_new_session_and_is_deleted,
            http_record_without_cookie_object_is_corrupt,
            http_reserved_keys_in_record_are_ignored,
            http_secret_rotation_signs_with_first_verifies_with_all,
            http_secret_rotation_resigns_with_current_key,
            http_regenerate_replaces_id_and_drops_data,
            http_regenerate_at_login_keeps_new_data,
            http_destroy_deletes_and_clears_cookie,
            http_destroy_of_new_session_sends_no_cookie,
            http_reload_picks_up_store_changes,
            http_reload_of_missing_session_is_an_error,
            http_explicit_save_prevents_second_write,
            http_explicit_save_after_reload_prevents_second_write,
            http_touch_resets_expiry_without_store_write,
            http_unmodified_request_moves_store_expiry,
            http_max_age_changes_per_session,
            http_expires_null_makes_browser_session_cookie,
            http_expires_set_absolute,
            http_cookie_changes_apply_to_set_cookie,
            http_cookie_attributes_from_store_are_honoured,
            http_cookie_attribute_options,
            http_same_site_options,
            http_secure_always_gate_over_http,
            http_proxy_trusts_forwarded_proto,
            http_proxy_off_ignores_forwarded_proto,
            http_secure_auto_resolves_once,
            http_path_gate,
            http_genid_is_used,
            http_other_set_cookie_headers_are_kept,
            http_store_read_down_with_cookie_is_503,
            http_store_read_error_is_opaque_500,
            http_store_write_down_is_503,
            http_store_down_does_not_affect_cookieless_requests,
            http_store_timeout_is_503,
            http_touch_error_is_reported,
            http_huge_payload_fails_save_and_writes_nothing,
            http_unset_destroy_error_is_reported,
            http_change_after_explicit_save_is_saved_at_the_end,
            http_cookie_only_change_is_not_a_modification,
            http_destroyed_session_refuses_writes,
            http_absolute_timeout_ends_a_session_however_active,
            http_absolute_timeout_starts_for_sessions_made_without_it,
            http_absolute_timeout_survives_clear_and_restarts_at_regenerate,
        );
    };
}

fn h(store: DynStore, configure: impl FnOnce(SessionLayer) -> SessionLayer) -> Harness {
    Harness::new(store, configure)
}

const HOUR: i64 = 3600;

/// A new session nobody wrote to: no cookie, no store call at all.
pub async fn http_unmodified_new_session_costs_nothing(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/noop", None).await;
    r.assert_ok("ok");
    r.assert_no_cookie();
    assert_eq!(h.counts().total(), 0);
}

/// A new session with data: one `create`, and express's Set-Cookie with our SameSite=Lax.
pub async fn http_modified_new_session_is_saved_with_express_cookie(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/set", None).await;
    r.assert_ok("set");
    let id = r.sid();
    assert_eq!(id.len(), 32);
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("connect.sid={}; Path=/; HttpOnly; SameSite=Lax", value_for(&id)),
    );
    let c = h.counts();
    assert_eq!((c.create, c.update, c.load, c.load_and_touch), (1, 0, 0, 0));
    assert!(h.record(&id).await.is_some());
}

/// A record another writer changed (another process, a Node app) reads as it now is, even
/// right after this layer loaded and saved the old text: the layer's decoded copies are keyed
/// by the exact text.
pub async fn http_record_changed_by_another_writer_is_read_fresh(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/set", None).await.cookie();
    let id = sid_of(&cookie);
    h.get("/get", Some(&cookie)).await.assert_ok("bob");
    h.get("/count", Some(&cookie)).await.assert_ok("1");
    h.get("/get", Some(&cookie)).await.assert_ok("bob");
    let saved = h.record(&id).await.unwrap();
    h.overwrite(&id, &saved.replace(r#""user":"bob""#, r#""user":"carol""#))
        .await;
    h.get("/get", Some(&cookie)).await.assert_ok("carol");
    h.get("/count", Some(&cookie)).await.assert_ok("2");
    // Back to a text the layer has seen before: read as that text says, count included.
    h.overwrite(&id, &saved).await;
    h.get("/get", Some(&cookie)).await.assert_ok("bob");
    h.get("/count", Some(&cookie)).await.assert_ok("2");
}

/// The cookie brings the session back.
pub async fn http_session_loads_from_cookie(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/set", None).await;
    let r2 = h.get("/get", Some(&r.cookie())).await;
    r2.assert_ok("bob");
    assert_eq!(h.get("/id", Some(&r.cookie())).await.body, r.sid());
    h.get("/new", Some(&r.cookie())).await.assert_ok("old");
    h.get("/new", None).await.assert_ok("new");
}

/// The stored text is express's `JSON.stringify(session)`, byte for byte.
pub async fn http_stored_json_shape_is_express(store: DynStore) {
    let h = h(store, |l| l);
    let id = h.get("/set", None).await.sid();
    assert_eq!(
        h.record(&id).await.unwrap(),
        r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/","sameSite":"lax"},"user":"bob"}"#
    );

    let h2 = h.reconfigured(|l| {
        l.partitioned(true)
            .priority(Priority::High)
            .same_site(Some(SameSite::Strict))
            .http_only(false)
    });
    let id = h2.get("/set", None).await.sid();
    assert_eq!(
        h2.record(&id).await.unwrap(),
        r#"{"cookie":{"originalMaxAge":null,"partitioned":true,"priority":"high","expires":null,"httpOnly":false,"path":"/","sameSite":"strict"},"user":"bob"}"#
    );

    let h = h.reconfigured(|l| {
        l.max_age(Duration::days(1))
            .secure(Secure::Always)
            .domain("example.com")
            .same_site(None)
    });
    let req = axum::http::Request::get("https://example.com/count");
    let r = h.send(req.body(axum::body::Body::empty()).unwrap()).await;
    let id = r.sid();
    let text = h.record(&id).await.unwrap();
    let expires = stored_expires(&text).expect("expires stored");
    assert_eq!(
        text,
        format!(
            r#"{{"cookie":{{"originalMaxAge":86400000,"expires":"{expires}","secure":true,"httpOnly":true,"domain":"example.com","path":"/"}},"count":1}}"#
        )
    );
    // The stored expiry is the cookie's, to the millisecond (ISO form with `.mmmZ`).
    let parsed = OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(expires.ends_with('Z') && expires.len() == "2026-01-02T12:00:00.000Z".len());
    assert_eq!(
        http_date(parsed),
        http_date(expires_of(r.session_cookie().unwrap()).unwrap())
    );
    assert!((parsed - OffsetDateTime::now_utc() - Duration::days(1)).abs() < Duration::seconds(3));
}

/// Two cookieless first requests at once make two sessions.
pub async fn http_concurrent_first_requests_get_separate_sessions(store: DynStore) {
    let h = h(store, |l| l);
    let (a, b) = tokio::join!(h.get("/count", None), h.get("/count", None));
    a.assert_ok("1");
    b.assert_ok("1");
    assert_ne!(a.sid(), b.sid());
    assert!(h.record(&a.sid()).await.is_some() && h.record(&b.sid()).await.is_some());
}

/// saveUninitialized: true saves the empty session and sends its cookie.
pub async fn http_save_uninitialized_true_saves_empty_session(store: DynStore) {
    let h = h(store, |l| l.save_uninitialized(true));
    let r = h.get("/noop", None).await;
    let id = r.sid();
    assert_eq!(h.counts().create, 1);
    assert_eq!(
        h.record(&id).await.unwrap(),
        r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/","sameSite":"lax"}}"#
    );
}

/// saveUninitialized: false still saves a modified session.
pub async fn http_save_uninitialized_false_still_saves_modified(store: DynStore) {
    let h = h(store, |l| l.save_uninitialized(false).max_age(Duration::minutes(1)));
    let r = h.get("/noop", None).await;
    r.assert_no_cookie();
    assert_eq!(h.counts().total(), 0, "uninitialized session neither saved nor touched");
    let r = h.get("/count", None).await;
    assert!(r.session_cookie().is_some());
    assert_eq!(h.counts().create, 1);
}

/// resave: false (our default): an unmodified loaded session is not written, only touched.
pub async fn http_resave_false_only_touches_unmodified_session(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/set", None).await.cookie();
    let id = sid_of(&cookie);
    let before = h.record(&id).await.unwrap();
    h.counting.reset();
    let r = h.get("/get", Some(&cookie)).await;
    r.assert_ok("bob");
    r.assert_no_cookie();
    let c = h.counts();
    assert_eq!((c.create, c.update), (0, 0), "{c:?}");
    assert_eq!(c.load + c.load_and_touch, 1, "{c:?}");
    assert_eq!(c.total(), 1, "one round trip for a read-only request: {c:?}");
    assert_eq!(h.record(&id).await.unwrap(), before);
}

/// resave: true writes an unmodified loaded session back.
pub async fn http_resave_true_writes_unmodified_session(store: DynStore) {
    let h = h(store, |l| l.resave(true));
    let cookie = h.get("/set", None).await.cookie();
    h.counting.reset();
    h.get("/get", Some(&cookie)).await.assert_ok("bob");
    assert_eq!(h.counts().update, 1);
}

/// resave: false still saves a modified session (express's token example).
pub async fn http_resave_false_saves_modified_session(store: DynStore) {
    let h = h(store, |l| l.resave(false));
    let cookie = h.get("/count", None).await.cookie();
    h.counting.reset();
    h.get("/get", Some(&cookie)).await;
    assert_eq!(h.counts().update, 0);
    h.get("/count", Some(&cookie)).await.assert_ok("2");
    assert_eq!(h.counts().update, 1);
    assert!(h.record(&sid_of(&cookie)).await.unwrap().ends_with(r#""count":2}"#));
}

/// Writing the same value again is not a modification: no write, no cookie.
pub async fn http_same_value_is_not_a_modification(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::hours(1)));
    let cookie = h.get("/set", None).await.cookie();
    h.counting.reset();
    let r = h.get("/set", Some(&cookie)).await;
    r.assert_ok("set");
    r.assert_no_cookie();
    let c = h.counts();
    assert_eq!((c.create, c.update), (0, 0), "{c:?}");
}

/// express "should only set-cookie when modified" (cookie with maxAge).
pub async fn http_cookie_resent_only_when_modified_with_expiry(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::minutes(1)));
    let r = h.get("/count", None).await;
    r.assert_ok("1");
    let cookie = r.cookie();
    let r = h.get("/count", Some(&cookie)).await;
    r.assert_ok("2");
    assert_eq!(r.cookie(), cookie, "same id, re-sent because modified and expiring");
    let r = h.get("/get", Some(&cookie)).await;
    r.assert_no_cookie();
    let r = h.get("/count", Some(&cookie)).await;
    r.assert_ok("3");
    assert!(r.session_cookie().is_some());
}

/// A browser-session cookie (no maxAge) of an existing session is re-sent only when rolling.
pub async fn http_browser_session_cookie_resent_only_when_rolling(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/count", None).await.cookie();
    let r = h.get("/count", Some(&cookie)).await;
    r.assert_ok("2");
    r.assert_no_cookie();
    let rolling = h.reconfigured(|l| l.rolling(true));
    let r = rolling.get("/count", Some(&cookie)).await;
    r.assert_ok("3");
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("{cookie}; Path=/; HttpOnly; SameSite=Lax"),
    );
    rolling.get("/get", Some(&cookie)).await.cookie();
}

/// rolling: the cookie goes out on every response of an existing session, expiry moved on.
pub async fn http_rolling_resends_cookie_and_moves_expiry(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::hours(1)));
    let cookie = h.get("/set", None).await.cookie();
    h.get("/get", Some(&cookie)).await.assert_no_cookie();
    // Pretend the record was last saved half an hour ago.
    let id = sid_of(&cookie);
    let old = h.record(&id).await.unwrap();
    let stale = (OffsetDateTime::now_utc() + Duration::minutes(30))
        .replace_millisecond(0)
        .unwrap();
    h.overwrite(
        &id,
        &old.replace(&stored_expires(&old).unwrap(), &express_session::codec::iso_date(stale)),
    )
    .await;
    let rolling = h.reconfigured(|l| l.max_age(Duration::hours(1)).rolling(true));
    let r = rolling.get("/get", Some(&cookie)).await;
    r.assert_ok("bob");
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("{cookie}; Path=/; Expires=<in {HOUR} s>; HttpOnly; SameSite=Lax"),
    );
}

/// rolling does not force a cookie for an uninitialized session when saveUninitialized is off.
pub async fn http_rolling_does_not_force_uninitialized_cookie(store: DynStore) {
    let h = h(store, |l| l.rolling(true).save_uninitialized(false));
    h.get("/noop", None).await.assert_no_cookie();
    assert_eq!(h.counts().total(), 0);
    let r = h.get("/set", None).await;
    assert!(r.session_cookie().is_some());
    assert_eq!(h.counts().create, 1);
}

/// rolling with saveUninitialized: cookie and save for an empty session.
pub async fn http_rolling_with_save_uninitialized_sets_cookie(store: DynStore) {
    let h = h(store, |l| l.rolling(true).save_uninitialized(true));
    let r = h.get("/noop", None).await;
    assert!(r.session_cookie().is_some());
    assert_eq!(h.counts().create, 1);
}

/// unset: keep (default) — `req.session = null` leaves the stored session as it was.
pub async fn http_unset_keep_leaves_store_untouched(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/count_unset", None).await.cookie();
    let id = sid_of(&cookie);
    let before = h.record(&id).await.unwrap();
    h.counting.reset();
    let r = h.get("/count_unset", Some(&cookie)).await;
    r.assert_ok("2");
    r.assert_no_cookie();
    assert_eq!(
        h.record(&id).await.unwrap(),
        before,
        "changes of an unset session are dropped"
    );
    let c = h.counts();
    assert_eq!((c.update, c.destroy, c.create), (0, 0, 0), "{c:?}");
}

/// unset: destroy — the stored session is deleted.
pub async fn http_unset_destroy_deletes_record(store: DynStore) {
    let h = h(store, |l| l.unset(Unset::Destroy));
    let cookie = h.get("/count_unset", None).await.cookie();
    let id = sid_of(&cookie);
    assert!(h.record(&id).await.is_some());
    let r = h.get("/count_unset", Some(&cookie)).await;
    r.assert_ok("2");
    assert_eq!(h.record(&id).await, None);
    assert_eq!(h.counts().destroy, 1);
    h.get("/get", Some(&cookie)).await.assert_ok("none");
}

/// unset: destroy on a brand-new session: no cookie, nothing stored.
pub async fn http_unset_destroy_of_new_session_sends_nothing(store: DynStore) {
    let h = h(store, |l| l.unset(Unset::Destroy).save_uninitialized(true));
    let r = h.get("/unset", None).await;
    r.assert_ok("unset");
    r.assert_no_cookie();
    assert_eq!(h.counts().total(), 0);
}

/// A cookie whose signature does not verify is ignored before any store access.
pub async fn http_tampered_cookie_starts_new_session_without_lookup(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/set", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    // express's test: drop three characters before the dot.
    let dot = cookie.rfind('.').unwrap();
    let tampered = format!("{}{}", &cookie[..dot - 3], &cookie[dot..]);
    h.counting.reset();
    let r = h.get("/set", Some(&tampered)).await;
    assert_eq!(h.reads(), 0, "no store lookup for a bad signature");
    assert_ne!(r.sid(), id);
    // One flipped character in the signature.
    let last = cookie.chars().last().unwrap();
    let flipped = format!("{}{}", &cookie[..cookie.len() - 1], if last == 'A' { 'B' } else { 'A' });
    h.counting.reset();
    h.get("/get", Some(&flipped)).await.assert_ok("none");
    assert_eq!(h.counts().total(), 0);
}

/// An unsigned id (without `s:` and signature) is no session.
pub async fn http_unsigned_cookie_starts_new_session_without_lookup(store: DynStore) {
    let h = h(store, |l| l.name("sessid"));
    let r = h.get("/set", None).await;
    let id = sid_of(r.session_cookie_named("sessid").unwrap());
    h.counting.reset();
    let r = h.get("/get", Some(&format!("sessid={id}"))).await;
    r.assert_ok("none");
    assert_eq!(h.counts().total(), 0);
    let r = h.get("/set", Some(&format!("sessid={id}"))).await;
    assert_ne!(sid_of(r.session_cookie_named("sessid").unwrap()), id);
}

/// A validly signed id the store does not hold: never adopted; a new id on write.
pub async fn http_unknown_sid_gets_new_sid(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/count", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    h.raw.destroy(&id).await.unwrap();
    let r = h.get("/count", Some(&cookie)).await;
    r.assert_ok("1");
    assert_ne!(r.sid(), id);
    assert_eq!(h.record(&id).await, None, "the client's id is not adopted");
    // Forged but validly signed id that never existed.
    let forged = express_session::generate_id();
    h.counting.reset();
    let r = h.get("/noop", Some(&cookie_for(&forged))).await;
    r.assert_no_cookie();
    assert_eq!(h.reads(), 1);
    assert_eq!(h.writes(), 0);
}

/// A record that expired (still physically stored or not) is treated as missing.
pub async fn http_expired_record_gets_new_sid(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::minutes(1)));
    let r = h.get("/count", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    h.raw
        .touch(&id, Some(OffsetDateTime::now_utc() - Duration::seconds(5)))
        .await
        .unwrap();
    let r = h.get("/count", Some(&cookie)).await;
    r.assert_ok("1");
    assert_ne!(r.sid(), id);
}

/// A record that is not express's JSON: a new session, a new id, the old record deleted.
pub async fn http_corrupt_record_starts_new_session_and_is_deleted(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/count", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    // A store with a JSON column cannot hold text that is not JSON; JSON of the wrong shape
    // takes the same path.
    if h.try_overwrite(&id, "random-thing-which-is-not-json").await.is_err() {
        h.overwrite(&id, "[1,2,3]").await;
    }
    let r = h.get("/count", Some(&cookie)).await;
    r.assert_ok("1");
    assert_ne!(r.sid(), id);
    assert_eq!(h.record(&id).await, None, "corrupt record deleted");
    assert!(h.record(&r.sid()).await.is_some());
}

/// express "when session without cookie property in store": JSON without `cookie` is corrupt
/// here (express answers 500; we start over, which is our documented difference).
pub async fn http_record_without_cookie_object_is_corrupt(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/count", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    h.overwrite(&id, r#"{"foo":"bar"}"#).await;
    let r = h.get("/get", Some(&cookie)).await;
    r.assert_ok("none");
    assert_eq!(h.record(&id).await, None);
}

/// Reserved keys in a stored record (`save`, `id`, …) are ignored on load.
pub async fn http_reserved_keys_in_record_are_ignored(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/set", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    let text = h.record(&id).await.unwrap();
    h.overwrite(
        &id,
        &text.replace(r#""user":"bob""#, r#""user":"bob","save":"nope","id":"x""#),
    )
    .await;
    h.get("/get", Some(&cookie)).await.assert_ok("bob");
    h.get("/id", Some(&cookie)).await.assert_ok(&id);
}

/// The first secret signs; every secret verifies, in order.
pub async fn http_secret_rotation_signs_with_first_verifies_with_all(store: DynStore) {
    let h1 = h(store, |l| l.secrets(["keyboard cat", "nyan cat"]));
    let r = h1.get("/set", None).await;
    assert_eq!(r.cookie(), cookie_for(&r.sid()), "signed with the first secret");
    let only_nyan = h1.reconfigured(|l| l.secret("nyan cat"));
    only_nyan.get("/get", Some(&r.cookie())).await.assert_ok("none");

    let r = only_nyan.get("/set", None).await;
    let both = h1.reconfigured(|l| l.secrets(["keyboard cat", "nyan cat"]));
    both.get("/get", Some(&r.cookie())).await.assert_ok("bob");
}

/// A cookie signed with a retired secret is accepted and re-signed with the current one on
/// the next Set-Cookie, so rotation converges.
pub async fn http_secret_rotation_resigns_with_current_key(store: DynStore) {
    let old = h(store, |l| l.secret("old secret").max_age(Duration::hours(1)));
    let r = old.get("/set", None).await;
    let (old_cookie, id) = (r.cookie(), r.sid());
    let rotated = old.reconfigured(|l| l.secrets(["new secret", "old secret"]).max_age(Duration::hours(1)));
    let r = rotated.get("/count", Some(&old_cookie)).await;
    r.assert_ok("1");
    assert_eq!(r.sid(), id);
    let new_value = express_session::cookie::cookie_value(&id, b"new secret");
    assert_eq!(r.cookie(), format!("connect.sid={new_value}"));
    rotated.get("/get", Some(&r.cookie())).await.assert_ok("bob");
}

/// regenerate: a new id, the old record gone, the data not carried over.
pub async fn http_regenerate_replaces_id_and_drops_data(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/set", None).await;
    let (cookie, old) = (r.cookie(), r.sid());
    let r = h.get("/regenerate", Some(&cookie)).await;
    r.assert_ok("none");
    let new = r.sid();
    assert_ne!(new, old);
    assert_eq!(h.record(&old).await, None, "old record destroyed");
    assert!(h.record(&new).await.is_some(), "regenerated session is saved");
    h.get("/get", Some(&cookie)).await.assert_ok("none");
}

/// regenerate then write (login): the new session holds only the new data.
pub async fn http_regenerate_at_login_keeps_new_data(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/set", None).await.cookie();
    let r = h.get("/login", Some(&cookie)).await;
    r.assert_ok("logged in");
    let text = h.record(&r.sid()).await.unwrap();
    assert!(text.ends_with(r#"},"user":"alice"}"#), "{text}");
    h.get("/get", Some(&r.cookie())).await.assert_ok("alice");
}

/// destroy: the record goes, the browser is told to drop the cookie, and nothing comes back.
pub async fn http_destroy_deletes_and_clears_cookie(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::hours(1)));
    let r = h.get("/set", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    let r = h.get("/destroy", Some(&cookie)).await;
    r.assert_ok("destroyed");
    assert_eq!(
        r.session_cookie().unwrap(),
        "connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
    );
    assert_eq!(h.record(&id).await, None);
    h.counting.reset();
    let r = h.get("/get", Some(&cookie)).await;
    r.assert_ok("none");
    r.assert_no_cookie();
    assert_eq!(h.writes(), 0, "no resurrection");
    assert_eq!(h.record(&id).await, None);
}

/// destroy of a session that was never stored: no Set-Cookie (express).
pub async fn http_destroy_of_new_session_sends_no_cookie(store: DynStore) {
    let h = h(store, |l| l.save_uninitialized(true));
    let r = h.get("/destroy", None).await;
    r.assert_ok("destroyed");
    r.assert_no_cookie();
    assert_eq!(h.writes(), 0);
}

/// reload re-reads the store: a change made behind the session's back becomes visible.
pub async fn http_reload_picks_up_store_changes(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/set", None).await.cookie();
    h.get("/reload", Some(&cookie)).await.assert_ok("bob/alice");
    h.get("/get", Some(&cookie)).await.assert_ok("alice");
}

/// reload of a session the store lost: "failed to load session".
pub async fn http_reload_of_missing_session_is_an_error(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/set", None).await.cookie();
    let r = h.get("/reload_missing", Some(&cookie)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "failed to load session")
    );
}

/// An explicit save writes once; the end of the request does not write again.
pub async fn http_explicit_save_prevents_second_write(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/save", None).await;
    r.assert_ok("saved");
    let id = r.sid();
    assert!(h.record(&id).await.unwrap().ends_with(r#""hit":true}"#));
    let c = h.counts();
    assert_eq!(c.create + c.update, 1, "{c:?}");
    h.counting.reset();
    h.get("/save", Some(&r.cookie())).await.assert_ok("saved");
    let c = h.counts();
    assert_eq!(c.create + c.update, 1, "{c:?}");
}

/// Same after a reload.
pub async fn http_explicit_save_after_reload_prevents_second_write(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/save", None).await.cookie();
    h.counting.reset();
    h.get("/reload_save", Some(&cookie)).await.assert_ok("saved");
    let c = h.counts();
    assert_eq!(c.create + c.update, 1, "{c:?}");
}

/// `touch()` resets the cookie's expiry in memory: no store write of its own.
pub async fn http_touch_resets_expiry_without_store_write(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::hours(1)).rolling(true));
    let cookie = h.get("/set", None).await.cookie();
    h.counting.reset();
    let r = h.get("/touch", Some(&cookie)).await;
    r.assert_ok("touched");
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("{cookie}; Path=/; Expires=<in {HOUR} s>; HttpOnly; SameSite=Lax"),
    );
    let c = h.counts();
    assert_eq!((c.create, c.update), (0, 0), "{c:?}");
}

/// An unmodified request of a session with maxAge moves the store's expiry (store touch),
/// without rewriting the record.
pub async fn http_unmodified_request_moves_store_expiry(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::hours(1)));
    let cookie = h.get("/set", None).await.cookie();
    let id = sid_of(&cookie);
    h.raw
        .touch(&id, Some(OffsetDateTime::now_utc() + Duration::minutes(10)))
        .await
        .unwrap();
    let text = h.record(&id).await.unwrap();
    h.get("/get", Some(&cookie)).await.assert_ok("bob");
    let rec = h.full_record(&id).await;
    assert_eq!(rec.data, text, "a touch does not rewrite the record");
    let left = rec.expires.expect("store reports expiry") - OffsetDateTime::now_utc();
    assert!(
        (left - Duration::hours(1)).abs() < Duration::seconds(5),
        "store expiry {left}"
    );
}

/// `cookie.maxAge = ms` in a handler changes this session's lifetime, and it sticks.
pub async fn http_max_age_changes_per_session(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::hours(1)));
    let cookie = h.get("/count", None).await.cookie();
    let r = h.get("/count", Some(&cookie)).await;
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("{cookie}; Path=/; Expires=<in {HOUR} s>; HttpOnly; SameSite=Lax"),
    );
    let r = h.get("/max_age?ms=172800000", Some(&cookie)).await;
    r.assert_ok("3");
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("{cookie}; Path=/; Expires=<in 172800 s>; HttpOnly; SameSite=Lax"),
    );
    let id = sid_of(&cookie);
    let text = h.record(&id).await.unwrap();
    assert_eq!(stored_original_max_age(&text), Some(172_800_000));
    // Large values (express: 3000000000 ms).
    let r = h.get("/max_age?ms=3000000000", Some(&cookie)).await;
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("{cookie}; Path=/; Expires=<in 3000000 s>; HttpOnly; SameSite=Lax"),
    );
    // Later requests keep the session's own lifetime.
    let r = h.get("/count", Some(&cookie)).await;
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("{cookie}; Path=/; Expires=<in 3000000 s>; HttpOnly; SameSite=Lax"),
    );
    let left = h.full_record(&id).await.expires.unwrap() - OffsetDateTime::now_utc();
    assert!(
        (left - Duration::seconds(3_000_000)).abs() < Duration::seconds(5),
        "{left}"
    );
}

/// `cookie.expires = null`: a browser-session cookie, not re-sent later even when modified.
pub async fn http_expires_null_makes_browser_session_cookie(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::hours(1)).save_uninitialized(true));
    let r = h.get("/expires_null", None).await;
    let cookie = r.cookie();
    assert_eq!(
        r.session_cookie().unwrap(),
        format!("{cookie}; Path=/; HttpOnly; SameSite=Lax")
    );
    h.get("/expires_null", Some(&cookie)).await.assert_no_cookie();
    let r = h.get("/expires_null_hit", None).await;
    assert_eq!(expires_of(r.session_cookie().unwrap()), None);
    h.get("/expires_null_hit", Some(&r.cookie())).await.assert_no_cookie();
}

/// `cookie.expires = date` sets an absolute expiry.
pub async fn http_expires_set_absolute(store: DynStore) {
    let h = h(store, |l| l.save_uninitialized(true));
    let r = h.get("/expires_epoch", None).await;
    assert_eq!(
        r.session_cookie().unwrap(),
        format!(
            "{}; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax",
            r.cookie()
        )
    );
    // The layer's `expires` option: an absolute expiry for new sessions.
    let at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::days(3);
    let h = h.reconfigured(|l| l.expires(at));
    let r = h.get("/set", None).await;
    assert_eq!(
        r.session_cookie().unwrap(),
        format!(
            "{}; Path=/; Expires={}; HttpOnly; SameSite=Lax",
            r.cookie(),
            http_date(at)
        )
    );
}

/// express ".cookie.* should serialize as parameters" and "should override defaults".
pub async fn http_cookie_changes_apply_to_set_cookie(store: DynStore) {
    let h = h(store, |l| l.proxy(true).save_uninitialized(true));
    let req = axum::http::Request::get("/cookie_attrs")
        .header("x-forwarded-proto", "https")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(
        r.session_cookie().unwrap(),
        format!("{}; Path=/; Secure; SameSite=Lax", r.cookie())
    );
    let h = h.reconfigured(|l| {
        l.http_only(false)
            .max_age(Duration::seconds(5))
            .path("/admin")
            .priority(Priority::High)
            .secure(Secure::Always)
            .save_uninitialized(true)
    });
    let r = h.get("/admin/secure_false", None).await;
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!(
            "{}; Path=/admin; Expires=<in 5 s>; Priority=High; SameSite=Lax",
            r.cookie()
        ),
    );
}

/// A loaded session keeps the cookie attributes stored with it, whatever the layer now says;
/// new sessions get the new options.
pub async fn http_cookie_attributes_from_store_are_honoured(store: DynStore) {
    let v1 = h(store, |l| {
        l.max_age(Duration::hours(1))
            .same_site(Some(SameSite::Strict))
            .path("/")
    });
    let cookie = v1.get("/set", None).await.cookie();
    let v2 = v1.reconfigured(|l| {
        l.max_age(Duration::hours(2))
            .same_site(Some(SameSite::Lax))
            .domain("b.example")
            .http_only(false)
            .priority(Priority::Low)
            .rolling(true)
    });
    let r = v2.get("/get", Some(&cookie)).await;
    r.assert_ok("bob");
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!("{cookie}; Path=/; Expires=<in {HOUR} s>; HttpOnly; SameSite=Strict"),
    );
    let r = v2.get("/set", None).await;
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!(
            "{}; Domain=b.example; Path=/; Expires=<in 7200 s>; Priority=Low; SameSite=Lax",
            r.cookie()
        ),
    );
}

/// Every cookie option, as an exact Set-Cookie in express's attribute order.
pub async fn http_cookie_attribute_options(store: DynStore) {
    let base = h(store, |l| l);
    let case =
        |configure: fn(SessionLayer) -> SessionLayer, path: &'static str, name: &'static str, attrs: &'static str| {
            let h = base.reconfigured(configure);
            async move {
                // Over HTTPS, so that a Secure cookie may be sent.
                let req = axum::http::Request::get(format!("https://localhost{path}"));
                let r = h.send(req.body(axum::body::Body::empty()).unwrap()).await;
                let sc = r.session_cookie_named(name).unwrap_or_else(|| panic!("{attrs}: {r:?}"));
                assert_set_cookie(sc, &format!("{}{attrs}", pair(sc)));
            }
        };
    case(|l| l.name("sid"), "/set", "sid", "; Path=/; HttpOnly; SameSite=Lax").await;
    case(
        |l| l.path("/app"),
        "/app/set",
        "connect.sid",
        "; Path=/app; HttpOnly; SameSite=Lax",
    )
    .await;
    case(
        |l| l.domain("example.com"),
        "/set",
        "connect.sid",
        "; Domain=example.com; Path=/; HttpOnly; SameSite=Lax",
    )
    .await;
    case(|l| l.http_only(false), "/set", "connect.sid", "; Path=/; SameSite=Lax").await;
    case(
        |l| l.secure(Secure::Never),
        "/set",
        "connect.sid",
        "; Path=/; HttpOnly; SameSite=Lax",
    )
    .await;
    case(
        |l| l.max_age(Duration::days(1)),
        "/set",
        "connect.sid",
        "; Path=/; Expires=<in 86400 s>; HttpOnly; SameSite=Lax",
    )
    .await;
    case(
        |l| l.partitioned(true),
        "/set",
        "connect.sid",
        "; Path=/; HttpOnly; Partitioned; SameSite=Lax",
    )
    .await;
    case(
        |l| l.partitioned(false),
        "/set",
        "connect.sid",
        "; Path=/; HttpOnly; SameSite=Lax",
    )
    .await;
    case(
        |l| l.priority(Priority::Low),
        "/set",
        "connect.sid",
        "; Path=/; HttpOnly; Priority=Low; SameSite=Lax",
    )
    .await;
    case(
        |l| l.priority(Priority::Medium),
        "/set",
        "connect.sid",
        "; Path=/; HttpOnly; Priority=Medium; SameSite=Lax",
    )
    .await;
    case(
        |l| {
            l.secure(Secure::Always)
                .domain("x.example")
                .path("/")
                .max_age(Duration::hours(1))
                .partitioned(true)
                .priority(Priority::High)
                .same_site(Some(SameSite::Strict))
                .name("id")
        },
        "/set",
        "id",
        "; Domain=x.example; Path=/; Expires=<in 3600 s>; HttpOnly; Secure; Partitioned; Priority=High; SameSite=Strict",
    )
    .await;
}

/// sameSite: strict, lax, none, auto, or left out.
pub async fn http_same_site_options(store: DynStore) {
    let base = h(store, |l| l.proxy(true));
    let https = |path: &str| {
        axum::http::Request::get(path)
            .header("x-forwarded-proto", "https")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    for (same_site, secure, want) in [
        (
            Some(SameSite::Strict),
            Secure::Never,
            "; Path=/; HttpOnly; SameSite=Strict",
        ),
        (Some(SameSite::Lax), Secure::Never, "; Path=/; HttpOnly; SameSite=Lax"),
        (
            Some(SameSite::None),
            Secure::Always,
            "; Path=/; HttpOnly; Secure; SameSite=None",
        ),
        (
            Some(SameSite::Auto),
            Secure::Auto,
            "; Path=/; HttpOnly; Secure; SameSite=None",
        ),
        (None, Secure::Never, "; Path=/; HttpOnly"),
    ] {
        let h = base.reconfigured(|l| l.proxy(true).same_site(same_site).secure(secure));
        let r = h.send(https("/set")).await;
        let sc = r.session_cookie().unwrap();
        assert_eq!(sc, format!("{}{want}", pair(sc)), "{same_site:?}");
    }
    // sameSite auto over plain HTTP resolves to Lax, and that is stored with the session.
    let h = base.reconfigured(|l| l.proxy(true).same_site(Some(SameSite::Auto)).secure(Secure::Auto));
    let r = h.get("/set", None).await;
    let sc = r.session_cookie().unwrap();
    assert_eq!(sc, format!("{}; Path=/; HttpOnly; SameSite=Lax", pair(sc)));
    let text = h.record(&r.sid()).await.unwrap();
    assert!(
        text.contains(r#""secure":false,"#) && text.contains(r#""sameSite":"lax""#),
        "{text}"
    );
}

/// secure: a Secure cookie is never sent over plain HTTP, but the session is still saved.
pub async fn http_secure_always_gate_over_http(store: DynStore) {
    let h = h(store, |l| l.secure(Secure::Always).max_age(Duration::minutes(1)));
    let r = h.get("/set", None).await;
    r.assert_ok("set");
    r.assert_no_cookie();
    assert_eq!(
        h.counts().create,
        1,
        "session saved even though no cookie could be sent"
    );
    let r = h
        .send(
            axum::http::Request::get("https://localhost/set")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_set_cookie(
        r.session_cookie().unwrap(),
        &format!(
            "{}; Path=/; Expires=<in 60 s>; HttpOnly; Secure; SameSite=Lax",
            r.cookie()
        ),
    );
}

/// proxy: true trusts the first X-Forwarded-Proto value.
pub async fn http_proxy_trusts_forwarded_proto(store: DynStore) {
    let h = h(store, |l| {
        l.proxy(true).secure(Secure::Always).max_age(Duration::minutes(1))
    });
    for (xfp, sent) in [
        (Some("https"), true),
        (Some("https,http"), true),
        (Some(" HTTPS , http"), true),
        (Some("http,https"), false),
        (None, false),
    ] {
        let mut req = axum::http::Request::get("/set");
        if let Some(v) = xfp {
            req = req.header("x-forwarded-proto", v);
        }
        let r = h.send(req.body(axum::body::Body::empty()).unwrap()).await;
        r.assert_ok("set");
        assert_eq!(r.session_cookie().is_some(), sent, "{xfp:?}");
    }
    assert_eq!(h.counts().create, 5);
}

/// proxy: false (or unset) ignores X-Forwarded-Proto.
pub async fn http_proxy_off_ignores_forwarded_proto(store: DynStore) {
    let off = h(store, |l| l.proxy(false).secure(Secure::Always));
    let unset = off.reconfigured(|l| l.secure(Secure::Always));
    let auto = off.reconfigured(|l| l.proxy(false).secure(Secure::Auto));
    for h in [off, unset] {
        let req = axum::http::Request::get("/set")
            .header("x-forwarded-proto", "https")
            .body(axum::body::Body::empty())
            .unwrap();
        let r = h.send(req).await;
        r.assert_ok("set");
        r.assert_no_cookie();
    }
    let req = axum::http::Request::get("/set")
        .header("x-forwarded-proto", "https")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = auto.send(req).await;
    assert!(!r.session_cookie().unwrap().contains("Secure"));
}

/// secure: auto is decided when the session is created and stays with it.
pub async fn http_secure_auto_resolves_once(store: DynStore) {
    let h = h(store, |l| {
        l.proxy(true)
            .secure(Secure::Auto)
            .max_age(Duration::minutes(1))
            .rolling(true)
    });
    let https = |cookie: Option<&str>| {
        let mut req = axum::http::Request::get("/set").header("x-forwarded-proto", "https");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.body(axum::body::Body::empty()).unwrap()
    };
    let r = h.send(https(None)).await;
    assert!(r.session_cookie().unwrap().contains("; Secure"));
    assert!(h.record(&r.sid()).await.unwrap().contains(r#""secure":true"#));
    // Created over HTTP: secure false forever, even on later HTTPS requests.
    let r = h.get("/set", None).await;
    let cookie = r.cookie();
    assert!(!r.session_cookie().unwrap().contains("Secure"));
    assert!(h.record(&r.sid()).await.unwrap().contains(r#""secure":false"#));
    let r = h.send(https(Some(&cookie))).await;
    assert!(!r.session_cookie().unwrap().contains("Secure"), "{r:?}");
}

/// Outside cookie.path there is no session at all (no store I/O, no cookie); inside it works.
pub async fn http_path_gate(store: DynStore) {
    let h = h(store, |l| l.path("/foo/bar").save_uninitialized(true));
    let r = h.get("/set", None).await;
    r.assert_ok("no session");
    r.assert_no_cookie();
    h.get("/foo/set", None).await.assert_ok("no session");
    let r = h.get("/foo/bar/baz/set", None).await;
    r.assert_ok("set");
    let cookie = r.cookie();
    assert_eq!(
        r.session_cookie().unwrap(),
        format!("{cookie}; Path=/foo/bar; HttpOnly; SameSite=Lax")
    );
    let r = h.get("/foo/bar/get", None).await;
    assert!(r.session_cookie().is_some(), "{r:?}");
    h.get("/foo/bar/get", Some(&cookie)).await.assert_ok("bob");
    h.counting.reset();
    h.get("/get", Some(&cookie)).await.assert_ok("no session");
    assert_eq!(h.counts().total(), 0);
}

/// genid decides new ids (a fresh random one per test here, as stores may be shared).
pub async fn http_genid_is_used(store: DynStore) {
    let fixed = format!("custom-{}", express_session::generate_id());
    let id = fixed.clone();
    let h = h(store, move |l| l.genid(move || id.clone()));
    let r = h.get("/set", None).await;
    assert_eq!(r.sid(), fixed);
    assert_eq!(r.cookie(), cookie_for(&fixed));
    assert!(h.record(&fixed).await.is_some());
}

/// Set-Cookie headers the handler set are kept beside the session's.
pub async fn http_other_set_cookie_headers_are_kept(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/other_cookie", None).await;
    assert_eq!(r.set_cookies.len(), 2, "{r:?}");
    assert_eq!(r.set_cookies[0], "previous=cookieValue; Path=/");
    assert!(r.session_cookie().is_some());
}

/// With a session cookie and the store down: 503, empty body, no cookie. Fail closed.
pub async fn http_store_read_down_with_cookie_is_503(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/set", None).await.cookie();
    h.faulty.set(Fault::ReadsDown);
    let r = h.get("/get", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, ""));
    r.assert_no_cookie();
    assert_eq!(h.writes(), 1, "nothing written after the failed read");
}

/// A backend error on load: an opaque 500 (express: the error goes to `next`).
pub async fn http_store_read_error_is_opaque_500(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/set", None).await.cookie();
    h.faulty.set(Fault::ReadsBroken);
    let r = h.get("/get", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, ""));
    r.assert_no_cookie();
}

/// A failed save: 503/500, never a 200 that pretends the session was kept.
pub async fn http_store_write_down_is_503(store: DynStore) {
    let h = h(store, |l| l);
    h.faulty.set(Fault::WritesDown);
    let r = h.get("/set", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, ""));
    r.assert_no_cookie();
    h.faulty.set(Fault::WritesBroken);
    let r = h.get("/set", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, ""));
    r.assert_no_cookie();
}

/// Anonymous traffic does not depend on the store.
pub async fn http_store_down_does_not_affect_cookieless_requests(store: DynStore) {
    let h = h(store, |l| l);
    h.faulty.set(Fault::AllTimeout);
    h.get("/get", None).await.assert_ok("none");
    assert_eq!(h.counts().total(), 0);
}

/// A timing-out store: 503.
pub async fn http_store_timeout_is_503(store: DynStore) {
    let h = h(store, |l| l);
    let cookie = h.get("/set", None).await.cookie();
    h.faulty.set(Fault::AllTimeout);
    assert_eq!(
        h.get("/get", Some(&cookie)).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// express "should pass session touch error": a failing touch is reported, not swallowed.
pub async fn http_touch_error_is_reported(store: DynStore) {
    let h = h(store, |l| l.max_age(Duration::minutes(1)).touch_after(Duration::ZERO));
    let cookie = h.get("/set", None).await.cookie();
    h.faulty.set(Fault::WritesBroken);
    let r = h.get("/get", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{r:?}");
    assert!(h.counts().touch >= 1);
}

/// A session over the size limit fails to save with a 500, and nothing is written.
pub async fn http_huge_payload_fails_save_and_writes_nothing(store: DynStore) {
    let h = h(store, |l| l.max_record_size(64 * 1024));
    let r = h.get("/big?kb=128", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, ""));
    r.assert_no_cookie();
    assert_eq!(h.writes(), 0);
    // Under the limit it is saved.
    let r = h.get("/big?kb=16", None).await;
    r.assert_ok("big");
    assert!(h.record(&r.sid()).await.unwrap().len() > 16 * 1024);
}

/// express "should pass session destroy error" (unset: destroy): reported, not swallowed.
pub async fn http_unset_destroy_error_is_reported(store: DynStore) {
    let h = h(store, |l| l.unset(Unset::Destroy));
    let cookie = h.get("/set", None).await.cookie();
    h.faulty.set(Fault::WritesBroken);
    let r = h.get("/unset", Some(&cookie)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, ""));
    h.faulty.set(Fault::None);
    assert!(h.record(&sid_of(&cookie)).await.is_some());
}

/// A change made after an explicit save is saved at the end of the request.
pub async fn http_change_after_explicit_save_is_saved_at_the_end(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/save_then_set", None).await;
    r.assert_ok("saved");
    let text = h.record(&r.sid()).await.unwrap();
    assert!(text.ends_with(r#""hit":true,"user":"carol"}"#), "{text}");
    let c = h.counts();
    assert_eq!((c.create, c.update), (1, 1), "{c:?}");
}

/// Changing only the cookie is not a modification (express hashes the session without it):
/// a new session stays uninitialized; a loaded one is touched, not rewritten.
pub async fn http_cookie_only_change_is_not_a_modification(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/cookie_only", None).await;
    r.assert_ok("ok");
    r.assert_no_cookie();
    assert_eq!(h.counts().total(), 0);
    let cookie = h.get("/set", None).await.cookie();
    let id = sid_of(&cookie);
    let before = h.record(&id).await.unwrap();
    h.counting.reset();
    let r = h.get("/cookie_only", Some(&cookie)).await;
    r.assert_no_cookie();
    assert_eq!((h.counts().create, h.counts().update), (0, 0));
    assert_eq!(h.record(&id).await.unwrap(), before);
    // The store's expiry follows the session's new lifetime.
    let left = h.full_record(&id).await.expires.unwrap() - OffsetDateTime::now_utc();
    assert!((left - Duration::days(1)).abs() < Duration::seconds(5), "{left}");
}

/// After destroy, writes are refused (express: `req.session` is gone) and nothing is stored.
pub async fn http_destroyed_session_refuses_writes(store: DynStore) {
    let h = h(store, |l| l);
    let r = h.get("/set", None).await;
    let (cookie, id) = (r.cookie(), r.sid());
    let r = h.get("/destroy_then_set", Some(&cookie)).await;
    r.assert_ok("refused");
    assert_eq!(h.record(&id).await, None);
    h.get("/get", Some(&cookie)).await.assert_ok("none");
}

/// The `__createdAt` stamp (ms since the epoch) of a stored record.
fn stored_created_at(record: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(record).unwrap();
    v[express_session::CREATED_AT_KEY].as_i64()
}

/// The record under `id` with its start moved to `ms`, written behind the layer's back.
async fn backdate(h: &Harness, id: &str, ms: i64) {
    let mut v: serde_json::Value = serde_json::from_str(&h.record(id).await.expect("record")).unwrap();
    v[express_session::CREATED_AT_KEY] = ms.into();
    h.overwrite(id, &v.to_string()).await;
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// An absolute timeout ends a session that requests keep alive: the start is stamped at
/// creation, reads do not move it, and once it is older than the limit the record is destroyed
/// and the request gets a new, empty session. An untouched new session still costs nothing.
pub async fn http_absolute_timeout_ends_a_session_however_active(store: DynStore) {
    let h = h(store, |l| {
        l.max_age(Duration::hours(1)).absolute_timeout(Duration::hours(8))
    });
    let r = h.get("/noop", None).await;
    r.assert_no_cookie();
    assert_eq!(h.counts().total(), 0, "the stamp alone is not a change");

    let before = now_ms();
    let r = h.get("/set", None).await;
    let (cookie, sid) = (r.cookie(), r.sid());
    let created = stored_created_at(&h.record(&sid).await.unwrap()).expect("start stamped at creation");
    assert!(
        (before..=now_ms()).contains(&created),
        "{created} not in [{before}, now]"
    );
    // express's shape: the cookie first, then the data in insertion order.
    let text = h.record(&sid).await.unwrap();
    assert!(text.starts_with(r#"{"cookie":{"#), "{text}");
    assert!(
        text.find("__createdAt").unwrap() < text.find("\"user\"").unwrap(),
        "{text}"
    );

    for _ in 0..3 {
        h.get("/get", Some(&cookie)).await.assert_ok("bob");
    }
    assert_eq!(stored_created_at(&h.record(&sid).await.unwrap()), Some(created));

    // Seven hours and 59 minutes in: still alive.
    backdate(&h, &sid, now_ms() - (8 * HOUR - 60) * 1000).await;
    h.get("/get", Some(&cookie)).await.assert_ok("bob");
    // Past eight hours: gone, whatever its idle expiry says.
    backdate(&h, &sid, now_ms() - (8 * HOUR + 1) * 1000).await;
    let r = h.get("/get", Some(&cookie)).await;
    r.assert_ok("none");
    assert_eq!(h.record(&sid).await, None, "the old record is destroyed");
    let r = h.get("/set", Some(&cookie)).await;
    r.assert_ok("set");
    assert_ne!(r.sid(), sid, "a new session, with a new id");
}

/// A session stored without a start (by a Node app, or before the option was set) gets one on
/// its first load, saved with its data intact; its lifetime runs from then.
pub async fn http_absolute_timeout_starts_for_sessions_made_without_it(store: DynStore) {
    let plain = h(store, |l| l.max_age(Duration::hours(1)));
    let r = plain.get("/set", None).await;
    let (cookie, sid) = (r.cookie(), r.sid());
    assert_eq!(stored_created_at(&plain.record(&sid).await.unwrap()), None);

    let limited = plain.reconfigured(|l| l.max_age(Duration::hours(1)).absolute_timeout(Duration::hours(8)));
    let before = now_ms();
    limited.get("/get", Some(&cookie)).await.assert_ok("bob");
    let text = limited.record(&sid).await.unwrap();
    let created = stored_created_at(&text).expect("stamped on first load");
    assert!((before..=now_ms()).contains(&created));
    assert!(text.contains(r#""user":"bob""#), "{text}");
    limited.get("/get", Some(&cookie)).await.assert_ok("bob");
    assert_eq!(stored_created_at(&limited.record(&sid).await.unwrap()), Some(created));
}

/// `clear()` empties the data but keeps the start; `regenerate()` (login) starts a new one.
pub async fn http_absolute_timeout_survives_clear_and_restarts_at_regenerate(store: DynStore) {
    let h = h(store, |l| l.absolute_timeout(Duration::hours(8)));
    let r = h.get("/set", None).await;
    let (cookie, sid) = (r.cookie(), r.sid());
    let old = now_ms() - 7 * HOUR * 1000;
    backdate(&h, &sid, old).await;

    h.get("/clear", Some(&cookie)).await.assert_ok("cleared");
    let text = h.record(&sid).await.unwrap();
    assert_eq!(stored_created_at(&text), Some(old), "{text}");
    assert!(!text.contains("bob"), "{text}");

    let r = h.get("/login", Some(&cookie)).await;
    r.assert_ok("logged in");
    let new_sid = r.sid();
    assert_ne!(new_sid, sid);
    let created = stored_created_at(&h.record(&new_sid).await.unwrap()).unwrap();
    assert!(created > old + 6 * HOUR * 1000, "regenerate restarts the lifetime");
}
