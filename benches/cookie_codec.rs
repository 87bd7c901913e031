//! Micro-benchmarks of the per-request pure work: signing and verifying the session cookie,
//! and encoding and decoding a stored record. Run with `cargo bench --bench cookie_codec`.

// criterion_group! and criterion_main! define public functions that cannot carry docs.
#![allow(missing_docs)]

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use express_session::{codec, cookie, generate_id};

const SECRET: &[u8] = b"a secret of the usual length, 32+";

/// A record as the bench server stores it after `/` and a few `/inc`.
const RECORD: &str = r#"{"cookie":{"originalMaxAge":86400000,"expires":"2026-01-02T12:00:00.000Z","httpOnly":true,"path":"/","sameSite":"lax"},"user":"alice","n":42}"#;

fn cookie_benches(c: &mut Criterion) {
    let id = generate_id();
    let signed = cookie::sign(&id, SECRET);
    let secrets = vec![SECRET.to_vec()];
    let mut g = c.benchmark_group("cookie");
    g.bench_function("sign", |b| b.iter(|| cookie::sign(black_box(&id), black_box(SECRET))));
    g.bench_function("cookie_value", |b| {
        b.iter(|| cookie::cookie_value(black_box(&id), black_box(SECRET)))
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            let id = cookie::unsign(black_box(&signed), black_box(&secrets));
            assert!(id.is_some());
            id.map(str::len)
        })
    });
    let tampered = format!("x{}", &signed[1..]);
    g.bench_function("verify_tampered", |b| {
        b.iter(|| cookie::unsign(black_box(&tampered), black_box(&secrets)).is_none())
    });
    g.bench_function("generate_id", |b| b.iter(generate_id));
    g.finish();
}

fn codec_benches(c: &mut Criterion) {
    let (session_cookie, data) = codec::decode(RECORD, usize::MAX).expect("reference record decodes");
    let mut big = data.clone();
    for i in 0..50 {
        big.insert(
            format!("key{i}"),
            serde_json::json!({"i": i, "tags": ["a", "b"], "s": "some text"}),
        );
    }
    let big_text = codec::encode(&session_cookie, &big);
    let mut g = c.benchmark_group("codec");
    g.bench_function("encode_small", |b| {
        b.iter(|| codec::encode(black_box(&session_cookie), black_box(&data)))
    });
    g.bench_function("decode_small", |b| {
        b.iter(|| codec::decode(black_box(RECORD), usize::MAX).map(|(_, d)| d.len()))
    });
    g.bench_function("encode_50_keys", |b| {
        b.iter(|| codec::encode(black_box(&session_cookie), black_box(&big)))
    });
    g.bench_function("decode_50_keys", |b| {
        b.iter(|| codec::decode(black_box(&big_text), usize::MAX).map(|(_, d)| d.len()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::short(30);
    targets = cookie_benches, codec_benches
}
criterion_main!(benches);
