//! `PostgresStore` against the PostgreSQL of `DATABASE_URL`: the store contract (the
//! conformance and HTTP suites), connect-pg-simple's rows read and written both ways, the
//! columns as stored, concurrent migrations, expired-row cleanup, and an outage through a TCP
//! proxy the test controls.
//!
//! Every test works on a table of its own (`unique_name`), dropped when its store is dropped.
#![cfg(feature = "postgres")]

mod common;

use std::{
    str::FromStr,
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use async_trait::async_trait;
use express_session::{
    store::conformance::{service_url, unique_name},
    time, PostgresStore, Record, SessionStore, StoreError, Update,
};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    Connection, PgConnection,
};
use time::{Duration, OffsetDateTime};

use common::{
    proxy::{self, Proxy},
    Harness,
};

// ---------------------------------------------------------------------------------------------
// A store on a table of its own.

/// A [`PostgresStore`] on its own table, which is dropped with it.
struct Scratch {
    store: PostgresStore,
    url: String,
    /// The quoted, qualified table name.
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
                    let mut c = PgConnection::connect(&url).await?;
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
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A migrated store on a fresh table, or `None` without `DATABASE_URL`.
async fn scratch() -> Option<Scratch> {
    let url = service_url("DATABASE_URL")?;
    let name = unique_name("es_pg_");
    let store = PostgresStore::connect(&url).await.unwrap().table_name(&name).unwrap();
    store.migrate().await.unwrap();
    Some(Scratch {
        store,
        url,
        table: quote(&name),
    })
}

/// A plain connection, as Node's pg makes: no `TimeZone` of its own, so the server's applies.
async fn node_like_connection(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap()
}

/// A SQL string literal. Node's pg sends parameters untyped, exactly as a literal is.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn ceil_secs(t: OffsetDateTime) -> i64 {
    let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

fn doc(data: &str) -> String {
    format!(r#"{{"cookie":{{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"}},{data}}}"#)
}

/// The row under `id` as stored: `sess` as text, and `expire` as epoch seconds of its
/// wall-clock value read as UTC.
async fn row(s: &Scratch, id: &str) -> Option<(String, i64)> {
    let mut c = node_like_connection(&s.url).await;
    sqlx::query_as::<_, (String, f64)>(&format!(
        "SELECT sess::text, extract(epoch FROM expire)::float8 FROM {} WHERE sid = $1",
        s.table
    ))
    .bind(id)
    .fetch_optional(&mut c)
    .await
    .unwrap()
    .map(|(sess, secs)| (sess, secs as i64))
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
async fn sess_is_the_exact_json_and_expire_is_ceiled_utc_seconds() {
    let Some(s) = scratch().await else { return };
    let expires = OffsetDateTime::now_utc() + Duration::hours(1) + Duration::milliseconds(1);
    let data = doc(r#""user":{"name":"zoë 🔑","tags":[1, 2.50,  "x"]}"#);
    assert!(s
        .store
        .create("a", &Record::new(data.clone(), Some(expires)))
        .await
        .unwrap());
    let (sess, expire) = row(&s, "a").await.unwrap();
    // The json column keeps the text byte for byte: spacing, number forms and all.
    assert_eq!(sess, data);
    // connect-pg-simple's to_timestamp(Math.ceil(ms / 1000)), stored as UTC wall-clock time.
    assert_eq!(expire, ceil_secs(expires));
    // A load reports the column, not the embedded cookie.
    let loaded = s.store.load("a").await.unwrap().unwrap();
    assert_eq!(loaded.expires.unwrap().unix_timestamp(), ceil_secs(expires));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_moves_only_the_expire_column() {
    let Some(s) = scratch().await else { return };
    let data = doc(r#""a":1"#);
    let first = OffsetDateTime::now_utc() + Duration::minutes(5);
    s.store
        .create("a", &Record::new(data.clone(), Some(first)))
        .await
        .unwrap();
    let later = OffsetDateTime::now_utc() + Duration::hours(2) + Duration::milliseconds(300);
    s.store.touch("a", Some(later)).await.unwrap();
    assert_eq!(row(&s, "a").await.unwrap(), (data.clone(), ceil_secs(later)));
    let latest = OffsetDateTime::now_utc() + Duration::hours(3);
    let got = s.store.load_and_touch("a", Some(latest)).await.unwrap().unwrap();
    assert_eq!(got.expires.unwrap().unix_timestamp(), ceil_secs(latest));
    assert_eq!(row(&s, "a").await.unwrap(), (data, ceil_secs(latest)));
    // Without an expiry: now plus one day, as connect-pg-simple's default ttl.
    s.store.touch("a", None).await.unwrap();
    let day = ceil_secs(OffsetDateTime::now_utc() + Duration::days(1));
    let (_, expire) = row(&s, "a").await.unwrap();
    assert!((day - 2..=day).contains(&expire), "{expire} vs {day}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_use_utc() {
    let Some(s) = scratch().await else { return };
    let tz: String = sqlx::query_scalar("SHOW TimeZone")
        .fetch_one(s.store.pool())
        .await
        .unwrap();
    assert_eq!(tz, "UTC");
}

// ---------------------------------------------------------------------------------------------
// connect-pg-simple's rows, both ways.

/// connect-pg-simple 10's `set`, with its parameters inlined as the untyped values pg sends.
async fn node_set(s: &Scratch, sid: &str, sess: &str, expire_secs: i64) {
    let mut c = node_like_connection(&s.url).await;
    let sql = format!(
        "INSERT INTO {t} (sess, expire, sid) SELECT {sess}, to_timestamp({exp}), {sid} \
         ON CONFLICT (sid) DO UPDATE SET sess={sess}, expire=to_timestamp({exp}) RETURNING sid",
        t = s.table,
        sess = lit(sess),
        exp = expire_secs,
        sid = lit(sid),
    );
    sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
}

/// connect-pg-simple 10's `get`: the `sess` text of a live row.
async fn node_get(s: &Scratch, sid: &str) -> Option<String> {
    let mut c = node_like_connection(&s.url).await;
    let sql = format!(
        "SELECT sess::text FROM {} WHERE sid = {} AND expire >= to_timestamp({})",
        s.table,
        lit(sid),
        ceil_secs(OffsetDateTime::now_utc())
    );
    sqlx::query_scalar(&sql).fetch_optional(&mut c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_by_connect_pg_simple_are_read() {
    let Some(s) = scratch().await else { return };
    // The document express-session hands the store, as JSON.stringify writes it.
    let sess = r#"{"cookie":{"originalMaxAge":3600000,"expires":"2026-12-03T20:47:03.438Z","httpOnly":true,"path":"/"},"user":"alïce 🔑 'quoted'"}"#;
    let expire = ceil_secs(OffsetDateTime::now_utc() + Duration::hours(1));
    node_set(&s, "from-node", sess, expire).await;
    let got = s.store.load("from-node").await.unwrap().expect("Node's row is live");
    assert_eq!(got.data, sess);
    assert_eq!(got.expires.unwrap().unix_timestamp(), expire);
    // And we can update it in place, compare-and-set on the text Node wrote.
    let next = Record::new(sess.replace("alïce", "bob"), got.expires);
    assert_eq!(s.store.update("from-node", &next, &got).await.unwrap(), Update::Done);
    assert_eq!(node_get(&s, "from-node").await.unwrap(), next.data);

    // A row Node wrote that has expired is not served, and does not block a new session.
    let past = ceil_secs(OffsetDateTime::now_utc()) - 2;
    node_set(&s, "old", sess, past).await;
    assert_eq!(s.store.load("old").await.unwrap(), None);
    assert_eq!(s.store.load_and_touch("old", None).await.unwrap(), None);
    let fresh = Record::new(doc(r#""n":1"#), None);
    assert!(s.store.create("old", &fresh).await.unwrap());
    assert_eq!(s.store.load("old").await.unwrap().unwrap().data, fresh.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_we_write_are_read_by_connect_pg_simple() {
    let Some(s) = scratch().await else { return };
    let data = doc(r#""user":"bob","n":[1,2]"#);
    s.store
        .create(
            "ours",
            &Record::new(data.clone(), Some(OffsetDateTime::now_utc() + Duration::seconds(30))),
        )
        .await
        .unwrap();
    assert_eq!(node_get(&s, "ours").await, Some(data.clone()));
    // Touched into the past, the row is expired for Node as well.
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
async fn migrate_from_eight_tasks_at_once_creates_connect_pg_simples_table() {
    let Some(url) = service_url("DATABASE_URL") else { return };
    let name = unique_name("es_pg_mig_");
    let store = PostgresStore::connect(&url).await.unwrap().table_name(&name).unwrap();
    let s = Scratch {
        store: store.clone(),
        url: url.clone(),
        table: quote(&name),
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            let name = name.clone();
            // Separate pools, as separate processes starting at once would have.
            tokio::spawn(async move {
                let store = PostgresStore::connect(&url).await.unwrap().table_name(&name).unwrap();
                store.migrate().await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Again, on the existing table: a no-op.
    s.store.migrate().await.unwrap();
    let mut c = node_like_connection(&url).await;
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
         WHERE table_name = $1 ORDER BY ordinal_position",
    )
    .bind(&name)
    .fetch_all(&mut c)
    .await
    .unwrap();
    let columns: Vec<(&str, &str, &str)> = columns
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("sid", "character varying", "NO"),
            ("sess", "json", "NO"),
            ("expire", "timestamp without time zone", "NO")
        ]
    );
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE tablename = $1 ORDER BY 1")
            .bind(&name)
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert_eq!(indexes, [format!("IDX_{name}_expire"), format!("{name}_pkey")]);
    assert!(s.store.create("a", &Record::new("{}", None)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_and_odd_table_names_are_quoted_and_bad_names_refused() {
    let Some(url) = service_url("DATABASE_URL") else { return };
    let store = PostgresStore::connect(&url).await.unwrap();
    for bad in ["", "a\0b", "line\nbreak", " padded", &"x".repeat(64)] {
        assert!(store.clone().table_name(bad).is_err(), "{bad:?} accepted");
        assert!(store.clone().schema_name(bad).is_err(), "{bad:?} accepted");
    }
    let schema = unique_name("es_pg_schema_");
    let mut c = node_like_connection(&url).await;
    sqlx::raw_sql(&format!("CREATE SCHEMA {}", quote(&schema)))
        .execute(&mut c)
        .await
        .unwrap();
    let odd = format!("Odd \"{}\"; DROP", unique_name("t"));
    let in_schema = schema.clone();
    let result = async move {
        let store = store.schema_name(&in_schema).unwrap().table_name(&odd).unwrap();
        store.migrate().await.unwrap();
        assert!(store.create("a", &Record::new("{}", None)).await.unwrap());
        assert_eq!(store.load("a").await.unwrap().unwrap().data, "{}");
        let sql = format!("SELECT count(*) FROM {}.{}", quote(&in_schema), quote(&odd));
        let n: i64 = sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap();
        assert_eq!(n, 1);
    };
    let outcome = tokio::spawn(result).await;
    sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", quote(&schema)))
        .execute(&mut node_like_connection(&url).await)
        .await
        .unwrap();
    outcome.unwrap();
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
    node_set(&s, "dead-node", "{}", ceil_secs(now) - 10).await;
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
    let Some(url) = service_url("DATABASE_URL") else { return };
    let direct = PgConnectOptions::from_str(&url).unwrap();
    let proxy = Proxy::start((direct.get_host(), direct.get_port())).await;
    let name = unique_name("es_pg_fault_");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(StdDuration::from_secs(1))
        .connect_with(
            direct
                .clone()
                .host("127.0.0.1")
                .port(proxy.addr().port())
                .options([("TimeZone", "UTC")]),
        )
        .await
        .unwrap();
    let store = PostgresStore::from_pool(pool)
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
