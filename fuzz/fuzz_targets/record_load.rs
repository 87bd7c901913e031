//! A stored record's text loaded by a real `SessionLayer` (over a `CountingStore<MemoryStore>`)
//! for a request with the session's validly signed cookie, then changed and saved.
//!
//! Checks: no panic and no 5xx; the session loads exactly when `codec::decode` reads the
//! record (a corrupt one is destroyed and replaced by a new session); and the record the layer
//! saves back decodes again.

#![no_main]

use express_session::{codec, DEFAULT_MAX_RECORD_SIZE};
use express_session_fuzz::{check_record, harness, signed_value, NAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decodes = check_record(text, DEFAULT_MAX_RECORD_SIZE);
    let h = harness();
    h.store_record(text);
    let cookie = format!("{NAME}={}", signed_value(true)).into_bytes();
    let reply = h.get("/write", &[cookie]);
    assert!(!reply.status.is_server_error(), "{reply:?} for {text:?}");
    let counts = h.store.counts();
    if decodes {
        assert!(reply.body.starts_with("loaded "), "{reply:?} for {text:?}");
        assert_eq!(counts.update, 1, "{text:?}");
        // Gone only if the record's own cookie had expired, so the save dropped it.
        if let Some(saved) = h.stored_record() {
            let decoded = codec::decode(&saved, usize::MAX);
            decoded.unwrap_or_else(|e| panic!("saved record does not decode ({e}): {saved}"));
        }
    } else {
        assert!(reply.body.starts_with("new "), "{reply:?} for {text:?}");
        assert_eq!(counts.destroy, 1, "{text:?}");
    }
});
