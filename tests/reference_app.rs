//! The reference app (`examples/app.rs`) end to end over real sockets: its router served
//! in-process on a free port, and the built example binary itself, both driven by a real HTTP
//! client.

#[allow(dead_code)]
#[path = "../examples/app.rs"]
mod app;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{header, Request, StatusCode};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

const SET_BODY: &str = "Hey Geek! Session is set! Now Go to <a href=\"/get\">/get</a> to retrieve the session.";

struct Fetched {
    status: StatusCode,
    content_type: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

async fn fetch(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Fetched {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::get(format!("http://{addr}{path}"));
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = tokio::time::timeout(Duration::from_secs(30), client.request(req.body(Empty::new()).unwrap()))
        .await
        .expect("answer within 30 s")
        .expect("HTTP request");
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let set_cookies = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Fetched {
        status,
        content_type,
        set_cookies,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// The reference app's whole story against a server at `addr`.
async fn check_reference_app(addr: SocketAddr) {
    let r = fetch(addr, "/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, SET_BODY);
    assert_eq!(r.content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(r.set_cookies.len(), 1, "{:?}", r.set_cookies);
    let set_cookie = &r.set_cookies[0];
    let (pair, attrs) = set_cookie.split_once(';').unwrap();
    assert_eq!(attrs, " Path=/; HttpOnly; SameSite=Lax");
    // The value is express's: s%3A + a 32-character id + . + the HMAC with the app's secret.
    let value = pair.strip_prefix("connect.sid=s%3A").expect("signed express cookie");
    let id = &value[..value.find('.').unwrap()];
    assert_eq!(id.len(), 32);
    assert_eq!(
        pair,
        format!("connect.sid={}", express_session::cookie::cookie_value(id, b"gfg-key"))
    );

    let r = fetch(addr, "/get", Some(pair)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "Session variable: geeksforgeeks")
    );
    assert!(
        r.set_cookies.is_empty(),
        "browser-session cookie not re-sent: {:?}",
        r.set_cookies
    );

    let r = fetch(addr, "/get", None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "Session variable: No session set")
    );
    // saveUninitialized: true, as in the Express original: the empty session gets a cookie.
    assert_eq!(r.set_cookies.len(), 1);
    let other = r.set_cookies[0].split(';').next().unwrap();
    assert_ne!(other, pair);
    let r = fetch(addr, "/get", Some(other)).await;
    assert_eq!(r.body, "Session variable: No session set");
}

#[tokio::test]
async fn reference_router_serves_the_express_example_over_a_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app::app(app::sessions().expect("valid configuration"));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    check_reference_app(addr).await;
    server.abort();
}

/// Kills the example process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example binary, built now with this test's features (a no-op when it is up to date).
fn example_binary() -> PathBuf {
    // The test runs from <target>/<profile>/deps/; examples go to <target>/<profile>/examples/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_owned();
    let target_dir = profile_dir.parent().unwrap();
    let mut features = Vec::new();
    for (on, name) in [
        (cfg!(feature = "axum"), "axum"),
        (cfg!(feature = "memory"), "memory"),
        (cfg!(feature = "sqlite"), "sqlite"),
        (cfg!(feature = "redis"), "redis"),
        (cfg!(feature = "postgres"), "postgres"),
        (cfg!(feature = "mysql"), "mysql"),
        (cfg!(feature = "test-util"), "test-util"),
    ] {
        if on {
            features.push(name);
        }
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--example", "app", "--no-default-features"])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "cargo build --example app failed");
    let bin = profile_dir
        .join("examples")
        .join(format!("app{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// Starts the example binary on a free port with `envs`; returns it and the address it
/// reported on its first line.
async fn start_example(envs: &[(&str, &str)]) -> (Running, SocketAddr) {
    let bin = example_binary();
    let mut child = Command::new(bin)
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the example");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    // It prints the address it listens on; wait for that line, bounded.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("the example reported its address within 60 s");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("Server is running on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    (running, addr)
}

#[tokio::test]
async fn example_binary_runs_on_the_port_from_env() {
    let (running, addr) = start_example(&[]).await;
    check_reference_app(addr).await;
    drop(running);
}

/// `SESSION_STORE=sqlite:<path>`: the same app keeps its sessions in a file, so a session set
/// before a restart is read after it, with the same cookie.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn example_binary_on_sqlite_keeps_sessions_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("es-app-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sessions.db");
    let _ = std::fs::remove_file(&db);
    let store = format!("sqlite:{}", db.display());

    let (running, addr) = start_example(&[("SESSION_STORE", &store)]).await;
    check_reference_app(addr).await;
    let r = fetch(addr, "/", None).await;
    assert_eq!(r.body, SET_BODY);
    let pair = r.set_cookies[0].split(';').next().unwrap().to_owned();
    drop(running);
    assert!(db.exists(), "the app wrote no SQLite file at {}", db.display());

    let (running, addr) = start_example(&[("SESSION_STORE", &store)]).await;
    let r = fetch(addr, "/get", Some(&pair)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "Session variable: geeksforgeeks")
    );
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store the app does not know is refused at start-up with a message, not ignored.
#[tokio::test]
async fn example_binary_refuses_an_unknown_session_store() {
    let bin = example_binary();
    let out = Command::new(bin)
        .env("PORT", "0")
        .env("SESSION_STORE", "floppy:/dev/fd0")
        .output()
        .expect("run the example");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SESSION_STORE must be sqlite:<path>"), "{stderr}");
}
