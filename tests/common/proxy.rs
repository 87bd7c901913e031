//! A TCP proxy a test puts between a store and its server, to cause outages on demand and, if
//! asked, to watch the bytes that go through; and the outage test the SQL stores share.
//!
//! The store connects to [`Proxy::addr`] instead of the server. [`Proxy::pause`] holds the bytes
//! (a server that hangs), [`Proxy::sever`] drops every connection and refuses new ones (a server
//! that went down); [`Proxy::resume`] and [`Proxy::restore`] end them.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpStream, ToSocketAddrs,
    },
    sync::watch,
    task::AbortHandle,
};

use super::Harness;

/// Which way bytes go through the [`Proxy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client (the store) to the server.
    ToServer,
    /// From the server back to the client.
    ToClient,
}

/// Sees every chunk of bytes the [`Proxy`] forwards, once it is let through (not while paused)
/// and just before it is written on. It runs on the proxy's tasks: it should be quick.
pub type Tap = Arc<dyn Fn(Direction, &[u8]) + Send + Sync>;

/// Forwards `127.0.0.1:<port>` to a server. Dropping it stops the proxy and drops every
/// connection.
pub struct Proxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    /// A proxy on `127.0.0.1:0` to `target` (resolved once, here).
    pub async fn start(target: impl ToSocketAddrs) -> Self {
        Self::start_with_tap(target, Arc::new(|_: Direction, _: &[u8]| {})).await
    }

    /// A proxy on `127.0.0.1:0` to `target` that shows `tap` the bytes it forwards.
    pub async fn start_with_tap(target: impl ToSocketAddrs, tap: Tap) -> Self {
        let target = tokio::net::lookup_host(target).await.unwrap().next().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, _) = watch::channel(false);
        let down = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (paused, down, conns) = (paused.clone(), down.clone(), conns.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    if down.load(Ordering::SeqCst) {
                        // Refused: the client sees the connection closed.
                        drop(client);
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = tokio::spawn(forward(cr, sw, paused.subscribe(), tap.clone(), Direction::ToServer));
                    let back = tokio::spawn(forward(sr, cw, paused.subscribe(), tap.clone(), Direction::ToClient));
                    conns.lock().unwrap().extend([up.abort_handle(), back.abort_handle()]);
                }
            })
            .abort_handle()
        };
        Self {
            addr,
            paused,
            down,
            conns,
            accept,
        }
    }

    /// Where the proxy listens (on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops forwarding bytes in both directions (bytes already read are held); connections
    /// stay open.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Forwards again, the held bytes first.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Drops every connection and refuses new ones, as a server that went down.
    pub fn sever(&self) {
        self.down.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Accepts new connections again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever();
    }
}

/// Copies `from` to `to`, holding what it read while paused, until either side closes.
async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut paused: watch::Receiver<bool>,
    tap: Tap,
    direction: Direction,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        tap(direction, &buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The outage test of the SQL stores. `h` is on a store that reaches its database only through
/// `proxy`, with a pool acquire timeout and a store timeout of about 1 s.
///
/// A session is set; then, for a paused and then a severed database: a request with the cookie
/// gets a 503 within 4 s, a request without a cookie that writes nothing never asks the store,
/// and once the database is back the session reads again within 10 s.
pub async fn outage_gives_prompt_503_spares_cookieless_requests_and_recovers(proxy: &Proxy, h: &Harness) {
    let cookie = h.get("/set", None).await.cookie();
    h.get("/get", Some(&cookie)).await.assert_ok("bob");

    for outage in ["paused", "severed"] {
        if outage == "paused" {
            proxy.pause();
        } else {
            proxy.sever();
        }
        let started = Instant::now();
        let r = h.get("/get", Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{outage}: {r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{outage}: {:?}",
            started.elapsed()
        );
        // A request without a cookie that writes nothing never asks the store.
        h.counting.reset();
        h.get("/noop", None).await.assert_ok("ok");
        assert_eq!(h.counts().total(), 0, "{outage}");
        if outage == "paused" {
            proxy.resume();
        } else {
            proxy.restore();
        }
        assert!(recovers(h, &cookie).await, "{outage}: no recovery");
    }
}

/// Sends `GET /get` with the cookie until it answers `bob`, for at most 10 s.
async fn recovers(h: &Harness, cookie: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = h.get("/get", Some(cookie)).await;
        if r.status == StatusCode::OK && r.body == "bob" {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
