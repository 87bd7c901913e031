//! HTTP-level behaviour through `oneshot`: the store-generic suite over [`MemoryStore`], and the
//! cases that do not depend on a store (configuration, golden cookie values, the extractor,
//! mounting twice, plain tower use).

mod common;

use std::{convert::Infallible, sync::Arc};

use axum::{body::Body, http::Request, http::StatusCode, routing::get, Router};
use common::{assert_set_cookie, send, DynStore, Harness};
use express_session::{
    time::Duration, ConfigError, MemoryStore, Priority, SameSite, Secure, Session, SessionError, SessionLayer,
    StoreError,
};
use tower::{service_fn, Layer, ServiceExt};

http_suite_tests!(async { Some(MemoryStore::new()) });

fn memory() -> DynStore {
    Arc::new(MemoryStore::new())
}

/// The reference document's golden vector: id, secret, maxAge of one day.
#[tokio::test]
async fn set_cookie_matches_express_golden_vector() {
    let h = Harness::new(memory(), |l| {
        l.genid(|| "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M".into())
            .max_age(Duration::days(1))
            .same_site(None)
    });
    let r = h.get("/set", None).await;
    assert_set_cookie(
        r.session_cookie().unwrap(),
        "connect.sid=s%3AzqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH%2BiPnRpk; Path=/; Expires=<in 86400 s>; HttpOnly",
    );
    let h = Harness::new(memory(), |l| {
        l.genid(|| "zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M".into())
            .max_age(Duration::hours(1))
            .secure(Secure::Always)
            .same_site(Some(SameSite::Lax))
            .domain("example.com")
    });
    let r = h
        .send(Request::get("https://example.com/set").body(Body::empty()).unwrap())
        .await;
    assert_set_cookie(
        r.session_cookie().unwrap(),
        "connect.sid=s%3AzqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M.OrZhfTLAHHQ11bpyzKrbvX4ZF3pg4E2VQ6cH%2BiPnRpk; Domain=example.com; Path=/; Expires=<in 3600 s>; HttpOnly; Secure; SameSite=Lax",
    );
}

/// express's genid tests: the values its suite expects, byte for byte.
#[tokio::test]
async fn custom_genid_values_are_signed_and_encoded_as_express() {
    for (id, value) in [
        ("apple", "s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU"),
        ("%", "s%3A%25.kzQ6x52kKVdF35Qh62AWk4ZekS28K5XYCXKa%2FOTZ01g"),
        ("/foo", "s%3A%2Ffoo.paEKBtAHbV5s1IB8B2zPnzAgYmmnRPIqObW4VRYj%2FMQ"),
    ] {
        let h = Harness::new(memory(), move |l| {
            l.genid(move || id.to_owned()).save_uninitialized(true)
        });
        let r = h.get("/", None).await;
        assert_eq!(r.cookie(), format!("connect.sid={value}"));
        // And the cookie brings the session back.
        h.get("/set", Some(&r.cookie())).await.assert_ok("set");
        h.get("/get", Some(&r.cookie())).await.assert_ok("bob");
    }
}

/// Layers rebuilt from the same options make the same cookies: nothing depends on the instance.
#[tokio::test]
async fn default_options_are_express_defaults_with_lax() {
    let h = Harness::new(memory(), |l| l);
    let r = h.get("/set", None).await;
    assert_eq!(
        r.session_cookie().unwrap(),
        format!("{}; Path=/; HttpOnly; SameSite=Lax", r.cookie())
    );
}

fn build(l: SessionLayer) -> Result<SessionLayer, ConfigError> {
    l.build()
}

fn layer() -> SessionLayer {
    SessionLayer::new(MemoryStore::new())
}

#[test]
fn config_errors_are_reported_at_build_time() {
    assert!(matches!(build(layer()), Err(ConfigError::MissingSecret)));
    for t in [Duration::ZERO, Duration::seconds(-1)] {
        assert!(matches!(
            build(layer().secret("s").absolute_timeout(t)),
            Err(ConfigError::InvalidTimeout(_))
        ));
    }
    assert!(matches!(
        build(layer().secrets(Vec::<&str>::new())),
        Err(ConfigError::MissingSecret)
    ));
    assert!(matches!(build(layer().secret("")), Err(ConfigError::EmptySecret(0))));
    assert!(matches!(
        build(layer().secrets(["a", ""])),
        Err(ConfigError::EmptySecret(1))
    ));
    for name in ["", "a;b", "a b", "a=b", "sess\r\nid", "séance", "a,b"] {
        assert!(
            matches!(build(layer().secret("s").name(name)), Err(ConfigError::InvalidName(_))),
            "{name:?}"
        );
    }
    for path in ["", "/a;b", "/a\r\nSet-Cookie: x=y", "/\u{7f}", "/é"] {
        assert!(
            matches!(
                build(layer().secret("s").path(path)),
                Err(ConfigError::InvalidAttribute { attribute: "path", .. })
            ),
            "{path:?}"
        );
    }
    // The domain syntax the `cookie` package (and so express) accepts; browsers drop the rest.
    for domain in [
        "",
        "a.com; Domain=.b.com",
        "a.com\n",
        "a .com",
        "a\tb",
        "a,b.com",
        "exa_mple.com",
        "-a.com",
        "a-.com",
        "a..com",
        "a.com.",
        "..a.com",
        "é.com",
        &"a".repeat(64),
    ] {
        assert!(
            matches!(
                build(layer().secret("s").domain(domain)),
                Err(ConfigError::InvalidAttribute {
                    attribute: "domain",
                    ..
                })
            ),
            "{domain:?}"
        );
    }
    for domain in [
        ".example.com",
        "example.com",
        "Example.COM",
        "localhost",
        "127.0.0.1",
        "a-b.c0",
        &"a".repeat(63),
    ] {
        assert!(build(layer().secret("s").domain(domain)).is_ok(), "{domain:?}");
    }
    assert!(matches!(
        build(layer().secret("s").same_site(Some(SameSite::None))),
        Err(ConfigError::SameSiteNoneWithoutSecure)
    ));
    assert!(build(layer().secret("s").same_site(Some(SameSite::None)).secure(Secure::Auto)).is_ok());
    // sameSite auto becomes None over HTTPS: without a Secure that can be set, browsers drop it.
    for secure in [None, Some(Secure::Never)] {
        let l = layer().secret("s").same_site(Some(SameSite::Auto));
        let l = match secure {
            Some(s) => l.secure(s),
            None => l,
        };
        assert!(
            matches!(build(l), Err(ConfigError::SameSiteNoneWithoutSecure)),
            "{secure:?}"
        );
    }
    assert!(build(layer().secret("s").same_site(Some(SameSite::Auto)).secure(Secure::Auto)).is_ok());
    assert!(build(
        layer()
            .secret("s")
            .same_site(Some(SameSite::Auto))
            .secure(Secure::Always)
    )
    .is_ok());
    assert!(matches!(
        build(layer().secret("s").name("__Secure-id")),
        Err(ConfigError::SecurePrefix)
    ));
    assert!(build(layer().secret("s").name("__Secure-id").secure(Secure::Always)).is_ok());
}

#[test]
fn host_prefix_requires_secure_no_domain_and_root_path() {
    let host = || layer().secret("s").name("__Host-id");
    assert!(matches!(build(host()), Err(ConfigError::HostPrefix)));
    assert!(matches!(
        build(host().secure(Secure::Auto)),
        Err(ConfigError::HostPrefix)
    ));
    assert!(matches!(
        build(host().secure(Secure::Never)),
        Err(ConfigError::HostPrefix)
    ));
    assert!(matches!(
        build(host().secure(Secure::Always).domain("example.com")),
        Err(ConfigError::HostPrefix)
    ));
    assert!(matches!(
        build(host().secure(Secure::Always).path("/app")),
        Err(ConfigError::HostPrefix)
    ));
    assert!(build(host().secure(Secure::Always)).is_ok());
    assert!(build(
        host()
            .secure(Secure::Always)
            .same_site(Some(SameSite::Strict))
            .priority(Priority::High)
    )
    .is_ok());
}

#[tokio::test]
async fn host_prefixed_cookie_is_sent_over_https() {
    let h = Harness::new(memory(), |l| l.name("__Host-id").secure(Secure::Always));
    let r = h
        .send(Request::get("https://localhost/set").body(Body::empty()).unwrap())
        .await;
    let sc = r.session_cookie_named("__Host-id").unwrap();
    assert_eq!(
        sc,
        format!("{}; Path=/; HttpOnly; Secure; SameSite=Lax", common::pair(sc))
    );
}

#[test]
fn invalid_configuration_panics_at_layer_time_not_at_request_time() {
    let result = std::panic::catch_unwind(|| {
        let _svc = layer().layer(service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(axum::http::Response::new(Body::empty()))
        }));
    });
    assert!(result.is_err(), "a layer without a secret must not be usable");
}

/// express "should do nothing if req.session exists": a second layer passes through.
#[tokio::test]
async fn mounting_twice_keeps_one_session_and_one_cookie() {
    let store = common::FaultyStore::new(memory());
    let counting = express_session::CountingStore::new(Arc::new(store) as DynStore);
    let l = || SessionLayer::new(counting.clone()).secret("keyboard cat");
    let app = Router::new()
        .route(
            "/",
            get(|s: Session| async move {
                s.insert("n", 1).unwrap();
                "ok"
            }),
        )
        .layer(l())
        .layer(l());
    let r = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    r.assert_ok("ok");
    assert_eq!(r.set_cookies.len(), 1, "{r:?}");
    assert_eq!(counting.counts().create, 1);
}

/// The extractor without a session (outside cookie.path, or no layer): 500; `Option<Session>`
/// gets `None` instead.
#[tokio::test]
async fn extractor_outside_cookie_path_is_500_and_option_is_none() {
    let app = Router::new()
        .route("/need", get(|_s: Session| async { "had one" }))
        .route(
            "/maybe",
            get(|s: Option<Session>| async move {
                if s.is_some() {
                    "some"
                } else {
                    "none"
                }
            }),
        )
        .route("/app/need", get(|_s: Session| async { "had one" }))
        .layer(SessionLayer::new(MemoryStore::new()).secret("s").path("/app"));
    let r = send(&app, Request::get("/need").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    send(&app, Request::get("/maybe").body(Body::empty()).unwrap())
        .await
        .assert_ok("none");
    send(&app, Request::get("/app/need").body(Body::empty()).unwrap())
        .await
        .assert_ok("had one");
    let bare = Router::new().route("/", get(|_s: Session| async { "x" }));
    let r = send(&bare, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// Handler errors with `?` are opaque: no cause in the body.
#[tokio::test]
async fn session_errors_in_handlers_are_opaque() {
    use axum::response::IntoResponse;
    let res = SessionError::Store(StoreError::backend("db password is hunter2")).into_response();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let r = common::Reply::read(res).await;
    assert!(!r.body.contains("hunter2"), "{r:?}");
    let res = SessionError::Store(StoreError::Timeout).into_response();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Plain tower use, without axum's router: the session is in the request extensions.
#[tokio::test]
async fn plain_tower_service_gets_session_in_extensions() {
    let svc = SessionLayer::new(MemoryStore::new())
        .secret("s")
        .layer(service_fn(|req: Request<Body>| async move {
            let session = req.extensions().get::<Session>().expect("session").clone();
            let n = session.update("n", |n: Option<u32>| n.unwrap_or(0) + 1).unwrap();
            Ok::<_, Infallible>(axum::http::Response::new(Body::from(n.to_string())))
        }));
    let res = svc
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let r = common::Reply::read(res).await;
    r.assert_ok("1");
    let res = svc
        .oneshot(
            Request::get("/")
                .header("cookie", r.cookie())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    common::Reply::read(res).await.assert_ok("2");
}

/// MemoryStore's cap: a new session past it is refused with 503, existing ones keep working.
#[tokio::test]
async fn memory_store_cap_refuses_new_sessions_with_503() {
    let h = Harness::new(Arc::new(MemoryStore::new().max_sessions(1)), |l| l);
    let first = h.get("/set", None).await;
    first.assert_ok("set");
    let r = h.get("/set", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, ""));
    h.get("/get", Some(&first.cookie())).await.assert_ok("bob");
}

/// The suite's cleanup deletes every record a case created (so shared backends stay clean).
#[tokio::test]
async fn suite_cleanup_leaves_the_store_empty() {
    let memory = Arc::new(MemoryStore::new());
    let tracked = Arc::new(common::TrackedStore::new(Arc::clone(&memory)));
    common::http_suite::http_regenerate_at_login_keeps_new_data(tracked.clone()).await;
    assert!(!memory.is_empty());
    tracked.cleanup().await;
    assert!(memory.is_empty(), "{memory:?}");
}

/// A generated id that is already taken never hands over (or overwrites) that session: the
/// request fails instead (express's upsert would overwrite it).
#[tokio::test]
async fn colliding_generated_id_never_overwrites_an_existing_session() {
    let h = Harness::new(memory(), |l| l.genid(|| "always-the-same".into()));
    let first = h.get("/set", None).await;
    first.assert_ok("set");
    let before = h.record("always-the-same").await.unwrap();
    let r = h.get("/count", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, ""));
    r.assert_no_cookie();
    assert_eq!(h.record("always-the-same").await.unwrap(), before);
    h.get("/get", Some(&first.cookie())).await.assert_ok("bob");
}

/// A new session starts (its id drawn by `genid`, its cookie made) when something first uses
/// it. A request that never touches it draws no id, calls no store and sends no cookie, with or
/// without a stale cookie; with `save_uninitialized`, it is saved and sent as express does.
#[tokio::test]
async fn untouched_new_session_draws_no_id() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let drawn = Arc::new(AtomicUsize::new(0));
    let genid = {
        let drawn = Arc::clone(&drawn);
        move || format!("id-{}", drawn.fetch_add(1, SeqCst))
    };
    let h = Harness::new(memory(), {
        let genid = genid.clone();
        move |l| l.genid(genid)
    });
    let stale = common::cookie_for("gone");
    for cookie in [None, Some(stale.as_str())] {
        let r = h.get("/", cookie).await;
        r.assert_ok("ok");
        r.assert_no_cookie();
    }
    assert_eq!(drawn.load(SeqCst), 0);
    assert_eq!(h.writes(), 0);
    // Reading anything starts it, once: the id the handler sees is the one the cookie carries.
    let r = h.get("/set", None).await;
    r.assert_ok("set");
    assert_eq!((r.sid(), drawn.load(SeqCst)), ("id-0".to_owned(), 1));
    let r = h.get("/id", None).await;
    assert_eq!((r.body.as_str(), drawn.load(SeqCst)), ("id-1", 2));
    r.assert_no_cookie();

    let h = Harness::new(memory(), move |l| l.genid(genid).save_uninitialized(true));
    let r = h.get("/", None).await;
    r.assert_ok("ok");
    assert_eq!((r.sid(), drawn.load(SeqCst)), ("id-2".to_owned(), 3));
    assert!(h.record("id-2").await.is_some());
}
