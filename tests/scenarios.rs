//! Runs the same scenarios against express-session itself (`tests/interop/scenario_server.js`)
//! and against our `examples/scenario_server.rs`, and compares what they do over HTTP: status,
//! body, whether `Set-Cookie` is sent and its attributes in order (`Expires` relative to `Date`),
//! whether the session id is kept or changed, what the store holds, and the store counters.
//!
//! Both servers follow the scenario-server protocol (`/work/shared/conformance/PROTOCOL.md`).
//! Session ids are random, so they are compared by role: each id gets a label (`id1`, `id2`, …) in
//! the order a run first sees it. Everything must match, except the deliberate differences
//! listed in the header of `examples/scenario_server.rs`: there the scenario asserts each side's
//! behaviour explicitly and names the difference.
//!
//! Needs Node and `npm ci` in `tests/interop`; without `node_modules` the test prints `skipped`,
//! unless `SESSION_TEST_REQUIRE_SERVICES=1`, which makes that a failure. Our server is the example
//! binary `cargo test` builds next to this test (`cargo build --example scenario_server`).

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use express_session::{
    cookie::{cookie_value, unsign},
    time::{format_description::well_known::Rfc3339, OffsetDateTime, PrimitiveDateTime},
};
use serde_json::{json, Value};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

// --- processes ---------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require_services() -> bool {
    std::env::var("SESSION_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Whether the Node side can run; prints `skipped` (or fails, when services are required).
fn node_ready() -> bool {
    let modules = repo().join("tests/interop/node_modules/express-session");
    let script = repo().join("tests/interop/scenario_server.js");
    if modules.is_dir() && script.is_file() {
        return true;
    }
    let why = format!(
        "{} or {} is missing: run `npm ci` in tests/interop",
        modules.display(),
        script.display()
    );
    assert!(!require_services(), "SESSION_TEST_REQUIRE_SERVICES=1 but {why}");
    eprintln!("skipped: {why}");
    false
}

fn rust_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples/scenario_server");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).unwrap_or_else(|_| {
        panic!(
            "{} not found: build it with `cargo build --example scenario_server` (a plain `cargo test` builds it)",
            bin.display()
        )
    });
    let source = std::fs::metadata(repo().join("examples/scenario_server.rs")).and_then(|m| m.modified());
    assert!(
        source.is_ok_and(|s| s <= built),
        "{} is older than its source: rebuild it with `cargo build --example scenario_server`",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Node,
    Rust,
}

/// A scenario server process in its own process group; killed (group-wide) when dropped.
struct Server {
    kind: Kind,
    port: u16,
    child: Child,
    log: PathBuf,
    /// Keep the log file after the server stops (something failed while it ran).
    keep_log: std::cell::Cell<bool>,
}

impl Server {
    /// Starts a server and waits until it is ready, or returns its exit status if it exits.
    fn start(kind: Kind, config: &Value) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let log = std::env::temp_dir().join(format!("scenario-{kind:?}-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let cmd = match kind {
            Kind::Node => "exec node tests/interop/scenario_server.js".to_owned(),
            Kind::Rust => format!("exec '{}'", rust_binary().display()),
        };
        let child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(repo())
            .env("SESSION_CONFIG", config.to_string())
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("spawn scenario server");
        let mut server = Server {
            kind,
            port,
            child,
            log,
            keep_log: std::cell::Cell::new(true),
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                // Its output is short: put it in the error and drop the file.
                let output = std::fs::read_to_string(&server.log).unwrap_or_default();
                server.keep_log.set(false);
                let output: String = output.chars().take(2000).collect();
                return Err(format!("{kind:?} server exited with {status}: {}", output.trim()));
            }
            if let Ok(r) = server.try_request("GET", "/_store/stats", &[], Duration::from_secs(2)) {
                if r.status == 200 {
                    server.keep_log.set(false);
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{kind:?} server not ready in time; log {}",
                    server.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> std::io::Result<Resp> {
        http_request(self.port, method, path, headers, timeout)
    }

    fn request(&self, method: &str, path: &str, headers: &[(String, String)]) -> Resp {
        self.try_request(method, path, headers, REQUEST_TIMEOUT)
            .unwrap_or_else(|e| panic!("{:?} {method} {path}: {e}; log {}", self.kind, self.log.display()))
    }

    fn admin(&self, path: &str) -> Resp {
        self.request("GET", path, &[])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let kill = |signal: &str| {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        if !self.keep_log.get() {
            let _ = std::fs::remove_file(&self.log);
        }
        kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill("-KILL");
        let _ = self.child.wait();
    }
}

// --- a small HTTP/1.1 client -------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    elapsed: Duration,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> std::io::Result<Resp> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let elapsed = start.elapsed();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok(Resp {
        status,
        headers,
        body,
        elapsed,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// --- one run of a scenario against one server ------------------------------------------------

fn http_date(s: &str) -> Option<OffsetDateTime> {
    let format = express_session::time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(s, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Seconds between two instants, as a float.
fn secs(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (a - b).as_seconds_f64()
}

/// A client of one server: a cookie jar, id labels, and the facts observed so far.
struct Run<'a> {
    server: &'a Server,
    name: String,
    secrets: Vec<Vec<u8>>,
    jar: Vec<(String, String)>,
    labels: HashMap<String, String>,
    facts: Vec<(String, Value)>,
    /// The store type (`memory`, `redis`), for the few behaviours that depend on it in express.
    store: String,
    config: Value,
}

/// A fact whose key starts with `~` is a number (seconds) compared within this tolerance.
const TOLERANCE_S: f64 = 2.5;

impl<'a> Run<'a> {
    fn new(server: &'a Server, config: &Value) -> Self {
        let secrets = match &config["secret"] {
            Value::String(s) => vec![s.as_bytes().to_vec()],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            _ => vec![],
        };
        Run {
            server,
            name: config["name"].as_str().unwrap_or("connect.sid").to_owned(),
            secrets,
            jar: Vec::new(),
            labels: HashMap::new(),
            facts: Vec::new(),
            store: config["store"]["type"].as_str().unwrap_or("memory").to_owned(),
            config: config.clone(),
        }
    }

    fn kind(&self) -> Kind {
        self.server.kind
    }

    fn is_rust(&self) -> bool {
        self.kind() == Kind::Rust
    }

    fn fact(&mut self, key: impl Into<String>, v: impl Into<Value>) {
        self.facts.push((key.into(), v.into()));
    }

    /// The label of a session id: `id1`, `id2`, … in order of first sight.
    fn label(&mut self, id: &str) -> String {
        let n = self.labels.len() + 1;
        self.labels
            .entry(id.to_owned())
            .or_insert_with(|| format!("id{n}"))
            .clone()
    }

    fn id_of_label(&self, label: &str) -> String {
        self.labels
            .iter()
            .find(|(_, l)| *l == label)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no id labelled {label}"))
    }

    /// The session id in the jar, if any.
    fn jar_sid(&self) -> Option<String> {
        let (_, v) = self.jar.iter().find(|(n, _)| *n == self.name)?;
        self.unsign_value(v)
    }

    fn unsign_value(&self, value: &str) -> Option<String> {
        let decoded = percent_encoding::percent_decode_str(value).decode_utf8().ok()?;
        unsign(decoded.strip_prefix("s:")?, &self.secrets).map(str::to_owned)
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Sends a request with the jar's cookies and `extra` headers; updates the jar.
    fn send(&mut self, path: &str, extra: &[(&str, &str)]) -> Resp {
        let mut headers: Vec<(String, String)> = extra.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("cookie")) {
            if let Some(c) = self.cookie_header() {
                headers.push(("Cookie".into(), c));
            }
        }
        let r = self.server.request("GET", path, &headers);
        for sc in r.set_cookies() {
            let pair = sc.split(';').next().unwrap_or("");
            let Some((n, v)) = pair.split_once('=') else { continue };
            let cleared = sc.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT");
            self.jar.retain(|(jn, _)| jn != n);
            if !cleared {
                self.jar.push((n.to_owned(), v.to_owned()));
            }
        }
        r
    }

    /// Sends a request and records status, body and the `Set-Cookie` headers as facts.
    fn step(&mut self, path: &str) -> Resp {
        self.step_with(path, &[])
    }

    fn step_with(&mut self, path: &str, extra: &[(&str, &str)]) -> Resp {
        let before = self.jar_sid();
        let r = self.send(path, extra);
        self.observe(path, &r, before.as_deref());
        r
    }

    fn observe(&mut self, what: &str, r: &Resp, sid_before: Option<&str>) {
        self.fact(format!("{what} status"), r.status);
        self.fact(format!("{what} body"), r.body.clone());
        self.observe_cookies(what, r, sid_before);
    }

    /// The `Set-Cookie` headers: names in order; for the session cookie, the id's role (kept,
    /// its label), the attributes in order and `Expires` relative to `Date`.
    fn observe_cookies(&mut self, what: &str, r: &Resp, sid_before: Option<&str>) {
        let date = r.header("date").and_then(http_date);
        let mut names = Vec::new();
        for sc in r.set_cookies() {
            let mut parts = sc.split("; ");
            let (name, value) = parts.next().and_then(|p| p.split_once('=')).unwrap_or(("?", ""));
            names.push(name.to_owned());
            let mut attrs = Vec::new();
            for a in parts {
                match a.strip_prefix("Expires=") {
                    Some(e) => {
                        attrs.push("Expires".to_owned());
                        let delta = match (http_date(e), date) {
                            (Some(e), Some(d)) => json!(secs(e, d).round()),
                            _ => json!(e),
                        };
                        // A cleared cookie's Expires (1970) is compared exactly.
                        if e.contains("1970") {
                            self.fact(format!("{what} {name} Expires"), e);
                        } else {
                            self.fact(format!("~{what} {name} Expires-Date"), delta);
                        }
                    }
                    None => attrs.push(a.to_owned()),
                }
            }
            self.fact(format!("{what} {name} attributes"), attrs.join("; "));
            if name == self.name {
                let v = if value.is_empty() {
                    "cleared".to_owned()
                } else {
                    match self.unsign_value(value) {
                        Some(id) => {
                            let kept = if sid_before == Some(id.as_str()) { "kept" } else { "new" };
                            format!(
                                "{} ({kept}), signed with secret 0: {}",
                                self.label(&id),
                                value == cookie_value(&id, &self.secrets[0])
                            )
                        }
                        None => "not signed with a configured secret".to_owned(),
                    }
                };
                self.fact(format!("{what} {name} value"), v);
            } else {
                self.fact(format!("{what} {name} value"), value);
            }
        }
        self.fact(format!("{what} Set-Cookie names"), names.join(","));
    }

    /// Records a body that is a session id, by label.
    fn step_id(&mut self, path: &str) -> Resp {
        let before = self.jar_sid();
        let r = self.send(path, &[]);
        self.fact(format!("{path} status"), r.status);
        let label = if r.status == 200 {
            self.label(&r.body.clone())
        } else {
            r.body.clone()
        };
        self.fact(format!("{path} id"), label);
        self.observe_cookies(path, &r, before.as_deref());
        r
    }

    /// Records a JSON body (key order ignored).
    fn step_json(&mut self, path: &str) -> Value {
        let before = self.jar_sid();
        let r = self.send(path, &[]);
        self.fact(format!("{path} status"), r.status);
        let v = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body.clone()));
        self.fact(format!("{path} json"), v.clone());
        self.observe_cookies(path, &r, before.as_deref());
        v
    }

    /// Records a cookie JSON (`/cookie`, `/touch`) with times relative to now.
    fn step_cookie_json(&mut self, path: &str) {
        let before = self.jar_sid();
        let r = self.send(path, &[]);
        self.fact(format!("{path} status"), r.status);
        let mut v: Value = serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("{path}: {}", r.body));
        let now = OffsetDateTime::now_utc();
        for k in ["maxAge", "originalMaxAge"] {
            let s = v[k].as_f64().map(|ms| (ms / 1000.0).round());
            self.fact(format!("~{path} cookie.{k}"), json!(s));
            v[k] = Value::Null;
        }
        let e = v["expires"]
            .as_str()
            .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
            .map(|e| secs(e, now).round());
        self.fact(format!("~{path} cookie.expires-now"), json!(e));
        v["expires"] = Value::Null;
        self.fact(format!("{path} cookie"), v);
        self.observe_cookies(path, &r, before.as_deref());
    }

    /// Records the stored record of a labelled session: cookie keys (exact set and order-free
    /// values), times relative to now, and the data.
    fn record(&mut self, label: &str) {
        let id = self.id_of_label(label);
        let r = self.server.admin(&format!("/_store/get?sid={}", enc(&id)));
        self.fact(format!("record {label} status"), r.status);
        if r.status != 200 {
            return;
        }
        self.redis_ttl(label, &id);
        let mut v: Value = serde_json::from_str(&r.body).expect("record JSON");
        let mut cookie = v
            .as_object_mut()
            .and_then(|o| o.shift_remove("cookie"))
            .unwrap_or(Value::Null);
        // Key order too: the stored text must be express's byte for byte.
        let keys: Vec<String> = cookie
            .as_object()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        self.fact(format!("record {label} cookie keys in order"), keys.join(","));
        let data_keys: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        self.fact(format!("record {label} data keys in order"), data_keys.join(","));
        let now = OffsetDateTime::now_utc();
        let oma = cookie["originalMaxAge"].as_f64().map(|ms| (ms / 1000.0).round());
        self.fact(format!("~record {label} originalMaxAge"), json!(oma));
        let e = cookie["expires"]
            .as_str()
            .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
            .map(|e| secs(e, now).round());
        self.fact(format!("~record {label} expires-now"), json!(e));
        if let Some(c) = cookie.as_object_mut() {
            c.remove("originalMaxAge");
            c.remove("expires");
        }
        self.fact(format!("record {label} cookie"), cookie);
        self.fact(format!("record {label} data"), v);
    }

    /// With a Redis store, the key's TTL read straight from Redis: connect-redis's
    /// `ceil((expires - now) / 1000)`, or 86400 s for a browser-session cookie.
    #[cfg(feature = "redis")]
    fn redis_ttl(&mut self, label: &str, id: &str) {
        let (Some(url), Some(prefix)) = (
            self.config["store"]["url"].as_str(),
            self.config["store"]["prefix"].as_str(),
        ) else {
            return;
        };
        let key = format!("{prefix}{id}");
        let ttl: i64 = redis::Client::open(url)
            .and_then(|c| c.get_connection_with_timeout(REQUEST_TIMEOUT))
            .and_then(|mut c| redis::cmd("TTL").arg(&key).query(&mut c))
            .unwrap_or_else(|e| panic!("TTL of the record: {e}"));
        self.fact(format!("~record {label} redis TTL"), ttl);
    }

    #[cfg(not(feature = "redis"))]
    fn redis_ttl(&mut self, _label: &str, _id: &str) {
        assert_ne!(
            self.config["store"]["type"], "redis",
            "build with --features redis to read TTLs from Redis"
        );
    }

    fn stats(&mut self, when: &str) {
        let r = self.server.admin("/_store/stats");
        let v: Value = serde_json::from_str(&r.body).expect("stats JSON");
        self.fact(format!("stats {when}"), v);
    }

    /// Records the counters, taking out on our side the `touch` that `loads` requests made in
    /// their load's round trip (deliberate difference: with `resave: false` we touch when we load,
    /// before knowing whether the request will modify, destroy or unset the session).
    fn stats_touched_on_load(&mut self, when: &str, loads: u64) {
        let mut v = self.stats_value();
        if self.is_rust() {
            let touch = v["touch"].as_u64().expect("touch count");
            assert!(touch >= loads, "expected {loads} touches on load, got {v}");
            v["touch"] = (touch - loads).into();
        }
        self.fact(format!("stats {when}"), v);
    }

    fn stats_value(&self) -> Value {
        serde_json::from_str(&self.server.admin("/_store/stats").body).expect("stats JSON")
    }

    fn length(&mut self, when: &str) {
        let r = self.server.admin("/_store/length");
        self.fact(format!("store length {when}"), r.body);
    }

    fn admin(&self, path: &str) -> Resp {
        let r = self.server.admin(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r
    }
}

/// The cookie value with its last signature character changed (never to itself).
fn tamper(value: &str) -> String {
    let (head, last) = value.split_at(value.len() - 1);
    format!("{head}{}", if last == "A" { "B" } else { "A" })
}

fn enc(s: &str) -> String {
    express_session::cookie::encode_uri_component(s)
}

// --- scenarios ---------------------------------------------------------------------------------

struct Scenario {
    name: &'static str,
    config: Value,
    run: fn(&mut Run<'_>),
}

fn base(extra: Value) -> Value {
    let mut c = json!({"secret": "keyboard cat", "store": {"type": "memory"}});
    for (k, v) in extra.as_object().expect("object").clone() {
        c[k] = v;
    }
    c
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "save_uninitialized_absent_means_true: a new untouched session is saved and gets a cookie",
            config: base(json!({})),
            run: |s| {
                s.step("/noop");
                s.length("after noop");
                s.stats("after noop");
                s.step("/noop");
                s.stats("after second noop");
            },
        },
        Scenario {
            name: "save_uninitialized_false: no cookie and no record until the session is modified",
            config: base(json!({"saveUninitialized": false, "resave": false})),
            run: |s| {
                s.step("/noop");
                s.step("/get?key=a");
                s.length("after reads");
                s.step("/set?key=a&val=1");
                s.record("id1");
                s.stats("after set");
            },
        },
        Scenario {
            name: "resave_absent_means_true: an unmodified loaded session is written back",
            config: base(json!({"saveUninitialized": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.admin("/_store/reset-stats");
                s.step("/noop");
                s.stats("after unmodified request");
                s.record("id1");
            },
        },
        Scenario {
            name: "resave_false: an unmodified loaded session is touched, not written",
            config: base(json!({"resave": false, "saveUninitialized": false, "cookie": {"maxAge": 60000}})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.admin("/_store/reset-stats");
                s.step("/get?key=a");
                s.stats("after unmodified request");
                s.admin("/_store/reset-stats");
                s.step("/set?key=b&val=2");
                // Deliberate difference: we touch in the load's round trip, before knowing the
                // request will modify the session, so a modifying request also counts a touch.
                let st = s.stats_value();
                let want = match s.kind() {
                    Kind::Node => json!({"get": 1, "set": 1, "destroy": 0, "touch": 0}),
                    Kind::Rust => json!({"get": 1, "set": 1, "destroy": 0, "touch": 1}),
                };
                assert_eq!(st, want, "{:?}: stats of a modifying request", s.kind());
                s.record("id1");
            },
        },
        Scenario {
            name: "rolling: the cookie is re-sent on every response with a fresh Expires",
            config: base(json!({"rolling": true, "resave": false, "cookie": {"maxAge": 60000}})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.step("/noop");
                s.step("/get?key=a");
                s.stats("after rolling requests");
            },
        },
        Scenario {
            name: "not_rolling: a browser-session cookie is never re-sent; a maxAge cookie only when modified",
            config: base(json!({"resave": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.step("/set?key=a&val=2");
                s.step("/noop");
                s.record("id1");
            },
        },
        Scenario {
            name: "cookie_only_change: a cookie change without a data change, with resave false",
            config: base(json!({"resave": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.step("/set-maxage?ms=60000");
                let r = s.send("/set?key=a&val=2", &[]);
                // Deliberate difference with the memory store: express's MemoryStore.touch
                // rewrites the stored cookie, so the new maxAge survives and the next modification
                // re-sends the cookie. Our touch only moves the expiry, as connect-redis's EXPIRE
                // does in express too (so with Redis both agree): the record keeps its
                // browser-session cookie and no Set-Cookie follows.
                let want = if s.is_rust() || s.store == "redis" { 0 } else { 1 };
                assert_eq!(
                    r.set_cookies().len(),
                    want,
                    "{:?}: cookie after a cookie-only change",
                    s.kind()
                );
            },
        },
        Scenario {
            name: "unset_destroy: req.session = null deletes the stored session",
            config: base(json!({"unset": "destroy", "resave": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.admin("/_store/reset-stats");
                s.step("/null-session");
                s.stats_touched_on_load("after null-session", 1);
                s.record("id1");
            },
        },
        Scenario {
            name: "unset_keep: req.session = null keeps the record and drops nothing stored",
            config: base(json!({"unset": "keep", "resave": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.admin("/_store/reset-stats");
                s.step("/null-session");
                s.stats_touched_on_load("after null-session", 1);
                s.record("id1");
                s.step("/get?key=a");
            },
        },
        Scenario {
            name: "proxy_true: X-Forwarded-Proto is trusted, case-insensitively, for the secure gate",
            config: base(json!({"proxy": true, "cookie": {"secure": true}})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.length("after insecure request");
                s.step_with("/set?key=b&val=2", &[("X-Forwarded-Proto", "HTTPS, http")]);
                s.step_with("/set?key=c&val=3", &[("X-Forwarded-Proto", "http, https")]);
            },
        },
        Scenario {
            name: "trust_proxy: with proxy absent, the framework's case-sensitive check decides",
            config: base(json!({"trustProxy": true, "cookie": {"secure": true}})),
            run: |s| {
                s.step_with("/set?key=a&val=1", &[("X-Forwarded-Proto", "HTTPS")]);
                s.step_with("/set?key=b&val=2", &[("X-Forwarded-Proto", " https ,http")]);
            },
        },
        Scenario {
            name: "proxy_false: X-Forwarded-Proto is ignored even with trust proxy",
            config: base(json!({"proxy": false, "trustProxy": true, "cookie": {"secure": true}})),
            run: |s| {
                s.step_with("/set?key=a&val=1", &[("X-Forwarded-Proto", "https")]);
                s.length("after request");
            },
        },
        Scenario {
            name: "secure_auto_and_same_site_auto: resolved once, when the session is created",
            config: base(json!({"proxy": true, "cookie": {"secure": "auto", "sameSite": "auto", "maxAge": 60000}})),
            run: |s| {
                s.step_with("/set?key=a&val=1", &[("X-Forwarded-Proto", "https")]);
                s.record("id1");
                s.step_cookie_json("/cookie");
                s.jar.clear();
                s.step("/set?key=a&val=2");
                s.record("id2");
                s.step_with("/set?key=a&val=3", &[("X-Forwarded-Proto", "https")]);
            },
        },
        Scenario {
            name: "cookie_attributes: every attribute, in express's order, and in the record",
            config: base(
                json!({"proxy": true, "cookie": {"secure": true, "sameSite": "strict", "priority": "high",
                "partitioned": true, "domain": "example.test", "httpOnly": false, "maxAge": 3600000}}),
            ),
            run: |s| {
                s.step_with("/set?key=a&val=1", &[("X-Forwarded-Proto", "https")]);
                s.record("id1");
                s.step_cookie_json("/cookie");
            },
        },
        Scenario {
            name: "same_site_none_and_priority_low: lower-case options map to the same attributes",
            config: base(
                json!({"proxy": true, "name": "sid", "cookie": {"secure": true, "sameSite": "none", "priority": "low"}}),
            ),
            run: |s| {
                s.step_with("/noop", &[("X-Forwarded-Proto", "https")]);
                s.record("id1");
            },
        },
        Scenario {
            name: "cookie_attr: attributes changed by the handler are stored and sent",
            config: base(json!({"cookie": {"maxAge": 60000}})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.step("/cookie-attr?httpOnly=false&sameSite=lax&priority=medium&domain=example.test&partitioned=true");
                s.step("/set?key=a&val=2");
                s.record("id1");
                s.step_cookie_json("/cookie");
            },
        },
        Scenario {
            name: "max_age_and_expires: setting maxAge, expires and null on the session cookie",
            config: base(json!({"resave": false, "cookie": {"maxAge": 60000}})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.step("/set-maxage?ms=120000&key=b&val=2");
                s.record("id1");
                // A fixed date keeps the step's name (and so the fact keys) the same on both sides.
                s.step("/set-expires?ms=4102444800000&key=c&val=3");
                s.record("id1");
                s.step("/set-maxage?ms=null&key=d&val=4");
                s.record("id1");
                s.step_cookie_json("/cookie");
            },
        },
        Scenario {
            name: "touch: resets the expiry to originalMaxAge from now",
            config: base(json!({"resave": false, "cookie": {"maxAge": 60000}})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.step_cookie_json("/touch");
                s.stats("after touch");
            },
        },
        Scenario {
            name: "regenerate: a new id and empty data; the old record is destroyed",
            config: base(json!({"resave": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.admin("/_store/reset-stats");
                s.step_id("/regenerate?key=b&val=2");
                s.stats_touched_on_load("after regenerate", 1);
                s.record("id1");
                s.record("id2");
                s.step_json("/data");
            },
        },
        Scenario {
            name: "destroy: the record is deleted; a later request starts over",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.admin("/_store/reset-stats");
                let r = s.send("/destroy", &[]);
                s.fact("destroy status", r.status);
                s.fact("destroy body", r.body.clone());
                // Deliberate difference: we clear the cookie; express sends no Set-Cookie.
                let sc = r.set_cookies();
                match s.kind() {
                    Kind::Node => assert!(sc.is_empty(), "express sent {sc:?} on destroy"),
                    Kind::Rust => assert_eq!(
                        sc,
                        ["connect.sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly"]
                    ),
                }
                s.jar.clear();
                s.stats_touched_on_load("after destroy", 1);
                s.record("id1");
                s.step("/get?key=a");
            },
        },
        Scenario {
            name: "reload: unsaved changes are dropped; reload + save persists",
            config: base(json!({"resave": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.step_json("/reload?key=a&val=2");
                s.record("id1");
                s.step_json("/reload?key=b&val=3&save=1");
                s.record("id1");
            },
        },
        Scenario {
            name: "reload_of_a_missing_session: failed to load session",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                let id = s.id_of_label("id1");
                s.admin(&format!("/_store/destroy?sid={}", enc(&id)));
                s.step("/reload");
            },
        },
        Scenario {
            name: "save: saving in the handler makes the end-of-request save unnecessary",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.step("/save?key=a&val=1");
                s.stats("after save");
                s.record("id1");
                s.admin("/_store/reset-stats");
                s.step("/save?key=a&val=2");
                s.stats("after second save");
            },
        },
        Scenario {
            name: "path_gate: requests outside cookie.path get no session",
            config: base(json!({"cookie": {"path": "/app"}})),
            run: |s| {
                s.step("/other/set?key=a&val=1");
                s.step("/noop");
                s.length("after requests outside the path");
                s.stats("after requests outside the path");
                s.step("/app/set?key=a&val=1");
                s.step("/app/deeper/get?key=a");
                s.step("/appx/get?key=a");
            },
        },
        Scenario {
            name: "secret_rotation: a cookie signed with an old secret is accepted and re-signed with the first",
            config: base(json!({"secret": ["new secret", "old secret"], "rolling": true, "resave": false})),
            run: |s| {
                let record =
                    r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"alice"}"#;
                s.admin(&format!("/_store/put?sid=legacy-session-1&json={}", enc(record)));
                let old = format!("connect.sid={}", cookie_value("legacy-session-1", b"old secret"));
                s.label("legacy-session-1");
                s.step_with("/get?key=user", &[("Cookie", &old)]);
                let unknown = format!("connect.sid={}", cookie_value("legacy-session-1", b"unknown secret"));
                s.step_with("/get?key=user", &[("Cookie", &unknown)]);
            },
        },
        Scenario {
            name: "tampered_cookie: a bad signature starts a new session and leaves the old one alone",
            config: base(json!({"resave": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                let (_, v) = s.jar[0].clone();
                let tampered = format!("connect.sid={}", tamper(&v));
                s.step_with("/get?key=a", &[("Cookie", &tampered)]);
                s.step_with("/get?key=a", &[("Cookie", "connect.sid=not-signed")]);
                s.record("id1");
            },
        },
        Scenario {
            name: "duplicate_cookies: which of two session cookies counts",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                let (_, good) = s.jar[0].clone();
                let bad = tamper(&good);
                let good_first = format!("connect.sid={good}; connect.sid={bad}");
                s.step_with("/get?key=a", &[("Cookie", &good_first)]);
                // Deliberate difference: the first valid one wins here; express takes the first.
                let bad_first = format!("connect.sid={bad}; connect.sid={good}");
                let r = s.send("/get?key=a", &[("Cookie", &bad_first)]);
                let want = if s.is_rust() { "1" } else { "" };
                assert_eq!(r.body, want, "{:?}: invalid cookie before a valid one", s.kind());
            },
        },
        Scenario {
            name: "other_cookie: the session cookie is appended after the app's own Set-Cookie",
            config: base(json!({"cookie": {"maxAge": 60000}})),
            run: |s| {
                s.step("/other-cookie?name=theme&val=dark");
                s.step_with("/noop", &[("Cookie", "a=1; theme=dark; b")]);
            },
        },
        Scenario {
            name: "data_routes: set/get/del/readd/inc/keys/data keep express's values and key order",
            config: base(json!({"resave": false})),
            run: |s| {
                s.step("/set?key=a&val=x");
                s.step(&format!("/set?key=obj&json={}", enc(r#"{"n":1,"l":[true,null,"é"]}"#)));
                s.step("/inc");
                s.step("/inc");
                s.step("/inc?key=n");
                s.step("/readd?key=a");
                s.record("id1");
                s.step("/get?key=obj");
                s.step("/get?key=count");
                s.step("/get?key=missing");
                s.step("/del?key=n");
                s.step("/keys");
                s.step_json("/data");
                s.step("/nope");
            },
        },
        Scenario {
            name: "store_get_failure: an injected get error fails the request; ENOENT means not found",
            config: base(json!({"resave": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.admin("/_store/fail?op=get&count=1&message=get%20exploded");
                let r = s.send("/get?key=a", &[]);
                s.fact("failing get status", r.status);
                s.fact("failing get cookies", r.set_cookies().len());
                // Deliberate difference: our middleware's store errors are opaque (empty body).
                let want = if s.is_rust() { "" } else { "get exploded" };
                assert_eq!(r.body, want, "{:?}: body of a failed load", s.kind());
                s.step("/get?key=a");
                s.admin("/_store/fail?op=get&count=1&message=gone&code=ENOENT");
                s.step("/get?key=a");
                s.stats("after faults");
            },
        },
        Scenario {
            name: "store_set_failure: a failing end-of-request save",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.admin("/_store/fail?op=set&count=1&message=set%20exploded");
                let r = s.send("/set?key=a&val=1", &[]);
                // Deliberate difference: we save before the response head, so the client sees
                // the failure (500, no cookie); express has already sent 200 and the cookie.
                match s.kind() {
                    Kind::Node => assert_eq!((r.status, r.set_cookies().len()), (200, 1)),
                    Kind::Rust => assert_eq!((r.status, r.set_cookies().len()), (500, 0)),
                }
                s.length("after the failed save");
                s.stats("after the failed save");
            },
        },
        Scenario {
            name: "store_write_delay: the response waits for the store write",
            config: base(json!({"store": {"type": "memory", "delayMs": 300}, "resave": false})),
            run: |s| {
                let r = s.step("/set?key=a&val=1");
                assert!(
                    r.elapsed >= Duration::from_millis(300),
                    "{:?} answered before the write",
                    s.kind()
                );
                s.record("id1");
            },
        },
        Scenario {
            name: "store_disconnected: express runs without a session, we fail closed",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.step("/set?key=a&val=1");
                s.admin("/_store/disconnect");
                let r = s.send("/get?key=a", &[]);
                match s.kind() {
                    Kind::Node => assert_eq!((r.status, r.body.as_str()), (200, "no-session")),
                    Kind::Rust => assert_eq!(r.status, 503),
                }
                let fresh = s.server.request("GET", "/noop", &[]);
                s.fact("noop without cookie while disconnected", fresh.status);
                s.admin("/_store/connect");
                s.step("/get?key=a");
            },
        },
        Scenario {
            name: "corrupt_record: a record without a cookie object",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.admin("/_store/put?sid=corrupt-1&json=%7B%22user%22%3A%22x%22%7D");
                let c = format!("connect.sid={}", cookie_value("corrupt-1", b"keyboard cat"));
                let r = s.send("/get?key=user", &[("Cookie", &c)]);
                // Deliberate difference: express fails with 500; we discard it, start afresh.
                match s.kind() {
                    Kind::Node => assert_eq!(r.status, 500),
                    Kind::Rust => {
                        assert_eq!((r.status, r.body.as_str()), (200, ""));
                        assert_eq!(s.server.admin("/_store/get?sid=corrupt-1").status, 404);
                    }
                }
            },
        },
        Scenario {
            name: "error_route: a handler error is a 500, and the session change is still saved",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.step("/error?key=a&val=1");
                s.record("id1");
            },
        },
        Scenario {
            name: "concurrency: two requests of one session changing different keys",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.step("/set?key=start&val=1");
                s.step("/get?key=start");
                let cookie = s.cookie_header().expect("cookie");
                let port = s.server.port;
                let slow = {
                    let cookie = cookie.clone();
                    std::thread::spawn(move || {
                        http_request(
                            port,
                            "GET",
                            "/set?key=a&val=1&wait=1000",
                            &[("Cookie".into(), cookie)],
                            REQUEST_TIMEOUT,
                        )
                    })
                };
                // The fast request starts once the slow one has loaded the session (its store
                // `get` is counted), so both work from the same loaded state.
                let deadline = Instant::now() + Duration::from_secs(10);
                while s.stats_value()["get"] != 2 {
                    assert!(Instant::now() < deadline, "the slow request never loaded its session");
                    std::thread::sleep(Duration::from_millis(10));
                }
                let fast = http_request(
                    port,
                    "GET",
                    "/set?key=b&val=2",
                    &[("Cookie".into(), cookie)],
                    REQUEST_TIMEOUT,
                )
                .expect("fast request");
                let slow = slow.join().expect("thread").expect("slow request");
                s.fact("statuses", json!([slow.status, fast.status]));
                let data: Value = serde_json::from_str(&s.send("/data", &[]).body).expect("data");
                // Deliberate difference (our concurrency guarantee): changes to different keys
                // both survive; express's last writer overwrites the whole session.
                let want = match s.kind() {
                    Kind::Node => json!({"start": "1", "a": "1"}),
                    Kind::Rust => json!({"start": "1", "a": "1", "b": "2"}),
                };
                assert_eq!(data, want, "{:?}: data after concurrent writes", s.kind());
            },
        },
        Scenario {
            name: "unknown_priority: a cookie attribute value that cannot be serialized",
            config: base(json!({"cookie": {"priority": "bogus"}})),
            run: |s| {
                let r = s.send("/set?key=a&val=1", &[]);
                s.fact("status", r.status);
                s.fact("body", r.body.clone());
                s.length("after the request");
                // Deliberate difference: express fails to serialize the cookie after the head is
                // committed and sends none; our priority is an enum, so the server ignores the
                // unknown value at startup and the cookie goes out without `Priority`.
                let want: &[&str] = if s.is_rust() { &["Path=/; HttpOnly"] } else { &[] };
                let attrs: Vec<String> = r
                    .set_cookies()
                    .iter()
                    .map(|c| c.split_once("; ").map_or("", |(_, a)| a).to_owned())
                    .collect();
                assert_eq!(attrs, want, "{:?}: cookie with an unknown priority", s.kind());
            },
        },
        Scenario {
            name: "expired_record: a cookie pointing at an expired record starts a new session",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                let record = r#"{"cookie":{"originalMaxAge":1000,"expires":"2000-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"user":"old"}"#;
                s.admin(&format!("/_store/put?sid=expired-1&json={}", enc(record)));
                s.label("expired-1");
                s.record("id1");
                let c = format!("connect.sid={}", cookie_value("expired-1", b"keyboard cat"));
                s.step_with("/get?key=user", &[("Cookie", &c)]);
                s.step_with("/set?key=user&val=new", &[("Cookie", &c)]);
                s.length("after the requests");
            },
        },
        Scenario {
            name: "regenerate_without_data: the new, empty session is stored even without saveUninitialized",
            config: base(json!({"resave": false, "saveUninitialized": false})),
            run: |s| {
                s.step_id("/regenerate");
                s.record("id1");
                // Deliberate difference: regenerating a session that was never stored (no cookie
                // came with the request) makes no store call for the old id; express always
                // destroys it.
                let mut st = s.stats_value();
                let want_destroys = if s.is_rust() { 0 } else { 1 };
                assert_eq!(
                    st["destroy"],
                    want_destroys,
                    "{:?}: destroys of a never-stored id",
                    s.kind()
                );
                st["destroy"] = Value::Null;
                s.fact("stats after regenerate, destroy aside", st);
                s.step_id("/regenerate");
                s.record("id1");
                s.record("id2");
            },
        },
        Scenario {
            name: "missing_secret: every request under cookie.path fails with express's message",
            config: json!({"store": {"type": "memory"}, "cookie": {"path": "/app"}}),
            run: |s| {
                s.step("/app/noop");
                s.step("/app/set?key=a&val=1");
                s.step("/elsewhere/set?key=a&val=1");
                s.step("/noop");
            },
        },
    ]
}

fn compare(node: &[(String, Value)], rust: &[(String, Value)]) -> Vec<String> {
    let mut problems = Vec::new();
    if node.len() != rust.len() {
        problems.push(format!("{} facts from node, {} from rust", node.len(), rust.len()));
    }
    for ((kn, vn), (kr, vr)) in node.iter().zip(rust) {
        let same = kn == kr
            && match (kn.starts_with('~'), vn.as_f64(), vr.as_f64()) {
                (true, Some(a), Some(b)) => (a - b).abs() <= TOLERANCE_S,
                _ => vn == vr,
            };
        if !same {
            problems.push(format!("node {kn} = {vn}\n      rust {kr} = {vr}"));
        }
    }
    problems
}

/// The configuration a server of `kind` gets: with `redis`, the scenario's store becomes Redis
/// under a key prefix of its own (each server's `/_store/reset` clears only its prefix).
fn config_for(config: &Value, kind: Kind, redis: Option<&(String, String)>) -> Value {
    let mut config = config.clone();
    if let Some((url, prefix)) = redis {
        let delay = config["store"]["delayMs"].clone();
        config["store"] = json!({"type": "redis", "url": url, "prefix": format!("{prefix}{kind:?}:")});
        if !delay.is_null() {
            config["store"]["delayMs"] = delay;
        }
    }
    config
}

/// Runs every scenario against both servers and reports all the differences at once.
fn run_all(redis: Option<(String, String)>) {
    let all = scenarios();
    assert!(all.len() >= 25);
    let mut failures = Vec::new();
    let mut servers: Option<(String, Server, Server)> = None;
    for sc in &all {
        let key = sc.config.to_string();
        if servers.as_ref().map(|(k, _, _)| k) != Some(&key) {
            drop(servers.take()); // stop the previous pair first
            let start = |kind| {
                Server::start(kind, &config_for(&sc.config, kind, redis.as_ref()))
                    .unwrap_or_else(|e| panic!("{}: {e}", sc.name))
            };
            servers = Some((key, start(Kind::Node), start(Kind::Rust)));
        }
        let (_, node, rust) = servers.as_ref().expect("servers");
        let mut facts = Vec::new();
        for server in [node, rust] {
            assert_eq!(server.admin("/_store/reset").status, 200);
            let mut run = Run::new(server, &config_for(&sc.config, server.kind, redis.as_ref()));
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (sc.run)(&mut run)));
            if let Err(e) = outcome {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                server.keep_log.set(true);
                failures.push(format!(
                    "{} [{:?}, log {}]: {msg}",
                    sc.name,
                    server.kind,
                    server.log.display()
                ));
            }
            facts.push(run.facts);
        }
        if std::env::var("SCENARIO_DUMP").is_ok_and(|f| sc.name.contains(&f)) {
            for (k, v) in &facts[1] {
                eprintln!("{}: {k} = {v}", sc.name);
            }
        }
        let problems = compare(&facts[0], &facts[1]);
        if !problems.is_empty() {
            node.keep_log.set(true);
            rust.keep_log.set(true);
            failures.push(format!(
                "{} [logs {} {}]:\n    {}",
                sc.name,
                node.log.display(),
                rust.log.display(),
                problems.join("\n    ")
            ));
        }
    }
    // Leave nothing behind in a shared Redis.
    if let Some((_, node, rust)) = &servers {
        for server in [node, rust] {
            server.admin("/_store/reset");
        }
    }
    drop(servers);
    let store = if redis.is_some() { "redis" } else { "memory" };
    eprintln!(
        "{} scenarios run against express-session and our server ({store} store)",
        all.len()
    );
    assert!(
        failures.is_empty(),
        "{} scenario failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rust_scenario_server_does_what_express_session_does() {
    if node_ready() {
        run_all(None);
    }
}

#[test]
fn rust_scenario_server_does_what_express_session_does_on_redis() {
    if !node_ready() {
        return;
    }
    let url = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !require_services(),
                "SESSION_TEST_REQUIRE_SERVICES=1 but REDIS_URL is not set"
            );
            eprintln!("skipped: REDIS_URL is not set");
            return;
        }
    };
    let prefix = format!(
        "scenario:{}:{}:",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    run_all(Some((url, prefix)));
}

#[test]
fn same_site_none_without_secure_is_refused_by_our_layer_only() {
    if !node_ready() {
        return;
    }
    // Deliberate difference: browsers drop `SameSite=None` cookies without `Secure`, so our layer
    // refuses the option when it is built; express-session accepts it.
    let config = base(json!({"cookie": {"sameSite": "none"}}));
    let node = Server::start(Kind::Node, &config).expect("express-session accepts sameSite none");
    let r = node.admin("/noop");
    assert!(r.set_cookies().iter().any(|c| c.ends_with("SameSite=None")), "{r:?}");
    drop(node);
    match Server::start(Kind::Rust, &config) {
        Err(e) => assert!(e.contains("exited with") && !e.contains("exit status: 0"), "{e}"),
        Ok(_) => panic!("our server accepted sameSite none without secure"),
    }
}

#[test]
fn both_servers_reject_invalid_options_at_startup() {
    if !node_ready() {
        return;
    }
    for bad in [base(json!({"secret": []})), base(json!({"unset": "forget"}))] {
        for kind in [Kind::Node, Kind::Rust] {
            match Server::start(kind, &bad) {
                Err(e) => assert!(
                    e.contains("exited with") && !e.contains("exit status: 0"),
                    "{kind:?} {bad}: {e}"
                ),
                Ok(_) => panic!("{kind:?} accepted {bad}"),
            }
        }
    }
}
