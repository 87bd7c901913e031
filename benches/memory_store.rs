//! `MemoryStore` under contention: several tokio tasks on a multi-threaded runtime loading and
//! saving at once, over their own sessions and over one shared session. Run with
//! `cargo bench --bench memory_store`.

// criterion_group! and criterion_main! define public functions that cannot carry docs.
#![allow(missing_docs)]

mod common;

use std::{sync::Arc, time::Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use express_session::{generate_id, MemoryStore, Record, SessionStore, Update};

const TASKS: [usize; 3] = [1, 8, 64];
const OPS_PER_TASK: u64 = 200;
const TEXT: &str = r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/","sameSite":"lax"},"user":"alice","n":1}"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A store holding `n` sessions besides the ones the tasks use, as a live server would.
fn filled(n: usize, rt: &tokio::runtime::Runtime) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let record = Record::new(TEXT, None);
    rt.block_on(async {
        for _ in 0..n {
            store.create(&generate_id(), &record).await.expect("create");
        }
    });
    store
}

/// Each task loads its record and writes it back (compare-and-set), `OPS_PER_TASK` times.
async fn load_save(store: Arc<MemoryStore>, ids: Arc<Vec<String>>, tasks: usize) {
    let record = Record::new(TEXT, None);
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (store, ids, record) = (Arc::clone(&store), Arc::clone(&ids), record.clone());
            tokio::spawn(async move {
                let id = &ids[t % ids.len()];
                for _ in 0..OPS_PER_TASK {
                    let current = store.load_and_touch(id, None).await.expect("load").expect("live");
                    match store.update(id, &record, &current).await.expect("update") {
                        Update::Done | Update::Conflict(_) => {}
                        Update::Gone => panic!("record vanished"),
                        other => panic!("unexpected update outcome {other:?}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
}

fn contention(c: &mut Criterion) {
    let rt = runtime();
    let store = filled(10_000, &rt);
    let own: Arc<Vec<String>> = Arc::new((0..64).map(|_| generate_id()).collect());
    let shared: Arc<Vec<String>> = Arc::new(vec![generate_id()]);
    rt.block_on(async {
        for id in own.iter().chain(shared.iter()) {
            store.create(id, &Record::new(TEXT, None)).await.expect("create");
        }
    });
    let mut g = c.benchmark_group("memory_store_load_save");
    for tasks in TASKS {
        g.throughput(criterion::Throughput::Elements(tasks as u64 * OPS_PER_TASK));
        for (name, ids) in [("own_session", &own), ("one_session", &shared)] {
            g.bench_with_input(BenchmarkId::new(name, tasks), &tasks, |b, &tasks| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        rt.block_on(load_save(Arc::clone(&store), Arc::clone(ids), tasks));
                    }
                    start.elapsed()
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("memory_store_create");
    g.bench_function("create_fresh_id", |b| {
        let record = Record::new(TEXT, None);
        b.to_async(&rt).iter(|| {
            let (store, record) = (Arc::clone(&store), record.clone());
            async move { store.create(&generate_id(), &record).await.expect("create") }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::short(20);
    targets = contention
}
criterion_main!(benches);
