//! `MySqlStore` against the MySQL or MariaDB of `MYSQL_URL`: the store contract (the
//! conformance and HTTP suites), express-mysql-session's rows read and written both ways, the
//! columns as stored, binary-safe compare-and-set, concurrent migrations, expired-row cleanup,
//! and an outage through a TCP proxy the test controls.
//!
//! Every test works on a table of its own (`unique_name`), dropped when its store is dropped.
#![cfg(feature = "mysql")]

mod common;

use std::{
    str::FromStr,
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use async_trait::async_trait;
use express_session::{
    store::conformance::{service_url, unique_name},
    time, MySqlStore, Record, SessionStore, StoreError, Update,
};
use sqlx::{
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
    Connection, MySqlConnection,
};
use time::{Duration, OffsetDateTime};

use common::{
    proxy::{self, Proxy},
    Harness,
};

// ---------------------------------------------------------------------------------------------
// A store on a table of its own.

/// A [`MySqlStore`] on its own table, which is dropped with it.
struct Scratch {
    store: MySqlStore,
    url: String,
    /// The quoted table name.
    table: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread with
        // a runtime and a connection of its own.
        let (url, sql) = (self.url.clone(), format!("DROP TABLE IF EXISTS {}", self.table));
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut c = MySqlConnection::connect(&url).await?;
                    sqlx::raw_sql(&sql).execute(&mut c).await.map(drop)
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test table {}: {dropped:?}", self.table);
        }
    }
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

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A migrated store on a fresh table, or `None` without `MYSQL_URL`.
async fn scratch() -> Option<Scratch> {
    let url = service_url("MYSQL_URL")?;
    let name = unique_name("es_my_");
    let store = MySqlStore::connect(&url).await.unwrap().table_name(&name).unwrap();
    store.migrate().await.unwrap();
    Some(Scratch {
        store,
        url,
        table: quote(&name),
    })
}

async fn connection(url: &str) -> MySqlConnection {
    MySqlConnection::connect(url).await.unwrap()
}

/// A MySQL string literal, escaped as mysql2's client-side `?` interpolation escapes it.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// express-mysql-session's `Math.round(ms / 1000)`.
fn round_secs(t: OffsetDateTime) -> i64 {
    let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) >= 500)
}

fn doc(data: &str) -> String {
    format!(r#"{{"cookie":{{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"}},{data}}}"#)
}

/// The row under `id` as stored: `data` (which may be NULL) and `expires`.
async fn row(s: &Scratch, id: &str) -> Option<(Option<String>, i64)> {
    let sql = format!(
        "SELECT data, CAST(expires AS SIGNED) FROM {} WHERE session_id = ?",
        s.table
    );
    // Bytes: sqlx will not decode a `utf8mb4_bin` column as a string.
    let row: Option<(Option<Vec<u8>>, i64)> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut connection(&s.url).await)
        .await
        .unwrap();
    row.map(|(data, expires)| (data.map(|d| String::from_utf8(d).unwrap()), expires))
}

// ---------------------------------------------------------------------------------------------
// The shared suites.

mod conformance {
    express_session::store_conformance_tests!(super::scratch());
}

mod http {
    crate::http_suite_tests!(super::scratch());
}

// ---------------------------------------------------------------------------------------------
// The columns as stored.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_is_the_exact_json_and_expires_is_rounded_seconds() {
    let Some(s) = scratch().await else { return };
    let expires = OffsetDateTime::now_utc() + Duration::hours(1);
    let data = doc(r#""user":{"name":"zoë 🔑","tags":[1, 2.50,  "x"]}"#);
    assert!(s
        .store
        .create("a", &Record::new(data.clone(), Some(expires)))
        .await
        .unwrap());
    // Whole seconds, rounded as Math.round does.
    assert_eq!(row(&s, "a").await.unwrap(), (Some(data), round_secs(expires)));
    let loaded = s.store.load("a").await.unwrap().unwrap();
    assert_eq!(loaded.expires.unwrap().unix_timestamp(), round_secs(expires));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_moves_only_the_expires_column() {
    let Some(s) = scratch().await else { return };
    let data = doc(r#""a":1"#);
    s.store
        .create(
            "a",
            &Record::new(data.clone(), Some(OffsetDateTime::now_utc() + Duration::minutes(5))),
        )
        .await
        .unwrap();
    let later = OffsetDateTime::now_utc() + Duration::hours(2);
    s.store.touch("a", Some(later)).await.unwrap();
    assert_eq!(row(&s, "a").await.unwrap(), (Some(data.clone()), round_secs(later)));
    let latest = OffsetDateTime::now_utc() + Duration::hours(3);
    let got = s.store.load_and_touch("a", Some(latest)).await.unwrap().unwrap();
    assert_eq!(got.expires.unwrap().unix_timestamp(), round_secs(latest));
    assert_eq!(row(&s, "a").await.unwrap(), (Some(data), round_secs(latest)));
    // Without an expiry: now plus one day, as express-mysql-session's `expiration`.
    s.store.touch("a", None).await.unwrap();
    let day = round_secs(OffsetDateTime::now_utc() + Duration::days(1));
    let (_, expires) = row(&s, "a").await.unwrap();
    assert!((day - 2..=day).contains(&expires), "{expires} vs {day}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_is_byte_exact_under_a_case_insensitive_collation() {
    let Some(url) = service_url("MYSQL_URL") else { return };
    // A table someone made with a case-insensitive collation on `data`.
    let name = unique_name("es_my_ci_");
    let s = Scratch {
        store: MySqlStore::connect(&url).await.unwrap().table_name(&name).unwrap(),
        url: url.clone(),
        table: quote(&name),
    };
    let ddl = format!(
        "CREATE TABLE {} (session_id varchar(128) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, \
         expires int(11) unsigned NOT NULL, data mediumtext COLLATE utf8mb4_general_ci)",
        s.table
    );
    sqlx::raw_sql(&ddl).execute(&mut connection(&url).await).await.unwrap();
    let in_an_hour = Some(OffsetDateTime::now_utc() + Duration::hours(1));
    let stored = Record::new(doc(r#""user":"Bob""#), in_an_hour);
    s.store.create("a", &stored).await.unwrap();
    // The caller loaded "bob" (say, before someone else wrote "Bob"): equal to the collation,
    // not to the bytes. The write must not go through.
    let stale = Record::new(doc(r#""user":"bob""#), in_an_hour);
    let next = Record::new(doc(r#""user":"carol""#), in_an_hour);
    match s.store.update("a", &next, &stale).await.unwrap() {
        Update::Conflict(current) => assert_eq!(current.data, stored.data),
        other => panic!("case-folded match accepted: {other:?}"),
    }
    assert_eq!(s.store.update("a", &next, &stored).await.unwrap(), Update::Done);
}

// ---------------------------------------------------------------------------------------------
// express-mysql-session's rows, both ways.

/// express-mysql-session 3's `set`, as mysql2 formats it.
async fn node_set(s: &Scratch, sid: &str, data: Option<&str>, expires: i64) {
    let data = data.map_or_else(|| "NULL".to_owned(), lit);
    let sql = format!(
        "INSERT INTO {t} (`session_id`, `expires`, `data`) VALUES ({sid}, {expires}, {data}) \
         ON DUPLICATE KEY UPDATE `expires` = VALUES(`expires`), `data` = VALUES(`data`)",
        t = s.table,
        sid = lit(sid),
    );
    sqlx::raw_sql(&sql)
        .execute(&mut connection(&s.url).await)
        .await
        .unwrap();
}

/// express-mysql-session 3's `get`: the `data` of a row that has not expired.
async fn node_get(s: &Scratch, sid: &str) -> Option<String> {
    let sql = format!(
        "SELECT `data` AS data, CAST(`expires` AS SIGNED) as expires FROM {} WHERE `session_id` = {}",
        s.table,
        lit(sid)
    );
    let row: Option<(Option<Vec<u8>>, i64)> = sqlx::query_as(&sql)
        .fetch_optional(&mut connection(&s.url).await)
        .await
        .unwrap();
    let (data, expires) = row?;
    (expires >= round_secs(OffsetDateTime::now_utc())).then(|| String::from_utf8(data?).ok())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_by_express_mysql_session_are_read() {
    let Some(s) = scratch().await else { return };
    let data = r#"{"cookie":{"originalMaxAge":3600000,"expires":"2026-12-03T20:47:58.072Z","httpOnly":true,"path":"/"},"user":"alïce🔑 'q' \\ \"x\""}"#;
    let expires = round_secs(OffsetDateTime::now_utc() + Duration::hours(1));
    node_set(&s, "from-node", Some(data), expires).await;
    let got = s.store.load("from-node").await.unwrap().expect("Node's row is live");
    assert_eq!(got.data, data);
    assert_eq!(got.expires.unwrap().unix_timestamp(), expires);
    let next = Record::new(data.replace("alïce", "bob"), got.expires);
    assert_eq!(s.store.update("from-node", &next, &got).await.unwrap(), Update::Done);
    assert_eq!(node_get(&s, "from-node").await.unwrap(), next.data);

    // A row whose `expires` is now is still live for Node, and for us.
    node_set(&s, "edge", Some("{}"), round_secs(OffsetDateTime::now_utc()) + 1).await;
    assert!(s.store.load("edge").await.unwrap().is_some());

    // Expired, or with NULL data: not served, and no obstacle to a new session.
    node_set(&s, "old", Some(data), round_secs(OffsetDateTime::now_utc()) - 2).await;
    node_set(&s, "null", None, expires).await;
    for id in ["old", "null"] {
        assert_eq!(s.store.load(id).await.unwrap(), None, "{id}");
        assert_eq!(s.store.load_and_touch(id, None).await.unwrap(), None, "{id}");
    }
    let fresh = Record::new(doc(r#""n":1"#), None);
    assert!(s.store.create("old", &fresh).await.unwrap());
    assert_eq!(s.store.load("old").await.unwrap().unwrap().data, fresh.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_we_write_are_read_by_express_mysql_session() {
    let Some(s) = scratch().await else { return };
    let data = doc(r#""user":"bob","n":[1,2]"#);
    s.store
        .create(
            "ours",
            &Record::new(data.clone(), Some(OffsetDateTime::now_utc() + Duration::seconds(30))),
        )
        .await
        .unwrap();
    assert_eq!(node_get(&s, "ours").await, Some(data));
    s.store
        .touch("ours", Some(OffsetDateTime::now_utc() - Duration::seconds(3)))
        .await
        .unwrap();
    assert_eq!(node_get(&s, "ours").await, None);
    assert!(row(&s, "ours").await.is_some(), "expired rows stay until deleted");
}

// ---------------------------------------------------------------------------------------------
// The table.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_from_eight_tasks_at_once_creates_express_mysql_sessions_table() {
    let Some(url) = service_url("MYSQL_URL") else { return };
    let name = unique_name("es_my_mig_");
    let s = Scratch {
        store: MySqlStore::connect(&url).await.unwrap().table_name(&name).unwrap(),
        url: url.clone(),
        table: quote(&name),
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (url, name) = (url.clone(), name.clone());
            tokio::spawn(async move {
                let store = MySqlStore::connect(&url).await.unwrap().table_name(&name).unwrap();
                store.migrate().await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    s.store.migrate().await.unwrap();
    let columns: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR), CAST(is_nullable AS CHAR), \
         CAST(collation_name AS CHAR) FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
    )
    .bind(&name)
    .fetch_all(&mut connection(&url).await)
    .await
    .unwrap();
    let columns: Vec<(&str, &str, &str, Option<&str>)> = columns
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_deref()))
        .collect();
    assert_eq!(
        columns,
        [
            ("session_id", "varchar(128)", "NO", Some("utf8mb4_bin")),
            ("expires", "int(11) unsigned", "NO", None),
            ("data", "mediumtext", "YES", Some("utf8mb4_bin")),
        ]
    );
    assert!(s.store.create("a", &Record::new("{}", None)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_table_names_are_quoted_and_bad_names_refused() {
    let Some(url) = service_url("MYSQL_URL") else { return };
    let store = MySqlStore::connect(&url).await.unwrap();
    for bad in ["", "a\0b", "line\nbreak", "padded ", &"x".repeat(64)] {
        assert!(store.clone().table_name(bad).is_err(), "{bad:?} accepted");
    }
    let odd = format!("Odd `{}`; DROP", unique_name("t"));
    let s = Scratch {
        store: store.table_name(&odd).unwrap(),
        url: url.clone(),
        table: quote(&odd),
    };
    s.store.migrate().await.unwrap();
    assert!(s.store.create("a", &Record::new("{}", None)).await.unwrap());
    assert_eq!(row(&s, "a").await.unwrap().0.as_deref(), Some("{}"));
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
    node_set(&s, "dead-node", Some("{}"), round_secs(now) - 10).await;
    assert_eq!(s.store.delete_expired().await.unwrap(), 2);
    assert!(row(&s, "live").await.is_some());
    assert!(row(&s, "dead").await.is_none() && row(&s, "dead-node").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuously_delete_expired_runs_only_when_spawned() {
    let Some(s) = scratch().await else { return };
    let past = Some(OffsetDateTime::now_utc() - Duration::seconds(5));
    s.store.create("dead", &Record::new("{}", past)).await.unwrap();
    let cleanup = tokio::spawn({
        let store = s.store.clone();
        async move { store.continuously_delete_expired(StdDuration::from_millis(50)).await }
    });
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while row(&s, "dead").await.is_some() {
        assert!(Instant::now() < deadline, "expired row never deleted");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    cleanup.abort();
}

// ---------------------------------------------------------------------------------------------
// Outages, through a TCP proxy the test controls.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gives_prompt_503_spares_cookieless_requests_and_recovers() {
    let Some(url) = service_url("MYSQL_URL") else { return };
    let direct = MySqlConnectOptions::from_str(&url).unwrap();
    let proxy = Proxy::start((direct.get_host(), direct.get_port())).await;
    let name = unique_name("es_my_fault_");
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(StdDuration::from_secs(1))
        .connect_with(direct.clone().host("127.0.0.1").port(proxy.addr().port()))
        .await
        .unwrap();
    let store = MySqlStore::from_pool(pool)
        .table_name(&name)
        .unwrap()
        .timeout(StdDuration::from_secs(1));
    store.migrate().await.unwrap();
    let h = Harness::new(
        Arc::new(Scratch {
            store,
            url: url.clone(),
            table: quote(&name),
        }),
        |l| l,
    );
    proxy::outage_gives_prompt_503_spares_cookieless_requests_and_recovers(&proxy, &h).await;
}
