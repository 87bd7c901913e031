//! Property: two requests of one session, each making a random set of changes (sets, removes,
//! increments on overlapping keys), end with the state the concurrency guarantee promises, in
//! every interleaving of their load and save steps.
//!
//! The requests go through the real `SessionLayer`. A store wrapper parks each request's load
//! and its first save until the test lets it through, so the interleaving is chosen exactly,
//! without timing. Each request goes through its own layer over the one store, as two server
//! processes would: saves of one session within one layer take turns (so they never race each
//! other's compare-and-set), and the merge on conflict, which this checks, is what remains
//! between processes.
//!
//! The promised state is the save-order replay: each request's changes, in the order its handler
//! made them, replayed onto whatever the store held when its save went through. So for different
//! keys the result is the union, for one key the last save wins, and increments add up. A change
//! the handler made that left its own view as it was (inserting the value already there,
//! removing an absent key) is no change; a request whose data ends as it was loaded saves
//! nothing.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use express_session::{MemoryStore, Record, Session, SessionLayer, SessionStore, StoreError, Update};
use http::{header, Request, Response, StatusCode};
use proptest::prelude::*;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tower::{Layer, ServiceExt};

const SECRET: &str = "merge property secret";
const KEYS: [&str; 3] = ["a", "b", "c"];
/// Only turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Clone, Debug)]
enum Op {
    Set(&'static str, i64),
    Remove(&'static str),
    Inc(&'static str, i64),
}

/// Applies `op` to a handler's view; returns whether it changed it.
fn apply(op: &Op, data: &mut Map<String, Value>) -> bool {
    match op {
        Op::Set(k, v) => {
            if data.get(*k) == Some(&Value::from(*v)) {
                return false;
            }
            data.insert((*k).to_owned(), Value::from(*v));
        }
        Op::Remove(k) => return data.shift_remove(*k).is_some(),
        Op::Inc(k, d) => {
            let n = data.get(*k).and_then(Value::as_i64).unwrap_or(0);
            data.insert((*k).to_owned(), Value::from(n + d));
        }
    }
    true
}

/// What the guarantee promises: the final stored data after the two requests' steps in `order`.
fn model(base: &Map<String, Value>, ops: &[Vec<Op>; 2], order: &[Step]) -> BTreeMap<String, Value> {
    // The session as `/seed` leaves it: the base, then the seed marker. The marker counts for
    // order: removing a base key and setting it again moves it after the marker, a change.
    let mut store = base.clone();
    store.insert("seeded".to_owned(), Value::Bool(true));
    let mut loaded: [Option<Map<String, Value>>; 2] = [None, None];
    for step in order {
        match *step {
            Step::Load(s) => loaded[s] = Some(store.clone()),
            Step::Save(s) => {
                let original = loaded[s].clone().expect("load before save");
                let mut view = original.clone();
                let changes: Vec<&Op> = ops[s].iter().filter(|op| apply(op, &mut view)).collect();
                // Order-sensitive, as express compares the serialized session.
                if !view.iter().eq(original.iter()) {
                    for op in changes {
                        apply(op, &mut store);
                    }
                }
            }
        }
    }
    store.remove("seeded");
    store.into_iter().collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Load(usize),
    Save(usize),
}

/// The six orders of two requests' load and save steps, each loading before it saves.
fn interleavings() -> Vec<[Step; 4]> {
    use Step::*;
    let mut out = Vec::new();
    for first in 0..2 {
        let second = 1 - first;
        out.push([Load(first), Save(first), Load(second), Save(second)]);
        out.push([Load(first), Load(second), Save(first), Save(second)]);
        out.push([Load(first), Load(second), Save(second), Save(first)]);
    }
    out
}

tokio::task_local! {
    /// Which of the two requests is calling the store.
    static WHO: usize;
}

type Gate = Mutex<Option<oneshot::Receiver<()>>>;

/// A memory store that parks request `s`'s load and first save until the test opens them.
#[derive(Default)]
struct SteppedStore {
    inner: MemoryStore,
    loads: [Gate; 2],
    saves: [Gate; 2],
}

impl SteppedStore {
    /// Arms the gates for a new round; returns the keys that open them.
    fn arm(&self) -> ([oneshot::Sender<()>; 2], [oneshot::Sender<()>; 2]) {
        let arm = |gate: &Gate| {
            let (tx, rx) = oneshot::channel();
            *gate.lock().unwrap() = Some(rx);
            tx
        };
        (
            [arm(&self.loads[0]), arm(&self.loads[1])],
            [arm(&self.saves[0]), arm(&self.saves[1])],
        )
    }

    async fn wait(gates: &[Gate; 2]) {
        let Ok(who) = WHO.try_with(|w| *w) else { return };
        let gate = gates[who].lock().unwrap().take();
        if let Some(rx) = gate {
            rx.await.expect("the test opens every gate it armed");
        }
    }
}

#[async_trait]
impl SessionStore for SteppedStore {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        Self::wait(&self.loads).await;
        self.inner.load(id).await
    }
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        Self::wait(&self.loads).await;
        self.inner.load_and_touch(id, expires).await
    }
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        Self::wait(&self.saves).await;
        self.inner.create(id, record).await
    }
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        Self::wait(&self.saves).await;
        self.inner.update(id, record, expected).await
    }
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        self.inner.touch(id, expires).await
    }
    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.inner.destroy(id).await
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Svc = tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>;

struct Case {
    base: Map<String, Value>,
    ops: [Vec<Op>; 2],
}

/// The app: `/seed` writes the base data, `/run/{s}` applies request `s`'s ops and reports when
/// it has, `/dump` returns the data.
fn app(store: Arc<SteppedStore>, case: Arc<Case>, ran: mpsc::UnboundedSender<usize>) -> Svc {
    let f = move |req: Request<String>| {
        let (case, ran) = (Arc::clone(&case), ran.clone());
        Box::pin(async move {
            let session = req.extensions().get::<Session>().expect("layer installed").clone();
            let path = req.uri().path();
            let body = match path {
                "/seed" => {
                    for (k, v) in &case.base {
                        session.insert_value(k, v.clone()).unwrap();
                    }
                    session.insert("seeded", true).unwrap();
                    String::new()
                }
                "/dump" => Value::Object(session.data()).to_string(),
                _ => {
                    let s: usize = path.trim_start_matches("/run/").parse().unwrap();
                    for op in &case.ops[s] {
                        match op {
                            Op::Set(k, v) => session.insert(k, v).unwrap(),
                            Op::Remove(k) => {
                                session.remove(k);
                            }
                            Op::Inc(k, d) => {
                                let d = *d;
                                session.update(k, move |n: Option<i64>| n.unwrap_or(0) + d).unwrap();
                            }
                        }
                    }
                    ran.send(s).unwrap();
                    String::new()
                }
            };
            Ok::<_, Infallible>(Response::new(body))
        }) as BoxFuture<Result<Response<String>, Infallible>>
    };
    let layer = SessionLayer::with_store(store).secret(SECRET).build().unwrap();
    tower::util::BoxCloneService::new(layer.layer(tower::service_fn(f)))
}

fn request(svc: &Svc, path: &str, cookie: Option<&str>) -> impl Future<Output = Response<String>> + Send + 'static {
    let mut req = Request::builder().uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let req = req.body(String::new()).unwrap();
    let svc = svc.clone();
    async move { svc.oneshot(req).await.unwrap() }
}

/// Runs the two requests in `order` and returns the stored data (without the seed marker).
async fn run(case: Arc<Case>, order: &[Step]) -> BTreeMap<String, Value> {
    let store = Arc::new(SteppedStore::default());
    let (ran_tx, mut ran) = mpsc::unbounded_channel();
    // Two layers over one store: two server processes sharing it.
    let svcs = [
        app(Arc::clone(&store), Arc::clone(&case), ran_tx.clone()),
        app(Arc::clone(&store), case, ran_tx),
    ];
    let svc = &svcs[0];
    let seeded = request(svc, "/seed", None).await;
    let cookie = seeded.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let (loads, saves) = store.arm();
    let mut tasks: Vec<_> = (0..2)
        .map(|s| {
            Some(tokio::spawn(
                WHO.scope(s, request(&svcs[s], &format!("/run/{s}"), Some(&cookie))),
            ))
        })
        .collect();
    let mut loads: Vec<_> = loads.into_iter().map(Some).collect();
    let mut saves: Vec<_> = saves.into_iter().map(Some).collect();
    for step in order {
        match *step {
            Step::Load(s) => {
                loads[s].take().unwrap().send(()).unwrap();
                // The handler has run: its changes are made, its save not yet.
                let done = tokio::time::timeout(DEADLINE, ran.recv()).await.expect("handler hung");
                assert_eq!(done, Some(s));
            }
            Step::Save(s) => {
                // The request may save nothing (its data ended as loaded): then no one waits.
                let _ = saves[s].take().unwrap().send(());
                let res = tokio::time::timeout(DEADLINE, tasks[s].take().unwrap())
                    .await
                    .expect("save hung")
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
            }
        }
    }
    let dump = request(svc, "/dump", Some(&cookie)).await;
    let mut data: BTreeMap<String, Value> = serde_json::from_str(dump.body()).unwrap();
    assert_eq!(data.remove("seeded"), Some(Value::Bool(true)));
    data
}

fn op() -> impl Strategy<Value = Op> {
    let key = prop::sample::select(KEYS.to_vec());
    prop_oneof![
        key.clone().prop_map(|k| Op::Set(k, 0)),
        key.clone().prop_map(Op::Remove),
        (key, 1..5i64).prop_map(|(k, d)| Op::Inc(k, d)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(prop::option::of(0..100i64), KEYS.len()),
        prop::collection::vec(op(), 0..6),
        prop::collection::vec(op(), 0..6),
    )
        .prop_map(|(base, a, b)| {
            let base = KEYS
                .iter()
                .zip(base)
                .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), Value::from(v))))
                .collect();
            // Every set writes a value no one else writes, so "whose value won" is visible.
            let number = |s: i64, ops: Vec<Op>| -> Vec<Op> {
                ops.into_iter()
                    .enumerate()
                    .map(|(j, op)| match op {
                        Op::Set(k, _) => Op::Set(k, (s + 1) * 1_000_000 + j as i64 * 1_000),
                        other => other,
                    })
                    .collect()
            };
            Case {
                base,
                ops: [number(0, a), number(1, b)],
            }
        })
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "base {:?}, first {:?}, second {:?}",
            self.base, self.ops[0], self.ops[1]
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn two_concurrent_requests_merge_as_promised_in_every_interleaving(case in case()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let case = Arc::new(case);
        for order in interleavings() {
            let got = rt.block_on(run(Arc::clone(&case), &order));
            let want = model(&case.base, &case.ops, &order);
            prop_assert_eq!(got, want, "order {:?}", order);
        }
    }
}

/// The property's harness is itself checked on fixed cases, so a broken harness cannot pass.
#[tokio::test]
async fn fixed_cases_give_union_last_save_and_sum() {
    let base: Map<String, Value> = serde_json::from_str(r#"{"a":1,"c":7}"#).unwrap();
    let case = Arc::new(Case {
        base,
        ops: [
            vec![Op::Inc("a", 2), Op::Set("b", 10), Op::Remove("c")],
            vec![Op::Inc("a", 3), Op::Set("b", 20)],
        ],
    });
    use Step::*;
    // Both loaded before either saved; the second request saves last.
    let got = run(Arc::clone(&case), &[Load(0), Load(1), Save(0), Save(1)]).await;
    let want: BTreeMap<String, Value> = serde_json::from_str(r#"{"a":6,"b":20}"#).unwrap();
    assert_eq!(got, want);
    // The first request saves last: its value of b wins, increments still add up.
    let got = run(case, &[Load(0), Load(1), Save(1), Save(0)]).await;
    let want: BTreeMap<String, Value> = serde_json::from_str(r#"{"a":6,"b":10}"#).unwrap();
    assert_eq!(got, want);
}

/// An increment after a set of the same key keeps the set when the save merges onto another
/// request's save (it once replayed only the increment onto the stored value).
#[tokio::test]
async fn increment_after_set_survives_a_merge() {
    let case = Arc::new(Case {
        base: Map::new(),
        ops: [vec![Op::Set("a", 1)], vec![Op::Set("c", 5), Op::Inc("c", 1)]],
    });
    use Step::*;
    let got = run(case, &[Load(0), Load(1), Save(0), Save(1)]).await;
    let want: BTreeMap<String, Value> = serde_json::from_str(r#"{"a":1,"c":6}"#).unwrap();
    assert_eq!(got, want);
}
