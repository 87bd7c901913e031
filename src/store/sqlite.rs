//! [`SqliteStore`]: sessions in a SQLite file, kept across restarts.

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    SqlitePool,
};
use time::OffsetDateTime;

use super::{
    effective_expiry, from_unix_ms,
    sql_common::{self, check_identifier, quote, run},
    unix_ms, Record, SessionStore, Update,
};
use crate::error::StoreError;

pub use super::sql_common::InvalidIdentifier;

/// Sessions in a SQLite database: the embedded store that survives restarts, with nothing to
/// run beside the app.
///
/// The table (there is no Node store to match, so it is ours):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS "session" (
///   "sid" TEXT PRIMARY KEY NOT NULL,
///   "sess" TEXT NOT NULL,     -- the session's JSON text, verbatim
///   "expire" INTEGER NOT NULL -- Unix time in milliseconds
/// );
/// CREATE INDEX IF NOT EXISTS "IDX_session_expire" ON "session" ("expire");
/// ```
///
/// A row is live while `expire` is after now (this process's clock). Expired rows are never
/// served; they are deleted by [`delete_expired`](Self::delete_expired), or by
/// [`continuously_delete_expired`](Self::continuously_delete_expired) if you spawn it (no task
/// starts by itself).
///
/// [`open`](Self::open) puts a file in WAL mode (readers do not wait for the writer) and
/// creates the table. Each operation is one statement, so writers from many tasks, or from
/// several processes sharing the file, are safe; `update` matches the expected text in its
/// `WHERE`.
///
/// ```no_run
/// use express_session::{SessionLayer, SqliteStore};
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStore::open("sessions.db").await?;
/// let sessions = SessionLayer::new(store).secret("keyboard cat").build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    table: String,
    timeout: Duration,
    sql: Arc<Queries>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The statements for one table name.
struct Queries {
    load: String,
    load_and_touch: String,
    create: String,
    update: String,
    touch: String,
    destroy: String,
    delete_expired: String,
    create_table: String,
    create_index: String,
}

impl Queries {
    fn new(table: &str) -> Self {
        let t = quote(table, '"');
        Self {
            load: format!("SELECT sess, expire FROM {t} WHERE sid = ?1 AND expire > ?2"),
            load_and_touch: format!("UPDATE {t} SET expire = ?2 WHERE sid = ?1 AND expire > ?3 RETURNING sess, expire"),
            create: format!(
                "INSERT INTO {t} (sid, sess, expire) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sid) DO UPDATE SET sess = excluded.sess, expire = excluded.expire \
                 WHERE {t}.expire <= ?4"
            ),
            update: format!("UPDATE {t} SET sess = ?2, expire = ?3 WHERE sid = ?1 AND expire > ?4 AND sess = ?5"),
            touch: format!("UPDATE {t} SET expire = ?2 WHERE sid = ?1 AND expire > ?3"),
            destroy: format!("DELETE FROM {t} WHERE sid = ?1"),
            delete_expired: format!("DELETE FROM {t} WHERE expire <= ?1"),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 \"sid\" TEXT PRIMARY KEY NOT NULL, \"sess\" TEXT NOT NULL, \"expire\" INTEGER NOT NULL)"
            ),
            create_index: format!(
                "CREATE INDEX IF NOT EXISTS {index} ON {t} (\"expire\")",
                index = quote(&format!("IDX_{table}_expire"), '"'),
            ),
        }
    }
}

fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

fn expire_ms(expires: Option<OffsetDateTime>) -> i64 {
    unix_ms(effective_expiry(expires))
}

fn record(data: String, expire_ms: i64) -> Record {
    let expires = from_unix_ms(expire_ms);
    Record::new(data, expires)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` in WAL mode and creates the
    /// table if it is missing.
    ///
    /// `":memory:"` gives a private in-memory database instead, for tests: one connection
    /// that the pool never closes (each connection to `:memory:` would be a separate, empty
    /// database), and gone when the store is dropped.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let in_memory = path == Path::new(":memory:");
        let options = if in_memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(StoreError::backend)?
        } else {
            SqliteConnectOptions::new().filename(path).create_if_missing(true)
        }
        .busy_timeout(sql_common::DEFAULT_TIMEOUT);
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new()
        }
        .acquire_timeout(sql_common::DEFAULT_TIMEOUT);
        let options = if in_memory {
            options
        } else {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        let pool = pool.connect_with(options).await.map_err(sql_common::map_err)?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over your own pool. The table is not created: call [`migrate`](Self::migrate).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            pool,
            table: "session".into(),
            timeout: sql_common::DEFAULT_TIMEOUT,
            sql: Arc::new(Queries::new("session")),
        }
    }

    /// The table's name. Default: `session`. After changing it, call
    /// [`migrate`](Self::migrate) to create the table.
    pub fn table_name(mut self, name: &str) -> Result<Self, InvalidIdentifier> {
        check_identifier(name)?;
        self.table = name.to_owned();
        self.sql = Arc::new(Queries::new(name));
        Ok(self)
    }

    /// How long one operation may take, waiting for a connection or a lock included, before it
    /// fails with [`StoreError::Timeout`]. Default: 5 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates the table and its index if they are missing. Safe to run concurrently.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        run(self.timeout, async {
            sqlx::query(&self.sql.create_table).execute(&self.pool).await?;
            sqlx::query(&self.sql.create_index).execute(&self.pool).await
        })
        .await?;
        Ok(())
    }

    /// Deletes every expired row now; returns how many went.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        run(
            self.timeout,
            sqlx::query(&self.sql.delete_expired).bind(now_ms()).execute(&self.pool),
        )
        .await
        .map(|done| done.rows_affected())
    }

    /// Calls [`delete_expired`](Self::delete_expired) every `period`, forever; a failure is
    /// logged and the next period tries again. Nothing runs unless you spawn it:
    ///
    /// ```no_run
    /// # async fn f(store: express_session::SqliteStore) {
    /// tokio::spawn({
    ///     let store = store.clone();
    ///     async move { store.continuously_delete_expired(std::time::Duration::from_secs(900)).await }
    /// });
    /// # }
    /// ```
    pub async fn continuously_delete_expired(&self, period: Duration) {
        sql_common::delete_expired_every("sqlite", period, || self.delete_expired()).await;
    }

    async fn load_live(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let row: Option<(String, i64)> = run(
            self.timeout,
            sqlx::query_as(&self.sql.load)
                .bind(id)
                .bind(now_ms())
                .fetch_optional(&self.pool),
        )
        .await?;
        Ok(row.map(|(data, expire)| record(data, expire)))
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.load_live(id).await
    }

    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        let row: Option<(String, i64)> = run(
            self.timeout,
            sqlx::query_as(&self.sql.load_and_touch)
                .bind(id)
                .bind(expire_ms(expires))
                .bind(now_ms())
                .fetch_optional(&self.pool),
        )
        .await?;
        Ok(row.map(|(data, expire)| record(data, expire)))
    }

    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        let done = run(
            self.timeout,
            sqlx::query(&self.sql.create)
                .bind(id)
                .bind(&record.data)
                .bind(expire_ms(record.expires))
                .bind(now_ms())
                .execute(&self.pool),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        let done = run(
            self.timeout,
            sqlx::query(&self.sql.update)
                .bind(id)
                .bind(&record.data)
                .bind(expire_ms(record.expires))
                .bind(now_ms())
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
        run(
            self.timeout,
            sqlx::query(&self.sql.touch)
                .bind(id)
                .bind(expire_ms(expires))
                .bind(now_ms())
                .execute(&self.pool),
        )
        .await?;
        Ok(())
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

    #[tokio::test]
    async fn in_memory_store_keeps_its_one_database() {
        let store = SqliteStore::open(":memory:").await.unwrap();
        let rec = Record::new("{}", Some(OffsetDateTime::now_utc() + time::Duration::hours(1)));
        assert!(store.create("a", &rec).await.unwrap());
        // Many operations at once all go through the single connection, to the same database.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.spawn(async move { store.load("a").await });
        }
        while let Some(got) = tasks.join_next().await {
            assert_eq!(got.unwrap().unwrap().unwrap().data, "{}");
        }
    }
}
