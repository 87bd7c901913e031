//! Numbers in stored records, checked byte for byte against JavaScript's `JSON.stringify`
//! (what express-session writes): 1001 doubles from `tests/fixtures/json_numbers.json`, made by
//! `tests/interop/gen_numbers.js` with Node (edge cases, then doubles of every size).
//!
//! A record Node wrote must come back from a load and a save as the same text, and a number a
//! Rust handler stores must be written as Node would write the same double.

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
};

use express_session::{
    codec::{decode, encode, Data},
    MemoryStore, Session, SessionLayer, SessionStore,
};
use http::{header, Request, Response};
use serde_json::Value;
use tower::{service_fn, Layer, ServiceExt};

const COOKIE: &str = r#"{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}"#;

/// (the double, JavaScript's text for it)
fn numbers() -> &'static [(f64, String)] {
    static NUMBERS: OnceLock<Vec<(f64, String)>> = OnceLock::new();
    NUMBERS.get_or_init(|| {
        let doc: Value = serde_json::from_str(include_str!("fixtures/json_numbers.json")).expect("fixture is JSON");
        assert_eq!(doc["version"], 1);
        doc["numbers"]
            .as_array()
            .expect("number list")
            .iter()
            .map(|n| {
                let bits = u64::from_str_radix(n["bits"].as_str().unwrap(), 16).unwrap();
                (f64::from_bits(bits), n["json"].as_str().unwrap().to_owned())
            })
            .collect()
    })
}

/// Fails listing every number in `wrong`, out of how many.
fn assert_none_wrong(wrong: &[String]) {
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        numbers().len(),
        wrong.join("\n")
    );
}

fn record(json: &str) -> String {
    format!(r#"{{"cookie":{COOKIE},"n":{json}}}"#)
}

#[test]
fn fixture_covers_the_forms_javascript_writes() {
    let texts: Vec<&str> = numbers().iter().map(|(_, j)| j.as_str()).collect();
    assert!(texts.len() > 1000);
    for form in ["e+", "e-", "."] {
        assert!(
            texts.iter().any(|t| t.contains(form)),
            "no number written with {form:?}"
        );
    }
    assert!(texts.contains(&"1e+21") && texts.contains(&"100") && texts.contains(&"5e-324"));
}

#[test]
fn records_node_wrote_save_back_as_the_same_text() {
    let mut wrong = Vec::new();
    for (_, json) in numbers() {
        let text = record(json);
        let (cookie, data) = decode(&text, usize::MAX).expect("Node's record decodes");
        let again = encode(&cookie, &data);
        if again != text {
            wrong.push(format!("{json} came back as {again}"));
        }
    }
    assert_none_wrong(&wrong);
}

#[test]
fn doubles_are_written_as_javascript_writes_them() {
    let (cookie, _) = decode(&record("0"), usize::MAX).unwrap();
    let mut wrong = Vec::new();
    for (x, json) in numbers() {
        let mut data = Data::new();
        data.insert("n".into(), Value::from(*x));
        let text = encode(&cookie, &data);
        if text != record(json) {
            wrong.push(format!("{x:e}: JavaScript {json}, we wrote {text}"));
        }
    }
    assert_none_wrong(&wrong);
}

/// Through the layer: what a handler inserts is stored in JavaScript's form.
#[tokio::test]
async fn a_handler_s_floats_reach_the_store_in_javascript_s_form() {
    let store = Arc::new(MemoryStore::new());
    let layer = SessionLayer::with_store(store.clone())
        .secret("numbers")
        .build()
        .unwrap();
    let svc = layer.layer(service_fn(|req: Request<()>| async move {
        let session = req.extensions().get::<Session>().unwrap().clone();
        session.insert("whole", 100.0_f64).unwrap();
        session.insert("big", 1e21_f64).unwrap();
        session.insert("tiny", 1.5e-7_f64).unwrap();
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    let set_cookie = res.headers()[header::SET_COOKIE].to_str().unwrap();
    let value = set_cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let signed = percent_decode(value);
    let id = signed.strip_prefix("s:").unwrap().rsplit_once('.').unwrap().0;
    let record = store.load(id).await.unwrap().expect("saved");
    assert!(
        record.data.ends_with(r#","whole":100,"big":1e+21,"tiny":1.5e-7}"#),
        "{}",
        record.data
    );
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}
