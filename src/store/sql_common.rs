//! What the SQL stores share: the per-operation timeout, the mapping of sqlx errors onto
//! [`StoreError`], expiry arithmetic in the units the Node stores use, and table-name checks.

use std::{future::Future, time::Duration};

#[cfg(any(feature = "postgres", feature = "mysql"))]
use time::OffsetDateTime;

#[cfg(any(feature = "postgres", feature = "mysql"))]
use super::unix_ms;
use crate::error::StoreError;

/// How long one store operation (getting a connection included) may take unless configured
/// otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one store operation under `limit`: past it the answer is [`StoreError::Timeout`].
pub(crate) async fn run<T>(limit: Duration, op: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, op).await {
        Ok(result) => result.map_err(map_err),
        Err(_) => Err(StoreError::Timeout),
    }
}

/// Sorts a sqlx error into "the backend is unreachable" (a `503`) and "the backend said no"
/// (a `500`).
pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::PoolTimedOut => StoreError::Timeout,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::unavailable(err)
        }
        // PostgreSQL's SQLSTATE classes 08 (connection exception) and 57P (the server is
        // shutting down or starting up) mean the same as a refused connection.
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) => {
            StoreError::unavailable(err)
        }
        _ => StoreError::backend(err),
    }
}

/// Whole seconds since the epoch, rounded up: connect-pg-simple's `Math.ceil(ms / 1000)`.
#[cfg(feature = "postgres")]
pub(crate) fn ceil_secs(t: OffsetDateTime) -> i64 {
    let ms = unix_ms(t);
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

/// Whole seconds since the epoch, rounded half up: express-mysql-session's
/// `Math.round(ms / 1000)`.
#[cfg(feature = "mysql")]
pub(crate) fn round_secs(t: OffsetDateTime) -> i64 {
    let ms = unix_ms(t);
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) >= 500)
}

/// Runs `delete_expired` every `period`, forever, logging failures and carrying on (a database
/// outage should not end the cleanup for good).
pub(crate) async fn delete_expired_every<F, Fut>(store: &'static str, period: Duration, mut delete_expired: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match delete_expired().await {
            Ok(deleted) => tracing::debug!(store, deleted, "deleted expired sessions"),
            Err(e) => tracing::warn!(
                store,
                error = &e as &dyn std::error::Error,
                "deleting expired sessions failed"
            ),
        }
    }
}

/// A table or schema name a SQL store refuses: empty, longer than 63 bytes, or holding a
/// control character or a leading or trailing space.
///
/// Names are always quoted in the SQL the stores send, so any other name is safe and keeps
/// its case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SQL table or schema name {0:?}")]
pub struct InvalidIdentifier(pub String);

/// The longest name accepted: PostgreSQL keeps 63 bytes of an identifier, MySQL 64 characters.
const MAX_IDENTIFIER_LEN: usize = 63;

/// Checks a table or schema name (see [`InvalidIdentifier`]).
pub(crate) fn check_identifier(name: &str) -> Result<(), InvalidIdentifier> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IDENTIFIER_LEN
        && !name.chars().any(char::is_control)
        && name.trim() == name;
    if ok {
        Ok(())
    } else {
        Err(InvalidIdentifier(name.to_owned()))
    }
}

/// `name` quoted with `quote` (`"` for PostgreSQL and SQLite, `` ` `` for MySQL), the quote
/// character doubled inside.
pub(crate) fn quote(name: &str, quote: char) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push(quote);
    for c in name.chars() {
        if c == quote {
            out.push(quote);
        }
        out.push(c);
    }
    out.push(quote);
    out
}

/// A stable 64-bit hash (FNV-1a), for advisory-lock keys derived from table names.
#[cfg(feature = "postgres")]
pub(crate) fn stable_hash(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    use time::macros::datetime;

    #[cfg(feature = "postgres")]
    #[test]
    fn seconds_round_up_like_connect_pg_simple() {
        assert_eq!(ceil_secs(datetime!(2026-12-03 20:47:03.438 UTC)), 1_796_330_824);
        assert_eq!(ceil_secs(datetime!(2026-12-03 20:47:03 UTC)), 1_796_330_823);
        // Before the epoch the rounding still goes up.
        assert_eq!(ceil_secs(datetime!(1969-12-31 23:59:59.5 UTC)), 0);
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn seconds_round_half_up_like_express_mysql_session() {
        assert_eq!(round_secs(datetime!(2026-12-03 20:47:03.438 UTC)), 1_796_330_823);
        assert_eq!(round_secs(datetime!(2026-12-03 20:47:03 UTC)), 1_796_330_823);
        assert_eq!(round_secs(datetime!(2026-12-03 20:47:03.5 UTC)), 1_796_330_824);
        assert_eq!(round_secs(datetime!(1969-12-31 23:59:59.4 UTC)), -1);
    }

    #[test]
    fn identifiers_are_checked_and_quoted() {
        assert!(check_identifier("session").is_ok());
        assert!(check_identifier("My Sessions-2").is_ok());
        assert!(check_identifier("").is_err());
        assert!(check_identifier("a\0b").is_err());
        assert!(check_identifier("a\nb").is_err());
        assert!(check_identifier(" a").is_err());
        assert!(check_identifier(&"x".repeat(64)).is_err());
        assert_eq!(quote(r#"we"ird"#, '"'), r#""we""ird""#);
        assert_eq!(quote("a`b", '`'), "`a``b`");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn lock_keys_are_stable() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(stable_hash("\"session\""), stable_hash("\"sessions\""));
    }
}
