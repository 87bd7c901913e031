//! How many store calls a request costs, counted with `CountingStore` over the memory store.
//!
//! Each test first makes the state it needs (a saved session, a crafted store expiry), resets
//! the counters, and then counts exactly one request.

use std::{convert::Infallible, sync::Arc};

use express_session::{CountingStore, MemoryStore, Session, SessionLayer, SessionStore, StoreCounts};
use http::{header, Request, Response, StatusCode};
use time::{Duration, OffsetDateTime};
use tower::{Layer, Service, ServiceExt};

const SECRET: &str = "round-trip secret";

type Store = CountingStore<Arc<MemoryStore>>;

/// The calls as `(load, load_and_touch, create, update, touch, destroy)`.
fn calls(c: StoreCounts) -> (u64, u64, u64, u64, u64, u64) {
    (c.load, c.load_and_touch, c.create, c.update, c.touch, c.destroy)
}

async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
    let session = req.extensions().get::<Session>().expect("layer installed").clone();
    let body = match req.uri().path() {
        "/nothing" => String::new(),
        "/read" => format!("{:?}", session.get::<u64>("n")),
        "/write" => session
            .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
            .expect("live session")
            .to_string(),
        "/destroy" => {
            session.destroy().await.expect("destroy");
            String::new()
        }
        "/regenerate" => {
            session.regenerate().await.expect("regenerate");
            session.insert("after", true).expect("live session");
            String::new()
        }
        other => panic!("no route {other}"),
    };
    Ok(Response::new(body))
}

struct App<S> {
    svc: S,
    store: Store,
}

fn app(
    configure: impl FnOnce(SessionLayer) -> SessionLayer,
) -> App<impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone> {
    let store = CountingStore::new(Arc::new(MemoryStore::new()));
    let layer = configure(SessionLayer::new(store.clone()).secret(SECRET))
        .build()
        .expect("valid config");
    App {
        svc: layer.layer(tower::service_fn(handler)),
        store,
    }
}

impl<S> App<S>
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    async fn get(&self, path: &str, cookie: Option<&str>) -> Response<String> {
        let mut req = Request::builder().uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let res = self
            .svc
            .clone()
            .oneshot(req.body(String::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        res
    }

    /// A saved session holding `n = 1`: its cookie pair and id. Counters are reset after.
    async fn saved_session(&self) -> (String, String) {
        let res = self.get("/write", None).await;
        let pair = cookie_pair(&res).expect("a new written session sends its cookie");
        let id = session_id(&pair);
        assert!(self.store.inner().load(&id).await.unwrap().is_some());
        self.store.reset();
        (pair, id)
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

#[tokio::test]
async fn no_cookie_and_no_write_costs_nothing() {
    let app = app(|l| l);
    let res = app.get("/nothing", None).await;
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(calls(app.store.counts()), (0, 0, 0, 0, 0, 0));
}

#[tokio::test]
async fn no_cookie_and_a_read_costs_nothing() {
    let app = app(|l| l);
    app.get("/read", None).await;
    assert_eq!(calls(app.store.counts()), (0, 0, 0, 0, 0, 0));
}

#[tokio::test]
async fn bad_signature_costs_nothing() {
    let app = app(|l| l);
    let (pair, _) = app.saved_session().await;
    // Flip the last character of the signature.
    let mut forged = pair.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    app.get("/read", Some(&forged)).await;
    assert_eq!(calls(app.store.counts()), (0, 0, 0, 0, 0, 0));
}

#[tokio::test]
async fn new_session_with_a_write_is_one_create() {
    let app = app(|l| l);
    let res = app.get("/write", None).await;
    assert!(cookie_pair(&res).is_some());
    assert_eq!(calls(app.store.counts()), (0, 0, 1, 0, 0, 0));
}

#[tokio::test]
async fn new_uninitialized_session_with_save_uninitialized_is_one_create() {
    let app = app(|l| l.save_uninitialized(true));
    let res = app.get("/nothing", None).await;
    assert!(cookie_pair(&res).is_some());
    assert_eq!(calls(app.store.counts()), (0, 0, 1, 0, 0, 0));
}

#[tokio::test]
async fn read_of_an_existing_session_is_one_load_and_touch() {
    let app = app(|l| l);
    let (pair, _) = app.saved_session().await;
    let res = app.get("/read", Some(&pair)).await;
    assert_eq!(res.body(), "Some(1)");
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(calls(app.store.counts()), (0, 1, 0, 0, 0, 0));
}

#[tokio::test]
async fn read_of_an_existing_session_with_max_age_is_one_load_and_touch() {
    let app = app(|l| l.max_age(Duration::hours(2)));
    let (pair, id) = app.saved_session().await;
    app.get("/read", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (0, 1, 0, 0, 0, 0));
    // The one call did touch: the store's expiry is the cookie's new one.
    let expires = app.store.inner().load(&id).await.unwrap().unwrap().expires.unwrap();
    let left = expires - OffsetDateTime::now_utc();
    assert!(left > Duration::minutes(119) && left <= Duration::hours(2), "{left}");
}

#[tokio::test]
async fn cookie_of_an_unknown_session_is_one_load() {
    let app = app(|l| l);
    let (pair, id) = app.saved_session().await;
    app.store.inner().destroy(&id).await.unwrap();
    app.get("/read", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (0, 1, 0, 0, 0, 0));
}

#[tokio::test]
async fn write_of_an_existing_session_is_one_load_and_one_update() {
    let app = app(|l| l);
    let (pair, id) = app.saved_session().await;
    let res = app.get("/write", Some(&pair)).await;
    assert_eq!(res.body(), "2");
    assert_eq!(calls(app.store.counts()), (0, 1, 0, 1, 0, 0));
    let record = app.store.inner().load(&id).await.unwrap().unwrap();
    assert!(record.data.contains(r#""n":2"#), "the update was written");
}

#[tokio::test]
async fn resave_read_is_one_load_and_one_update() {
    let app = app(|l| l.resave(true));
    let (pair, _) = app.saved_session().await;
    app.get("/read", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (1, 0, 0, 1, 0, 0));
}

#[tokio::test]
async fn rolling_read_is_one_load_and_touch_and_sends_the_cookie() {
    let app = app(|l| l.rolling(true).max_age(Duration::hours(1)));
    let (pair, _) = app.saved_session().await;
    let res = app.get("/read", Some(&pair)).await;
    assert_eq!(
        cookie_pair(&res).as_deref(),
        Some(pair.as_str()),
        "rolling resends the same cookie"
    );
    assert_eq!(calls(app.store.counts()), (0, 1, 0, 0, 0, 0));
}

/// Moves the stored record's expiry as if it had last been touched `ago` ago, with the layer's
/// `lifetime`.
async fn touched(store: &Store, id: &str, lifetime: Duration, ago: Duration) {
    let expires = OffsetDateTime::now_utc() + lifetime - ago;
    store.inner().touch(id, Some(expires)).await.unwrap();
    store.reset();
}

#[tokio::test]
async fn touch_after_skips_the_touch_within_the_interval() {
    let lifetime = Duration::hours(2);
    let app = app(|l| l.max_age(lifetime).touch_after(Duration::minutes(10)));
    let (pair, id) = app.saved_session().await;
    touched(&app.store, &id, lifetime, Duration::minutes(1)).await;
    app.get("/read", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (1, 0, 0, 0, 0, 0));
}

#[tokio::test]
async fn touch_after_touches_once_the_interval_has_passed() {
    let lifetime = Duration::hours(2);
    let app = app(|l| l.max_age(lifetime).touch_after(Duration::minutes(10)));
    let (pair, id) = app.saved_session().await;
    touched(&app.store, &id, lifetime, Duration::minutes(30)).await;
    app.get("/read", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (1, 0, 0, 0, 1, 0));
    let left = app.store.inner().load(&id).await.unwrap().unwrap().expires.unwrap() - OffsetDateTime::now_utc();
    assert!(
        left > lifetime - Duration::minutes(1),
        "the touch moved the expiry: {left}"
    );
    // Touched just now: the next read within the interval does not touch again.
    app.store.reset();
    app.get("/read", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (1, 0, 0, 0, 0, 0));
}

#[tokio::test]
async fn touch_after_without_max_age_uses_the_default_lifetime() {
    let lifetime = express_session::store::DEFAULT_TTL;
    let app = app(|l| l.touch_after(Duration::hours(1)));
    let (pair, id) = app.saved_session().await;
    touched(&app.store, &id, lifetime, Duration::minutes(5)).await;
    app.get("/read", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (1, 0, 0, 0, 0, 0));
    touched(&app.store, &id, lifetime, Duration::hours(3)).await;
    app.get("/read", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (1, 0, 0, 0, 1, 0));
}

#[tokio::test]
async fn destroy_is_one_load_and_one_destroy() {
    let app = app(|l| l);
    let (pair, id) = app.saved_session().await;
    app.get("/destroy", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (0, 1, 0, 0, 0, 1));
    assert!(app.store.inner().load(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn regenerate_is_one_load_one_destroy_and_one_create() {
    let app = app(|l| l);
    let (pair, id) = app.saved_session().await;
    let res = app.get("/regenerate", Some(&pair)).await;
    assert_eq!(calls(app.store.counts()), (0, 1, 1, 0, 0, 1));
    let new_pair = cookie_pair(&res).expect("the new session's cookie");
    let new_id = session_id(&new_pair);
    assert_ne!(new_id, id);
    assert!(app.store.inner().load(&id).await.unwrap().is_none());
    assert!(app.store.inner().load(&new_id).await.unwrap().is_some());
}
