//! [`MemoryStore`]: sessions in this process's memory.

use std::{
    collections::{HashMap, VecDeque},
    hash::BuildHasher,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use async_trait::async_trait;
use std::collections::hash_map::RandomState;
use time::OffsetDateTime;

use super::{effective_expiry, from_unix_ms, unix_ms, Decoded, Record, SessionStore, Update};
use crate::error::StoreError;

const SHARDS: usize = 32;

/// How many of its most recently saved sessions each shard keeps decoded (so at most
/// `SHARDS * HOT` in all): a session read again soon after a save is handed to the layer
/// without parsing its text.
const HOT: usize = 8;

struct Entry {
    data: Box<str>,
    expires_ms: i64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<str>, Entry>,
    /// Inserts since this shard was last swept.
    inserts: usize,
    /// The decoded sessions of its last saves, oldest first, at most [`HOT`]: each is the
    /// session of its id's current text, or is dropped when that text changes or goes.
    hot: VecDeque<(Box<str>, Arc<Decoded>)>,
}

impl Shard {
    fn hot(&self, id: &str, text: &str) -> Option<Arc<Decoded>> {
        self.hot
            .iter()
            .find(|(k, d)| **k == *id && *d.text == *text)
            .map(|(_, d)| Arc::clone(d))
    }

    fn forget_hot(&mut self, id: &str) {
        if let Some(at) = self.hot.iter().position(|(k, _)| **k == *id) {
            self.hot.remove(at);
        }
    }

    /// Keeps `decoded` as `id`'s session (or forgets the old one when the save brought none).
    fn remember_hot(&mut self, id: &str, decoded: Option<&Arc<Decoded>>) {
        self.forget_hot(id);
        if let Some(d) = decoded {
            if self.hot.len() == HOT {
                self.hot.pop_front();
            }
            self.hot.push_back((id.into(), Arc::clone(d)));
        }
    }

    /// Removes `id`'s record.
    fn remove(&mut self, id: &str, len: &AtomicUsize) {
        if self.map.remove(id).is_some() {
            len.fetch_sub(1, Ordering::Relaxed);
        }
        self.forget_hot(id);
    }
}

/// Sessions kept in memory, in shards so that concurrent requests rarely wait for each other.
///
/// Unlike express-session's `MemoryStore`, it does not leak: expiry is checked on every load,
/// and each shard sweeps out its expired records after a number of inserts proportional to its
/// size (so sweeping costs O(1) per insert, amortized), which bounds memory by the live sessions.
/// [`sweep`](Self::sweep) does it on demand and [`sweep_every`](Self::sweep_every) is a future
/// you may spawn to do it on a timer. [`max_sessions`](Self::max_sessions) caps the count.
///
/// A record saved without an expiry (a browser-session cookie) lives
/// [`DEFAULT_TTL`](super::DEFAULT_TTL) after its last save or touch.
///
/// The sessions it saved most recently (a few per shard) are also kept decoded, as the layer
/// saved them, so reading one of them again skips parsing its JSON; a later save of other text
/// (or its removal) drops that copy.
///
/// It is the default store and right for one process; sessions are lost on restart. Use
/// `SqliteStore` to keep them, or a network store to share them between processes.
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    len: AtomicUsize,
    max_sessions: Option<usize>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

impl MemoryStore {
    /// An empty store without a cap.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
            max_sessions: None,
        }
    }

    /// Caps the number of sessions. When it is reached, expired records are swept first; if
    /// none can go, creating a session fails with [`StoreError::Full`] (a `503` to the client)
    /// rather than evicting a live session. Default: no cap.
    #[must_use]
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = Some(max);
        self
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(id) as usize) % self.shards.len();
        // A panic while holding a shard cannot leave an entry half-written, so a poisoned lock
        // is safe to keep using.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of records held, live or not yet swept.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Deletes every record.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
            self.len.fetch_sub(s.map.len(), Ordering::Relaxed);
            s.map.clear();
            s.hot.clear();
        }
    }

    /// Deletes every expired record now and returns how many went.
    pub fn sweep(&self) -> usize {
        let now = now_ms();
        self.shards
            .iter()
            .map(|shard| {
                let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
                self.sweep_shard(&mut s, now)
            })
            .sum()
    }

    fn sweep_shard(&self, s: &mut Shard, now: i64) -> usize {
        let before = s.map.len();
        s.map.retain(|_, e| e.expires_ms > now);
        let Shard { map, hot, .. } = s;
        hot.retain(|(id, _)| map.contains_key(id));
        s.inserts = 0;
        let gone = before - s.map.len();
        self.len.fetch_sub(gone, Ordering::Relaxed);
        gone
    }

    /// Sweeps expired records every `period`, forever. Spawn it if you want sweeping on a timer
    /// as well as the amortized sweeping on inserts:
    ///
    /// ```no_run
    /// # async fn f() {
    /// use std::{sync::Arc, time::Duration};
    /// let store = Arc::new(express_session::MemoryStore::new());
    /// tokio::spawn({
    ///     let store = Arc::clone(&store);
    ///     async move { store.sweep_every(Duration::from_secs(60)).await }
    /// });
    /// # }
    /// ```
    pub async fn sweep_every(&self, period: std::time::Duration) {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let gone = self.sweep();
            tracing::debug!(gone, "memory store swept expired sessions");
        }
    }

    /// Runs `f` on the live record under `id`, if there is one; an expired one is removed.
    /// One map lookup when the record is live.
    fn with_live<R>(&self, s: &mut Shard, id: &str, now: i64, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        match s.map.get_mut(id) {
            Some(e) if e.expires_ms > now => return Some(f(e)),
            Some(_) => {}
            None => return None,
        }
        s.remove(id, &self.len);
        None
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let mut s = self.shard(id);
        let text = self.with_live(&mut s, id, now_ms(), |e| (e.data.to_string(), e.expires_ms));
        Ok(text.map(|(data, expires_ms)| Record {
            decoded: s.hot(id, &data),
            data,
            expires: from_unix_ms(expires_ms),
        }))
    }

    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        let expires_ms = unix_ms(effective_expiry(expires));
        let mut s = self.shard(id);
        let text = self.with_live(&mut s, id, now_ms(), |e| {
            e.expires_ms = expires_ms;
            e.data.to_string()
        });
        Ok(text.map(|data| Record {
            decoded: s.hot(id, &data),
            data,
            expires: from_unix_ms(expires_ms),
        }))
    }

    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        if let Some(max) = self.max_sessions {
            if self.len() >= max && (self.sweep() == 0 || self.len() >= max) {
                return Err(StoreError::Full);
            }
        }
        let now = now_ms();
        let expires_ms = unix_ms(effective_expiry(record.expires));
        let mut s = self.shard(id);
        if self.with_live(&mut s, id, now, |_| ()).is_some() {
            return Ok(false);
        }
        if expires_ms <= now {
            return Ok(true);
        }
        s.map.insert(
            id.into(),
            Entry {
                data: record.data.as_str().into(),
                expires_ms,
            },
        );
        self.len.fetch_add(1, Ordering::Relaxed);
        s.remember_hot(id, record.decoded.as_ref());
        s.inserts += 1;
        if s.inserts > s.map.len().max(64) / 2 {
            self.sweep_shard(&mut s, now);
        }
        Ok(true)
    }

    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        let now = now_ms();
        let expires_ms = unix_ms(effective_expiry(record.expires));
        let mut s = self.shard(id);
        enum Found {
            Written,
            Expired,
            Other(String, i64),
        }
        let found = self.with_live(&mut s, id, now, |e| {
            if *e.data != *expected.data {
                Found::Other(e.data.to_string(), e.expires_ms)
            } else if expires_ms <= now {
                Found::Expired
            } else {
                e.data = record.data.as_str().into();
                e.expires_ms = expires_ms;
                Found::Written
            }
        });
        Ok(match found {
            None => Update::Gone,
            Some(Found::Other(data, expires_ms)) => Update::Conflict(Record {
                decoded: s.hot(id, &data),
                data,
                expires: from_unix_ms(expires_ms),
            }),
            Some(Found::Expired) => {
                s.remove(id, &self.len);
                Update::Done
            }
            Some(Found::Written) => {
                s.remember_hot(id, record.decoded.as_ref());
                Update::Done
            }
        })
    }

    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        let expires_ms = unix_ms(effective_expiry(expires));
        let mut s = self.shard(id);
        self.with_live(&mut s, id, now_ms(), |e| e.expires_ms = expires_ms);
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.shard(id).remove(id, &self.len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn rec(data: &str, expires_in: Duration) -> Record {
        Record::new(data, Some(OffsetDateTime::now_utc() + expires_in))
    }

    #[tokio::test]
    async fn expired_records_are_not_loaded_and_are_removed() {
        let store = MemoryStore::new();
        assert!(store.create("a", &rec("{}", Duration::hours(1))).await.unwrap());
        // Age the record in place: no sleeping.
        store.shard("a").map.get_mut("a").unwrap().expires_ms = now_ms() - 1;
        assert_eq!(store.load("a").await.unwrap(), None);
        assert_eq!(store.len(), 0);
    }

    #[tokio::test]
    async fn sweeping_bounds_memory_without_reads() {
        let store = MemoryStore::new();
        for i in 0..10_000 {
            let id = format!("s{i}");
            store.create(&id, &rec("{}", Duration::hours(1))).await.unwrap();
            // Expire each right away, as if it had been abandoned long ago.
            store.shard(&id).map.get_mut(id.as_str()).unwrap().expires_ms = now_ms() - 1;
        }
        // Nothing was ever read again, yet the amortized sweep kept the store small.
        assert!(store.len() < 10_000 / 4, "len {}", store.len());
        assert!(store.sweep() > 0 || store.is_empty());
        assert_eq!(store.len(), 0);
    }

    #[tokio::test]
    async fn cap_refuses_new_sessions_but_reclaims_expired_ones() {
        let store = MemoryStore::new().max_sessions(2);
        assert!(store.create("a", &rec("{}", Duration::hours(1))).await.unwrap());
        assert!(store.create("b", &rec("{}", Duration::hours(1))).await.unwrap());
        assert!(matches!(
            store.create("c", &rec("{}", Duration::hours(1))).await,
            Err(StoreError::Full)
        ));
        store.shard("a").map.get_mut("a").unwrap().expires_ms = now_ms() - 1;
        assert!(store.create("c", &rec("{}", Duration::hours(1))).await.unwrap());
        assert_eq!(store.len(), 2);
    }

    fn decoded_rec(data: &str, expires_in: Duration) -> Record {
        let cookie = crate::cookie::SessionCookie::from_config(
            &crate::config::CookieConfig::default(),
            false,
            OffsetDateTime::now_utc(),
        );
        let data: crate::codec::Data = serde_json::from_str(data).unwrap();
        Record::new(
            crate::codec::encode(&cookie, &data),
            Some(OffsetDateTime::now_utc() + expires_in),
        )
        .with_decoded(&cookie, &Arc::new(data))
    }

    #[tokio::test]
    async fn recently_saved_sessions_load_decoded_until_their_text_changes() {
        let store = MemoryStore::new();
        let first = decoded_rec(r#"{"n":1}"#, Duration::hours(1));
        assert!(store.create("a", &first).await.unwrap());
        let loaded = store.load_and_touch("a", None).await.unwrap().unwrap();
        let d = loaded.decoded().expect("a session saved decoded loads decoded");
        assert_eq!(d.data.get("n"), Some(&1.into()));
        // Saved as text only (as another process would): the old decoded session is gone.
        let text_only = Record::new(
            r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":2}"#,
            None,
        );
        assert_eq!(store.update("a", &text_only, &loaded).await.unwrap(), Update::Done);
        let loaded = store.load("a").await.unwrap().unwrap();
        assert!(loaded.decoded().is_none());
        let second = decoded_rec(r#"{"n":3}"#, Duration::hours(1));
        assert_eq!(store.update("a", &second, &loaded).await.unwrap(), Update::Done);
        let loaded = store.load("a").await.unwrap().unwrap();
        assert_eq!(loaded.decoded().unwrap().data.get("n"), Some(&3.into()));
        // A conflict hands back the current record with its decoded session.
        match store.update("a", &second, &first).await.unwrap() {
            Update::Conflict(current) => assert_eq!(current.decoded().unwrap().data.get("n"), Some(&3.into())),
            other => panic!("{other:?}"),
        }
        store.destroy("a").await.unwrap();
        assert!(store.load("a").await.unwrap().is_none());
        assert!(store.create("a", &text_only).await.unwrap());
        assert!(store.load("a").await.unwrap().unwrap().decoded().is_none());
    }

    #[tokio::test]
    async fn decoded_sessions_are_kept_for_a_bounded_number_of_saves() {
        let store = MemoryStore::new();
        let n = SHARDS * HOT * 4;
        for i in 0..n {
            assert!(store
                .create(&format!("s{i}"), &decoded_rec(r#"{"a":1}"#, Duration::hours(1)))
                .await
                .unwrap());
        }
        let mut decoded = 0;
        for i in 0..n {
            decoded += usize::from(store.load(&format!("s{i}")).await.unwrap().unwrap().decoded().is_some());
        }
        assert!(decoded > 0 && decoded <= SHARDS * HOT, "{decoded}");
        store.clear();
        assert!(store.shards.iter().all(|s| s.lock().unwrap().hot.is_empty()));
    }

    #[tokio::test]
    async fn a_decoded_session_is_used_only_with_the_text_it_was_decoded_from() {
        let mut rec = decoded_rec(r#"{"a":1}"#, Duration::hours(1));
        assert!(rec.decoded().is_some());
        // A store wrapper that rewrites the text must not get the old decoded session back.
        rec.data = rec.data.replace(r#""a":1"#, r#""a":2"#);
        assert!(rec.decoded().is_none());
        let store = MemoryStore::new();
        store.create("a", &rec).await.unwrap();
        assert!(store.load("a").await.unwrap().unwrap().decoded().is_none());
    }

    #[tokio::test]
    async fn records_without_expiry_get_the_default_lifetime() {
        let store = MemoryStore::new();
        store.create("a", &Record::new("{}", None)).await.unwrap();
        let e = store.load("a").await.unwrap().unwrap().expires.unwrap();
        let left = e - OffsetDateTime::now_utc();
        assert!(left > Duration::hours(23) && left <= Duration::days(1), "{left}");
    }
}
