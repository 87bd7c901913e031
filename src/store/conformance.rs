//! The store conformance suite: the [`SessionStore`] contract as tests, for every store,
//! including yours (feature `test-util`).
//!
//! Each case is a plain async function over a store. [`store_conformance_tests!`](crate::store_conformance_tests) expands them
//! into one `#[tokio::test]` per case, so `cargo test redis::` runs the Redis ones:
//!
//! ```
//! mod memory {
//!     express_session::store_conformance_tests!(async { Some(express_session::MemoryStore::new()) });
//! }
//! # fn main() {}
//! ```
//!
//! The expression is evaluated once per test and gives `Option<store>`: `None` means the
//! backend is not configured here, and the test prints that it skipped (see [`service_url`]).

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{Record, SessionStore, Update};

/// The URL of a test service from the environment variable `var` (`REDIS_URL`, `DATABASE_URL`,
/// `MYSQL_URL`, …). Without it the caller should skip: this prints that it skipped, unless
/// `SESSION_TEST_REQUIRE_SERVICES=1`, where a missing service is a failure.
///
/// # Panics
/// When the variable is missing and `SESSION_TEST_REQUIRE_SERVICES=1`.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SESSION_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{var} is not set but SESSION_TEST_REQUIRE_SERVICES=1"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// A name no other test run uses: for key prefixes and table names.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        crate::generate_id().to_ascii_lowercase().replace('-', "_")[..16].to_owned()
    )
}

fn doc(data: &str) -> String {
    format!(r#"{{"cookie":{{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"}},{data}}}"#)
}

fn in_an_hour(data: &str) -> Record {
    Record::new(doc(data), Some(OffsetDateTime::now_utc() + Duration::hours(1)))
}

fn id() -> String {
    crate::generate_id()
}

/// A record written is read back unchanged, with an expiry near the one written.
pub async fn round_trip(store: &impl SessionStore) {
    let (id, rec) = (id(), in_an_hour(r#""user":"alice""#));
    assert!(store.create(&id, &rec).await.unwrap());
    let got = store.load(&id).await.unwrap().expect("created record loads");
    assert_eq!(got.data, rec.data);
    let expires = got.expires.expect("the store reports its expiry on load");
    assert!(
        (expires - rec.expires.unwrap()).abs() <= Duration::seconds(2),
        "expiry {expires} vs {:?}",
        rec.expires
    );
}

/// An id never written is `None`.
pub async fn missing_is_none(store: &impl SessionStore) {
    assert_eq!(store.load(&id()).await.unwrap(), None);
    assert_eq!(store.load_and_touch(&id(), None).await.unwrap(), None);
}

/// A record that has expired is `None`, whether it was written expired or expired in place.
pub async fn expired_is_none(store: &impl SessionStore) {
    let id = id();
    let past = Record::new(doc(r#""a":1"#), Some(OffsetDateTime::now_utc() - Duration::seconds(5)));
    store.create(&id, &past).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap(), None);
    let live = in_an_hour(r#""a":1"#);
    assert!(
        store.create(&id, &live).await.unwrap(),
        "an expired record does not block a create"
    );
    // Expire it by touching into the past.
    store
        .touch(&id, Some(OffsetDateTime::now_utc() - Duration::seconds(5)))
        .await
        .unwrap();
    assert_eq!(store.load(&id).await.unwrap(), None);
}

/// `create` never overwrites a live record.
pub async fn create_never_overwrites(store: &impl SessionStore) {
    let id = id();
    assert!(store.create(&id, &in_an_hour(r#""owner":"first""#)).await.unwrap());
    assert!(!store.create(&id, &in_an_hour(r#""owner":"second""#)).await.unwrap());
    assert!(store.load(&id).await.unwrap().unwrap().data.contains("first"));
}

/// `update` after `destroy` is `Gone` and writes nothing.
pub async fn update_after_destroy_fails(store: &impl SessionStore) {
    let id = id();
    let rec = in_an_hour(r#""a":1"#);
    store.create(&id, &rec).await.unwrap();
    store.destroy(&id).await.unwrap();
    assert_eq!(
        store.update(&id, &in_an_hour(r#""a":2"#), &rec).await.unwrap(),
        Update::Gone
    );
    assert_eq!(
        store.load(&id).await.unwrap(),
        None,
        "a destroyed session was resurrected"
    );
}

/// `update` writes when the record is as expected and reports the current record otherwise.
pub async fn update_is_compare_and_set(store: &impl SessionStore) {
    let id = id();
    let v1 = in_an_hour(r#""v":1"#);
    store.create(&id, &v1).await.unwrap();
    let v2 = in_an_hour(r#""v":2"#);
    assert_eq!(store.update(&id, &v2, &v1).await.unwrap(), Update::Done);
    let v3 = in_an_hour(r#""v":3"#);
    match store.update(&id, &v3, &v1).await.unwrap() {
        Update::Conflict(current) => assert_eq!(current.data, v2.data),
        other => panic!("stale update answered {other:?}"),
    }
    assert_eq!(store.load(&id).await.unwrap().unwrap().data, v2.data);
}

/// `touch` moves the expiry without rewriting the record; touching a missing id does nothing.
pub async fn touch_moves_expiry(store: &impl SessionStore) {
    let id = id();
    let rec = Record::new(doc(r#""a":1"#), Some(OffsetDateTime::now_utc() + Duration::minutes(5)));
    store.create(&id, &rec).await.unwrap();
    let later = OffsetDateTime::now_utc() + Duration::hours(3);
    store.touch(&id, Some(later)).await.unwrap();
    let got = store.load(&id).await.unwrap().unwrap();
    assert_eq!(got.data, rec.data, "touch rewrote the record");
    assert!(
        (got.expires.unwrap() - later).abs() <= Duration::seconds(2),
        "expiry not moved: {:?}",
        got.expires
    );
    let even_later = OffsetDateTime::now_utc() + Duration::hours(5);
    let got = store.load_and_touch(&id, Some(even_later)).await.unwrap().unwrap();
    assert_eq!(got.data, rec.data);
    let got = store.load(&id).await.unwrap().unwrap();
    assert!(
        (got.expires.unwrap() - even_later).abs() <= Duration::seconds(2),
        "load_and_touch did not touch"
    );
    let missing = self::id();
    store.touch(&missing, Some(later)).await.unwrap();
    assert_eq!(store.load(&missing).await.unwrap(), None, "touch created a record");
}

/// A record saved without an expiry lives the default day.
pub async fn no_expiry_means_default_ttl(store: &impl SessionStore) {
    let id = id();
    store.create(&id, &Record::new(doc(r#""a":1"#), None)).await.unwrap();
    let e = store
        .load(&id)
        .await
        .unwrap()
        .unwrap()
        .expires
        .expect("expiry reported");
    let left = e - OffsetDateTime::now_utc();
    assert!(
        left > Duration::hours(23) && left <= Duration::days(1) + Duration::seconds(2),
        "{left}"
    );
}

/// Destroying an unknown id is fine.
pub async fn destroy_unknown_is_ok(store: &impl SessionStore) {
    store.destroy(&id()).await.unwrap();
}

/// Many concurrent compare-and-set writers, each merging its own key on conflict (as the
/// layer does): every key survives.
pub async fn concurrent_saves_of_different_keys_survive<S: SessionStore>(store: Arc<S>) {
    let id = id();
    store.create(&id, &in_an_hour(r#""base":true"#)).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, id) = (Arc::clone(&store), id.clone());
            tokio::spawn(async move {
                let mut expected = store.load(&id).await.unwrap().unwrap();
                for _ in 0..200 {
                    let mut v: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&expected.data).unwrap();
                    v.insert(format!("k{i}"), i.into());
                    let next = Record::new(serde_json::Value::Object(v).to_string(), expected.expires);
                    match store.update(&id, &next, &expected).await.unwrap() {
                        Update::Done => return,
                        Update::Conflict(current) => expected = current,
                        Update::Gone => panic!("record vanished"),
                    }
                }
                panic!("writer {i} never won");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let v: serde_json::Value = serde_json::from_str(&store.load(&id).await.unwrap().unwrap().data).unwrap();
    for i in 0..16 {
        assert_eq!(v[format!("k{i}")], i, "key k{i} lost");
    }
}

/// A large record (512 KiB) round-trips intact.
pub async fn large_records(store: &impl SessionStore) {
    let (id, rec) = (id(), in_an_hour(&format!(r#""blob":"{}""#, "x".repeat(512 * 1024))));
    store.create(&id, &rec).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap().data, rec.data);
}

/// Unicode keys and values, and JSON escapes, round-trip byte for byte.
pub async fn unicode_keys_and_values(store: &impl SessionStore) {
    let (id, rec) = (id(), in_an_hour(r#""clé 🔑":"välue ✓ \"quoted\" \\ \n 日本語""#));
    store.create(&id, &rec).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap().data, rec.data);
}

/// Expands the whole suite into one `#[tokio::test]` per case over the store that `$make`
/// (an async expression giving `Option<store>`) builds.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            round_trip, missing_is_none, expired_is_none, create_never_overwrites,
            update_after_destroy_fails, update_is_compare_and_set, touch_moves_expiry,
            no_expiry_means_default_ttl, destroy_unknown_is_ok, large_records, unicode_keys_and_values);
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_saves_of_different_keys_survive() {
            if let Some(store) = $make.await {
                $crate::store::conformance::concurrent_saves_of_different_keys_survive(::std::sync::Arc::new(store)).await;
            }
        }
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(store) = $make.await {
                    $crate::store::conformance::$case(&store).await;
                }
            }
        )*
    };
}

#[cfg(test)]
mod memory {
    crate::store_conformance_tests!(async { Some(crate::MemoryStore::new()) });
}
