//! The whole layer on one in-process request (tower `oneshot`, no network), over
//! `MemoryStore`: a request that creates a session, one that reads it, one that increments a
//! counter in it, and one that never touches it. Run with `cargo bench --bench layer`.

// criterion_group! and criterion_main! define public functions that cannot carry docs.
#![allow(missing_docs)]

mod common;

use std::convert::Infallible;

use criterion::{criterion_group, criterion_main, Criterion};
use express_session::{MemoryStore, Session, SessionLayer};
use http::{header, Request, Response};
use tower::{service_fn, Layer, ServiceExt};

type Body = String;

async fn handler(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let session = req.extensions().get::<Session>().cloned();
    let body = match (req.uri().path(), session) {
        ("/", Some(s)) => {
            s.insert("user", "alice").expect("insert");
            "set".to_owned()
        }
        ("/get", Some(s)) => s.get::<String>("user").unwrap_or_default(),
        ("/inc", Some(s)) => s
            .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
            .expect("update")
            .to_string(),
        _ => "hello".to_owned(),
    };
    Ok(Response::new(body))
}

fn request(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    req.body(Body::new()).expect("request")
}

fn layer_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let layer = SessionLayer::new(MemoryStore::new())
        .secret("bench secret")
        .build()
        .expect("valid layer");
    let svc = layer.layer(service_fn(handler));
    // One session to read and write, made through the layer itself.
    let cookie = rt.block_on(async {
        let res = svc.clone().oneshot(request("/", None)).await.expect("infallible");
        let set = res.headers()[header::SET_COOKIE].to_str().expect("ascii").to_owned();
        set.split(';').next().expect("name=value").to_owned()
    });

    let mut g = c.benchmark_group("layer_oneshot");
    for (name, path, cookie) in [
        ("hello_no_session_use", "/hello", None),
        ("new_session", "/", None),
        ("read", "/get", Some(cookie.as_str())),
        ("write_update", "/inc", Some(cookie.as_str())),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let svc = svc.clone();
                async move {
                    let res = svc.oneshot(request(path, cookie)).await.expect("infallible");
                    assert!(res.status().is_success());
                    res
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::short(30);
    targets = layer_benches
}
criterion_main!(benches);
