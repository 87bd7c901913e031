//! The [`SessionStore`] trait and the stores that implement it.
//!
//! # The contract every store keeps
//!
//! A store keeps, per session id, one **record**: the session's JSON text (express-session's
//! document, see [`codec`](crate::codec)) and an expiry. Stores never look inside the text.
//!
//! - **Expiry is checked on every load.** A missing *or expired* record is `Ok(None)`, even if the
//!   cleanup that deletes it has not run yet. An expiry of `None` on a save means "the store's
//!   default lifetime" (one day, as connect-redis and connect-pg-simple use).
//! - **`create` inserts only if the id is absent** and reports whether it did. It never overwrites,
//!   so a colliding id can never hand one user's session to another.
//! - **`update` writes only if the record is still there and still what the caller loaded.** The
//!   content itself is the version: the store compares the stored text with `expected.data` (or a
//!   hash of both) atomically with the write. If the record is gone (destroyed, expired) the
//!   answer is [`Update::Gone`] and nothing is written: a destroyed session is never re-created by
//!   a late save. If someone else changed it, the answer is [`Update::Conflict`] with the current
//!   record, so the caller can merge its changes and try again.
//! - **`touch` moves the expiry** of an existing record without rewriting its text (as
//!   connect-redis's `EXPIRE` does). Touching a missing record does nothing.
//! - **`destroy` of an unknown id is a no-op**, not an error.
//! - Errors are [`StoreError`]s: a backend that is down or slow is
//!   [`StoreError::Unavailable`]/[`StoreError::Timeout`], which the layer turns into `503`; never
//!   treat it as "not found".
//!
//! The module `conformance` (feature `test-util`) checks all of this against any store.

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;

#[cfg(feature = "memory")]
pub mod memory;

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod sql_common;
#[cfg(feature = "sqlite")]
pub mod sqlite;

mod counting;
pub use counting::{CountingStore, StoreCounts};

#[cfg(feature = "test-util")]
pub mod conformance;

/// One stored session: its JSON text and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The session document, exactly as stored.
    pub data: String,
    /// On a save: when the record should expire (`None`: the store's default lifetime).
    /// On a load: the store's own expiry for the record, where the store knows it.
    pub expires: Option<OffsetDateTime>,
}

impl Record {
    /// A record with this text and expiry.
    pub fn new(data: impl Into<String>, expires: Option<OffsetDateTime>) -> Self {
        Self {
            data: data.into(),
            expires,
        }
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Session data may be sensitive: never print it.
        f.debug_struct("Record")
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("expires", &self.expires)
            .finish()
    }
}

/// The answer to [`SessionStore::update`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Update {
    /// The record was written.
    Done,
    /// The stored record is no longer the one expected; here is the current one. Nothing was
    /// written.
    Conflict(Record),
    /// There is no live record under this id (destroyed or expired). Nothing was written.
    Gone,
}

/// Where sessions live. See the [module docs](self) for the contract every store keeps.
///
/// The trait is object-safe: the layer holds an `Arc<dyn SessionStore>`.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Reads the live record under `id`; `Ok(None)` if it is missing or expired.
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError>;

    /// Reads the live record and moves its expiry to `expires` in the same step, where the
    /// backend can (Redis `GETEX`, SQL `UPDATE … RETURNING`): the read path of an unmodified
    /// session then costs one round trip. The returned record's `expires` is the new expiry.
    ///
    /// The default calls [`load`](Self::load) and then [`touch`](Self::touch).
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        let Some(mut record) = self.load(id).await? else {
            return Ok(None);
        };
        self.touch(id, expires).await?;
        record.expires = expires;
        Ok(Some(record))
    }

    /// Inserts a record only if `id` holds no live record. Returns whether it was inserted.
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError>;

    /// Replaces the record under `id` only if it is live and its text equals `expected.data`.
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError>;

    /// Moves the expiry of a live record; does nothing if there is none.
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError>;

    /// Deletes the record under `id`; an unknown id is fine.
    async fn destroy(&self, id: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        (**self).load(id).await
    }
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        (**self).load_and_touch(id, expires).await
    }
    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        (**self).create(id, record).await
    }
    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        (**self).update(id, record, expected).await
    }
    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        (**self).touch(id, expires).await
    }
    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        (**self).destroy(id).await
    }
}

/// Milliseconds since the Unix epoch, as JavaScript's `Date.now()` counts them (every
/// representable instant fits).
pub(crate) fn unix_ms(t: OffsetDateTime) -> i64 {
    // From whole seconds and the millisecond, not `unix_timestamp_nanos() / 1_000_000`: a
    // 128-bit division on every store call. Seconds times 1000 fit an i64 for any year `time`
    // holds.
    let ms = t.unix_timestamp() * 1000 + i64::from(t.millisecond());
    // Toward zero, as JavaScript and that division count, before 1970 with a sub-millisecond part.
    if ms < 0 && t.nanosecond() % 1_000_000 != 0 {
        ms + 1
    } else {
        ms
    }
}

/// The instant `ms` milliseconds after the Unix epoch; `None` past the years `time` holds.
pub(crate) fn from_unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// The lifetime of a record saved without an expiry: one day, as connect-redis's and
/// connect-pg-simple's default `ttl`.
pub const DEFAULT_TTL: time::Duration = time::Duration::days(1);

/// The instant a record saved now with `expires` should expire: `expires`, or now plus
/// [`DEFAULT_TTL`].
pub fn effective_expiry(expires: Option<OffsetDateTime>) -> OffsetDateTime {
    expires.unwrap_or_else(|| OffsetDateTime::now_utc() + DEFAULT_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::{macros::datetime, Duration};

    #[test]
    fn unix_ms_truncates_toward_zero_as_the_nanosecond_division() {
        let epoch = OffsetDateTime::UNIX_EPOCH;
        for t in [
            epoch,
            epoch + Duration::nanoseconds(1),
            epoch - Duration::nanoseconds(1),
            epoch - Duration::nanoseconds(500_000),
            epoch - Duration::milliseconds(1),
            epoch - Duration::nanoseconds(1_500_000_001),
            epoch - Duration::milliseconds(1500),
            datetime!(2026-12-04 18:30:15.123_456_789 UTC),
            datetime!(1901-03-04 05:06:07.000_999_999 UTC),
            datetime!(9999-12-31 23:59:59.999_999_999 UTC),
            datetime!(-9999-01-01 00:00:00.000_000_001 UTC),
        ] {
            let by_division = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap();
            assert_eq!(unix_ms(t), by_division, "{t}");
            assert_eq!(from_unix_ms(unix_ms(t)).map(unix_ms), Some(by_division), "{t}");
        }
    }
}
