//! A store wrapper that counts calls, for metrics and for tests that assert round trips.

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc,
};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Record, SessionStore, Update};
use crate::error::StoreError;

/// Wraps a store and counts every call made through it.
///
/// Clones share the counters. Useful as a metrics source, and in tests that check how many
/// store calls a request costs.
///
/// ```
/// use express_session::{CountingStore, MemoryStore, SessionStore};
/// # tokio_test_block_on(async {
/// let store = CountingStore::new(MemoryStore::default());
/// assert_eq!(store.load("nope").await.unwrap(), None);
/// assert_eq!(store.counts().load, 1);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CountingStore<S> {
    inner: S,
    counts: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    load: AtomicU64,
    load_and_touch: AtomicU64,
    create: AtomicU64,
    update: AtomicU64,
    touch: AtomicU64,
    destroy: AtomicU64,
}

/// A snapshot of a [`CountingStore`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCounts {
    /// Calls of `load`.
    pub load: u64,
    /// Calls of `load_and_touch`.
    pub load_and_touch: u64,
    /// Calls of `create`.
    pub create: u64,
    /// Calls of `update`.
    pub update: u64,
    /// Calls of `touch`.
    pub touch: u64,
    /// Calls of `destroy`.
    pub destroy: u64,
}

impl StoreCounts {
    /// All calls together: for a backend with one round trip per call, the round trips.
    pub fn total(&self) -> u64 {
        self.load + self.load_and_touch + self.create + self.update + self.touch + self.destroy
    }
}

impl<S> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counts: Arc::default(),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The counts so far.
    pub fn counts(&self) -> StoreCounts {
        let c = &self.counts;
        StoreCounts {
            load: c.load.load(Relaxed),
            load_and_touch: c.load_and_touch.load(Relaxed),
            create: c.create.load(Relaxed),
            update: c.update.load(Relaxed),
            touch: c.touch.load(Relaxed),
            destroy: c.destroy.load(Relaxed),
        }
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        let c = &self.counts;
        for a in [&c.load, &c.load_and_touch, &c.create, &c.update, &c.touch, &c.destroy] {
            a.store(0, Relaxed);
        }
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for CountingStore<S> {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.counts.load.fetch_add(1, Relaxed);
        self.inner.load(id).await
    }
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        self.counts.load_and_touch.fetch_add(1, Relaxed);
        self.inner.load_and_touch(id, expires).await
    }
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        self.counts.create.fetch_add(1, Relaxed);
        self.inner.create(id, record).await
    }
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        self.counts.update.fetch_add(1, Relaxed);
        self.inner.update(id, record, expected).await
    }
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        self.counts.touch.fetch_add(1, Relaxed);
        self.inner.touch(id, expires).await
    }
    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.counts.destroy.fetch_add(1, Relaxed);
        self.inner.destroy(id).await
    }
}
