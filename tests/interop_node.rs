//! One store, two languages: the real express-session with connect-redis, connect-pg-simple and
//! express-mysql-session (`tests/interop/node_app.js`) and this crate
//! (`examples/interop_server.rs`, the same routes and options) run side by side on one store,
//! with one secret and one cookie name, and each must take over what the other did.
//!
//! Every scenario runs against Redis, PostgreSQL and MySQL (`cargo test --test interop_node
//! postgres::`); a store is one more `interop_tests!` line at the bottom, plus its direct access
//! in `Backing`. Each test gets its own key prefix,
//! schema or table, and removes it at the end, also when it fails. Both apps are child processes
//! on 127.0.0.1, killed when the test ends (also on a panic); every request and start-up is
//! bounded in time.
//!
//! What is checked, in both directions:
//! - a session created on one side is read, changed, regenerated and destroyed on the other,
//!   and after a regenerate or destroy the old cookie works on neither side;
//! - both write the same stored document byte for byte (apart from the id and the times), the
//!   same `Set-Cookie`, and the same store expiry: Redis TTL `ceil` of the seconds left,
//!   PostgreSQL `expire` `ceil` of the epoch seconds, MySQL `expires` epoch seconds `Math.round`ed;
//! - a touch by either side moves the store expiry as the Node store would, without rewriting
//!   the document, and the lifetime stored with a session wins over the reader's configuration;
//! - a record whose store expiry has passed is served by neither side, whereas a stale
//!   `cookie.expires` inside a live record ends nothing;
//! - secret rotation: a cookie signed with a secret that is not first in a list verifies on
//!   both sides, the first secret signs on both, byte for byte.
//!
//! Needs `tests/interop/node_modules` (`npm ci` in `tests/interop`; `.ci/run` does it) and the
//! example binary, which `cargo test` builds; when running this file alone, build it first:
//! `cargo build --example interop_server --features redis,postgres,mysql`. Without node_modules
//! or a service URL the tests skip with a message, or fail under `SESSION_TEST_REQUIRE_SERVICES=1`.

#![cfg(all(
    feature = "axum",
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "test-util"
))]

use std::{
    future::Future,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use express_session::store::conformance::{service_url, unique_name};
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// The cookie name both apps use (not the default, so the option is exercised too).
const NAME: &str = "interop.sid";
const SECRET: &str = "interop secret shared by node and rust";
/// The cookie `maxAge` unless a test says otherwise.
const MAX_AGE_MS: i64 = 120_000;
const DAY_MS: i64 = 86_400_000;
/// Longest an app may take to print `listening`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BACKEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one scenario may take, start-ups included.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// The two apps

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Node,
    Rust,
}

/// The variables either app reads; each child gets exactly the ones a test sets.
const APP_VARS: &[&str] = &[
    "PORT",
    "SESSION_SECRET",
    "SESSION_NAME",
    "STORE",
    "REDIS_URL",
    "REDIS_PREFIX",
    "DATABASE_URL",
    "PG_TABLE",
    "PG_SCHEMA",
    "MYSQL_URL",
    "MYSQL_TABLE",
    "MAX_AGE_MS",
];

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// `target/<profile>/examples/interop_server`, next to this test's `deps` directory.
fn rust_app_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("interop_server{}", std::env::consts::EXE_SUFFIX));
    let rebuild = "`cargo test` builds it; when running one test file, first run \
                   `cargo build --example interop_server --features redis,postgres,mysql`";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {rebuild}", bin.display()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest = newest_change(&root.join("src")).max(newest_change(&root.join("examples/interop_server.rs")));
    assert!(
        newest <= built,
        "{} is older than its sources: {rebuild}",
        bin.display()
    );
    bin
}

/// The latest modification time of a file, or of any file under a directory.
fn newest_change(path: &Path) -> std::time::SystemTime {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if !meta.is_dir() {
        return meta.modified().expect("file times are available");
    }
    std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|entry| newest_change(&entry.expect("directory entry").path()))
        .max()
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
}

/// Whether the npm packages are installed: skip (or fail, when services are required) if not.
fn node_modules_present(package: &str) -> bool {
    let modules = interop_dir().join("node_modules");
    if modules.join("express-session").is_dir() && modules.join(package).is_dir() {
        return true;
    }
    assert!(
        std::env::var("SESSION_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
        "tests/interop/node_modules lacks express-session or {package} but SESSION_TEST_REQUIRE_SERVICES=1: \
         run `npm ci` in tests/interop"
    );
    eprintln!("skipped: tests/interop/node_modules is missing; run `npm ci` in tests/interop");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A running app; the process is killed when this is dropped.
struct App {
    side: Side,
    child: Child,
    base: String,
    client: HttpClient,
    stderr: Arc<Mutex<String>>,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an app answered.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    /// Every `Set-Cookie` header, as sent.
    set_cookies: Vec<String>,
    body: String,
}

impl Reply {
    /// The session cookie this reply sets, as `name=value` for a `Cookie` header; `None` when
    /// there is none or it is a clearing one (empty value).
    fn cookie(&self) -> Option<String> {
        self.session_set_cookie()
            .map(|h| h.split(';').next().unwrap_or_default().to_owned())
            .filter(|pair| pair.len() > NAME.len() + 1)
    }

    /// The whole `Set-Cookie` header of the session cookie.
    fn session_set_cookie(&self) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|h| h.starts_with(&format!("{NAME}=")))
    }
}

impl App {
    /// Starts one app with `vars` (and nothing else of [`APP_VARS`] from this environment) and
    /// waits for its `listening <port>` line.
    fn start(side: Side, vars: &[(String, String)], client: HttpClient) -> App {
        let mut last_error = String::new();
        // Node needs a port chosen up front, which another process may take first: retry.
        for _ in 0..3 {
            match Self::try_start(side, vars, client.clone()) {
                Ok(app) => return app,
                Err(e) => last_error = e,
            }
        }
        panic!("the {side:?} app did not start: {last_error}");
    }

    fn try_start(side: Side, vars: &[(String, String)], client: HttpClient) -> Result<App, String> {
        let mut cmd = match side {
            Side::Node => {
                let mut cmd = Command::new("node");
                cmd.arg(interop_dir().join("node_app.js"))
                    .current_dir(interop_dir())
                    .env("PORT", free_port().to_string());
                cmd
            }
            Side::Rust => {
                let mut cmd = Command::new(rust_app_binary());
                cmd.env("PORT", "0");
                cmd
            }
        };
        for var in APP_VARS.iter().filter(|v| **v != "PORT") {
            cmd.env_remove(var);
        }
        cmd.envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("spawn failed: {e}"))?;

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                // Keep the start of what the app said: enough to explain a failure.
                if s.len() < 16_384 {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        let out_pipe = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            // Reads every line to the end, so the app never blocks on a full pipe.
            for line in BufReader::new(out_pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening ") {
                    let _ = tx.send(port.trim().to_owned());
                }
            }
        });
        let mut app = App {
            side,
            child,
            base: String::new(),
            client,
            stderr,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => {
                let port: u16 = port.parse().map_err(|e| format!("bad port {port:?}: {e}"))?;
                app.base = format!("http://127.0.0.1:{port}");
                Ok(app)
            }
            Err(e) => {
                let _ = app.child.kill();
                let status = app.child.wait().ok();
                Err(format!(
                    "no `listening` line ({e}); exit status {status:?}; stderr:\n{}",
                    app.stderr.lock().unwrap_or_else(|e| e.into_inner())
                ))
            }
        }
    }

    /// `GET path`, with the session cookie if given.
    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = Request::get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let req = req.body(Empty::new()).expect("valid request");
        let exchange = async {
            let res = self.client.request(req).await?;
            let status = res.status();
            let set_cookies = res
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .map(|v| v.to_str().expect("ASCII Set-Cookie").to_owned())
                .collect();
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, set_cookies, body))
        };
        let (status, set_cookies, body) = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(parts)) => parts,
            Ok(Err(e)) => panic!("{:?} GET {path}: {e}; stderr:\n{}", self.side, self.stderr()),
            Err(_) => panic!("{:?} GET {path}: no answer in {REQUEST_TIMEOUT:?}", self.side),
        };
        Reply {
            status,
            set_cookies,
            body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
        }
    }

    /// `GET path`, which must answer 200; returns the reply.
    async fn ok(&self, path: &str, cookie: Option<&str>) -> Reply {
        let reply = self.get(path, cookie).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{:?} GET {path}: {reply:?}; stderr:\n{}",
            self.side,
            self.stderr()
        );
        reply
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The session id inside a `name=s%3A<id>.<signature>` cookie.
fn id_of(cookie: &str) -> String {
    let value = cookie
        .strip_prefix(&format!("{NAME}=s%3A"))
        .unwrap_or_else(|| panic!("not a signed session cookie: {cookie}"));
    let dot = value.rfind('.').expect("signed value has a dot");
    value[..dot].to_owned()
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn ceil_div(n: i64, d: i64) -> i64 {
    n.div_euclid(d) + i64::from(n.rem_euclid(d) != 0)
}

/// JavaScript's `Math.round(n / d)` (half up).
fn round_div(n: i64, d: i64) -> i64 {
    n.div_euclid(d) + i64::from(n.rem_euclid(d) * 2 >= d)
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

// ---------------------------------------------------------------------------------------------
// The stores, read and written directly

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Redis,
    Postgres,
    MySql,
}

enum Conn {
    Redis(::redis::aio::MultiplexedConnection),
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
}

/// One test's corner of a store: its prefix, schema or table, and a direct connection.
struct Backing {
    backend: Backend,
    conn: Conn,
    url: String,
    /// The Redis key prefix, the PostgreSQL schema or the MySQL table.
    name: String,
}

/// A record as the store holds it.
#[derive(Debug, Clone)]
struct Raw {
    /// The stored document, as text.
    data: String,
    /// When the store drops or stops serving the record, in epoch milliseconds, as an interval
    /// (a Redis `PTTL` read is only as exact as the clock around it).
    expiry: (i64, i64),
}

impl Raw {
    fn doc(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("stored text is not JSON ({e}): {}", self.data))
    }

    /// The document's `cookie.originalMaxAge`: the lifetime every touch of this session uses.
    /// express computes it as `expires - now` when the session is made, so it can be a
    /// millisecond or so short of the configured `maxAge`.
    fn original_max_age(&self, configured: i64) -> i64 {
        let ms = self.doc()["cookie"]["originalMaxAge"]
            .as_i64()
            .unwrap_or_else(|| panic!("originalMaxAge is not an integer: {}", self.data));
        assert!(
            (configured - 1000..=configured).contains(&ms),
            "originalMaxAge {ms}, configured {configured}: {}",
            self.data
        );
        ms
    }

    /// The document's `cookie.expires` in epoch milliseconds.
    fn cookie_expires_ms(&self) -> Option<i64> {
        let doc = self.doc();
        let s = doc["cookie"]["expires"].as_str()?;
        let t = OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("expires {s:?}: {e}"));
        Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

async fn bounded<T, E: std::fmt::Display>(what: &str, fut: impl Future<Output = Result<T, E>>) -> T {
    match tokio::time::timeout(BACKEND_TIMEOUT, fut).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: no answer in {BACKEND_TIMEOUT:?}"),
    }
}

impl Backend {
    fn url_var(self) -> &'static str {
        match self {
            Backend::Redis => "REDIS_URL",
            Backend::Postgres => "DATABASE_URL",
            Backend::MySql => "MYSQL_URL",
        }
    }

    fn npm_package(self) -> &'static str {
        match self {
            Backend::Redis => "connect-redis",
            Backend::Postgres => "connect-pg-simple",
            Backend::MySql => "express-mysql-session",
        }
    }

    /// Connects and makes this test's prefix, schema or table name; `None` to skip.
    async fn setup(self) -> Option<Backing> {
        let url = service_url(self.url_var())?;
        if !node_modules_present(self.npm_package()) {
            return None;
        }
        let name = unique_name("interop_");
        let conn = match self {
            Backend::Redis => {
                let client = ::redis::Client::open(url.as_str()).expect("valid REDIS_URL");
                Conn::Redis(bounded("redis connect", client.get_multiplexed_async_connection()).await)
            }
            Backend::Postgres => {
                let pool = bounded(
                    "postgres connect",
                    sqlx::postgres::PgPoolOptions::new()
                        .max_connections(2)
                        .acquire_timeout(BACKEND_TIMEOUT)
                        .connect(&url),
                )
                .await;
                // connect-pg-simple names its key and index `session_pkey` and
                // `IDX_session_expire` whatever the table, so each test gets its own schema.
                bounded(
                    "create schema",
                    sqlx::query(&format!("CREATE SCHEMA \"{name}\"")).execute(&pool),
                )
                .await;
                Conn::Postgres(pool)
            }
            Backend::MySql => Conn::MySql(
                bounded(
                    "mysql connect",
                    sqlx::mysql::MySqlPoolOptions::new()
                        .max_connections(2)
                        .acquire_timeout(BACKEND_TIMEOUT)
                        .connect(&url),
                )
                .await,
            ),
        };
        Some(Backing {
            backend: self,
            conn,
            url,
            name: name.clone(),
        })
    }
}

impl Backing {
    /// The variables that point an app at this store (the default table names where they
    /// are unique already).
    fn vars(&self) -> Vec<(String, String)> {
        let v = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        match self.backend {
            Backend::Redis => vec![
                v("STORE", "redis"),
                v("REDIS_URL", &self.url),
                v("REDIS_PREFIX", &format!("{}:", self.name)),
            ],
            Backend::Postgres => vec![
                v("STORE", "postgres"),
                v("DATABASE_URL", &self.url),
                v("PG_SCHEMA", &self.name),
            ],
            Backend::MySql => vec![
                v("STORE", "mysql"),
                v("MYSQL_URL", &self.url),
                v("MYSQL_TABLE", &self.name),
            ],
        }
    }

    fn redis_key(&self, id: &str) -> String {
        format!("{}:{id}", self.name)
    }

    fn pg_table(&self) -> String {
        format!("\"{}\".\"session\"", self.name)
    }

    /// The record under `id`, read from the store itself; `None` if there is none. SQL rows
    /// are returned even when expired (neither Node store deletes them on read).
    async fn raw(&self, id: &str) -> Option<Raw> {
        match &self.conn {
            Conn::Redis(conn) => {
                let mut conn = conn.clone();
                let key = self.redis_key(id);
                let kind: String = bounded("TYPE", ::redis::cmd("TYPE").arg(&key).query_async(&mut conn)).await;
                if kind == "none" {
                    return None;
                }
                assert_eq!(kind, "string", "connect-redis keeps a session as a plain string");
                let data: String = bounded("GET", ::redis::cmd("GET").arg(&key).query_async(&mut conn)).await;
                let before = now_ms();
                let pttl: i64 = bounded("PTTL", ::redis::cmd("PTTL").arg(&key).query_async(&mut conn)).await;
                let after = now_ms();
                assert!(pttl > 0, "session key without a TTL ({pttl})");
                Some(Raw {
                    data,
                    expiry: (before + pttl, after + pttl + 1),
                })
            }
            Conn::Postgres(pool) => {
                let row: Option<(String, i64)> = bounded(
                    "select row",
                    sqlx::query_as(&format!(
                        "SELECT sess::text, (extract(epoch from expire) * 1000)::int8 FROM {} WHERE sid = $1",
                        self.pg_table()
                    ))
                    .bind(id)
                    .fetch_optional(pool),
                )
                .await;
                row.map(|(data, ms)| Raw { data, expiry: (ms, ms) })
            }
            Conn::MySql(pool) => {
                // Bytes, not text: sqlx reports a `utf8mb4_bin` column as binary.
                let row: Option<(Option<Vec<u8>>, i64)> = bounded(
                    "select row",
                    sqlx::query_as(&format!(
                        "SELECT data, CAST(expires AS SIGNED) FROM `{}` WHERE session_id = ?",
                        self.name
                    ))
                    .bind(id)
                    .fetch_optional(pool),
                )
                .await;
                row.map(|(data, secs)| Raw {
                    data: String::from_utf8(data.expect("data is not NULL")).expect("UTF-8 data"),
                    expiry: (secs * 1000, secs * 1000),
                })
            }
        }
    }

    async fn raw_present(&self, id: &str) -> Raw {
        self.raw(id)
            .await
            .unwrap_or_else(|| panic!("no record for the session in {:?}", self.backend))
    }

    /// The store expiry (epoch ms, as an interval) the Node store gives a record whose cookie
    /// expires somewhere in `[lo, hi]` (epoch ms), written at a time when that was in the future.
    fn expected_expiry(&self, lo: i64, hi: i64) -> (i64, i64) {
        match self.backend {
            // `EX ceil((expires - now) / 1000)`: the key goes within a second after `expires`.
            Backend::Redis => (lo, hi + 999),
            // `to_timestamp(Math.ceil(expires / 1000))`.
            Backend::Postgres => (ceil_div(lo, 1000) * 1000, ceil_div(hi, 1000) * 1000),
            // `Math.round(expires / 1000)` seconds.
            Backend::MySql => (round_div(lo, 1000) * 1000, round_div(hi, 1000) * 1000),
        }
    }

    /// Asserts the record's store expiry is what the Node store writes for a cookie expiring
    /// in `[lo, hi]`.
    fn assert_expiry(&self, raw: &Raw, lo: i64, hi: i64, what: &str) {
        let (want_lo, want_hi) = self.expected_expiry(lo, hi);
        // A Redis PTTL is read against our clock; allow it a few milliseconds.
        let slack = if self.backend == Backend::Redis { 5 } else { 0 };
        assert!(
            raw.expiry.1 >= want_lo - slack && raw.expiry.0 <= want_hi + slack,
            "{what}: {:?} stores expiry {:?}, the Node store would store {:?} (cookie expiry in [{lo}, {hi}])",
            self.backend,
            raw.expiry,
            (want_lo, want_hi)
        );
    }

    /// Sets the record's store expiry to `at_ms` (epoch ms), leaving the document alone. A time
    /// in the past makes Redis drop the key at once, and makes the SQL row expired but present.
    async fn set_expiry(&self, id: &str, at_ms: i64) {
        match &self.conn {
            Conn::Redis(conn) => {
                let mut conn = conn.clone();
                let _: i64 = bounded(
                    "PEXPIREAT",
                    ::redis::cmd("PEXPIREAT")
                        .arg(self.redis_key(id))
                        .arg(at_ms)
                        .query_async(&mut conn),
                )
                .await;
            }
            Conn::Postgres(pool) => {
                let done = bounded(
                    "update expire",
                    sqlx::query(&format!(
                        "UPDATE {} SET expire = to_timestamp($1) WHERE sid = $2",
                        self.pg_table()
                    ))
                    .bind(at_ms as f64 / 1000.0)
                    .bind(id)
                    .execute(pool),
                )
                .await;
                assert_eq!(done.rows_affected(), 1);
            }
            Conn::MySql(pool) => {
                let done = bounded(
                    "update expires",
                    sqlx::query(&format!("UPDATE `{}` SET expires = ? WHERE session_id = ?", self.name))
                        .bind(round_div(at_ms, 1000))
                        .bind(id)
                        .execute(pool),
                )
                .await;
                assert_eq!(done.rows_affected(), 1);
            }
        }
    }

    /// Replaces the stored document, keeping the store expiry.
    async fn set_data(&self, id: &str, data: &str) {
        match &self.conn {
            Conn::Redis(conn) => {
                let mut conn = conn.clone();
                let _: () = bounded(
                    "SET KEEPTTL",
                    ::redis::cmd("SET")
                        .arg(self.redis_key(id))
                        .arg(data)
                        .arg("XX")
                        .arg("KEEPTTL")
                        .query_async(&mut conn),
                )
                .await;
            }
            Conn::Postgres(pool) => {
                bounded(
                    "update sess",
                    sqlx::query(&format!(
                        "UPDATE {} SET sess = $1::json WHERE sid = $2",
                        self.pg_table()
                    ))
                    .bind(data)
                    .bind(id)
                    .execute(pool),
                )
                .await;
            }
            Conn::MySql(pool) => {
                bounded(
                    "update data",
                    sqlx::query(&format!("UPDATE `{}` SET data = ? WHERE session_id = ?", self.name))
                        .bind(data)
                        .bind(id)
                        .execute(pool),
                )
                .await;
            }
        }
    }

    /// Removes everything this test made.
    async fn cleanup(&self) {
        let outcome = tokio::time::timeout(BACKEND_TIMEOUT, async {
            match &self.conn {
                Conn::Redis(conn) => {
                    let mut conn = conn.clone();
                    let mut cursor = 0u64;
                    // Bounded: a test makes a few dozen keys at most.
                    for _ in 0..10_000 {
                        let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(format!("{}:*", self.name))
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut conn)
                            .await?;
                        if !keys.is_empty() {
                            let _: i64 = ::redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
                        }
                        cursor = next;
                        if cursor == 0 {
                            break;
                        }
                    }
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                }
                Conn::Postgres(pool) => {
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
                        .execute(pool)
                        .await?;
                    Ok(())
                }
                Conn::MySql(pool) => {
                    sqlx::query(&format!("DROP TABLE IF EXISTS `{}`", self.name))
                        .execute(pool)
                        .await?;
                    Ok(())
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cleanup of {} in {:?} failed: {e}", self.name, self.backend),
            Err(_) => eprintln!("cleanup of {} in {:?} timed out", self.name, self.backend),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A test's context and runner

struct Ctx {
    backing: Backing,
    client: HttpClient,
}

impl Ctx {
    /// Starts one app on this test's store with the shared secret, cookie name and
    /// [`MAX_AGE_MS`], overridden by `vars` (an empty value means unset).
    async fn start(&self, side: Side, vars: &[(&str, &str)]) -> App {
        let mut all = self.backing.vars();
        all.push(("SESSION_SECRET".into(), SECRET.into()));
        all.push(("SESSION_NAME".into(), NAME.into()));
        all.push(("MAX_AGE_MS".into(), MAX_AGE_MS.to_string()));
        for (k, v) in vars {
            all.retain(|(name, _)| name != k);
            if !v.is_empty() {
                all.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || App::start(side, &all, client))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// A Node app and a Rust app with the same configuration. Node starts first, so its store
    /// creates the SQL table as it would on its own.
    async fn pair(&self, vars: &[(&str, &str)]) -> (App, App) {
        let node = self.start(Side::Node, vars).await;
        let rust = self.start(Side::Rust, vars).await;
        (node, rust)
    }
}

/// Runs one scenario against one store: sets the store up, runs the scenario under
/// [`SCENARIO_TIMEOUT`], cleans the store up whatever happened, then reports the outcome.
async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(Arc<Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(backing) = backend.setup().await else {
        return;
    };
    let client = Client::builder(TokioExecutor::new())
        // No idle connections: an app may close one just as it is reused.
        .pool_max_idle_per_host(0)
        .build_http::<Empty<Bytes>>();
    let ctx = Arc::new(Ctx { backing, client });
    let mut task = tokio::spawn(scenario(Arc::clone(&ctx)));
    let outcome = match tokio::time::timeout(SCENARIO_TIMEOUT, &mut task).await {
        Ok(joined) => joined.map_err(|e| e.into_panic()),
        Err(_) => {
            // Dropping the scenario kills its apps before the store is cleaned up.
            task.abort();
            let _ = task.await;
            Err(Box::new(format!("scenario did not finish in {SCENARIO_TIMEOUT:?}")) as Box<dyn std::any::Any + Send>)
        }
    };
    ctx.backing.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Both directions: (writer, reader).
fn directions<'a>(node: &'a App, rust: &'a App) -> [(&'a App, &'a App); 2] {
    [(node, rust), (rust, node)]
}

// ---------------------------------------------------------------------------------------------
// The scenarios

/// A session created on one side is read on the other with the same cookie.
async fn session_created_on_one_side_is_read_on_the_other(ctx: Arc<Ctx>) {
    let (node, rust) = ctx.pair(&[]).await;
    for (writer, reader) in directions(&node, &rust) {
        let set = writer.ok("/set?key=user&val=alice", None).await;
        assert_eq!(set.body, "ok");
        let cookie = set.cookie().expect("a modified new session gets a cookie");
        let id = id_of(&cookie);
        assert_eq!(writer.ok("/id", Some(&cookie)).await.body, id);

        let got = reader.ok("/get?key=user", Some(&cookie)).await;
        assert_eq!(
            got.body, "alice",
            "{:?} reads what {:?} wrote",
            reader.side, writer.side
        );
        assert_eq!(got.cookie(), None, "an unmodified session gets no Set-Cookie");
        assert_eq!(reader.ok("/id", Some(&cookie)).await.body, id);
        assert_eq!(reader.ok("/data", Some(&cookie)).await.body, r#"{"user":"alice"}"#);
        assert!(ctx.backing.raw(&id).await.is_some());
    }
}

/// Changes alternate between the sides; each sees every change of the other, and both send
/// the very same cookie for the session.
async fn changes_made_on_either_side_are_seen_by_the_other(ctx: Arc<Ctx>) {
    let (node, rust) = ctx.pair(&[]).await;
    for (first, second) in directions(&node, &rust) {
        let start = first.ok("/inc", None).await;
        assert_eq!(start.body, "1");
        let cookie = start.cookie().expect("cookie for the new session");
        for n in 2..=7 {
            let app = if n % 2 == 0 { second } else { first };
            let reply = app.ok("/inc", Some(&cookie)).await;
            assert_eq!(reply.body, n.to_string(), "{:?} increments to {n}", app.side);
            // express re-sends the cookie of a modified session with an expiry: the same
            // signed value from both languages.
            assert_eq!(reply.cookie().as_deref(), Some(cookie.as_str()), "{:?}", app.side);
        }
        first.ok("/set?key=a&val=from%20one", Some(&cookie)).await;
        second.ok("/set?key=b&val=from%20two", Some(&cookie)).await;
        let want = r#"{"count":7,"a":"from one","b":"from two"}"#;
        assert_eq!(first.ok("/data", Some(&cookie)).await.body, want);
        assert_eq!(second.ok("/data", Some(&cookie)).await.body, want);
        assert_eq!(second.ok("/get?key=count", Some(&cookie)).await.body, "7");
    }
}

/// `regenerate` on one side: the old cookie works on neither side, the new one on both.
async fn regenerate_on_one_side_retires_the_old_cookie_on_both(ctx: Arc<Ctx>) {
    let (node, rust) = ctx.pair(&[]).await;
    for (owner, other) in directions(&node, &rust) {
        let old = owner
            .ok("/set?key=user&val=alice", None)
            .await
            .cookie()
            .expect("cookie");
        let old_id = id_of(&old);

        let regen = other.ok("/regenerate", Some(&old)).await;
        let new = regen.cookie().expect("a regenerated session always gets a cookie");
        let new_id = id_of(&new);
        assert_eq!(regen.body, new_id);
        assert_ne!(new_id, old_id);
        assert!(ctx.backing.raw(&old_id).await.is_none(), "old record deleted");
        let raw = ctx.backing.raw_present(&new_id).await;
        assert_eq!(
            raw.doc().as_object().map(|o| o.len()),
            Some(1),
            "regenerated session is empty: {}",
            raw.data
        );

        for app in [owner, other] {
            let stale = app.ok("/get?key=user", Some(&old)).await;
            assert_eq!(stale.body, "", "{:?} serves no data for the old cookie", app.side);
            assert_eq!(stale.cookie(), None, "an untouched new session sends no cookie");
            let id = app.ok("/id", Some(&old)).await.body;
            assert!(
                id != old_id && id != new_id,
                "{:?} starts a new session for the old cookie",
                app.side
            );
            assert_eq!(
                app.ok("/id", Some(&new)).await.body,
                new_id,
                "{:?} takes the new cookie",
                app.side
            );
        }
        owner.ok("/set?key=user&val=bob", Some(&new)).await;
        assert_eq!(other.ok("/get?key=user", Some(&new)).await.body, "bob");
        assert!(ctx.backing.raw(&old_id).await.is_none(), "the old session stays gone");
    }
}

/// `destroy` on one side: the session is gone for both, and a later write with the old cookie
/// starts a new session rather than bringing the old one back.
async fn destroy_on_one_side_ends_the_session_on_both(ctx: Arc<Ctx>) {
    let (node, rust) = ctx.pair(&[]).await;
    for (owner, other) in directions(&node, &rust) {
        let cookie = owner
            .ok("/set?key=user&val=alice", None)
            .await
            .cookie()
            .expect("cookie");
        let id = id_of(&cookie);
        assert_eq!(other.ok("/destroy", Some(&cookie)).await.body, "ok");
        assert!(ctx.backing.raw(&id).await.is_none(), "record deleted");
        for app in [owner, other] {
            assert_eq!(app.ok("/get?key=user", Some(&cookie)).await.body, "", "{:?}", app.side);
            assert_ne!(app.ok("/id", Some(&cookie)).await.body, id, "{:?}", app.side);
            let write = app.ok("/set?key=user&val=mallory", Some(&cookie)).await;
            let fresh = write.cookie().expect("the write starts a new session with its cookie");
            assert_ne!(id_of(&fresh), id, "{:?} never revives a destroyed id", app.side);
        }
        assert!(ctx.backing.raw(&id).await.is_none(), "the destroyed session stays gone");
    }
}

/// Both sides give a record the store expiry the Node store gives it, and a touch by either
/// side moves it as the Node store would, without rewriting the document.
async fn store_expiry_and_touch_agree_on_both_sides(ctx: Arc<Ctx>) {
    let (node, rust) = ctx.pair(&[]).await;
    let b = &ctx.backing;
    for (writer, _) in directions(&node, &rust) {
        // `ceil`, `Math.round` and a truncation agree on some milliseconds and not on others:
        // write once early and once late in a second (the cookie expires at the same fraction
        // of a second, maxAge being whole seconds) and check both.
        for (lo, hi) in [(100, 400), (600, 900)] {
            let mut landed = None;
            // Bounded retries: on a loaded machine a request can start late.
            for _ in 0..5 {
                let wait = (lo + 50 - now_ms().rem_euclid(1000)).rem_euclid(1000);
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                let cookie = writer.ok("/set?key=k&val=v", None).await.cookie().expect("cookie");
                let raw = b.raw_present(&id_of(&cookie)).await;
                let expires = raw.cookie_expires_ms().expect("cookie.expires with a maxAge");
                b.assert_expiry(&raw, expires, expires, &format!("record written by {:?}", writer.side));
                let fraction = expires.rem_euclid(1000);
                landed = Some(fraction);
                if (lo - 2..=hi).contains(&fraction) {
                    break;
                }
            }
            let fraction = landed.expect("at least one write");
            assert!(
                (lo - 2..=hi).contains(&fraction),
                "{:?}: no write landed at [{lo}, {hi}] ms of a second (last …{fraction})",
                writer.side
            );
        }

        let before = now_ms();
        let cookie = writer
            .ok("/set?key=user&val=alice", None)
            .await
            .cookie()
            .expect("cookie");
        let after = now_ms();
        let id = id_of(&cookie);
        let raw = b.raw_present(&id).await;
        let expires = raw.cookie_expires_ms().expect("cookie.expires with a maxAge");
        assert!(
            (before + MAX_AGE_MS..=after + MAX_AGE_MS).contains(&expires),
            "{:?} wrote cookie.expires {expires}, not now + maxAge",
            writer.side
        );
        b.assert_expiry(&raw, expires, expires, &format!("record written by {:?}", writer.side));
        let lifetime = raw.original_max_age(MAX_AGE_MS);

        for toucher in [&node, &rust] {
            // Pull the store expiry back, then make an unmodified request: a touch.
            b.set_expiry(&id, now_ms() + 30_000).await;
            let before = now_ms();
            let read = toucher.ok("/get?key=user", Some(&cookie)).await;
            let after = now_ms();
            assert_eq!(read.body, "alice");
            assert_eq!(read.cookie(), None, "express sends no cookie for an unmodified session");
            let touched = b.raw_present(&id).await;
            assert_eq!(
                touched.data, raw.data,
                "a touch by {:?} rewrote the document",
                toucher.side
            );
            b.assert_expiry(
                &touched,
                before + lifetime,
                after + lifetime,
                &format!("touch by {:?} of a record written by {:?}", toucher.side, writer.side),
            );
        }
    }
}

/// Without `maxAge` both sides write `expires: null`, keep the record one day, and send a
/// cookie without `Expires`.
async fn browser_session_cookie_records_live_one_day_on_both_sides(ctx: Arc<Ctx>) {
    let (node, rust) = ctx.pair(&[("MAX_AGE_MS", "")]).await;
    let b = &ctx.backing;
    for (writer, reader) in directions(&node, &rust) {
        let before = now_ms();
        let set = writer.ok("/set?key=user&val=alice", None).await;
        let after = now_ms();
        let header = set.session_set_cookie().expect("Set-Cookie").to_owned();
        assert!(!header.contains("Expires="), "{:?}: {header}", writer.side);
        let cookie = set.cookie().expect("cookie");
        let id = id_of(&cookie);
        let raw = b.raw_present(&id).await;
        assert_eq!(raw.doc()["cookie"]["expires"], Value::Null, "{}", raw.data);
        assert_eq!(raw.doc()["cookie"]["originalMaxAge"], Value::Null, "{}", raw.data);
        b.assert_expiry(
            &raw,
            before + DAY_MS,
            after + DAY_MS,
            &format!("written by {:?}", writer.side),
        );

        b.set_expiry(&id, now_ms() + 30_000).await;
        let before = now_ms();
        let read = reader.ok("/get?key=user", Some(&cookie)).await;
        let after = now_ms();
        assert_eq!(read.body, "alice");
        assert_eq!(read.cookie(), None);
        let touched = b.raw_present(&id).await;
        assert_eq!(touched.data, raw.data);
        b.assert_expiry(
            &touched,
            before + DAY_MS,
            after + DAY_MS,
            &format!("touch by {:?}", reader.side),
        );
    }
}

/// The lifetime is stored with the session: a reader configured with another `maxAge` touches
/// and re-sends the cookie with the writer's.
async fn a_sessions_own_lifetime_wins_over_the_readers_configuration(ctx: Arc<Ctx>) {
    const LONG: i64 = 300_000;
    let b = &ctx.backing;
    for writer_side in [Side::Node, Side::Rust] {
        let reader_side = if writer_side == Side::Node {
            Side::Rust
        } else {
            Side::Node
        };
        let writer = ctx.start(writer_side, &[("MAX_AGE_MS", &LONG.to_string())]).await;
        let reader = ctx.start(reader_side, &[]).await;
        let cookie = writer
            .ok("/set?key=user&val=alice", None)
            .await
            .cookie()
            .expect("cookie");
        let id = id_of(&cookie);
        let lifetime = b.raw_present(&id).await.original_max_age(LONG);

        b.set_expiry(&id, now_ms() + 30_000).await;
        let before = now_ms();
        assert_eq!(reader.ok("/get?key=user", Some(&cookie)).await.body, "alice");
        let after = now_ms();
        let touched = b.raw_present(&id).await;
        b.assert_expiry(
            &touched,
            before + lifetime,
            after + lifetime,
            &format!("touch by {reader_side:?} of a {writer_side:?} session with a longer maxAge"),
        );

        let before = now_ms();
        let write = reader.ok("/set?key=user&val=bob", Some(&cookie)).await;
        let after = now_ms();
        assert_eq!(write.cookie().as_deref(), Some(cookie.as_str()));
        let raw = b.raw_present(&id).await;
        assert_eq!(
            raw.doc()["cookie"]["originalMaxAge"],
            Value::from(lifetime),
            "{reader_side:?} kept the session's lifetime: {}",
            raw.data
        );
        let expires = raw.cookie_expires_ms().expect("expires");
        assert!(
            (before + lifetime..=after + lifetime).contains(&expires),
            "{}",
            raw.data
        );
        b.assert_expiry(&raw, expires, expires, &format!("save by {reader_side:?}"));
    }
}

/// A record whose store expiry has passed is served by neither side (Redis drops the key; the
/// SQL stores keep the row but ignore it), while a stale `cookie.expires` inside a record the
/// store still keeps ends nothing, as express-session has it.
async fn only_the_store_expiry_ends_a_session_on_either_side(ctx: Arc<Ctx>) {
    let (node, rust) = ctx.pair(&[]).await;
    let b = &ctx.backing;
    for (writer, _) in directions(&node, &rust) {
        // Stale embedded expiry, live store expiry: still served, by both.
        let cookie = writer
            .ok("/set?key=user&val=alice", None)
            .await
            .cookie()
            .expect("cookie");
        let id = id_of(&cookie);
        let mut doc = b.raw_present(&id).await.doc();
        doc["cookie"]["expires"] = Value::from("2001-02-03T04:05:06.789Z");
        b.set_data(&id, &doc.to_string()).await;
        for app in [&node, &rust] {
            let read = app.ok("/get?key=user", Some(&cookie)).await;
            assert_eq!(
                read.body, "alice",
                "{:?} ended a session on its stale cookie.expires",
                app.side
            );
        }

        // Store expiry in the past: served by neither, and not revived by a write.
        b.set_expiry(&id, now_ms() - 2_000).await;
        for app in [&node, &rust] {
            let read = app.ok("/get?key=user", Some(&cookie)).await;
            assert_eq!(
                read.body, "",
                "{:?} served a session whose store expiry passed",
                app.side
            );
            assert_eq!(read.cookie(), None);
            assert_ne!(app.ok("/id", Some(&cookie)).await.body, id, "{:?}", app.side);
            let write = app.ok("/set?key=user&val=mallory", Some(&cookie)).await;
            let fresh = write.cookie().expect("the write starts a new session");
            assert_ne!(id_of(&fresh), id, "{:?} revived an expired id", app.side);
        }
        if let Some(raw) = b.raw(&id).await {
            assert!(
                raw.expiry.1 < now_ms(),
                "the expired record was given a future expiry: {:?}",
                raw.expiry
            );
            assert!(
                raw.data.contains("alice"),
                "the expired record was rewritten: {}",
                raw.data
            );
        }
    }
}

/// Secret rotation: with `[new, old]`, a cookie signed by either language with `old` verifies
/// on both, both re-sign with `new` byte for byte, and an app that only knows `old` refuses it.
async fn rotated_secrets_verify_and_sign_alike_on_both_sides(ctx: Arc<Ctx>) {
    const OLD: &str = "the old interop secret";
    let rotated = serde_json::to_string(&["the new interop secret", OLD]).expect("JSON");
    let node_old = ctx.start(Side::Node, &[("SESSION_SECRET", OLD)]).await;
    let rust_old = ctx.start(Side::Rust, &[("SESSION_SECRET", OLD)]).await;
    let node_new = ctx.start(Side::Node, &[("SESSION_SECRET", &rotated)]).await;
    let rust_new = ctx.start(Side::Rust, &[("SESSION_SECRET", &rotated)]).await;

    for (old_writer, new_writer, new_reader) in [(&node_old, &node_new, &rust_new), (&rust_old, &rust_new, &node_new)] {
        let old_cookie = old_writer
            .ok("/set?key=user&val=alice", None)
            .await
            .cookie()
            .expect("cookie");
        let id = id_of(&old_cookie);
        for app in [&node_new, &rust_new] {
            let read = app.ok("/get?key=user", Some(&old_cookie)).await;
            assert_eq!(
                read.body, "alice",
                "{:?} with [new, old] verifies an old-signed cookie",
                app.side
            );
        }

        // A change makes the rotated app re-send the cookie, signed with the new secret.
        let resigned = new_writer
            .ok("/set?key=n&val=1", Some(&old_cookie))
            .await
            .cookie()
            .expect("a modified session's cookie is re-sent");
        assert_eq!(id_of(&resigned), id);
        assert_ne!(
            resigned, old_cookie,
            "{:?} signs with the first secret",
            new_writer.side
        );
        // The other language signs the same id with the same first secret, byte for byte.
        let other = new_reader
            .ok("/set?key=n&val=2", Some(&resigned))
            .await
            .cookie()
            .expect("cookie");
        assert_eq!(other, resigned, "Node and Rust sign alike with the first secret");
        assert_eq!(new_writer.ok("/get?key=n", Some(&other)).await.body, "2");
        // Apps that only know the old secret refuse the new signature.
        for app in [&node_old, &rust_old] {
            assert_eq!(
                app.ok("/get?key=user", Some(&resigned)).await.body,
                "",
                "{:?}",
                app.side
            );
            assert_ne!(app.ok("/id", Some(&resigned)).await.body, id, "{:?}", app.side);
        }
    }
}

/// The record and the `Set-Cookie` the Rust app writes are the Node app's, byte for byte, apart
/// from the id and the times: key order, JSON escaping of awkward strings, numbers.
async fn rust_writes_the_record_node_writes(ctx: Arc<Ctx>) {
    let (node, rust) = ctx.pair(&[]).await;
    let b = &ctx.backing;
    // Quotes, backslash, slash, HTML, accents, an astral character, U+2028 and a control byte.
    let awkward = "al\"i\\ce/<é>🔑\u{2028}\u{1}";
    let mut records = Vec::new();
    let mut headers = Vec::new();
    for app in [&node, &rust] {
        let first = app.ok(&format!("/set?key=user&val={}", encode(awkward)), None).await;
        headers.push(first.session_set_cookie().expect("Set-Cookie").to_owned());
        let cookie = first.cookie().expect("cookie");
        app.ok("/set?key=role&val=admin", Some(&cookie)).await;
        // Read before the last writes: a read touches the store expiry to a later cookie
        // expiry than the document keeps (on either side), which can cross a second boundary.
        assert_eq!(app.ok("/get?key=user", Some(&cookie)).await.body, awkward);
        app.ok("/inc?key=n", Some(&cookie)).await;
        app.ok("/inc?key=n", Some(&cookie)).await;
        let raw = b.raw_present(&id_of(&cookie)).await;
        let expires = raw.cookie_expires_ms().expect("expires");
        b.assert_expiry(&raw, expires, expires, &format!("record written by {:?}", app.side));
        records.push(raw.data);
    }

    let masked: Vec<String> = records.iter().map(|r| mask_record(r)).collect();
    assert_eq!(
        masked[1], masked[0],
        "the Rust record differs from Node's:\nnode: {}\nrust: {}",
        records[0], records[1]
    );
    let masked: Vec<String> = headers.iter().map(|h| mask_set_cookie(h)).collect();
    assert_eq!(
        masked[1], masked[0],
        "the Rust Set-Cookie differs from Node's:\nnode: {}\nrust: {}",
        headers[0], headers[1]
    );
}

/// A stored document with its `expires` and `originalMaxAge` replaced by placeholders, after
/// checking they have Node's form (`toISOString`, a whole number of ms close to maxAge).
fn mask_record(text: &str) -> String {
    let doc: Value = serde_json::from_str(text).expect("JSON record");
    let expires = doc["cookie"]["expires"].as_str().expect("expires string");
    let b = expires.as_bytes();
    assert!(
        b.len() == 24
            && b[10] == b'T'
            && b[19] == b'.'
            && b[23] == b'Z'
            && OffsetDateTime::parse(expires, &Rfc3339).is_ok(),
        "expires {expires:?} is not toISOString's form"
    );
    let max_age = Raw {
        data: text.to_owned(),
        expiry: (0, 0),
    }
    .original_max_age(MAX_AGE_MS);
    text.replacen(&format!("\"expires\":\"{expires}\""), "\"expires\":\"<E>\"", 1)
        .replacen(&format!("\"originalMaxAge\":{max_age}"), "\"originalMaxAge\":<M>", 1)
}

/// A `Set-Cookie` header with the signed value and the `Expires` date replaced by placeholders.
fn mask_set_cookie(header: &str) -> String {
    header
        .split("; ")
        .map(|part| {
            if part.starts_with(&format!("{NAME}=")) {
                format!("{NAME}=<V>")
            } else if let Some(date) = part.strip_prefix("Expires=") {
                assert!(date.ends_with(" GMT") && date.len() == 29, "Expires={date}");
                "Expires=<D>".to_owned()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------------
// One module per store; a new store is one more line at the end.

macro_rules! interop_tests {
    ($store:ident, $backend:expr) => {
        mod $store {
            use super::*;

            interop_tests!(@each $backend;
                session_created_on_one_side_is_read_on_the_other,
                changes_made_on_either_side_are_seen_by_the_other,
                regenerate_on_one_side_retires_the_old_cookie_on_both,
                destroy_on_one_side_ends_the_session_on_both,
                store_expiry_and_touch_agree_on_both_sides,
                browser_session_cookie_records_live_one_day_on_both_sides,
                a_sessions_own_lifetime_wins_over_the_readers_configuration,
                only_the_store_expiry_ends_a_session_on_either_side,
                rotated_secrets_verify_and_sign_alike_on_both_sides,
                rust_writes_the_record_node_writes,
            );
        }
    };
    (@each $backend:expr; $($scenario:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                run($backend, super::$scenario).await;
            }
        )+
    };
}

interop_tests!(redis, Backend::Redis);
interop_tests!(postgres, Backend::Postgres);
interop_tests!(mysql, Backend::MySql);
