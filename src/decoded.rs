//! Sessions this layer loaded or saved recently, kept decoded, so that loading one again skips
//! parsing its JSON.
//!
//! An entry is the session decoded from one exact text, and it is used only for a record whose
//! text is exactly that one. Decoding is a function of the text alone, so an entry can never be
//! stale: whatever wrote the record (this process, another one, Node), the text the store hands
//! back decides, and a changed text simply misses. The cache saves the parse and nothing else.
//!
//! It is bounded: [`PER_SHARD`] entries in each of [`SHARDS`] shards, each of a text of at most
//! [`MAX_TEXT`] bytes; the least recently used entry of a shard makes room for a new one.

use std::{
    hash::BuildHasher,
    sync::{Arc, Mutex, MutexGuard},
};

use foldhash::fast::RandomState;

use crate::{
    codec::{self, Data, DecodeError},
    cookie::SessionCookie,
};

const SHARDS: usize = 16;
const PER_SHARD: usize = 16;
/// Texts longer than this are decoded every time rather than kept.
const MAX_TEXT: usize = 4096;

struct Entry {
    id: Box<str>,
    text: Box<str>,
    cookie: SessionCookie,
    data: Arc<Data>,
    /// The shard's clock when the entry was last used.
    used: u64,
}

#[derive(Default)]
struct Shard {
    entries: Vec<Entry>,
    clock: u64,
}

/// The decoded sessions of one layer.
pub(crate) struct DecodedCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

impl DecodedCache {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
        }
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(id) as usize) % self.shards.len();
        // Every critical section leaves the shard consistent, so a poisoned lock is still usable.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session in `text`, the record of session `id`: the kept copy if it was decoded from
    /// exactly this text, or else `text` decoded now (and kept). Errors as [`codec::decode`].
    pub(crate) fn decode(
        &self,
        id: &str,
        text: &str,
        max_len: usize,
    ) -> Result<(SessionCookie, Arc<Data>), DecodeError> {
        if text.len() > max_len {
            return Err(DecodeError::TooLarge(text.len()));
        }
        if text.len() <= MAX_TEXT {
            let mut shard = self.shard(id);
            shard.clock += 1;
            let now = shard.clock;
            if let Some(e) = shard.entries.iter_mut().find(|e| *e.id == *id && *e.text == *text) {
                e.used = now;
                return Ok((e.cookie.clone(), Arc::clone(&e.data)));
            }
        }
        let (cookie, data) = codec::decode(text, max_len)?;
        let data = Arc::new(data);
        self.keep(id, text, &cookie, &data);
        Ok((cookie, data))
    }

    /// Keeps `cookie` and `data` as the session decoded from `text`, session `id`'s record now
    /// (what a save just wrote), in place of any older copy of `id`.
    pub(crate) fn keep(&self, id: &str, text: &str, cookie: &SessionCookie, data: &Arc<Data>) {
        if text.len() > MAX_TEXT {
            self.forget(id);
            return;
        }
        let mut shard = self.shard(id);
        shard.clock += 1;
        let used = shard.clock;
        let entry = Entry {
            id: id.into(),
            text: text.into(),
            cookie: cookie.clone(),
            data: Arc::clone(data),
            used,
        };
        let slot = match shard.entries.iter().position(|e| *e.id == *id) {
            Some(at) => Some(at),
            None if shard.entries.len() < PER_SHARD => None,
            None => shard
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map(|(at, _)| at),
        };
        let old = match slot {
            Some(at) => Some(std::mem::replace(&mut shard.entries[at], entry)),
            None => {
                shard.entries.push(entry);
                None
            }
        };
        drop(shard);
        drop(old); // freed outside the lock
    }

    /// Drops the copy of session `id`, if there is one (it was destroyed).
    pub(crate) fn forget(&self, id: &str) {
        let mut shard = self.shard(id);
        let old = shard
            .entries
            .iter()
            .position(|e| *e.id == *id)
            .map(|at| shard.entries.swap_remove(at));
        drop(shard);
        drop(old);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).entries.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1}"#;

    #[test]
    fn a_text_decoded_once_is_served_from_the_cache_until_it_changes() {
        let cache = DecodedCache::new();
        let (_, first) = cache.decode("a", TEXT, usize::MAX).unwrap();
        let (_, again) = cache.decode("a", TEXT, usize::MAX).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second load of the same text is not parsed again"
        );
        // Another text under the same id (another writer saved): decoded afresh, never stale.
        let changed = TEXT.replace(r#""n":1"#, r#""n":2"#);
        let (_, now) = cache.decode("a", &changed, usize::MAX).unwrap();
        assert_eq!(now.get("n"), Some(&2.into()));
        // The same text under another id is that session's own entry.
        let (_, other) = cache.decode("b", TEXT, usize::MAX).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_save_replaces_the_copy_and_a_destroy_drops_it() {
        let cache = DecodedCache::new();
        let (cookie, data) = cache.decode("a", TEXT, usize::MAX).unwrap();
        let mut saved = Data::clone(&data);
        saved.insert("n".into(), 5.into());
        let saved = Arc::new(saved);
        let text = codec::encode(&cookie, &saved);
        cache.keep("a", &text, &cookie, &saved);
        assert!(Arc::ptr_eq(&cache.decode("a", &text, usize::MAX).unwrap().1, &saved));
        assert_eq!(cache.len(), 1);
        cache.forget("a");
        assert_eq!(cache.len(), 0);
        let (_, again) = cache.decode("a", &text, usize::MAX).unwrap();
        assert!(!Arc::ptr_eq(&again, &saved));
    }

    #[test]
    fn it_is_bounded_and_keeps_what_was_used_last() {
        let cache = DecodedCache::new();
        let ids: Vec<String> = (0..SHARDS * PER_SHARD * 4).map(|i| format!("s{i}")).collect();
        let hot = cache.decode("hot", TEXT, usize::MAX).unwrap().1;
        for id in &ids {
            cache.decode(id, TEXT, usize::MAX).unwrap();
            // "hot" is used between every two others: it is never the least recently used.
            assert!(Arc::ptr_eq(&cache.decode("hot", TEXT, usize::MAX).unwrap().1, &hot));
        }
        assert_eq!(cache.len(), SHARDS * PER_SHARD);
        // Too long to keep, and over the layer's limit: an error, as from `codec::decode`.
        let long = TEXT.replace(r#""n":1"#, &format!(r#""n":"{}""#, "x".repeat(MAX_TEXT)));
        cache.decode("long", &long, usize::MAX).unwrap();
        assert_eq!(cache.len(), SHARDS * PER_SHARD);
        assert!(matches!(cache.decode("a", TEXT, 10), Err(DecodeError::TooLarge(_))));
    }
}
