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

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Svc = tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>;

/// What the handler does for a path; `/seed` is handled for every app.
type Handler = Arc<dyn Fn(String, Session) -> BoxFuture<()> + Send + Sync>;

fn app(store: Arc<dyn SessionStore>, h: Handler) -> Svc {
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

fn assert_all_ok(responses: &[Response<String>]) {
    let failed: Vec<StatusCode> = responses
        .iter()
        .map(|r| r.status())
        .filter(|s| *s != StatusCode::OK)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        responses.len()
    );
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
    let svc = app(Arc::clone(&store), h);
    let (pair, id) = seeded(&svc, &*store).await;
    let responses = all((0..64)
        .map(|i| request(&svc, &format!("/put/{i}"), Some(&pair)))
        .collect())
    .await;
    assert_all_ok(&responses);
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
    let svc = app(Arc::clone(&store), h);
    let (pair, id) = seeded(&svc, &*store).await;
    let responses = all((0..64).map(|_| request(&svc, "/inc", Some(&pair))).collect()).await;
    assert_all_ok(&responses);
    let data = stored(&*store, &id).await.expect("session still stored");
    assert_eq!(data["n"], 64, "increments were lost");
    store.destroy(&id).await.unwrap();
}

/// A destroy while 32 writers that loaded the session are still running: after it returns, the
/// writers' saves write nothing and send no cookie, and the backend holds no record.
/// `backend_has` reads the backend directly, past the store's own code.
pub async fn destroy_racing_thirty_two_writers(
    store: Arc<dyn SessionStore>,
    backend_has: &(dyn Fn(String) -> BoxFuture<bool> + Send + Sync),
) {
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
    let svc = app(Arc::clone(&store), h);
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

/// A store under test, a direct reader of its backend, and the clean-up of what the test made.
pub struct Backend {
    /// The store.
    pub store: Arc<dyn SessionStore>,
    /// Whether the backend holds a record under an id, read past the store's own code.
    pub has: Box<dyn Fn(String) -> BoxFuture<bool> + Send + Sync>,
    /// Run when the test ends, pass or fail (drops the test's own table, …).
    pub cleanup: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

/// Runs `f` to completion on a thread with a runtime of its own: for clean-ups in `Drop`, which
/// runs inside the test's runtime and cannot block on it.
pub fn on_own_runtime<M, F>(make: M)
where
    M: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()>,
{
    let done = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(make())
    })
    .join();
    if done.is_err() {
        eprintln!("test clean-up failed");
    }
}

/// Expands the cases into `#[tokio::test]`s over the [`Backend`] that `$make` (an async
/// expression giving `Option<Backend>`; `None` skips) builds.
macro_rules! store_concurrency_tests {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn sixty_four_concurrent_writers_of_different_keys_all_survive() {
            if let Some(backend) = $make.await {
                $crate::sixty_four_keys(::std::sync::Arc::clone(&backend.store)).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn sixty_four_concurrent_increments_count_sixty_four() {
            if let Some(backend) = $make.await {
                $crate::sixty_four_increments(::std::sync::Arc::clone(&backend.store)).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn destroy_racing_thirty_two_slow_writers_leaves_no_record() {
            if let Some(backend) = $make.await {
                $crate::destroy_racing_thirty_two_writers(::std::sync::Arc::clone(&backend.store), &backend.has).await;
            }
        }
    };
}

mod memory {
    use std::sync::Arc;

    use express_session::{MemoryStore, SessionStore};

    use crate::Backend;

    // The memory store has no backend apart from itself: the check is its own load.
    store_concurrency_tests!(async {
        let store = Arc::new(MemoryStore::new());
        let check = Arc::clone(&store);
        Some(Backend {
            store,
            has: Box::new(move |id| {
                let check = Arc::clone(&check);
                Box::pin(async move { check.load(&id).await.unwrap().is_some() })
            }),
            cleanup: None,
        })
    });
}

#[cfg(feature = "redis")]
mod redis_single {
    use std::sync::Arc;

    use express_session::store::{
        conformance::{service_url, unique_name},
        redis::RedisStore,
    };

    use crate::{on_own_runtime, Backend};

    async fn backend() -> Option<Backend> {
        let url = service_url("REDIS_URL")?;
        let prefix = unique_name("conc-test:");
        let store = RedisStore::builder()
            .prefix(prefix.clone())
            .connect(url.as_str())
            .await
            .expect("Redis reachable");
        let client = ::redis::Client::open(url.as_str()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys = store.clone();
        Some(Backend {
            store: Arc::new(store),
            has: Box::new(move |id| {
                let (key, mut conn) = (keys.key(&id), conn.clone());
                Box::pin(async move {
                    let n: i64 = ::redis::cmd("EXISTS").arg(key).query_async(&mut conn).await.unwrap();
                    n == 1
                })
            }),
            // Whatever a failed test left under its own prefix.
            cleanup: Some(Box::new(move || {
                on_own_runtime(move || async move {
                    let store = RedisStore::builder()
                        .prefix(prefix)
                        .connect(url.as_str())
                        .await
                        .unwrap();
                    store.clear().await.unwrap();
                })
            })),
        })
    }

    store_concurrency_tests!(backend());
}

#[cfg(feature = "redis")]
mod redis_cluster {
    use std::sync::Arc;

    use express_session::store::{
        conformance::{service_url, unique_name},
        redis::RedisStore,
    };

    use crate::{on_own_runtime, Backend};

    async fn backend() -> Option<Backend> {
        let urls = service_url("REDIS_CLUSTER_URLS")?;
        let urls: Vec<String> = urls.split(',').map(str::to_owned).collect();
        let prefix = unique_name("conc-test:");
        let store = RedisStore::builder()
            .prefix(prefix.clone())
            .connect_cluster(urls.clone())
            .await
            .expect("Redis Cluster reachable");
        let client = ::redis::cluster::ClusterClient::new(urls.clone()).unwrap();
        let conn = client.get_async_connection().await.unwrap();
        let keys = store.clone();
        Some(Backend {
            store: Arc::new(store),
            has: Box::new(move |id| {
                let (key, mut conn) = (keys.key(&id), conn.clone());
                Box::pin(async move {
                    let n: i64 = ::redis::cmd("EXISTS").arg(key).query_async(&mut conn).await.unwrap();
                    n == 1
                })
            }),
            cleanup: Some(Box::new(move || {
                on_own_runtime(move || async move {
                    let store = RedisStore::builder()
                        .prefix(prefix)
                        .connect_cluster(urls)
                        .await
                        .unwrap();
                    store.clear().await.unwrap();
                })
            })),
        })
    }

    store_concurrency_tests!(backend());
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;

    use express_session::store::{
        conformance::{service_url, unique_name},
        postgres::PostgresStore,
    };
    use sqlx::{Connection, PgConnection};

    use crate::{on_own_runtime, Backend};

    async fn backend() -> Option<Backend> {
        let url = service_url("DATABASE_URL")?;
        let table = unique_name("conc_test_");
        let store = PostgresStore::connect(&url)
            .await
            .expect("PostgreSQL reachable")
            .table_name(&table)
            .unwrap();
        store.migrate().await.unwrap();
        let pool = store.pool().clone();
        let count = format!(r#"SELECT count(*) FROM "{table}" WHERE "sid" = $1"#);
        let drop_table = format!(r#"DROP TABLE IF EXISTS "{table}""#);
        Some(Backend {
            store: Arc::new(store),
            has: Box::new(move |id| {
                let (pool, count) = (pool.clone(), count.clone());
                Box::pin(async move {
                    let n: i64 = sqlx::query_scalar(&count).bind(id).fetch_one(&pool).await.unwrap();
                    n == 1
                })
            }),
            cleanup: Some(Box::new(move || {
                on_own_runtime(move || async move {
                    let mut c = PgConnection::connect(&url).await.unwrap();
                    sqlx::raw_sql(&drop_table).execute(&mut c).await.unwrap();
                })
            })),
        })
    }

    store_concurrency_tests!(backend());
}

#[cfg(feature = "mysql")]
mod mysql {
    use std::sync::Arc;

    use express_session::store::{
        conformance::{service_url, unique_name},
        mysql::MySqlStore,
    };
    use sqlx::{Connection, MySqlConnection};

    use crate::{on_own_runtime, Backend};

    async fn backend() -> Option<Backend> {
        let url = service_url("MYSQL_URL")?;
        let table = unique_name("conc_test_");
        let store = MySqlStore::connect(&url)
            .await
            .expect("MySQL reachable")
            .table_name(&table)
            .unwrap();
        store.migrate().await.unwrap();
        let pool = store.pool().clone();
        let count = format!("SELECT count(*) FROM `{table}` WHERE `session_id` = ?");
        let drop_table = format!("DROP TABLE IF EXISTS `{table}`");
        Some(Backend {
            store: Arc::new(store),
            has: Box::new(move |id| {
                let (pool, count) = (pool.clone(), count.clone());
                Box::pin(async move {
                    let n: i64 = sqlx::query_scalar(&count).bind(id).fetch_one(&pool).await.unwrap();
                    n == 1
                })
            }),
            cleanup: Some(Box::new(move || {
                on_own_runtime(move || async move {
                    let mut c = MySqlConnection::connect(&url).await.unwrap();
                    sqlx::raw_sql(&drop_table).execute(&mut c).await.unwrap();
                })
            })),
        })
    }

    store_concurrency_tests!(backend());
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::sync::Arc;

    use express_session::store::{conformance::unique_name, sqlite::SqliteStore};

    use crate::Backend;

    async fn backend() -> Option<Backend> {
        // A database file of its own (WAL mode, a real pool), removed afterwards.
        let path = std::env::temp_dir().join(format!("{}.db", unique_name("conc_test_")));
        let store = SqliteStore::open(&path).await.expect("SQLite file opens");
        let pool = store.pool().clone();
        Some(Backend {
            store: Arc::new(store),
            has: Box::new(move |id| {
                let pool = pool.clone();
                Box::pin(async move {
                    let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "session" WHERE "sid" = ?"#)
                        .bind(id)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    n == 1
                })
            }),
            cleanup: Some(Box::new(move || {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            })),
        })
    }

    store_concurrency_tests!(backend());
}
