//! [`MySqlStore`]: sessions in MySQL or MariaDB, in express-mysql-session's table.

use std::{str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use sqlx::{
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
    MySqlPool,
};
use time::OffsetDateTime;

use super::{
    effective_expiry,
    sql_common::{self, check_identifier, quote, round_secs, run},
    Record, SessionStore, Update,
};
use crate::error::StoreError;

pub use super::sql_common::InvalidIdentifier;

/// Sessions in a MySQL or MariaDB table, shared with Node's
/// [express-mysql-session](https://github.com/chill117/express-mysql-session) 3.
///
/// The table is express-mysql-session's, plus an index on `expires` so that
/// [`delete_expired`](Self::delete_expired) need not scan it (Node ignores the index):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS `sessions` (
///   `session_id` varchar(128) COLLATE utf8mb4_bin NOT NULL,
///   `expires` int(11) unsigned NOT NULL,
///   `data` mediumtext COLLATE utf8mb4_bin,
///   PRIMARY KEY (`session_id`),
///   KEY `sessions_expires` (`expires`)
/// ) ENGINE=InnoDB
/// ```
///
/// - `data` holds the session's JSON text as is; a row whose `data` is `NULL` counts as
///   missing, as in Node.
/// - `expires` is **whole seconds** since the Unix epoch, rounded as express-mysql-session
///   rounds (`Math.round`): the record's expiry, or now plus one day without one. A row is
///   live while `expires >= round(now)`, `now` being this process's clock, as Node's `get`
///   compares. Loads report `expires` as the record's expiry.
///
/// Text is compared byte for byte (`CAST(… AS BINARY)`), whatever the column's collation;
/// keep the column `utf8mb4` so that every string round-trips.
///
/// # Concurrency and expiry
///
/// `create` is a plain `INSERT`; if the id is taken by an expired row, that row is replaced
/// by an `UPDATE … WHERE expires < now`, never a live one. `update` is one `UPDATE` that
/// matches the expected text (sqlx asks the server for *found* rows, so an update that
/// rewrites identical values still counts). Unlike express-mysql-session, `touch` never
/// extends an expired row. Expired rows are never served; they are deleted by
/// [`delete_expired`](Self::delete_expired), or by
/// [`continuously_delete_expired`](Self::continuously_delete_expired) if you spawn it (no task
/// starts by itself). A Node app's `clearExpired` interval deletes them too.
///
/// Every operation, getting a connection included, is bounded by [`timeout`](Self::timeout):
/// past it, the answer is [`StoreError::Timeout`] (a `503`).
///
/// ```no_run
/// use express_session::{MySqlStore, SessionLayer};
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MySqlStore::connect("mysql://root@127.0.0.1/app").await?;
/// store.migrate().await?;
/// let sessions = SessionLayer::new(store).secret("keyboard cat").build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    table: String,
    timeout: Duration,
    sql: Arc<Queries>,
}

impl std::fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlStore")
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The statements for one table name.
struct Queries {
    load: String,
    create: String,
    replace_expired: String,
    update: String,
    touch: String,
    destroy: String,
    delete_expired: String,
    create_table: String,
}

impl Queries {
    fn new(table: &str) -> Self {
        let t = quote(table, '`');
        Self {
            load: format!(
                "SELECT data, CAST(expires AS SIGNED) FROM {t} \
                 WHERE session_id = ? AND expires >= ? AND data IS NOT NULL"
            ),
            create: format!("INSERT INTO {t} (session_id, expires, data) VALUES (?, ?, ?)"),
            replace_expired: format!("UPDATE {t} SET expires = ?, data = ? WHERE session_id = ? AND expires < ?"),
            update: format!(
                "UPDATE {t} SET expires = ?, data = ? \
                 WHERE session_id = ? AND expires >= ? AND CAST(data AS BINARY) = CAST(? AS BINARY)"
            ),
            touch: format!("UPDATE {t} SET expires = ? WHERE session_id = ? AND expires >= ?"),
            destroy: format!("DELETE FROM {t} WHERE session_id = ?"),
            delete_expired: format!("DELETE FROM {t} WHERE expires < ?"),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 `session_id` varchar(128) COLLATE utf8mb4_bin NOT NULL, \
                 `expires` int(11) unsigned NOT NULL, \
                 `data` mediumtext COLLATE utf8mb4_bin, \
                 PRIMARY KEY (`session_id`), \
                 KEY {index} (`expires`)\
                 ) ENGINE=InnoDB",
                index = quote(&format!("{table}_expires"), '`'),
            ),
        }
    }
}

fn now_secs() -> i64 {
    round_secs(OffsetDateTime::now_utc())
}

/// The `expires` column for a record: whole seconds, clamped to what `INT UNSIGNED` holds.
fn expires_secs(expires: Option<OffsetDateTime>) -> i64 {
    round_secs(effective_expiry(expires)).clamp(0, i64::from(u32::MAX))
}

fn record(data: String, expires: i64) -> Record {
    Record::new(data, OffsetDateTime::from_unix_timestamp(expires).ok())
}

impl MySqlStore {
    /// Connects to the database at `url` (`mysql://user:password@host/db`), with a pool that
    /// waits at most the default [`timeout`](Self::timeout) (5 s) for a connection. Fails if no
    /// connection can be made now. The table is not created: call [`migrate`](Self::migrate)
    /// (or let express-mysql-session create it).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = MySqlConnectOptions::from_str(url).map_err(StoreError::backend)?;
        let pool = MySqlPoolOptions::new()
            .acquire_timeout(sql_common::DEFAULT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(sql_common::map_err)?;
        Ok(Self::from_pool(pool))
    }

    /// A store over your own pool, for pool sizes, TLS and the like.
    pub fn from_pool(pool: MySqlPool) -> Self {
        Self {
            pool,
            table: "sessions".into(),
            timeout: sql_common::DEFAULT_TIMEOUT,
            sql: Arc::new(Queries::new("sessions")),
        }
    }

    /// The table's name (express-mysql-session's `schema.tableName`). Default: `sessions`.
    pub fn table_name(mut self, name: &str) -> Result<Self, InvalidIdentifier> {
        check_identifier(name)?;
        self.table = name.to_owned();
        self.sql = Arc::new(Queries::new(name));
        Ok(self)
    }

    /// How long one operation may take, waiting for a connection included, before it fails
    /// with [`StoreError::Timeout`]. Default: 5 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Creates the table if it is missing (`CREATE TABLE IF NOT EXISTS`, which the server makes
    /// safe to run from many processes at once). An existing table is left as it is.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        run(self.timeout, sqlx::query(&self.sql.create_table).execute(&self.pool)).await?;
        Ok(())
    }

    /// Deletes every expired row now, as express-mysql-session's `clearExpiredSessions`;
    /// returns how many went.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        run(
            self.timeout,
            sqlx::query(&self.sql.delete_expired)
                .bind(now_secs())
                .execute(&self.pool),
        )
        .await
        .map(|done| done.rows_affected())
    }

    /// Calls [`delete_expired`](Self::delete_expired) every `period`, forever; a failure is
    /// logged and the next period tries again. Nothing runs unless you spawn it:
    ///
    /// ```no_run
    /// # async fn f(store: express_session::MySqlStore) {
    /// tokio::spawn({
    ///     let store = store.clone();
    ///     async move { store.continuously_delete_expired(std::time::Duration::from_secs(900)).await }
    /// });
    /// # }
    /// ```
    pub async fn continuously_delete_expired(&self, period: Duration) {
        sql_common::delete_expired_every("mysql", period, || self.delete_expired()).await;
    }

    async fn load_live(&self, id: &str) -> Result<Option<Record>, StoreError> {
        // Read as bytes: sqlx refuses to decode a `utf8mb4_bin` column as a string.
        let row: Option<(Vec<u8>, i64)> = run(
            self.timeout,
            sqlx::query_as(&self.sql.load)
                .bind(id)
                .bind(now_secs())
                .fetch_optional(&self.pool),
        )
        .await?;
        let Some((data, expires)) = row else {
            return Ok(None);
        };
        let data = String::from_utf8(data).map_err(StoreError::backend)?;
        Ok(Some(record(data, expires)))
    }

    async fn touch_live(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        run(
            self.timeout,
            sqlx::query(&self.sql.touch)
                .bind(expires_secs(expires))
                .bind(id)
                .bind(now_secs())
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for MySqlStore {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.load_live(id).await
    }

    /// Two statements (MySQL's `UPDATE` has no `RETURNING`): the touch, which moves only a live
    /// row, then the read, which sees the moved expiry.
    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        self.touch_live(id, expires).await?;
        self.load_live(id).await
    }

    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        let expires = expires_secs(record.expires);
        let inserted = run(
            self.timeout,
            sqlx::query(&self.sql.create)
                .bind(id)
                .bind(expires)
                .bind(&record.data)
                .execute(&self.pool),
        )
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(StoreError::Backend(e))
                if e.downcast_ref::<sqlx::Error>()
                    .and_then(|e| e.as_database_error())
                    .is_some_and(|e| e.is_unique_violation()) =>
            {
                // The id is taken. Only an expired row may be replaced.
                let done = run(
                    self.timeout,
                    sqlx::query(&self.sql.replace_expired)
                        .bind(expires)
                        .bind(&record.data)
                        .bind(id)
                        .bind(now_secs())
                        .execute(&self.pool),
                )
                .await?;
                Ok(done.rows_affected() == 1)
            }
            Err(e) => Err(e),
        }
    }

    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        let done = run(
            self.timeout,
            sqlx::query(&self.sql.update)
                .bind(expires_secs(record.expires))
                .bind(&record.data)
                .bind(id)
                .bind(now_secs())
                .bind(&expected.data)
                .execute(&self.pool),
        )
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Update::Done);
        }
        Ok(match self.load_live(id).await? {
            Some(current) => Update::Conflict(current),
            None => Update::Gone,
        })
    }

    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        self.touch_live(id, expires).await
    }

    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        run(
            self.timeout,
            sqlx::query(&self.sql.destroy).bind(id).execute(&self.pool),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_is_rounded_seconds_within_int_unsigned() {
        let t = time::macros::datetime!(2026-12-03 20:47:58.072 UTC);
        assert_eq!(expires_secs(Some(t)), 1_796_330_878);
        assert_eq!(expires_secs(Some(time::macros::datetime!(1960-01-01 0:00 UTC))), 0);
        let q = Queries::new("sessions");
        assert!(q.create_table.starts_with("CREATE TABLE IF NOT EXISTS `sessions` ("));
    }
}
