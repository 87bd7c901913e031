//! The concurrency guarantee against every store: 64 overlapping writers of different keys,
//! 64 overlapping increments, and a destroy racing 32 slow writers, through the real layer.
//!
//! [`store_concurrency_tests!`] expands the cases for one store; each store module below
//! instantiates it behind the store's feature, with a unique key prefix or table per test.
//! Handlers wait on barriers and signals, never sleeps, so every request has loaded the session
//! before any of them saves.

use std::{convert::Infallible, future::Future, pin::Pin, sync::Arc, time::Duration};

use express_session::{codec, Session, SessionLayer, SessionStore};
use http::{header, Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{watch, Barrier};
use tower::{Layer, ServiceExt};

const SECRET: &str = "store concurrency secret";
/// Only turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(60);
/// Enough retries for 64 writers that all save at the same moment: each conflict round lets at
/// least one of them through.
const RETRIES: u32 = 64;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Svc = tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>;

/// What the handler does for a path; `/seed` is handled for every app.
type Handler = Arc<dyn Fn(String, Session) -> BoxFuture<()> + Send + Sync>;

fn app(store: Arc<dyn SessionStore>, h: Handler, retries: u32) -> Svc {
    let f = move |req: Request<String>| {
        let h = Arc::clone(&h);
        Box::pin(async move {
            let session = req.extensions().get::<Session>().expect("layer installed").clone();
            let path = req.uri().path().to_owned();
            if path == "/seed" {
                session.insert("base", "kept").unwrap();
            } else {
                h(path, session).await;
            }
            Ok::<_, Infallible>(Response::new(String::new()))
        }) as BoxFuture<Result<Response<String>, Infallible>>
    };
    let layer = SessionLayer::with_store(store)
        .secret(SECRET)
        .max_save_retries(retries)
        .build()
        .expect("valid config");
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

/// A new session holding `base`: its cookie pair and id.
async fn seeded(svc: &Svc, store: &dyn SessionStore) -> (String, String) {
    let res = request(svc, "/seed", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let pair = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let value = pair
        .strip_prefix("connect.sid=")
        .unwrap()
        .replace("%3A", ":")
        .replace("%2B", "+")
        .replace("%2F", "/");
    let id = express_session::cookie::unsign(value.strip_prefix("s:").unwrap(), &[SECRET.as_bytes().to_vec()])
        .expect("our signature")
        .to_owned();
    assert!(stored(store, &id).await.is_some(), "the seeded session is stored");
    (pair, id)
}

async fn stored(store: &dyn SessionStore, id: &str) -> Option<serde_json::Map<String, Value>> {
    let record = store.load(id).await.unwrap()?;
    Some(codec::decode(&record.data, usize::MAX).expect("a valid record").1)
}

fn index(path: &str) -> usize {
    path.rsplit('/').next().unwrap().parse().expect("numbered route")
}

async fn all(futs: Vec<impl Future<Output = Response<String>> + Send + 'static>) -> Vec<Response<String>> {
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

/// 64 overlapping requests each insert their own key: all 64 are stored.
pub async fn sixty_four_keys(store: Arc<dyn SessionStore>) {
    let barrier = Arc::new(Barrier::new(64));
    let h: Handler = Arc::new(move |path, session| {
        let barrier = Arc::clone(&barrier);
        Box::pin(async move {
            barrier.wait().await;
            let i = index(&path);
            session.insert(&format!("k{i}"), i).unwrap();
        })
    });
    let svc = app(Arc::clone(&store), h, RETRIES);
    let (pair, id) = seeded(&svc, &*store).await;
    let responses = all((0..64)
        .map(|i| request(&svc, &format!("/put/{i}"), Some(&pair)))
        .collect())
    .await;
    let failed = responses.iter().filter(|r| r.status() != StatusCode::OK).count();
    assert_eq!(failed, 0, "{failed} of 64 requests failed");
    let data = stored(&*store, &id).await.expect("session still stored");
    for i in 0..64 {
        assert_eq!(data.get(&format!("k{i}")), Some(&Value::from(i)), "key k{i} lost");
    }
    assert_eq!(data["base"], "kept");
    store.destroy(&id).await.unwrap();
}

/// 64 overlapping `update` increments of one counter add up to 64.
pub async fn sixty_four_increments(store: Arc<dyn SessionStore>) {
    let barrier = Arc::new(Barrier::new(64));
    let h: Handler = Arc::new(move |_, session| {
        let barrier = Arc::clone(&barrier);
        Box::pin(async move {
            barrier.wait().await;
            session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).unwrap();
        })
    });
    let svc = app(Arc::clone(&store), h, RETRIES);
    let (pair, id) = seeded(&svc, &*store).await;
    let responses = all((0..64).map(|_| request(&svc, "/inc", Some(&pair))).collect()).await;
    let failed = responses.iter().filter(|r| r.status() != StatusCode::OK).count();
    assert_eq!(failed, 0, "{failed} of 64 requests failed");
    let data = stored(&*store, &id).await.expect("session still stored");
    assert_eq!(data["n"], 64, "increments were lost");
    store.destroy(&id).await.unwrap();
}

/// A destroy while 32 writers that loaded the session are still running: after it returns, the
/// writers' saves write nothing and send no cookie, and the backend holds no record.
/// `backend_has` reads the backend directly, past the store's own code.
pub async fn destroy_racing_thirty_two_writers<F, Fut>(store: Arc<dyn SessionStore>, backend_has: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = bool>,
{
    let loaded = Arc::new(Barrier::new(33));
    let (open, open_rx) = watch::channel(false);
    let h: Handler = Arc::new(move |path, session| {
        let (loaded, mut open_rx) = (Arc::clone(&loaded), open_rx.clone());
        Box::pin(async move {
            if path == "/destroy" {
                loaded.wait().await;
                session.destroy().await.unwrap();
                return;
            }
            let i = index(&path);
            match i % 3 {
                0 => session.insert(&format!("k{i}"), i).unwrap(),
                1 => {
                    session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).unwrap();
                }
                _ => {
                    session.remove("base");
                }
            }
            loaded.wait().await;
            open_rx.wait_for(|open| *open).await.unwrap();
        })
    });
    let svc = app(Arc::clone(&store), h, RETRIES);
    let (pair, id) = seeded(&svc, &*store).await;
    assert!(
        backend_has(id.clone()).await,
        "the backend check sees the seeded record"
    );
    let writers: Vec<_> = (0..32)
        .map(|i| tokio::spawn(request(&svc, &format!("/write/{i}"), Some(&pair))))
        .collect();
    let destroyed = tokio::time::timeout(DEADLINE, request(&svc, "/destroy", Some(&pair)))
        .await
        .expect("destroy hung");
    assert_eq!(destroyed.status(), StatusCode::OK);
    assert!(
        !backend_has(id.clone()).await,
        "destroy returned but the record is there"
    );
    open.send(true).unwrap();
    for w in writers {
        let res = tokio::time::timeout(DEADLINE, w).await.expect("writer hung").unwrap();
        assert_eq!(res.status(), StatusCode::OK, "a late save fails cleanly");
        assert!(
            res.headers().get(header::SET_COOKIE).is_none(),
            "a writer sent a cookie"
        );
    }
    assert!(
        stored(&*store, &id).await.is_none(),
        "a late save resurrected the session"
    );
    assert!(!backend_has(id).await, "the backend holds a resurrected record");
}

/// Expands the cases into `#[tokio::test]`s over the store that `$make` (an async expression
/// giving `Option<store>`; `None` skips) builds. `$has` is an async closure `(store, id) ->
/// bool` reading the backend directly for a record under `id`.
macro_rules! store_concurrency_tests {
    ($make:expr, $has:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn sixty_four_concurrent_writers_of_different_keys_all_survive() {
            if let Some(store) = $make.await {
                $crate::sixty_four_keys(::std::sync::Arc::new(store)).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn sixty_four_concurrent_increments_count_sixty_four() {
            if let Some(store) = $make.await {
                $crate::sixty_four_increments(::std::sync::Arc::new(store)).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn destroy_racing_thirty_two_slow_writers_leaves_no_record() {
            if let Some(store) = $make.await {
                let store = ::std::sync::Arc::new(store);
                let has = $has;
                let check = ::std::sync::Arc::clone(&store);
                $crate::destroy_racing_thirty_two_writers(store, move |id: String| {
                    has(::std::sync::Arc::clone(&check), id)
                })
                .await;
            }
        }
    };
}

mod memory {
    use std::sync::Arc;

    use express_session::{MemoryStore, SessionStore};

    // The memory store has no backend apart from itself: the check is its own load.
    store_concurrency_tests!(
        async { Some(MemoryStore::new()) },
        |store: Arc<MemoryStore>, id: String| async move { store.load(&id).await.unwrap().is_some() }
    );
}
