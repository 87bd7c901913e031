//! How much memory `MemoryStore` takes per session: fills a store with `SESSIONS` (default one
//! million) small sessions, each a 32-character id and the JSON document the layer writes for a
//! session holding one short string, and prints the growth of the process's resident set per
//! session next to the bytes of the id and JSON themselves. Not a criterion bench: it measures
//! bytes, once. Run with `cargo bench --bench memory_footprint` (Linux: it reads
//! `/proc/self/status`).

use std::time::Instant;

use express_session::{generate_id, MemoryStore, Record, SessionStore};

/// What the layer stores for `session.insert("user", "alice")` with the default cookie.
const DOC: &str =
    r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/","sameSite":"lax"},"user":"alice"}"#;

/// The resident set of this process in bytes, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not meaningful here.
    let n: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    // Ids are made up front so that only the store's own memory is in the difference below.
    let ids: Vec<String> = (0..n).map(|_| generate_id()).collect();
    let record = Record::new(DOC, None);
    let store = MemoryStore::new();
    let Some(before) = rss_bytes() else {
        eprintln!("memory_footprint: no /proc/self/status here; nothing measured");
        return;
    };
    let start = Instant::now();
    rt.block_on(async {
        for id in &ids {
            assert!(store.create(id, &record).await.expect("create"), "id collision");
        }
    });
    let elapsed = start.elapsed();
    let after = rss_bytes().expect("VmRSS");
    assert_eq!(store.len(), n);

    let grown = after.saturating_sub(before) as f64;
    let per_session = grown / n as f64;
    let payload = (ids[0].len() + DOC.len()) as f64;
    println!(
        "memory_footprint: {n} sessions of {} bytes of JSON + a {}-byte id",
        DOC.len(),
        ids[0].len()
    );
    println!(
        "memory_footprint: resident set grew {:.1} MiB: {per_session:.0} bytes per session, {:.2}x the id and JSON ({payload:.0} bytes)",
        grown / (1024.0 * 1024.0),
        per_session / payload
    );
    println!(
        "memory_footprint: filled in {:.2} s ({:.0} creates/s on one thread)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    drop(ids);
}
