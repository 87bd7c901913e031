//! `SqliteStore` on temporary files (no service needed): the store contract (the conformance
//! and HTTP suites, on a file and in memory), the columns as stored, WAL mode, surviving a
//! restart, two stores on one file, concurrent migrations and expired-row cleanup.
//!
//! Every test uses a database file of its own under the system's temp directory, removed
//! when its store is dropped.
#![cfg(feature = "sqlite")]

mod common;

use std::{
    path::PathBuf,
    time::{Duration as StdDuration, Instant},
};

use async_trait::async_trait;
use express_session::{store::conformance::unique_name, time, Record, SessionStore, SqliteStore, StoreError, Update};
use time::{Duration, OffsetDateTime};

/// A path under the temp directory, and its WAL files, removed on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("{}.db", unique_name("es_sqlite_"))))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A [`SqliteStore`] on a file of its own, removed with it.
struct Scratch {
    store: SqliteStore,
    // Dropped after the store.
    _file: TempDb,
}

#[async_trait]
impl SessionStore for Scratch {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.store.load(id).await
    }
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        self.store.load_and_touch(id, expires).await
    }
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        self.store.create(id, record).await
    }
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        self.store.update(id, record, expected).await
    }
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        self.store.touch(id, expires).await
    }
    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.store.destroy(id).await
    }
}

async fn scratch() -> Option<Scratch> {
    let file = TempDb::new();
    let store = SqliteStore::open(&file.0).await.unwrap();
    Some(Scratch { store, _file: file })
}

fn doc(data: &str) -> String {
    format!(r#"{{"cookie":{{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"}},{data}}}"#)
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The row under `id` as stored.
async fn row(store: &SqliteStore, id: &str) -> Option<(String, i64)> {
    sqlx::query_as(r#"SELECT sess, expire FROM "session" WHERE sid = ?"#)
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The shared suites.

mod conformance {
    express_session::store_conformance_tests!(super::scratch());
}

mod conformance_in_memory {
    express_session::store_conformance_tests!(async {
        Some(express_session::SqliteStore::open(":memory:").await.unwrap())
    });
}

mod http {
    crate::http_suite_tests!(super::scratch());
}

// ---------------------------------------------------------------------------------------------
// The file.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart() {
    let file = TempDb::new();
    let rec = Record::new(
        doc(r#""user":"bob""#),
        Some(OffsetDateTime::now_utc() + Duration::hours(1)),
    );
    let store = SqliteStore::open(&file.0).await.unwrap();
    assert!(store.create("a", &rec).await.unwrap());
    store.pool().close().await;
    drop(store);

    let reopened = SqliteStore::open(&file.0).await.unwrap();
    let got = reopened
        .load("a")
        .await
        .unwrap()
        .expect("the session outlived the process");
    assert_eq!(got.data, rec.data);
    assert_eq!(got.expires.map(ms), rec.expires.map(ms));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_in_wal_mode() {
    let Some(s) = scratch().await else { return };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(s.store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_see_each_others_writes() {
    let Some(s) = scratch().await else { return };
    let other = SqliteStore::open(&s._file.0).await.unwrap();
    let v1 = Record::new(doc(r#""v":1"#), Some(OffsetDateTime::now_utc() + Duration::hours(1)));
    s.store.create("a", &v1).await.unwrap();
    assert_eq!(other.load("a").await.unwrap().unwrap().data, v1.data);
    let v2 = Record::new(doc(r#""v":2"#), v1.expires);
    assert_eq!(other.update("a", &v2, &v1).await.unwrap(), Update::Done);
    // The first store's stale compare-and-set loses, and sees the other's write.
    let v3 = Record::new(doc(r#""v":3"#), v1.expires);
    match s.store.update("a", &v3, &v1).await.unwrap() {
        Update::Conflict(current) => assert_eq!(current.data, v2.data),
        other => panic!("stale update answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sess_is_the_exact_json_and_expire_is_unix_milliseconds() {
    let Some(s) = scratch().await else { return };
    let expires = OffsetDateTime::now_utc() + Duration::hours(1);
    let data = doc(r#""user":{"name":"zoë 🔑","tags":[1, 2.50,  "x"]}"#);
    s.store
        .create("a", &Record::new(data.clone(), Some(expires)))
        .await
        .unwrap();
    assert_eq!(row(&s.store, "a").await.unwrap(), (data.clone(), ms(expires)));
    let later = OffsetDateTime::now_utc() + Duration::hours(2);
    s.store.touch("a", Some(later)).await.unwrap();
    assert_eq!(
        row(&s.store, "a").await.unwrap(),
        (data, ms(later)),
        "touch moves only expire"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_from_eight_stores_at_once_is_safe() {
    let file = TempDb::new();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let path = file.0.clone();
            tokio::spawn(async move { SqliteStore::open(&path).await.map(drop) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let store = SqliteStore::open(&file.0).await.unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'session' AND sql IS NOT NULL",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(indexes, ["IDX_session_expire"]);
    assert!(store.create("a", &Record::new("{}", None)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_table_names_are_quoted_and_bad_names_refused() {
    let Some(s) = scratch().await else { return };
    for bad in ["", "a\0b", "line\nbreak", " padded", &"x".repeat(64)] {
        assert!(s.store.clone().table_name(bad).is_err(), "{bad:?} accepted");
    }
    let odd = s.store.clone().table_name(r#"Odd "name"; DROP"#).unwrap();
    odd.migrate().await.unwrap();
    assert!(odd.create("a", &Record::new("{}", None)).await.unwrap());
    assert_eq!(odd.load("a").await.unwrap().unwrap().data, "{}");
    assert_eq!(s.store.load("a").await.unwrap(), None, "tables are separate");
}

// ---------------------------------------------------------------------------------------------
// Expired rows.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_removes_only_expired_rows() {
    let Some(s) = scratch().await else { return };
    let now = OffsetDateTime::now_utc();
    s.store
        .create("live", &Record::new("{}", Some(now + Duration::hours(1))))
        .await
        .unwrap();
    s.store
        .create("dead", &Record::new("{}", Some(now - Duration::seconds(5))))
        .await
        .unwrap();
    s.store
        .create("dead2", &Record::new("{}", Some(now - Duration::days(5))))
        .await
        .unwrap();
    assert_eq!(s.store.delete_expired().await.unwrap(), 2);
    assert!(row(&s.store, "live").await.is_some());
    assert!(row(&s.store, "dead").await.is_none() && row(&s.store, "dead2").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuously_delete_expired_runs_only_when_spawned() {
    let Some(s) = scratch().await else { return };
    let past = Some(OffsetDateTime::now_utc() - Duration::seconds(5));
    s.store.create("dead", &Record::new("{}", past)).await.unwrap();
    assert!(row(&s.store, "dead").await.is_some(), "nothing deletes on its own");
    let cleanup = tokio::spawn({
        let store = s.store.clone();
        async move { store.continuously_delete_expired(StdDuration::from_millis(50)).await }
    });
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while row(&s.store, "dead").await.is_some() {
        assert!(Instant::now() < deadline, "expired row never deleted");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    cleanup.abort();
}
