#![cfg(feature = "redis")]
//! `RedisStore` against a real Redis (`REDIS_URL`) and a real Redis Cluster
//! (`REDIS_CLUSTER_URLS`): the shared conformance suite, the connect-redis layout read straight
//! from the backend, faults through a TCP proxy the test controls, and the commands and round
//! trips each kind of request costs on the wire.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration as StdDuration, Instant},
};

use ::http::{header, Request, StatusCode};
use ::redis as rd;
use async_trait::async_trait;
use axum::{routing::get, Router};
use express_session::{
    store::conformance::{service_url, unique_name},
    time::{Duration, OffsetDateTime},
    CountingStore, Record, RedisStore, Session, SessionLayer, SessionStore, StoreCounts, StoreError, Update,
};
use http_body_util::BodyExt;
use rd::AsyncCommands;
use tokio::net::TcpStream;
use tower::ServiceExt;

use common::proxy::{Direction, Proxy, Tap};

// ---------------------------------------------------------------------------------------------
// Stores under test

/// A store on `REDIS_URL` with a prefix of its own.
async fn single() -> Option<Cleaned> {
    let url = service_url("REDIS_URL")?;
    let store = RedisStore::builder()
        .prefix(unique_name("es-test:"))
        .connect(url.as_str())
        .await
        .expect("connect to REDIS_URL");
    Some(Cleaned(store))
}

fn cluster_urls() -> Option<Vec<String>> {
    Some(
        service_url("REDIS_CLUSTER_URLS")?
            .split(',')
            .map(|u| u.trim().to_owned())
            .collect(),
    )
}

/// A store on the cluster of `REDIS_CLUSTER_URLS` with a prefix of its own.
async fn cluster() -> Option<Cleaned> {
    let urls = cluster_urls()?;
    let store = RedisStore::builder()
        .prefix(unique_name("es-test:"))
        .connect_cluster(urls)
        .await
        .expect("connect to REDIS_CLUSTER_URLS");
    Some(Cleaned(store))
}

/// A `RedisStore` that deletes its keys (its own prefix only) when the test drops it.
struct Cleaned(RedisStore);

impl Drop for Cleaned {
    fn drop(&mut self) {
        let store = self.0.clone();
        // Every test here runs on a multi-thread runtime, where blocking in place is allowed.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            tokio::task::block_in_place(|| {
                let _ = handle.block_on(store.clear());
            });
        }
    }
}

#[async_trait]
impl SessionStore for Cleaned {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.0.load(id).await
    }
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        self.0.load_and_touch(id, expires).await
    }
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        self.0.create(id, record).await
    }
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        self.0.update(id, record, expected).await
    }
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        self.0.touch(id, expires).await
    }
    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.0.destroy(id).await
    }
}

mod redis {
    express_session::store_conformance_tests!(super::single());
}

mod redis_cluster {
    express_session::store_conformance_tests!(super::cluster());
}

mod common;

/// The HTTP behaviour suite (tests/common/http_suite.rs) over Redis.
mod http {
    crate::http_suite_tests!(super::single());
}

// ---------------------------------------------------------------------------------------------
// Reading the backend directly

/// A plain connection to `REDIS_URL`, to look at keys behind the store's back.
async fn raw() -> Option<rd::aio::MultiplexedConnection> {
    let url = service_url("REDIS_URL")?;
    let client = rd::Client::open(url).unwrap();
    Some(client.get_multiplexed_async_connection().await.unwrap())
}

fn doc(data: &str) -> String {
    format!(r#"{{"cookie":{{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"}},{data}}}"#)
}

fn in_secs(secs: i64) -> Option<OffsetDateTime> {
    Some(OffsetDateTime::now_utc() + Duration::seconds(secs))
}

/// Asserts `PTTL key` is within two seconds below `expected_secs`.
async fn assert_pttl(conn: &mut impl rd::aio::ConnectionLike, key: &str, expected_secs: i64) {
    let pttl: i64 = rd::cmd("PTTL").arg(key).query_async(conn).await.unwrap();
    let expected = expected_secs * 1000;
    assert!(
        pttl <= expected && pttl > expected - 2000,
        "PTTL {pttl} ms, expected about {expected} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_key_is_sess_prefix_plus_id_holding_the_json_text_with_its_ttl() {
    let Some(url) = service_url("REDIS_URL") else { return };
    let mut raw = raw().await.unwrap();
    let store = RedisStore::connect(url.as_str()).await.unwrap();
    let id = express_session::generate_id();
    let data = doc(r#""user":"alice","n":1"#);
    assert!(store
        .create(&id, &Record::new(data.clone(), in_secs(3600)))
        .await
        .unwrap());

    let key = format!("sess:{id}");
    assert_eq!(store.key(&id), key);
    let stored: Option<String> = raw.get(&key).await.unwrap();
    store.destroy(&id).await.unwrap();
    assert_eq!(
        stored.as_deref(),
        Some(data.as_str()),
        "the value is the JSON text as is"
    );
    let exists: bool = raw.exists(&key).await.unwrap();
    assert!(!exists, "destroy deletes the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_the_seconds_until_expiry_rounded_up() {
    let (Some(store), Some(mut raw)) = (single().await, raw().await) else {
        return;
    };
    let id = express_session::generate_id();
    let key = store.0.key(&id);
    // 90.001 s from now: connect-redis sends EX 91 (rounding down or to nearest would send 90).
    let expires = OffsetDateTime::now_utc() + Duration::milliseconds(90_001);
    store
        .create(&id, &Record::new(doc(r#""a":1"#), Some(expires)))
        .await
        .unwrap();
    let pttl: i64 = raw.pttl(&key).await.unwrap();
    assert!(pttl > 90_000 && pttl <= 91_000, "PTTL {pttl} ms, expected EX 91");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_without_expiry_gets_one_day() {
    let (Some(store), Some(mut raw)) = (single().await, raw().await) else {
        return;
    };
    let id = express_session::generate_id();
    let key = store.0.key(&id);
    store.create(&id, &Record::new(doc(r#""a":1"#), None)).await.unwrap();
    assert_pttl(&mut raw, &key, 86400).await;
    // An update without expiry, too.
    let current = store.load(&id).await.unwrap().unwrap();
    raw.expire::<_, ()>(&key, 60).await.unwrap();
    let next = Record::new(doc(r#""a":2"#), None);
    assert_eq!(store.update(&id, &next, &current).await.unwrap(), Update::Done);
    assert_pttl(&mut raw, &key, 86400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_moves_pttl_and_keeps_the_value() {
    let (Some(store), Some(mut raw)) = (single().await, raw().await) else {
        return;
    };
    let id = express_session::generate_id();
    let key = store.0.key(&id);
    let data = doc(r#""a":1"#);
    store
        .create(&id, &Record::new(data.clone(), in_secs(300)))
        .await
        .unwrap();
    assert_pttl(&mut raw, &key, 300).await;

    store.touch(&id, in_secs(7200)).await.unwrap();
    assert_pttl(&mut raw, &key, 7200).await;
    let touched = store.load_and_touch(&id, in_secs(10_800)).await.unwrap().unwrap();
    assert_eq!(touched.data, data);
    assert_pttl(&mut raw, &key, 10_800).await;
    let reported = touched.expires.unwrap() - OffsetDateTime::now_utc();
    assert!(
        (reported - Duration::seconds(10_800)).abs() < Duration::seconds(2),
        "{reported}"
    );
    let stored: String = raw.get(&key).await.unwrap();
    assert_eq!(stored, data, "touch rewrote the value");
    // A touch without expiry means the default day.
    store.touch(&id, None).await.unwrap();
    assert_pttl(&mut raw, &key, 86400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_whose_expiry_has_passed_are_deleted_not_written() {
    let (Some(store), Some(mut raw)) = (single().await, raw().await) else {
        return;
    };
    let past = in_secs(-5);

    // A save (update) into the past deletes the key, as connect-redis's set with ttl ≤ 0.
    let id = express_session::generate_id();
    let key = store.0.key(&id);
    let live = Record::new(doc(r#""a":1"#), in_secs(600));
    store.create(&id, &live).await.unwrap();
    let expired = Record::new(doc(r#""a":2"#), past);
    assert_eq!(store.update(&id, &expired, &live).await.unwrap(), Update::Done);
    assert!(!raw.exists::<_, bool>(&key).await.unwrap(), "expired save left the key");

    // A touch into the past: EXPIRE with a negative TTL, which deletes.
    store.create(&id, &live).await.unwrap();
    store.touch(&id, past).await.unwrap();
    assert!(
        !raw.exists::<_, bool>(&key).await.unwrap(),
        "expired touch left the key"
    );

    // A load that touches into the past finds nothing and deletes, as the touch does.
    store.create(&id, &live).await.unwrap();
    assert_eq!(store.load_and_touch(&id, past).await.unwrap(), None);
    assert!(
        !raw.exists::<_, bool>(&key).await.unwrap(),
        "expired load_and_touch left the key"
    );

    // A create of an already expired record writes nothing.
    assert!(store.create(&id, &expired).await.unwrap());
    assert!(
        !raw.exists::<_, bool>(&key).await.unwrap(),
        "expired create wrote a key"
    );

    // ... and never deletes a live record that holds the id.
    store.create(&id, &live).await.unwrap();
    assert!(!store.create(&id, &expired).await.unwrap());
    assert_eq!(store.load(&id).await.unwrap().unwrap().data, live.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_what_connect_redis_writes() {
    let (Some(store), Some(mut raw)) = (single().await, raw().await) else {
        return;
    };
    let id = express_session::generate_id();
    // connect-redis: SET sess:<id> '<JSON>' EX <ttl>.
    let data = r#"{"cookie":{"originalMaxAge":86400000,"expires":"2026-01-02T12:00:00.000Z","httpOnly":true,"path":"/"},"views":3}"#;
    raw.set_ex::<_, _, ()>(store.0.key(&id), data, 120).await.unwrap();
    let got = store.load(&id).await.unwrap().unwrap();
    assert_eq!(got.data, data);
    let left = got.expires.unwrap() - OffsetDateTime::now_utc();
    assert!(
        left > Duration::seconds(118) && left <= Duration::seconds(120),
        "{left}"
    );

    // A key written with connect-redis's disableTTL has no expiry to report.
    let id = express_session::generate_id();
    raw.set::<_, _, ()>(store.0.key(&id), data).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap().expires, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_update_reports_the_current_text_and_expiry() {
    let Some(store) = single().await else { return };
    let id = express_session::generate_id();
    let v1 = Record::new(doc(r#""v":1"#), in_secs(600));
    let v2 = Record::new(doc(r#""v":2"#), in_secs(1200));
    store.create(&id, &v1).await.unwrap();
    assert_eq!(store.update(&id, &v2, &v1).await.unwrap(), Update::Done);
    let v3 = Record::new(doc(r#""v":3"#), in_secs(600));
    let Update::Conflict(current) = store.update(&id, &v3, &v1).await.unwrap() else {
        panic!("stale update was not a conflict");
    };
    assert_eq!(current.data, v2.data);
    let left = current.expires.unwrap() - OffsetDateTime::now_utc();
    assert!(
        left > Duration::seconds(1198) && left <= Duration::seconds(1200),
        "{left}"
    );
}

/// A `redis-server` of this test's own on a free loopback port, without persistence: killed
/// when dropped.
struct PrivateRedis {
    child: std::process::Child,
    port: u16,
}

impl PrivateRedis {
    async fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (it is wherever REDIS_URL is served)");
        let server = Self { child, port };
        let deadline = Instant::now() + StdDuration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "private redis-server did not start");
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_redis_restart_that_forgets_data_and_scripts() {
    // A restart of the shared Redis would disturb everyone: this runs its own.
    if service_url("REDIS_URL").is_none() {
        return;
    }
    let port = free_port();
    let mut server = PrivateRedis::start(port).await;
    let store = RedisStore::builder()
        .command_timeout(StdDuration::from_millis(500))
        .connect(server.url().as_str())
        .await
        .unwrap();
    // The private server runs nothing else, so its script cache holds ours or nothing.
    let script_cached = |url: String| async move {
        let mut raw = rd::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let info: String = rd::cmd("INFO").arg("memory").query_async(&mut raw).await.unwrap();
        let n = info
            .lines()
            .find_map(|l| l.strip_prefix("number_of_cached_scripts:"))
            .expect("INFO memory reports number_of_cached_scripts");
        n.trim() != "0"
    };
    assert!(script_cached(server.url()).await, "connect preloads the update script");

    let id = express_session::generate_id();
    let v1 = Record::new(doc(r#""v":1"#), in_secs(600));
    store.create(&id, &v1).await.unwrap();

    server.stop();
    let started = Instant::now();
    let err = store.load(&id).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(started.elapsed() < StdDuration::from_secs(2), "{:?}", started.elapsed());
    let _server = PrivateRedis::start(port).await;
    assert!(!script_cached(server.url()).await, "a restarted Redis knows no scripts");

    // The same store, without a restart of its own: reconnects, and re-sends the script.
    let deadline = Instant::now() + StdDuration::from_secs(15);
    let created = loop {
        match store.create(&id, &v1).await {
            Ok(created) => break created,
            Err(e) => assert!(e.is_unavailable() && Instant::now() < deadline, "{e:?}"),
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    };
    assert!(created, "the restarted Redis lost the record, so the id is free");
    let v2 = Record::new(doc(r#""v":2"#), in_secs(600));
    assert_eq!(store.update(&id, &v2, &v1).await.unwrap(), Update::Done);
    assert_eq!(store.load(&id).await.unwrap().unwrap().data, v2.data);
    assert!(script_cached(server.url()).await, "EVAL cached the script again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn len_and_clear_see_only_this_prefix() {
    let Some(url) = service_url("REDIS_URL") else { return };
    // A glob character in the prefix must not match other prefixes.
    let base = unique_name("es-test:");
    let globby = RedisStore::builder()
        .prefix(format!("{base}?:"))
        .connect(url.as_str())
        .await
        .unwrap();
    let other = RedisStore::builder()
        .prefix(format!("{base}x:"))
        .connect(url.as_str())
        .await
        .unwrap();
    for _ in 0..3 {
        globby
            .create(
                &express_session::generate_id(),
                &Record::new(doc(r#""a":1"#), in_secs(600)),
            )
            .await
            .unwrap();
    }
    other
        .create(
            &express_session::generate_id(),
            &Record::new(doc(r#""a":1"#), in_secs(600)),
        )
        .await
        .unwrap();
    assert_eq!(globby.len().await.unwrap(), 3);
    assert_eq!(other.len().await.unwrap(), 1);
    assert_eq!(globby.clear().await.unwrap(), 3);
    assert!(globby.is_empty().await.unwrap());
    assert_eq!(other.len().await.unwrap(), 1, "clear deleted another prefix's keys");
    assert_eq!(other.clear().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_len_and_clear_cover_every_master() {
    let Some(urls) = cluster_urls() else { return };
    let store = RedisStore::builder()
        .prefix(unique_name("es-test:"))
        .connect_cluster(urls.clone())
        .await
        .unwrap();
    let ids: Vec<String> = (0..30).map(|_| express_session::generate_id()).collect();
    for id in &ids {
        store
            .create(id, &Record::new(doc(r#""a":1"#), in_secs(600)))
            .await
            .unwrap();
    }
    // The keys really are spread over more than one master.
    let mut holders = std::collections::HashSet::new();
    for url in &urls {
        let mut node = rd::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        for id in &ids {
            let slot: i64 = rd::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(store.key(id))
                .query_async(&mut node)
                .await
                .unwrap();
            let count: i64 = rd::cmd("CLUSTER")
                .arg("COUNTKEYSINSLOT")
                .arg(slot)
                .query_async(&mut node)
                .await
                .unwrap();
            if count > 0 {
                holders.insert(url.clone());
            }
        }
    }
    assert!(holders.len() > 1, "30 keys all on one master: {holders:?}");
    assert_eq!(store.len().await.unwrap(), 30);
    assert_eq!(store.clear().await.unwrap(), 30);
    assert_eq!(store.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_keys_use_the_same_layout() {
    let (Some(store), Some(urls)) = (cluster().await, cluster_urls()) else {
        return;
    };
    let id = express_session::generate_id();
    let data = doc(r#""user":"bob""#);
    store
        .create(&id, &Record::new(data.clone(), in_secs(600)))
        .await
        .unwrap();
    let client = rd::cluster::ClusterClient::new(urls).unwrap();
    let mut raw = client.get_async_connection().await.unwrap();
    let stored: String = raw.get(store.0.key(&id)).await.unwrap();
    assert_eq!(stored, data);
    assert_pttl(&mut raw, &store.0.key(&id), 600).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_promptly_when_nothing_listens() {
    // Bind then drop: a loopback port where nothing listens.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = RedisStore::builder()
        .connect_timeout(StdDuration::from_millis(500))
        .connect(format!("redis://127.0.0.1:{port}").as_str())
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(started.elapsed() < StdDuration::from_secs(3), "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy the test controls (tests/common/proxy.rs: pause holds bytes, sever drops
// connections and refuses new ones), and a log of the commands it forwards to Redis, grouped
// into round trips.

#[derive(Default)]
struct Wire {
    /// Bursts of client bytes, each answered by the server before the next: round trips.
    round_trips: u64,
    client_talking: bool,
    pending: Vec<u8>,
    /// Every command forwarded, with the round trip it went in.
    commands: Vec<(u64, Vec<String>)>,
}

impl Wire {
    fn client_sent(&mut self, bytes: &[u8]) {
        if !self.client_talking {
            self.round_trips += 1;
            self.client_talking = true;
        }
        self.pending.extend_from_slice(bytes);
        while let Some((args, used)) = parse_command(&self.pending) {
            self.commands.push((self.round_trips, args));
            self.pending.drain(..used);
        }
    }

    fn server_sent(&mut self) {
        self.client_talking = false;
    }
}

/// One RESP command (`*N` then `N` bulk strings) at the start of `buf`, with its length.
fn parse_command(buf: &[u8]) -> Option<(Vec<String>, usize)> {
    fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = buf.get(at..)?.windows(2).position(|w| w == b"\r\n")? + at;
        Some((&buf[at..end], end + 2))
    }
    let (head, mut at) = line(buf, 0)?;
    let n: usize = std::str::from_utf8(head.strip_prefix(b"*")?).ok()?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, next) = line(buf, at)?;
        let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?).ok()?.parse().ok()?;
        let arg = buf.get(next..next + len)?;
        if buf.get(next + len..next + len + 2)? != b"\r\n" {
            return None;
        }
        args.push(String::from_utf8_lossy(arg).into_owned());
        at = next + len + 2;
    }
    Some((args, at))
}

/// A [`Proxy`] to Redis that logs the commands it forwards, grouped into round trips. Derefs
/// to the proxy for `pause`, `sever` and the rest.
struct RedisProxy {
    proxy: Proxy,
    wire: Arc<Mutex<Wire>>,
}

impl RedisProxy {
    /// A proxy on `127.0.0.1:0` to the Redis of `REDIS_URL`.
    async fn start(target: SocketAddr) -> Self {
        let wire = Arc::new(Mutex::new(Wire::default()));
        let tap: Tap = {
            let wire = wire.clone();
            Arc::new(move |direction: Direction, bytes: &[u8]| {
                let mut wire = wire.lock().unwrap();
                match direction {
                    Direction::ToServer => wire.client_sent(bytes),
                    Direction::ToClient => wire.server_sent(),
                }
            })
        };
        Self {
            proxy: Proxy::start_with_tap(target, tap).await,
            wire,
        }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.proxy.addr())
    }

    fn round_trips(&self) -> u64 {
        self.wire.lock().unwrap().round_trips
    }

    /// The commands forwarded after round trip `since`, as (round trip, command name).
    fn commands_since(&self, since: u64) -> Vec<(u64, Vec<String>)> {
        let wire = self.wire.lock().unwrap();
        wire.commands
            .iter()
            .filter(|(rt, _)| *rt > since)
            .map(|(rt, args)| (rt - since, args.clone()))
            .collect()
    }
}

impl std::ops::Deref for RedisProxy {
    type Target = Proxy;

    fn deref(&self) -> &Proxy {
        &self.proxy
    }
}

/// The address of `REDIS_URL`'s server.
fn redis_addr(url: &str) -> SocketAddr {
    let info: rd::ConnectionInfo = rd::IntoConnectionInfo::into_connection_info(url).unwrap();
    match info.addr {
        rd::ConnectionAddr::Tcp(host, port) => {
            let host = if host == "localhost" {
                "127.0.0.1".to_owned()
            } else {
                host
            };
            format!("{host}:{port}").parse().unwrap()
        }
        other => panic!("REDIS_URL must be a TCP address, not {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Requests through the layer

fn app(store: impl SessionStore) -> Router {
    let layer = SessionLayer::new(store)
        .secret("redis store tests")
        .max_age(Duration::hours(1))
        .build()
        .unwrap();
    Router::new()
        .route(
            "/login",
            get(|s: Session| async move {
                s.insert("user", "alice").unwrap();
                "ok"
            }),
        )
        .route(
            "/whoami",
            get(|s: Session| async move { s.get::<String>("user").unwrap_or_default() }),
        )
        .route(
            "/count",
            get(|s: Session| async move { s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).unwrap().to_string() }),
        )
        .route("/public", get(|| async { "public" }))
        .layer(layer)
}

struct Reply {
    status: StatusCode,
    cookie: Option<String>,
    body: String,
}

async fn send(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = app
        .clone()
        .oneshot(req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply { status, cookie, body }
}

async fn proxied_store(proxy: &RedisProxy, prefix: &str) -> RedisStore {
    RedisStore::builder()
        .prefix(prefix)
        .command_timeout(StdDuration::from_millis(500))
        .connect_timeout(StdDuration::from_millis(500))
        .connect(proxy.url().as_str())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_redis_gives_prompt_503_and_recovers_with_data_intact() {
    let Some(url) = service_url("REDIS_URL") else { return };
    let proxy = RedisProxy::start(redis_addr(&url)).await;
    let prefix = unique_name("es-test:");
    let proxied = proxied_store(&proxy, &prefix).await;
    let cleanup = Cleaned(
        RedisStore::builder()
            .prefix(&prefix)
            .connect(url.as_str())
            .await
            .unwrap(),
    );
    let store = CountingStore::new(proxied);
    let app = app(store.clone());

    let login = send(&app, "/login", None).await;
    assert_eq!(login.status, StatusCode::OK);
    let cookie = login.cookie.expect("session cookie");

    proxy.pause();
    let started = Instant::now();
    let res = send(&app, "/whoami", Some(&cookie)).await;
    let took = started.elapsed();
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < StdDuration::from_secs(5), "503 took {took:?}");
    // At the store: a timeout, after the 500 ms command timeout and not much later.
    let started = Instant::now();
    let err = store.inner().load("any").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Timeout), "{err:?}");
    assert!(
        took >= StdDuration::from_millis(500) && took < StdDuration::from_secs(2),
        "{took:?}"
    );

    // No cookie and no writes: no store call, so no dependency on Redis.
    let before = store.counts();
    let res = send(&app, "/public", None).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "public"));
    let res = send(&app, "/whoami", None).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, ""));
    assert_eq!(store.counts(), before, "a request without a session called the store");

    proxy.resume();
    let res = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "alice"));
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connection_gives_503_and_reconnects_by_itself() {
    let Some(url) = service_url("REDIS_URL") else { return };
    let proxy = RedisProxy::start(redis_addr(&url)).await;
    let prefix = unique_name("es-test:");
    let cleanup = Cleaned(
        RedisStore::builder()
            .prefix(&prefix)
            .connect(url.as_str())
            .await
            .unwrap(),
    );
    let app = app(proxied_store(&proxy, &prefix).await);

    let login = send(&app, "/login", None).await;
    let cookie = login.cookie.expect("session cookie");

    proxy.sever();
    for _ in 0..3 {
        let started = Instant::now();
        let res = send(&app, "/whoami", Some(&cookie)).await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < StdDuration::from_secs(5), "{:?}", started.elapsed());
    }

    proxy.restore();
    // Reconnection happens in the background: poll, within a bound, for the first success.
    let deadline = Instant::now() + StdDuration::from_secs(15);
    loop {
        let res = send(&app, "/whoami", Some(&cookie)).await;
        if res.status == StatusCode::OK {
            assert_eq!(res.body, "alice", "data lost across the outage");
            break;
        }
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "the store never reconnected");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cost_one_round_trip_to_read_or_create_and_two_to_write() {
    let Some(url) = service_url("REDIS_URL") else { return };
    let proxy = RedisProxy::start(redis_addr(&url)).await;
    let prefix = unique_name("es-test:");
    let proxied = proxied_store(&proxy, &prefix).await;
    let cleanup = Cleaned(
        RedisStore::builder()
            .prefix(&prefix)
            .connect(url.as_str())
            .await
            .unwrap(),
    );
    let store = CountingStore::new(proxied.clone());
    let app = app(store.clone());

    // What one request sends: (store calls, commands per round trip).
    let measure = |since: u64, counts_before: StoreCounts| {
        let commands: Vec<(u64, String)> = proxy
            .commands_since(since)
            .into_iter()
            .map(|(rt, args)| (rt, args[0].to_ascii_uppercase()))
            .collect();
        let mut counts = store.counts();
        counts.load -= counts_before.load;
        counts.load_and_touch -= counts_before.load_and_touch;
        counts.create -= counts_before.create;
        counts.update -= counts_before.update;
        counts.touch -= counts_before.touch;
        counts.destroy -= counts_before.destroy;
        (proxy.round_trips() - since, commands, counts)
    };

    // Create: SET … NX EX, one round trip.
    let (rt, c) = (proxy.round_trips(), store.counts());
    let res = send(&app, "/count", None).await;
    assert_eq!(res.body, "1");
    let cookie = res.cookie.expect("session cookie");
    let (trips, commands, counts) = measure(rt, c);
    eprintln!("create: {trips} round trip(s): {commands:?}");
    assert_eq!(trips, 1, "{commands:?}");
    assert_eq!(commands, [(1, "SET".to_owned())]);
    assert_eq!((counts.create, counts.total()), (1, 1));
    let set = &proxy.commands_since(rt)[0].1;
    assert_eq!(&set[3..], ["NX", "EX", "3600"], "SET arguments");

    // Read of an existing session: GETEX … EX, one round trip.
    let (rt, c) = (proxy.round_trips(), store.counts());
    let res = send(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::OK);
    let (trips, commands, counts) = measure(rt, c);
    eprintln!("read: {trips} round trip(s): {commands:?}");
    assert_eq!(trips, 1, "{commands:?}");
    assert_eq!(commands, [(1, "GETEX".to_owned())]);
    assert_eq!((counts.load_and_touch, counts.total()), (1, 1));
    let getex = &proxy.commands_since(rt)[0].1;
    assert_eq!(&getex[2..], ["EX", "3600"], "GETEX arguments");

    // Write: GETEX, then the compare-and-set script, two round trips.
    let (rt, c) = (proxy.round_trips(), store.counts());
    let res = send(&app, "/count", Some(&cookie)).await;
    assert_eq!(res.body, "2");
    let (trips, commands, counts) = measure(rt, c);
    eprintln!("write: {trips} round trip(s): {commands:?}");
    assert_eq!(trips, 2, "{commands:?}");
    assert_eq!(commands, [(1, "GETEX".to_owned()), (2, "EVALSHA".to_owned())]);
    assert_eq!((counts.load_and_touch, counts.update, counts.total()), (1, 1, 2));

    // No cookie, no writes: nothing at all.
    let rt = proxy.round_trips();
    send(&app, "/public", None).await;
    send(&app, "/whoami", None).await;
    assert_eq!(proxy.round_trips(), rt);

    // `load` (used with resave or touch_after): GET and PTTL pipelined in one round trip.
    let id = express_session::generate_id();
    proxied
        .create(&id, &Record::new(doc(r#""a":1"#), in_secs(60)))
        .await
        .unwrap();
    let rt = proxy.round_trips();
    proxied.load(&id).await.unwrap().unwrap();
    let commands: Vec<_> = proxy
        .commands_since(rt)
        .into_iter()
        .map(|(rt, args)| (rt, args[0].to_ascii_uppercase()))
        .collect();
    eprintln!("load: {commands:?}");
    assert_eq!(commands, [(1, "GET".to_owned()), (1, "PTTL".to_owned())]);
    assert_eq!(proxy.round_trips() - rt, 1);
    drop(cleanup);
}

/// Many requests of different sessions asking Redis at once (the store sends such commands
/// as one pipeline): each gets its own record, and a command Redis refuses fails only its own
/// caller. One worker thread, so the requests' commands do queue up together.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn concurrent_loads_each_get_their_own_reply_beside_a_failing_one() {
    let Some(store) = single().await else { return };
    const N: usize = 40;
    let ids: Vec<String> = (0..N).map(|_| express_session::generate_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        store
            .create(id, &Record::new(doc(&format!(r#""i":{i}"#)), in_secs(60)))
            .await
            .unwrap();
    }
    // One key of the prefix holds a hash, not a string: GETEX on it is a WRONGTYPE error.
    let wrong = express_session::generate_id();
    let mut raw = raw().await.unwrap();
    let _: () = raw.hset(store.0.key(&wrong), "f", "v").await.unwrap();

    let tasks: Vec<_> = ids
        .iter()
        .cloned()
        .chain([wrong.clone()])
        .map(|id| {
            let store = store.0.clone();
            tokio::spawn(async move { store.load_and_touch(&id, in_secs(120)).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    let failed = replies.pop().unwrap();
    assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
    for (i, reply) in replies.into_iter().enumerate() {
        let record = reply.unwrap().expect("live record");
        assert_eq!(record.data, doc(&format!(r#""i":{i}"#)), "load {i} got another's reply");
    }
}

#[test]
fn resp_parser_reads_whole_commands_only() {
    let buf = b"*2\r\n$3\r\nGET\r\n$5\r\nsess:\r\n*1\r\n$4\r\nPI";
    let (args, used) = parse_command(buf).unwrap();
    assert_eq!(args, ["GET", "sess:"]);
    assert_eq!(parse_command(&buf[used..]), None, "a partial command is not parsed");
}
