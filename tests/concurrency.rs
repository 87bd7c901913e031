//! The concurrency guarantee of the crate docs, checked through the real `SessionLayer` with
//! requests that genuinely overlap: handlers wait on barriers and signals (never sleeps), so
//! every request has loaded the session before any of them saves.
//!
//! The memory store is used here; `tests/concurrency_stores.rs` runs the core cases against
//! every store.

use std::{
    convert::Infallible,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use express_session::{
    codec, MemoryStore, Record, Session, SessionError, SessionLayer, SessionStore, StoreError, Update,
};
use http::{header, Request, Response, StatusCode};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{watch, Barrier};
use tower::{Layer, ServiceExt};
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;

const SECRET: &str = "concurrency secret";
/// No test here needs more than a fraction of this; it only turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(60);

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = Arc<dyn Fn(String, Session) -> BoxFuture<String> + Send + Sync>;

/// A boxed handler from an async closure over (path, session).
fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(String, Session) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    Arc::new(move |path, session| Box::pin(f(path, session)))
}

/// A session service over `store` and `h`, cheap to clone for each request.
#[derive(Clone)]
struct App {
    svc: tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>,
}

impl App {
    fn new(store: Arc<dyn SessionStore>, h: Handler) -> Self {
        Self::configured(store, h, |layer| layer)
    }

    fn configured(
        store: Arc<dyn SessionStore>,
        h: Handler,
        configure: impl FnOnce(SessionLayer) -> SessionLayer,
    ) -> Self {
        let f = move |req: Request<String>| {
            let h = Arc::clone(&h);
            Box::pin(async move {
                let session = req.extensions().get::<Session>().expect("layer installed").clone();
                let body = h(req.uri().path().to_owned(), session).await;
                Ok::<_, Infallible>(Response::new(body))
            }) as BoxFuture<Result<Response<String>, Infallible>>
        };
        let layer = configure(SessionLayer::with_store(store).secret(SECRET))
            .build()
            .expect("valid config");
        Self {
            svc: tower::util::BoxCloneService::new(layer.layer(tower::service_fn(f))),
        }
    }

    fn request(&self, path: &str, cookie: Option<&str>) -> impl Future<Output = Response<String>> + Send + 'static {
        let mut req = Request::builder().uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let req = req.body(String::new()).unwrap();
        let svc = self.svc.clone();
        async move { svc.oneshot(req).await.unwrap() }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Response<String> {
        self.request(path, cookie).await
    }
}

/// The `name=value` part of the response's session `Set-Cookie`.
fn cookie_pair(res: &Response<String>) -> Option<String> {
    let v = res.headers().get(header::SET_COOKIE)?.to_str().unwrap();
    Some(v.split(';').next().unwrap().to_owned())
}

fn session_id(pair: &str) -> String {
    let value = pair.strip_prefix("connect.sid=").expect("default cookie name");
    let signed = value.replace("%3A", ":").replace("%2B", "+").replace("%2F", "/");
    let signed = signed.strip_prefix("s:").expect("signed cookie");
    express_session::cookie::unsign(signed, &[SECRET.as_bytes().to_vec()])
        .expect("our signature")
        .to_owned()
}

/// The stored data of session `id`, or `None` if the store holds no live record.
async fn stored(store: &dyn SessionStore, id: &str) -> Option<serde_json::Map<String, Value>> {
    let record = store.load(id).await.unwrap()?;
    Some(codec::decode(&record.data, usize::MAX).expect("a valid record").1)
}

/// The number after the last `/` of a path.
fn index(path: &str) -> usize {
    path.rsplit('/').next().unwrap().parse().expect("numbered route")
}

/// Runs the futures as tasks at once and returns their outputs in order; fails after DEADLINE.
async fn all<T: Send + 'static>(futs: Vec<impl Future<Output = T> + Send + 'static>) -> Vec<T> {
    let tasks: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(
            tokio::time::timeout(DEADLINE, t)
                .await
                .expect("request hung")
                .expect("task panicked"),
        );
    }
    out
}

/// A seeded session: a request that inserts `seed` into a new session; its cookie pair and id.
async fn seeded(app: &App, store: &dyn SessionStore) -> (String, String) {
    let res = app.get("/seed", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let pair = cookie_pair(&res).expect("the new session's cookie");
    let id = session_id(&pair);
    assert!(stored(store, &id).await.is_some());
    (pair, id)
}

async fn seed(session: &Session) {
    session.insert("base", "kept").unwrap();
    session.insert("gone", true).unwrap();
}

/// A handler that seeds the session on `/seed`; on any other path it waits until `n` requests
/// have all loaded the session, and then runs `body` (so every one of them changes the session
/// as it was before any of them saved).
fn after_all_loaded<F>(n: usize, body: F) -> Handler
where
    F: Fn(&str, &Session) -> String + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let body = Arc::new(body);
    handler(move |path, session| {
        let (barrier, body) = (Arc::clone(&barrier), Arc::clone(&body));
        async move {
            if path == "/seed" {
                seed(&session).await;
                return String::new();
            }
            barrier.wait().await;
            body(&path, &session)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_requests_inserting_own_keys_all_survive() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let app = App::new(
        Arc::clone(&store),
        after_all_loaded(64, |path, session| {
            let i = index(path);
            session.insert(&format!("k{i}"), i).unwrap();
            String::new()
        }),
    );
    let (pair, id) = seeded(&app, &*store).await;
    let responses = all((0..64)
        .map(|i| app.request(&format!("/put/{i}"), Some(&pair)))
        .collect())
    .await;
    for res in &responses {
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get(header::SET_COOKIE).is_none());
    }
    let data = stored(&*store, &id).await.expect("session still stored");
    for i in 0..64 {
        assert_eq!(data.get(&format!("k{i}")), Some(&Value::from(i)), "key k{i} lost");
    }
    assert_eq!(data["base"], "kept");
    assert_eq!(data.len(), 64 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_increments_count_sixty_four() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let app = App::new(
        Arc::clone(&store),
        after_all_loaded(64, |_, session| {
            session
                .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                .unwrap()
                .to_string()
        }),
    );
    let (pair, id) = seeded(&app, &*store).await;
    let responses = all((0..64).map(|_| app.request("/inc", Some(&pair))).collect()).await;
    for res in &responses {
        assert_eq!(res.status(), StatusCode::OK);
        // Each handler saw the counter as it was loaded: all loaded before any saved.
        assert_eq!(res.body(), "1");
    }
    let data = stored(&*store, &id).await.expect("session still stored");
    assert_eq!(data["n"], 64, "increments were lost");
}

/// A memory store that counts update calls and records, in store order, what each successful
/// update wrote. With a gate, its first update waits until the test opens it.
#[derive(Default)]
struct RecordingStore {
    inner: MemoryStore,
    updates: std::sync::atomic::AtomicUsize,
    first_update_gate: Option<watch::Receiver<bool>>,
    saves: tokio::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl SessionStore for RecordingStore {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.inner.load(id).await
    }
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        self.inner.load_and_touch(id, expires).await
    }
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        self.inner.create(id, record).await
    }
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        let first = self.updates.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        if let Some(gate) = self.first_update_gate.as_ref().filter(|_| first) {
            gate.clone().wait_for(|open| *open).await.expect("gate sender kept");
        }
        // Held across the update so that the log's order is the store's order.
        let mut saves = self.saves.lock().await;
        let answer = self.inner.update(id, record, expected).await?;
        if answer == Update::Done {
            saves.push(record.data.clone());
        }
        Ok(answer)
    }
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        self.inner.touch(id, expires).await
    }
    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.inner.destroy(id).await
    }
}

/// Saves of one session from one layer take turns, and a turn writes the saves queued behind
/// it too: 64 increments that all wait behind one slow save land in two writes, none lost, no
/// conflict and no retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_queued_behind_a_slow_save_land_together_in_one_write() {
    let (open, gate) = watch::channel(false);
    let gated = Arc::new(RecordingStore {
        first_update_gate: Some(gate),
        ..RecordingStore::default()
    });
    let store: Arc<dyn SessionStore> = gated.clone();
    let app = App::new(
        Arc::clone(&store),
        after_all_loaded(64, |path, session| {
            session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).unwrap();
            session.insert(&format!("k{}", index(path)), true).unwrap();
            String::new()
        }),
    );
    let (pair, id) = seeded(&app, &*store).await;
    let logs = Logs::default();
    let requests = all((0..64)
        .map(|i| {
            app.request(&format!("/inc/{i}"), Some(&pair))
                .with_subscriber(logs.dispatch())
        })
        .collect());
    let requests = tokio::spawn(requests);
    // One save is in the store, held at the gate; the other 63 queue behind it.
    tokio::time::timeout(DEADLINE, logs.wait_for(tracing::Level::TRACE, "queued behind it", 63))
        .await
        .expect("saves never queued");
    open.send(true).unwrap();
    let responses = tokio::time::timeout(DEADLINE, requests).await.expect("hung").unwrap();
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    let data = stored(&*store, &id).await.expect("session still stored");
    assert_eq!(data["n"], 64, "increments were lost");
    assert!((0..64).all(|i| data.contains_key(&format!("k{i}"))), "a key was lost");
    let updates = gated.updates.load(std::sync::atomic::Ordering::SeqCst);
    assert!(updates <= 2, "64 queued saves took {updates} writes");
}

/// Captures `tracing` events: level, message and every field, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<(tracing::Level, String)>>>, Arc<tokio::sync::Notify>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Logs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push((*event.metadata().level(), text.0));
        self.1.notify_waiters();
    }
}

impl Logs {
    fn dispatch(&self) -> tracing::Dispatch {
        tracing::Dispatch::new(tracing_subscriber::registry().with(self.clone()))
    }

    fn count(&self, level: tracing::Level, needle: &str) -> usize {
        let logs = self.0.lock().unwrap();
        logs.iter().filter(|(l, m)| *l == level && m.contains(needle)).count()
    }

    /// Waits until `n` events at `level` mention `needle`.
    async fn wait_for(&self, level: tracing::Level, needle: &str, n: usize) {
        loop {
            let logged = self.1.notified();
            tokio::pin!(logged);
            logged.as_mut().enable();
            if self.count(level, needle) >= n {
                return;
            }
            logged.await;
        }
    }

    fn mention(&self, secret: &str) -> bool {
        self.0.lock().unwrap().iter().any(|(_, m)| m.contains(secret))
    }
}

/// Writers that loaded the session wait here until the test says the destroy has returned.
#[derive(Clone)]
struct Gate {
    loaded: Arc<Barrier>,
    open: watch::Receiver<bool>,
}

impl Gate {
    fn new(parties: usize) -> (Self, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        (
            Self {
                loaded: Arc::new(Barrier::new(parties)),
                open: rx,
            },
            tx,
        )
    }

    async fn pass(&self) {
        self.open
            .clone()
            .wait_for(|open| *open)
            .await
            .expect("gate sender kept");
    }
}

/// What a slow writer does to the session it loaded, by its number: insert, increment or remove.
fn write(session: &Session, i: usize) {
    match i % 3 {
        0 => session.insert(&format!("k{i}"), i).unwrap(),
        1 => {
            session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).unwrap();
        }
        _ => {
            session.remove("base");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn destroy_racing_thirty_two_slow_writers_stays_destroyed() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let (gate, open) = Gate::new(33);
    let app = App::new(
        Arc::clone(&store),
        handler({
            let gate = gate.clone();
            move |path, session| {
                let gate = gate.clone();
                async move {
                    match path.as_str() {
                        "/seed" => seed(&session).await,
                        "/destroy" => {
                            gate.loaded.wait().await;
                            session.destroy().await.unwrap();
                        }
                        "/fresh" => return format!("{} {}", session.is_new(), session.len()),
                        _ => {
                            write(&session, index(&path));
                            gate.loaded.wait().await;
                            // Finish only after the destroy has returned.
                            gate.pass().await;
                        }
                    }
                    String::new()
                }
            }
        }),
    );
    let (pair, id) = seeded(&app, &*store).await;
    let logs = Logs::default();
    let writers: Vec<_> = (0..32)
        .map(|i| {
            tokio::spawn(
                app.request(&format!("/write/{i}"), Some(&pair))
                    .with_subscriber(logs.dispatch()),
            )
        })
        .collect();
    let destroyed = tokio::time::timeout(DEADLINE, app.request("/destroy", Some(&pair)))
        .await
        .expect("destroy hung");
    assert_eq!(destroyed.status(), StatusCode::OK);
    let clear = destroyed.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        clear.contains("Expires=Thu, 01 Jan 1970"),
        "destroy clears the cookie: {clear}"
    );
    assert!(
        stored(&*store, &id).await.is_none(),
        "destroy returned but the record is there"
    );
    open.send(true).unwrap();
    for w in writers {
        let res = tokio::time::timeout(DEADLINE, w).await.expect("writer hung").unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "a late save fails cleanly, not with an error page"
        );
        assert!(
            res.headers().get(header::SET_COOKIE).is_none(),
            "a writer sent a cookie: {:?}",
            res.headers().get(header::SET_COOKIE)
        );
    }
    assert!(
        stored(&*store, &id).await.is_none(),
        "a late save resurrected the destroyed session"
    );
    assert_eq!(
        logs.count(tracing::Level::WARN, "destroyed by a concurrent request"),
        32,
        "each dropped save is logged at warn"
    );
    assert!(!logs.mention(&id), "the session id was logged");
    // The old cookie now starts a fresh, empty session.
    let res = app.get("/fresh", Some(&pair)).await;
    assert_eq!(res.body(), "true 0");
    assert!(stored(&*store, &id).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regenerate_racing_slow_writers_never_brings_the_old_id_back() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let (gate, open) = Gate::new(33);
    let app = App::new(
        Arc::clone(&store),
        handler({
            let gate = gate.clone();
            move |path, session| {
                let gate = gate.clone();
                async move {
                    match path.as_str() {
                        "/seed" => seed(&session).await,
                        "/regenerate" => {
                            gate.loaded.wait().await;
                            session.regenerate().await.unwrap();
                            session.insert("role", "admin").unwrap();
                        }
                        "/fresh" => {
                            let answer = format!("{} {}", session.is_new(), session.len());
                            session.insert("after", true).unwrap();
                            return answer;
                        }
                        _ => {
                            write(&session, index(&path));
                            gate.loaded.wait().await;
                            gate.pass().await;
                        }
                    }
                    String::new()
                }
            }
        }),
    );
    let (pair, old_id) = seeded(&app, &*store).await;
    let logs = Logs::default();
    let writers: Vec<_> = (0..32)
        .map(|i| {
            tokio::spawn(
                app.request(&format!("/write/{i}"), Some(&pair))
                    .with_subscriber(logs.dispatch()),
            )
        })
        .collect();
    let regenerated = tokio::time::timeout(DEADLINE, app.request("/regenerate", Some(&pair)))
        .await
        .expect("regenerate hung");
    assert_eq!(regenerated.status(), StatusCode::OK);
    let new_pair = cookie_pair(&regenerated).expect("the new session's cookie");
    let new_id = session_id(&new_pair);
    assert_ne!(new_id, old_id);
    assert!(stored(&*store, &old_id).await.is_none());
    open.send(true).unwrap();
    for w in writers {
        let res = tokio::time::timeout(DEADLINE, w).await.expect("writer hung").unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers().get(header::SET_COOKIE).is_none(),
            "a writer sent a cookie"
        );
    }
    assert!(stored(&*store, &old_id).await.is_none(), "the old id came back");
    assert_eq!(
        logs.count(tracing::Level::WARN, "destroyed by a concurrent request"),
        32
    );
    // The new session has the regenerating request's data and none of the writers' changes.
    let data = stored(&*store, &new_id).await.expect("the new session is stored");
    assert_eq!(data.keys().collect::<Vec<_>>(), ["role"]);
    // The old cookie starts a fresh session under yet another id; the old id stays unused.
    let res = app.get("/fresh", Some(&pair)).await;
    assert_eq!(res.body(), "true 0");
    let fresh_id = session_id(&cookie_pair(&res).expect("a written fresh session sends its cookie"));
    assert!(fresh_id != old_id && fresh_id != new_id);
    assert!(stored(&*store, &old_id).await.is_none(), "the old id came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sets_of_one_key_end_with_the_last_saved_value() {
    let recording = Arc::new(RecordingStore::default());
    let store: Arc<dyn SessionStore> = recording.clone();
    let app = App::new(
        Arc::clone(&store),
        after_all_loaded(32, |path, session| {
            let i = index(path);
            session.insert("k", i).unwrap();
            session.insert(&format!("own{i}"), i).unwrap();
            String::new()
        }),
    );
    let (pair, id) = seeded(&app, &*store).await;
    let responses = all((0..32)
        .map(|i| app.request(&format!("/set/{i}"), Some(&pair)))
        .collect())
    .await;
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    let saves = recording.saves.lock().await.clone();
    // A write may carry several writers' changes (saves queued behind one in flight go with
    // it), applied one writer after another: each writer's own key is new, so it lands at the
    // end of the document, and the shared key holds the value of the writer applied last.
    assert!(
        !saves.is_empty() && saves.len() <= 32,
        "{} writes for 32 writers",
        saves.len()
    );
    let last_own = |data: &serde_json::Map<String, Value>| {
        let key = data
            .keys()
            .rev()
            .find(|k| k.starts_with("own"))
            .expect("a writer's key");
        key["own".len()..].parse::<usize>().unwrap()
    };
    for data in &saves {
        let (_, data) = codec::decode(data, usize::MAX).unwrap();
        assert_eq!(data["k"], last_own(&data), "the shared key is not the last writer's");
    }
    let data = stored(&*store, &id).await.unwrap();
    let (_, last_write) = codec::decode(saves.last().unwrap(), usize::MAX).unwrap();
    assert_eq!(data, last_write, "the stored record is the last successful write");
    assert_eq!(data["k"], last_own(&data), "the final value is the last saved writer's");
    for i in 0..32 {
        assert_eq!(data[&format!("own{i}")], i, "own{i} lost");
    }
}

/// Who finishes first in the remove-versus-inserts race.
#[derive(Clone, Copy, Debug)]
enum Order {
    RemoverFirst,
    RemoverLast,
    Free,
}

async fn remove_racing_inserts(order: Order) {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let loaded = Arc::new(Barrier::new(33));
    let (remover_done, remover_done_rx) = watch::channel(false);
    let (inserters_done, inserters_done_rx) = watch::channel(false);
    let app = App::new(
        Arc::clone(&store),
        handler({
            move |path, session| {
                let loaded = Arc::clone(&loaded);
                let (mut remover_done_rx, mut inserters_done_rx) = (remover_done_rx.clone(), inserters_done_rx.clone());
                async move {
                    match path.as_str() {
                        "/seed" => seed(&session).await,
                        "/remove" => {
                            loaded.wait().await;
                            assert_eq!(session.remove("gone"), Some(Value::Bool(true)));
                            if let Order::RemoverLast = order {
                                inserters_done_rx.wait_for(|d| *d).await.unwrap();
                            }
                        }
                        _ => {
                            let i = index(&path);
                            session.insert(&format!("k{i}"), i).unwrap();
                            loaded.wait().await;
                            if let Order::RemoverFirst = order {
                                remover_done_rx.wait_for(|d| *d).await.unwrap();
                            }
                        }
                    }
                    String::new()
                }
            }
        }),
    );
    let (pair, id) = seeded(&app, &*store).await;
    let inserters: Vec<_> = (0..32)
        .map(|i| tokio::spawn(app.request(&format!("/insert/{i}"), Some(&pair))))
        .collect();
    let remover = tokio::spawn(app.request("/remove", Some(&pair)));
    let remover = async {
        let res = tokio::time::timeout(DEADLINE, remover)
            .await
            .expect("remover hung")
            .unwrap();
        remover_done.send(true).unwrap();
        res
    };
    let inserters = async {
        let mut out = Vec::new();
        for t in inserters {
            out.push(tokio::time::timeout(DEADLINE, t).await.expect("inserter hung").unwrap());
        }
        inserters_done.send(true).unwrap();
        out
    };
    let (remover, inserters) = tokio::join!(remover, inserters);
    assert_eq!(remover.status(), StatusCode::OK, "{order:?}");
    assert!(inserters.iter().all(|r| r.status() == StatusCode::OK), "{order:?}");
    let data = stored(&*store, &id).await.unwrap();
    assert!(!data.contains_key("gone"), "{order:?}: the removed key came back");
    assert_eq!(data["base"], "kept");
    for i in 0..32 {
        assert_eq!(data[&format!("k{i}")], i, "{order:?}: k{i} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remove_saved_before_concurrent_inserts_stays_removed() {
    remove_racing_inserts(Order::RemoverFirst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remove_saved_after_concurrent_inserts_keeps_their_keys() {
    remove_racing_inserts(Order::RemoverLast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remove_racing_concurrent_inserts_keeps_both() {
    for _ in 0..8 {
        remove_racing_inserts(Order::Free).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explicit_save_after_a_concurrent_destroy_is_an_error_and_writes_nothing() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let (gate, open) = Gate::new(2);
    let app = App::new(
        Arc::clone(&store),
        handler({
            let gate = gate.clone();
            move |path, session| {
                let gate = gate.clone();
                async move {
                    match path.as_str() {
                        "/seed" => seed(&session).await,
                        "/destroy" => {
                            gate.loaded.wait().await;
                            session.destroy().await.unwrap();
                        }
                        _ => {
                            session.insert("late", true).unwrap();
                            gate.loaded.wait().await;
                            gate.pass().await;
                            let saved = session.save().await;
                            let later = session.insert("later", true);
                            return format!(
                                "{} {}",
                                matches!(saved, Err(SessionError::Destroyed)),
                                matches!(later, Err(SessionError::Destroyed))
                            );
                        }
                    }
                    String::new()
                }
            }
        }),
    );
    let (pair, id) = seeded(&app, &*store).await;
    let writer = tokio::spawn(app.request("/save", Some(&pair)));
    tokio::time::timeout(DEADLINE, app.request("/destroy", Some(&pair)))
        .await
        .expect("destroy hung");
    open.send(true).unwrap();
    let res = tokio::time::timeout(DEADLINE, writer)
        .await
        .expect("writer hung")
        .unwrap();
    assert_eq!(
        res.body(),
        "true true",
        "save() reports the destroy; the session is then unusable"
    );
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert!(stored(&*store, &id).await.is_none());
}

/// Read-only requests that loaded the session before a destroy and finish after it, with
/// `rolling` (cookie re-sent, store touched) and with `resave` (the unmodified session written
/// back): neither a touch nor a resave brings the record back, and the cookie they may carry
/// leads to a fresh session.
async fn readers_racing_destroy(configure: fn(SessionLayer) -> SessionLayer) -> Vec<Response<String>> {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let (gate, open) = Gate::new(9);
    let app = App::configured(
        Arc::clone(&store),
        handler({
            let gate = gate.clone();
            move |path, session| {
                let gate = gate.clone();
                async move {
                    match path.as_str() {
                        "/seed" => seed(&session).await,
                        "/destroy" => {
                            gate.loaded.wait().await;
                            session.destroy().await.unwrap();
                        }
                        "/fresh" => return format!("{} {}", session.is_new(), session.len()),
                        _ => {
                            let seen = session.get::<String>("base");
                            gate.loaded.wait().await;
                            gate.pass().await;
                            return format!("{seen:?}");
                        }
                    }
                    String::new()
                }
            }
        }),
        configure,
    );
    let (pair, id) = seeded(&app, &*store).await;
    let readers: Vec<_> = (0..8)
        .map(|i| tokio::spawn(app.request(&format!("/read/{i}"), Some(&pair))))
        .collect();
    tokio::time::timeout(DEADLINE, app.request("/destroy", Some(&pair)))
        .await
        .expect("destroy hung");
    open.send(true).unwrap();
    let mut out = Vec::new();
    for r in readers {
        let res = tokio::time::timeout(DEADLINE, r).await.expect("reader hung").unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), "Some(\"kept\")");
        if let Some(cookie) = cookie_pair(&res) {
            let res = app.get("/fresh", Some(&cookie)).await;
            assert_eq!(res.body(), "true 0", "a reader's cookie led back to the old session");
        }
        out.push(res);
    }
    assert!(
        stored(&*store, &id).await.is_none(),
        "a reader brought the session back"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_readers_racing_destroy_do_not_bring_it_back() {
    readers_racing_destroy(|l| l.rolling(true).max_age(time::Duration::hours(1))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resave_readers_racing_destroy_do_not_bring_it_back() {
    let responses = readers_racing_destroy(|l| l.resave(true)).await;
    assert!(
        responses.iter().all(|r| r.headers().get(header::SET_COOKIE).is_none()),
        "a resave that found the session gone sends no cookie"
    );
}

/// Two requests that loaded the same session; the second saves after the first. With
/// `max_save_retries(0)` its conflicting save is not retried: it fails with a 500 and the first
/// save stands untouched. With one retry it merges and both changes survive.
async fn second_save_with_retries(retries: u32) -> (StatusCode, serde_json::Map<String, Value>) {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let loaded = Arc::new(Barrier::new(2));
    let (first_done, first_done_rx) = watch::channel(false);
    let app = App::configured(
        Arc::clone(&store),
        handler(move |path, session| {
            let (loaded, mut first_done_rx) = (Arc::clone(&loaded), first_done_rx.clone());
            async move {
                if path == "/seed" {
                    seed(&session).await;
                    return String::new();
                }
                let i = index(&path);
                session.insert("k", i).unwrap();
                session.insert(&format!("own{i}"), i).unwrap();
                loaded.wait().await;
                if i == 1 {
                    first_done_rx.wait_for(|d| *d).await.unwrap();
                }
                String::new()
            }
        }),
        |layer| layer.max_save_retries(retries),
    );
    let (pair, id) = seeded(&app, &*store).await;
    let second = tokio::spawn(app.request("/put/1", Some(&pair)));
    let first = tokio::time::timeout(DEADLINE, app.request("/put/0", Some(&pair)))
        .await
        .expect("first hung");
    assert_eq!(first.status(), StatusCode::OK);
    first_done.send(true).unwrap();
    let second = tokio::time::timeout(DEADLINE, second)
        .await
        .expect("second hung")
        .unwrap();
    assert!(second.headers().get(header::SET_COOKIE).is_none());
    (second.status(), stored(&*store, &id).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_beyond_the_retry_bound_fails_and_leaves_the_winner_intact() {
    let (status, data) = second_save_with_retries(0).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(data["k"], 0);
    assert_eq!(data["own0"], 0);
    assert!(!data.contains_key("own1"), "a failed save wrote something");
    assert_eq!(data["base"], "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_within_the_retry_bound_merges() {
    let (status, data) = second_save_with_retries(1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(data["k"], 1, "the last save wins the shared key");
    assert_eq!(
        (data["own0"].clone(), data["own1"].clone()),
        (Value::from(0), Value::from(1))
    );
}

/// The reference app (`examples/app.rs`: secret `gfg-key`, resave false, saveUninitialized
/// true) with its own routes, plus `/inc`, `/put/{i}` and `/count`, served over real HTTP.
#[allow(dead_code)]
#[path = "../examples/app.rs"]
mod reference_app;

mod over_http {
    use super::*;
    use axum::{extract::Path, routing::get, Router};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    /// The reference app's own router and layer, plus the test routes under the same layer.
    fn router(barrier: Arc<Barrier>) -> Router {
        let sessions = reference_app::sessions().expect("the reference app's config is valid");
        let inc_barrier = Arc::clone(&barrier);
        let tests = Router::new()
            .route(
                "/inc",
                get(move |session: Session| async move {
                    inc_barrier.wait().await;
                    session
                        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                        .unwrap()
                        .to_string()
                }),
            )
            .route(
                "/put/{i}",
                get(move |session: Session, Path(i): Path<u32>| async move {
                    barrier.wait().await;
                    session.insert(&format!("k{i}"), i).unwrap();
                    "ok"
                }),
            )
            .route(
                "/count",
                get(
                    |session: Session| async move { format!("{:?} {}", session.get::<u64>("n"), session.keys().len()) },
                ),
            )
            .layer(sessions.clone());
        reference_app::app(sessions).merge(tests)
    }

    async fn fetch(
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
        url: String,
        cookie: Option<String>,
    ) -> (StatusCode, Option<String>, String) {
        let mut req = Request::get(url);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let res = client
            .request(req.body(Empty::new()).unwrap())
            .await
            .expect("request sent");
        let status = res.status();
        let set_cookie = res
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, set_cookie, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sixty_four_concurrent_http_requests_lose_no_increment_and_no_key() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router(Arc::new(Barrier::new(64)))).await.unwrap();
        });
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let base = format!("http://{addr}");

        let (status, cookie, body) = fetch(&client, format!("{base}/"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with("Hey Geek!"));
        let cookie = cookie.expect("saveUninitialized app sends the cookie");

        let incs = all((0..64)
            .map(|_| {
                let (client, url, cookie) = (client.clone(), format!("{base}/inc"), cookie.clone());
                async move { fetch(&client, url, Some(cookie)).await }
            })
            .collect())
        .await;
        assert!(
            incs.iter().all(|(s, _, body)| *s == StatusCode::OK && body == "1"),
            "{incs:?}"
        );
        let (_, _, count) = fetch(&client, format!("{base}/count"), Some(cookie.clone())).await;
        assert_eq!(count, "Some(64) 2", "64 concurrent increments over HTTP");

        let puts = all((0..64)
            .map(|i| {
                let (client, url, cookie) = (client.clone(), format!("{base}/put/{i}"), cookie.clone());
                async move { fetch(&client, url, Some(cookie)).await }
            })
            .collect())
        .await;
        assert!(puts.iter().all(|(s, _, _)| *s == StatusCode::OK));
        let (_, _, count) = fetch(&client, format!("{base}/count"), Some(cookie.clone())).await;
        assert_eq!(count, "Some(64) 66", "64 distinct keys plus gfgUser and n");
        let (_, _, user) = fetch(&client, format!("{base}/get"), Some(cookie)).await;
        assert_eq!(user, "Session variable: geeksforgeeks");
        server.abort();
    }

    /// The reference app's router plus a logout and slow writers: every writer has loaded the
    /// session before the logout destroys it, and writes only after the destroy returned.
    fn destroy_race_router(writers: usize) -> Router {
        let sessions = reference_app::sessions().expect("the reference app's config is valid");
        let loaded = Arc::new(Barrier::new(writers + 1));
        let (destroyed_tx, destroyed) = watch::channel(false);
        let destroyed_tx = Arc::new(destroyed_tx);
        let writer_loaded = Arc::clone(&loaded);
        let tests = Router::new()
            .route(
                "/slow_put/{i}",
                get(move |session: Session, Path(i): Path<u32>| {
                    let (loaded, mut destroyed) = (Arc::clone(&writer_loaded), destroyed.clone());
                    async move {
                        loaded.wait().await;
                        destroyed.wait_for(|d| *d).await.expect("logout finishes");
                        session.insert(&format!("k{i}"), i).unwrap();
                        "written"
                    }
                }),
            )
            .route(
                "/logout",
                get(move |session: Session| {
                    let (loaded, destroyed_tx) = (Arc::clone(&loaded), Arc::clone(&destroyed_tx));
                    async move {
                        loaded.wait().await;
                        session.destroy().await.unwrap();
                        destroyed_tx.send(true).unwrap();
                        "logged out"
                    }
                }),
            )
            .route(
                "/count",
                get(|session: Session| async move { session.keys().len().to_string() }),
            )
            .layer(sessions.clone());
        reference_app::app(sessions).merge(tests)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn logout_over_http_racing_32_slow_writers_stays_logged_out() {
        const WRITERS: usize = 32;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, destroy_race_router(WRITERS)).await.unwrap();
        });
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let base = format!("http://{addr}");
        let (_, cookie, _) = fetch(&client, format!("{base}/"), None).await;
        let cookie = cookie.expect("the reference app sends its cookie");

        let mut requests: Vec<_> = (0..WRITERS).map(|i| format!("{base}/slow_put/{i}")).collect();
        requests.push(format!("{base}/logout"));
        let answers = all(requests
            .into_iter()
            .map(|url| {
                let (client, cookie) = (client.clone(), cookie.clone());
                async move { fetch(&client, url, Some(cookie)).await }
            })
            .collect())
        .await;
        let (logout, writers) = answers.split_last().unwrap();
        assert_eq!((logout.0, logout.2.as_str()), (StatusCode::OK, "logged out"));
        let cleared = logout.1.as_deref().expect("logout clears the cookie");
        assert_eq!(cleared, "connect.sid=", "{logout:?}");
        // The writers answer as their handler decided, and none hands the old session back.
        assert!(
            writers
                .iter()
                .all(|(s, set_cookie, body)| *s == StatusCode::OK && body == "written" && set_cookie.is_none()),
            "{writers:?}"
        );

        // The old cookie finds nothing: a fresh, empty session with another id.
        let (status, fresh, keys) = fetch(&client, format!("{base}/count"), Some(cookie.clone())).await;
        assert_eq!((status, keys.as_str()), (StatusCode::OK, "0"));
        let fresh = fresh.expect("saveUninitialized: the new session's cookie");
        assert_ne!(fresh, cookie);
        let (_, _, user) = fetch(&client, format!("{base}/get"), Some(cookie)).await;
        assert_eq!(user, "Session variable: No session set");
        server.abort();
    }
}
