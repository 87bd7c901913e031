//! [`PostgresStore`]: sessions in PostgreSQL, in connect-pg-simple's table.

use std::{str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    PgPool,
};
use time::OffsetDateTime;

use super::{
    effective_expiry,
    sql_common::{self, ceil_secs, check_identifier, quote, run},
    Record, SessionStore, Update,
};
use crate::error::StoreError;

pub use super::sql_common::InvalidIdentifier;

/// Sessions in a PostgreSQL table, shared with Node's
/// [connect-pg-simple](https://github.com/voxpelli/node-connect-pg-simple) 10.
///
/// The table is connect-pg-simple's, and rows written by either side are read by the other:
///
/// ```sql
/// CREATE TABLE "session" (
///   "sid" varchar NOT NULL COLLATE "default",
///   "sess" json NOT NULL,
///   "expire" timestamp(6) NOT NULL,
///   CONSTRAINT "session_pkey" PRIMARY KEY ("sid")
/// );
/// CREATE INDEX "IDX_session_expire" ON "session" ("expire");
/// ```
///
/// - `sess` holds the session's JSON text verbatim (a `json` column keeps it byte for byte).
/// - `expire` is written as connect-pg-simple writes it: `to_timestamp(s)` with `s` the
///   record's expiry in epoch seconds rounded up, or now plus one day without one. A row is
///   live while `expire >= to_timestamp(ceil(now))`, `now` being this process's clock, as
///   connect-pg-simple compares. Loads report the `expire` column as the record's expiry.
///
/// # Time zones
///
/// `expire` is a `timestamp` **without** time zone: what `to_timestamp` gives is converted to
/// the connection's `TimeZone` on the way in, and back on comparisons. [`connect`](Self::connect)
/// sets `TimeZone` to `UTC` on its connections. Node's side must use the same zone: pg uses
/// the server's default `TimeZone`, so keep the server (or the database:
/// `ALTER DATABASE … SET timezone TO 'UTC'`) on UTC, or rows will look hours early or late to
/// one side. With [`from_pool`](Self::from_pool) the pool's connections decide.
///
/// # Concurrency and expiry
///
/// Every operation is one statement: `create` is an `INSERT … ON CONFLICT` that replaces only
/// an expired row, `update` an `UPDATE` that matches the expected `sess` text, and
/// `load_and_touch` an `UPDATE … RETURNING`. Expired rows are never served; they are deleted by
/// [`delete_expired`](Self::delete_expired), or by
/// [`continuously_delete_expired`](Self::continuously_delete_expired) if you spawn it (no task
/// starts by itself). A Node app's connect-pg-simple prune timer deletes them too.
///
/// Every operation, getting a connection included, is bounded by [`timeout`](Self::timeout):
/// past it, the answer is [`StoreError::Timeout`] (a `503`).
///
/// ```no_run
/// use express_session::{PostgresStore, SessionLayer};
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
/// store.migrate().await?;
/// tokio::spawn({
///     let store = store.clone();
///     async move { store.continuously_delete_expired(std::time::Duration::from_secs(900)).await }
/// });
/// let sessions = SessionLayer::new(store).secret("keyboard cat").build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: Option<String>,
    table: String,
    timeout: Duration,
    sql: Arc<Queries>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The statements for one table name.
struct Queries {
    /// `"schema"."table"`, or `"table"`.
    table: String,
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
    fn new(schema: Option<&str>, table: &str) -> Self {
        let t = match schema {
            Some(s) => format!("{}.{}", quote(s, '"'), quote(table, '"')),
            None => quote(table, '"'),
        };
        // Parameters: $1 sid, then the others in order. `now` is always
        // `to_timestamp(ceil(now_ms / 1000))`, as connect-pg-simple's `get` compares.
        let live = "expire >= to_timestamp($3)";
        Self {
            load: format!(
                "SELECT sess::text, expire::timestamptz FROM {t} WHERE sid = $1 AND expire >= to_timestamp($2)"
            ),
            load_and_touch: format!(
                "UPDATE {t} SET expire = to_timestamp($2) WHERE sid = $1 AND {live} \
                 RETURNING sess::text, expire::timestamptz"
            ),
            // Inserts, or replaces a row that has expired; a live row is left alone and the
            // statement affects no row.
            create: format!(
                "INSERT INTO {t} AS cur (sid, sess, expire) VALUES ($1, $2::json, to_timestamp($3)) \
                 ON CONFLICT (sid) DO UPDATE SET sess = excluded.sess, expire = excluded.expire \
                 WHERE cur.expire < to_timestamp($4)"
            ),
            update: format!(
                "UPDATE {t} SET sess = $2::json, expire = to_timestamp($3) \
                 WHERE sid = $1 AND expire >= to_timestamp($4) AND sess::text = $5"
            ),
            touch: format!("UPDATE {t} SET expire = to_timestamp($2) WHERE sid = $1 AND {live}"),
            destroy: format!("DELETE FROM {t} WHERE sid = $1"),
            delete_expired: format!("DELETE FROM {t} WHERE expire < to_timestamp($1)"),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 \"sid\" varchar NOT NULL COLLATE \"default\", \
                 \"sess\" json NOT NULL, \
                 \"expire\" timestamp(6) NOT NULL, \
                 CONSTRAINT {pkey} PRIMARY KEY (\"sid\"))",
                pkey = quote(&format!("{table}_pkey"), '"'),
            ),
            create_index: format!(
                "CREATE INDEX IF NOT EXISTS {index} ON {t} (\"expire\")",
                index = quote(&format!("IDX_{table}_expire"), '"'),
            ),
            table: t,
        }
    }
}

fn now_secs() -> f64 {
    ceil_secs(OffsetDateTime::now_utc()) as f64
}

fn expire_secs(expires: Option<OffsetDateTime>) -> f64 {
    ceil_secs(effective_expiry(expires)) as f64
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host/db`), with a pool whose
    /// connections use `TimeZone=UTC` and wait at most the default [`timeout`](Self::timeout)
    /// (5 s) for a connection. Fails if no connection can be made now. The table is not
    /// created: call [`migrate`](Self::migrate) (or let connect-pg-simple create it).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .options([("TimeZone", "UTC")]);
        let pool = PgPoolOptions::new()
            .acquire_timeout(sql_common::DEFAULT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(sql_common::map_err)?;
        Ok(Self::from_pool(pool))
    }

    /// A store over your own pool, for pool sizes, TLS and the like. Give its connections the
    /// same `TimeZone` as the Node side uses (see [Time zones](Self#time-zones)):
    ///
    /// ```no_run
    /// use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    /// # async fn f() -> Result<(), sqlx::Error> {
    /// let options: PgConnectOptions = "postgres://postgres@127.0.0.1/app".parse()?;
    /// let pool = PgPoolOptions::new()
    ///     .max_connections(20)
    ///     .connect_with(options.options([("TimeZone", "UTC")]))
    ///     .await?;
    /// let store = express_session::PostgresStore::from_pool(pool);
    /// # Ok(()) }
    /// ```
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            schema: None,
            table: "session".into(),
            timeout: sql_common::DEFAULT_TIMEOUT,
            sql: Arc::new(Queries::new(None, "session")),
        }
    }

    /// The table's name (connect-pg-simple's `tableName`). Default: `session`. Names are
    /// quoted, so they keep their case.
    pub fn table_name(mut self, name: &str) -> Result<Self, InvalidIdentifier> {
        check_identifier(name)?;
        self.table = name.to_owned();
        self.sql = Arc::new(Queries::new(self.schema.as_deref(), &self.table));
        Ok(self)
    }

    /// The schema the table is in (connect-pg-simple's `schemaName`); it must exist. Default:
    /// none, so the connection's `search_path` decides (usually `public`).
    pub fn schema_name(mut self, name: &str) -> Result<Self, InvalidIdentifier> {
        check_identifier(name)?;
        self.schema = Some(name.to_owned());
        self.sql = Arc::new(Queries::new(self.schema.as_deref(), &self.table));
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
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the table and its index if they are missing, as connect-pg-simple's `table.sql`
    /// does (constraint `<table>_pkey`, index `IDX_<table>_expire`: `session_pkey` and
    /// `IDX_session_expire` for the default name). An existing table is left as it is. Safe to
    /// run from many processes at once: it holds a transaction-scoped advisory lock keyed on
    /// the table name.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let sql = &self.sql;
        run(self.timeout, async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(sql_common::stable_hash(&sql.table))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&sql.create_table).execute(&mut *tx).await?;
            sqlx::query(&sql.create_index).execute(&mut *tx).await?;
            tx.commit().await
        })
        .await
    }

    /// Deletes every expired row now, as connect-pg-simple's `pruneSessions`; returns how many
    /// went.
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
    /// # async fn f(store: express_session::PostgresStore) {
    /// let cleanup = tokio::spawn({
    ///     let store = store.clone();
    ///     async move { store.continuously_delete_expired(std::time::Duration::from_secs(900)).await }
    /// });
    /// // … and `cleanup.abort()` to stop it.
    /// # }
    /// ```
    pub async fn continuously_delete_expired(&self, period: Duration) {
        sql_common::delete_expired_every("postgres", period, || self.delete_expired()).await;
    }

    async fn load_live(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let row: Option<(String, OffsetDateTime)> = run(
            self.timeout,
            sqlx::query_as(&self.sql.load)
                .bind(id)
                .bind(now_secs())
                .fetch_optional(&self.pool),
        )
        .await?;
        Ok(row.map(|(data, expires)| Record::new(data, Some(expires))))
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        self.load_live(id).await
    }

    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        let row: Option<(String, OffsetDateTime)> = run(
            self.timeout,
            sqlx::query_as(&self.sql.load_and_touch)
                .bind(id)
                .bind(expire_secs(expires))
                .bind(now_secs())
                .fetch_optional(&self.pool),
        )
        .await?;
        Ok(row.map(|(data, expires)| Record::new(data, Some(expires))))
    }

    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        let done = run(
            self.timeout,
            sqlx::query(&self.sql.create)
                .bind(id)
                .bind(&record.data)
                .bind(expire_secs(record.expires))
                .bind(now_secs())
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
                .bind(expire_secs(record.expires))
                .bind(now_secs())
                .bind(&expected.data)
                .execute(&self.pool),
        )
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Update::Done);
        }
        // Nothing matched: the row is gone (or expired), or its text is not what the caller
        // loaded. A fresh read tells which, and gives the caller the current record to merge.
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
                .bind(expire_secs(expires))
                .bind(now_secs())
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

    #[test]
    fn default_names_are_connect_pg_simples() {
        let q = Queries::new(None, "session");
        assert_eq!(q.table, r#""session""#);
        assert!(q
            .create_table
            .contains(r#"CONSTRAINT "session_pkey" PRIMARY KEY ("sid")"#));
        assert!(q
            .create_index
            .starts_with(r#"CREATE INDEX IF NOT EXISTS "IDX_session_expire" ON "session""#));
        let q = Queries::new(Some("app"), r#"my"sess"#);
        assert_eq!(q.table, r#""app"."my""sess""#);
    }
}
