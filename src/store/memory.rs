//! [`MemoryStore`]: sessions in this process's memory.

use std::{
    collections::{hash_map, HashMap},
    hash::BuildHasher,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, MutexGuard,
    },
};

use async_trait::async_trait;
use foldhash::fast::RandomState;
use time::OffsetDateTime;

use super::{from_unix_ms, unix_ms, Record, SessionStore, Update, DEFAULT_TTL};
use crate::error::StoreError;

const SHARDS: usize = 32;

struct Entry {
    data: Box<str>,
    expires_ms: i64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<str>, Entry, RandomState>,
    /// Inserts since this shard was last swept.
    inserts: usize,
}

impl Shard {
    /// Removes `id`'s record.
    fn remove(&mut self, id: &str, len: &AtomicUsize) {
        if self.map.remove(id).is_some() {
            len.fetch_sub(1, Ordering::Relaxed);
        }
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
/// [`DEFAULT_TTL`] after its last save or touch.
///
/// It is the default store and right for one process; sessions are lost on restart. Use
/// `SqliteStore` to keep them, or a network store to share them between processes.
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    /// Picks the shard. foldhash (seeded per process and per map) rather than SipHash: the keys
    /// are session ids the layer made or verified the signature of, so no client chooses them.
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

/// Now, and when a record saved now with `expires` expires
/// ([`effective_expiry`](super::effective_expiry)), in Unix milliseconds, from one reading of
/// the clock.
fn now_and_expiry_ms(expires: Option<OffsetDateTime>) -> (i64, i64) {
    let now = OffsetDateTime::now_utc();
    (unix_ms(now), unix_ms(expires.unwrap_or(now + DEFAULT_TTL)))
}

impl MemoryStore {
    /// An empty store without a cap.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
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
        Ok(text.map(|(data, expires_ms)| Record::new(data, from_unix_ms(expires_ms))))
    }

    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        let (now, expires_ms) = now_and_expiry_ms(expires);
        let mut s = self.shard(id);
        let text = self.with_live(&mut s, id, now, |e| {
            e.expires_ms = expires_ms;
            e.data.to_string()
        });
        Ok(text.map(|data| Record::new(data, from_unix_ms(expires_ms))))
    }

    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        if let Some(max) = self.max_sessions {
            if self.len() >= max && (self.sweep() == 0 || self.len() >= max) {
                return Err(StoreError::Full);
            }
        }
        let (now, expires_ms) = now_and_expiry_ms(record.expires);
        let mut s = self.shard(id);
        // One lookup: the id's slot, whether it is free, holds an expired record, or a live one.
        match s.map.entry(id.into()) {
            hash_map::Entry::Occupied(o) if o.get().expires_ms > now => return Ok(false),
            hash_map::Entry::Occupied(o) if expires_ms <= now => {
                o.remove();
                self.len.fetch_sub(1, Ordering::Relaxed);
                return Ok(true);
            }
            hash_map::Entry::Occupied(mut o) => {
                // An expired record under this id: the new one takes its place.
                *o.get_mut() = Entry {
                    data: record.data.as_str().into(),
                    expires_ms,
                };
            }
            hash_map::Entry::Vacant(_) if expires_ms <= now => return Ok(true),
            hash_map::Entry::Vacant(v) => {
                v.insert(Entry {
                    data: record.data.as_str().into(),
                    expires_ms,
                });
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
        s.inserts += 1;
        if s.inserts > s.map.len().max(64) / 2 {
            self.sweep_shard(&mut s, now);
        }
        Ok(true)
    }

    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        let (now, expires_ms) = now_and_expiry_ms(record.expires);
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
            Some(Found::Other(data, expires_ms)) => Update::Conflict(Record::new(data, from_unix_ms(expires_ms))),
            Some(Found::Expired) => {
                s.remove(id, &self.len);
                Update::Done
            }
            Some(Found::Written) => Update::Done,
        })
    }

    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        let (now, expires_ms) = now_and_expiry_ms(expires);
        let mut s = self.shard(id);
        self.with_live(&mut s, id, now, |e| e.expires_ms = expires_ms);
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
    async fn create_over_an_expired_record_takes_its_place_and_counts_once() {
        let store = MemoryStore::new();
        let expire_in_place =
            |store: &MemoryStore| store.shard("a").map.get_mut("a").unwrap().expires_ms = now_ms() - 1;
        assert!(store.create("a", &rec(r#"{"v":1}"#, Duration::hours(1))).await.unwrap());
        assert!(!store.create("a", &rec(r#"{"v":9}"#, Duration::hours(1))).await.unwrap());
        expire_in_place(&store);
        assert!(store.create("a", &rec(r#"{"v":2}"#, Duration::hours(1))).await.unwrap());
        assert_eq!(store.len(), 1);
        assert_eq!(store.load("a").await.unwrap().unwrap().data, r#"{"v":2}"#);
        // Over an expired record, a record that is itself already expired leaves nothing.
        expire_in_place(&store);
        assert!(store.create("a", &rec("{}", Duration::seconds(-1))).await.unwrap());
        assert_eq!((store.len(), store.shard("a").map.len()), (0, 0));
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

    #[tokio::test]
    async fn records_without_expiry_get_the_default_lifetime() {
        let store = MemoryStore::new();
        store.create("a", &Record::new("{}", None)).await.unwrap();
        let e = store.load("a").await.unwrap().unwrap().expires.unwrap();
        let left = e - OffsetDateTime::now_utc();
        assert!(left > Duration::hours(23) && left <= Duration::days(1), "{left}");
    }
}
