//! [`RedisStore`]: sessions in Redis or Redis Cluster, in connect-redis 9's layout (feature
//! `redis`).
//!
//! # Layout (the same keys and values as connect-redis)
//!
//! - key: the prefix (default `sess:`) followed by the session id, e.g.
//!   `sess:zqjNbp9uG9gqa3xOKrPQt0PuZQ2Y9S7M`;
//! - value: the session's JSON text exactly as the layer wrote it (express-session's document);
//! - TTL: `ceil((expires − now) / 1000)` seconds, or 86400 s ([`DEFAULT_TTL`]) for a record
//!   without an expiry; a save with a TTL of zero or less deletes the key instead, and a touch
//!   sends `EXPIRE key ttl` as connect-redis does (Redis deletes the key when `ttl ≤ 0`).
//!
//! An Express app using connect-redis and a Rust app using this store, with the same secret and
//! prefix, share their sessions in both directions.
//!
//! # Round trips
//!
//! | call | commands | round trips |
//! |---|---|---|
//! | `load` | `GET key` + `PTTL key`, pipelined | 1 |
//! | `load_and_touch` | `GETEX key EX ttl` | 1 |
//! | `create` | `SET key value NX EX ttl` | 1 |
//! | `update` | `EVALSHA` of a compare-and-set script (one key) | 1 |
//! | `touch` | `EXPIRE key ttl` | 1 |
//! | `destroy` | `DEL key` | 1 |
//!
//! With the layer's defaults, a request that only reads its session costs one round trip
//! (`GETEX`), and one that changes it two (`GETEX`, then the script).
//!
//! On one server (not a cluster), commands that concurrent requests send at the same moment go
//! out together as one pipeline: the store queues each command, lets every request that is
//! ready to run add its own, then writes them all at once and hands each request its own reply
//! (an error in one reply fails only that request). Under load this takes one write and one
//! read of the socket for many requests instead of one each; a lone request waits one pass of
//! the async scheduler, no timer.
//!
//! The `update` script compares the stored text with the expected text, sent in full, rather
//! than with a SHA-1 of it: Lua strings are interned, so the comparison costs Redis next to
//! nothing, whereas `redis.sha1hex` over the stored value would spend Redis's single thread on
//! hashing every write. The price is the expected text on the wire once more per write, which
//! for session-sized records is small. If Redis has forgotten the script (a restart, `SCRIPT
//! FLUSH`), the store sends it once with `EVAL`, which also caches it again.
//!
//! Every command touches one key, so everything works unchanged on Redis Cluster. `GETEX` needs
//! Redis 6.2 or later.
//!
//! # Faults
//!
//! Every call is bounded by the command timeout (default [`RedisStoreBuilder::DEFAULT_COMMAND_TIMEOUT`]):
//! past it the call fails with [`StoreError::Timeout`]. A connection that cannot be made or was
//! lost is [`StoreError::Unavailable`]. Both make the layer answer `503`; the connection is
//! re-established in the background, so the store recovers by itself once Redis is back. Any
//! other Redis error is [`StoreError::Backend`] (a `500`). Connections use `TCP_NODELAY` and
//! TCP keepalive, and on Linux a connection whose bytes stay unacknowledged for 10 seconds is
//! dropped and re-made, so a silent network failure does not leave the store timing out for good.

mod batch;

use std::{collections::HashSet, fmt, future::Future, time::Duration};

use async_trait::async_trait;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
    io::tcp::{socket2::TcpKeepalive, TcpSettings},
    Cmd, ErrorKind, FromRedisValue, IntoConnectionInfo, RedisError, RedisFuture, Script, Value,
};
use time::OffsetDateTime;

use super::{Record, SessionStore, Update, DEFAULT_TTL};
use crate::error::StoreError;
use batch::Batched;

/// Compare-and-set of one session record.
///
/// `KEYS[1]`: the key; `ARGV[1]`: the text the caller loaded; `ARGV[2]`: the new text;
/// `ARGV[3]`: the new TTL in seconds (`≤ 0`: delete, as connect-redis's `set` does).
/// Returns `0` when the key is gone, `1` when written, or `{current text, PTTL}` on a conflict.
const UPDATE_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
if current ~= ARGV[1] then
  return {current, redis.call('PTTL', KEYS[1])}
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
else
  redis.call('DEL', KEYS[1])
end
return 1
";

/// How many keys one `SCAN` step asks for (connect-redis's default `scanCount`).
const SCAN_COUNT: usize = 100;

/// A [`SessionStore`] on Redis or Redis Cluster, in connect-redis 9's key layout.
///
/// See the [module docs](self) for the layout, the commands each call sends, and how faults
/// are reported.
///
/// ```no_run
/// use express_session::{RedisStore, SessionLayer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // One Redis server; the connection reconnects by itself.
/// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
///
/// // A cluster, with a custom prefix and timeouts.
/// let cluster = RedisStore::builder()
///     .prefix("myapp:sess:")
///     .command_timeout(std::time::Duration::from_millis(500))
///     .connect_cluster(["redis://127.0.0.1:7101", "redis://127.0.0.1:7102"])
///     .await?;
///
/// let layer = SessionLayer::new(store).secret("keyboard cat").build()?;
/// # let _ = (cluster, layer);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    prefix: String,
    command_timeout: Duration,
    update_script: Script,
}

/// Builds a [`RedisStore`] with a key prefix and timeouts other than the defaults.
///
/// Start with [`RedisStore::builder`]; finish with [`connect`](Self::connect),
/// [`connect_cluster`](Self::connect_cluster), [`connection_manager`](Self::connection_manager)
/// or [`cluster_connection`](Self::cluster_connection).
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    prefix: String,
    command_timeout: Duration,
    connect_timeout: Duration,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            command_timeout: Self::DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl RedisStoreBuilder {
    /// The key prefix unless set otherwise: connect-redis's `sess:`.
    pub const DEFAULT_PREFIX: &'static str = "sess:";
    /// How long one store call may take unless set otherwise: 2 seconds.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
    /// How long connecting may take unless set otherwise: 2 seconds.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

    /// The string put before every session id to make its key. Default `sess:`, as
    /// connect-redis's `prefix`; use the same one as the Express app you share sessions with.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest one store call may take, reconnecting included; past it the call fails with
    /// [`StoreError::Timeout`] and the request with `503`. Default 2 seconds.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The longest the first connection may take in [`connect`](Self::connect) and
    /// [`connect_cluster`](Self::connect_cluster), and each reconnection attempt later.
    /// Default 2 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects to one Redis server (`redis://[user:password@]host:port[/db]`, `rediss://` for
    /// TLS where the `redis` crate was built with it). The connection is a
    /// [`ConnectionManager`]: lost connections are re-established in the background.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Timeout`] when Redis cannot be reached in
    /// the connect timeout; [`StoreError::Backend`] for an invalid URL or a refused login.
    pub async fn connect(self, url: impl IntoConnectionInfo) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_number_of_retries(2)
            .set_max_delay(1000)
            .set_tcp_settings(tcp_settings());
        let manager = bounded(self.connect_timeout, ConnectionManager::new_with_config(client, config)).await?;
        let store = self.connection_manager(manager);
        store.preload_script().await?;
        Ok(store)
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port` each). Each
    /// command goes to the master of its key's slot; the client follows `MOVED`/`ASK` and
    /// reconnects by itself.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_cluster<I, T>(self, urls: I) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator<Item = T>,
        T: IntoConnectionInfo,
    {
        let client = ClusterClientBuilder::new(urls)
            .connection_timeout(self.connect_timeout)
            .tcp_settings(tcp_settings())
            .build()
            .map_err(store_error)?;
        let conn = bounded(self.connect_timeout, client.get_async_connection()).await?;
        let store = self.cluster_connection(conn);
        store.preload_script().await?;
        Ok(store)
    }

    /// A store on a [`ConnectionManager`] you made yourself (to set TLS, RESP3, or a retry
    /// policy of your own).
    pub fn connection_manager(self, manager: ConnectionManager) -> RedisStore {
        let timeout = self.command_timeout;
        self.finish(Connection::Single(Batched::new(manager, timeout)))
    }

    /// A store on a cluster connection you made yourself.
    pub fn cluster_connection(self, conn: ClusterConnection) -> RedisStore {
        self.finish(Connection::Cluster(conn))
    }

    fn finish(self, conn: Connection) -> RedisStore {
        RedisStore {
            conn,
            prefix: self.prefix,
            command_timeout: self.command_timeout,
            update_script: Script::new(UPDATE_SCRIPT),
        }
    }
}

impl RedisStore {
    /// A builder, to set the key prefix and the timeouts.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to one Redis server with the default prefix and timeouts; see
    /// [`RedisStoreBuilder::connect`].
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// Connects to a Redis Cluster with the default prefix and timeouts; see
    /// [`RedisStoreBuilder::connect_cluster`].
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect_cluster<I, T>(urls: I) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = T>,
        T: IntoConnectionInfo,
    {
        Self::builder().connect_cluster(urls).await
    }

    /// A store on a [`ConnectionManager`] you made yourself, with the default prefix and
    /// timeouts.
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        Self::builder().connection_manager(manager)
    }

    /// A store on a cluster connection you made yourself, with the default prefix and timeouts.
    pub fn from_cluster_connection(conn: ClusterConnection) -> Self {
        Self::builder().cluster_connection(conn)
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key of the session `id`: the prefix followed by the id.
    pub fn key(&self, id: &str) -> String {
        // Not `format!`: on every store call, and the formatting machinery costs more than
        // the copy.
        let mut key = String::with_capacity(self.prefix.len() + id.len());
        key.push_str(&self.prefix);
        key.push_str(id);
        key
    }

    /// How many keys carry this store's prefix, found with `SCAN MATCH prefix*` (on every
    /// master of a cluster), as connect-redis's `length`.
    ///
    /// For administration and tests, not for the request path: it walks the whole keyspace.
    ///
    /// # Errors
    /// A [`StoreError`] if a `SCAN` step fails or times out.
    pub async fn len(&self) -> Result<usize, StoreError> {
        Ok(self.keys().await?.len())
    }

    /// Whether no key carries this store's prefix (see [`len`](Self::len)).
    ///
    /// # Errors
    /// As [`len`](Self::len).
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len().await? == 0)
    }

    /// Deletes every key that carries this store's prefix, found with `SCAN MATCH prefix*` (on
    /// every master of a cluster), as connect-redis's `clear`. Returns how many were deleted.
    ///
    /// For administration and tests, not for the request path. With a shared Redis, give each
    /// application its own prefix first: this deletes whatever matches.
    ///
    /// # Errors
    /// A [`StoreError`] if a step fails or times out; keys deleted before it stay deleted.
    pub async fn clear(&self) -> Result<usize, StoreError> {
        let keys = self.keys().await?;
        let mut conn = self.conn.clone();
        let mut deleted = 0usize;
        match &self.conn {
            Connection::Single(_) => {
                let keys: Vec<_> = keys.into_iter().collect();
                for batch in keys.chunks(SCAN_COUNT) {
                    let mut del = redis::cmd("DEL");
                    del.arg(batch);
                    let n: usize = self.run(conn.query(del)).await?;
                    deleted += n;
                }
            }
            Connection::Cluster(_) => {
                // Keys on one node may sit in different slots: one DEL per key.
                for key in keys {
                    let mut del = redis::cmd("DEL");
                    del.arg(key);
                    let n: usize = self.run(conn.query(del)).await?;
                    deleted += n;
                }
            }
        }
        Ok(deleted)
    }

    /// Every key with this store's prefix, on the one server or on every cluster master.
    async fn keys(&self) -> Result<HashSet<Vec<u8>>, StoreError> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut keys = HashSet::new();
        match &self.conn {
            Connection::Single(manager) => {
                self.scan(&pattern, &mut keys, |cmd| {
                    let manager = manager.clone();
                    async move { manager.send(cmd).await }
                })
                .await?;
            }
            Connection::Cluster(conn) => {
                for (host, port) in self.masters(conn).await? {
                    self.scan(&pattern, &mut keys, |cmd| {
                        let mut conn = conn.clone();
                        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port,
                        });
                        async move { conn.route_command(&cmd, routing).await }
                    })
                    .await?;
                }
            }
        }
        Ok(keys)
    }

    /// Walks `SCAN cursor MATCH pattern COUNT 100` on one node until the cursor is back at 0.
    async fn scan<F, Fut>(&self, pattern: &str, keys: &mut HashSet<Vec<u8>>, send: F) -> Result<(), StoreError>
    where
        F: Fn(Cmd) -> Fut,
        Fut: Future<Output = redis::RedisResult<Value>>,
    {
        let mut cursor = "0".to_owned();
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(&cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(SCAN_COUNT);
            let reply = self.run(send(cmd)).await?;
            let (next, page): (String, Vec<Vec<u8>>) = FromRedisValue::from_redis_value(&reply).map_err(store_error)?;
            keys.extend(page);
            if next == "0" {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// The address of every master of the cluster, from `CLUSTER SLOTS`.
    async fn masters(&self, conn: &ClusterConnection) -> Result<Vec<(String, u16)>, StoreError> {
        let mut conn = conn.clone();
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let reply = self
            .run(conn.route_command(&cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random)))
            .await?;
        let mut masters = Vec::new();
        let Value::Array(ranges) = reply else {
            return Err(StoreError::backend("unexpected CLUSTER SLOTS reply"));
        };
        for range in ranges {
            // [start, end, [host, port, id, …], replicas…]
            let Value::Array(fields) = range else { continue };
            let Some(Value::Array(master)) = fields.get(2) else {
                continue;
            };
            let (Some(host), Some(port)) = (master.first(), master.get(1)) else {
                continue;
            };
            let host: String = FromRedisValue::from_redis_value(host).map_err(store_error)?;
            let port: u16 = FromRedisValue::from_redis_value(port).map_err(store_error)?;
            if !masters.contains(&(host.clone(), port)) {
                masters.push((host, port));
            }
        }
        Ok(masters)
    }

    /// Sends the update script to Redis so that the first write finds it cached.
    async fn preload_script(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        // On a cluster, SCRIPT LOAD goes to every master.
        let _: String = self
            .run(self.update_script.prepare_invoke().load_async(&mut conn))
            .await?;
        Ok(())
    }

    /// Runs `fut` within the command timeout, mapping its error.
    async fn run<T>(&self, fut: impl Future<Output = redis::RedisResult<T>>) -> Result<T, StoreError> {
        bounded(self.command_timeout, fut).await
    }

    /// The compare-and-set script, by hash; sent in full if Redis answers `NOSCRIPT`.
    async fn eval_update(&self, key: &str, new: &str, expected: &str, ttl: i64) -> redis::RedisResult<Value> {
        let mut conn = self.conn.clone();
        let hash = self.update_script.get_hash();
        let mut by_hash = command(
            "EVALSHA",
            6,
            hash.len() + key.len() + expected.len() + new.len() + 2 * 20,
        );
        by_hash.arg(hash).arg(1).arg(key).arg(expected).arg(new).arg(ttl);
        match conn.query(by_hash).await {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                let mut full = redis::cmd("EVAL");
                full.arg(UPDATE_SCRIPT).arg(1).arg(key).arg(expected).arg(new).arg(ttl);
                conn.query(full).await
            }
            other => other,
        }
    }
}

/// Redis command `name` with room for `args` more arguments of `bytes` bytes in all (an
/// integer counts as 20), so that building it never regrows its buffers: the hot commands
/// carry a whole record.
fn command(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(args + 1, name.len() + bytes);
    cmd.arg(name);
    cmd
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field(
                "kind",
                &match self.conn {
                    Connection::Single(_) => "single",
                    Connection::Cluster(_) => "cluster",
                },
            )
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let key = self.key(id);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
        let (data, pttl): (Option<Vec<u8>>, i64) = self.run(pipe.query_async(&mut conn)).await?;
        let Some(data) = data else { return Ok(None) };
        let expires = match pttl {
            // Gone between the GET and the PTTL: expired.
            -2 => return Ok(None),
            // A key without a TTL (connect-redis's `disableTTL`): no expiry known.
            ms if ms < 0 => None,
            ms => Some(OffsetDateTime::now_utc() + time::Duration::milliseconds(ms)),
        };
        Ok(Some(Record::new(text(data)?, expires)))
    }

    async fn load_and_touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<Option<Record>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let ttl = ttl_seconds(expires, now);
        if ttl <= 0 {
            // Touching into the past expires the record (connect-redis's EXPIRE with ttl ≤ 0).
            self.touch(id, expires).await?;
            return Ok(None);
        }
        let key = self.key(id);
        let mut conn = self.conn.clone();
        let mut getex = command("GETEX", 3, key.len() + 2 + 20);
        getex.arg(&key).arg("EX").arg(ttl);
        let data: Option<Vec<u8>> = self.run(conn.query(getex)).await?;
        match data {
            Some(data) => Ok(Some(Record::new(text(data)?, Some(now + time::Duration::seconds(ttl))))),
            None => Ok(None),
        }
    }

    async fn create(&self, id: &str, record: &Record) -> Result<bool, StoreError> {
        let key = self.key(id);
        let ttl = ttl_seconds(record.expires, OffsetDateTime::now_utc());
        let mut conn = self.conn.clone();
        if ttl <= 0 {
            // Born expired: nothing to write (connect-redis would DEL, but a create must never
            // touch a live record). It was "inserted" if the id was free.
            let mut exists = redis::cmd("EXISTS");
            exists.arg(&key);
            let exists: bool = self.run(conn.query(exists)).await?;
            return Ok(!exists);
        }
        let mut set = command("SET", 5, key.len() + record.data.len() + 4 + 20);
        set.arg(&key).arg(&record.data).arg("NX").arg("EX").arg(ttl);
        let reply: Value = self.run(conn.query(set)).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn update(&self, id: &str, record: &Record, expected: &Record) -> Result<Update, StoreError> {
        let key = self.key(id);
        let ttl = ttl_seconds(record.expires, OffsetDateTime::now_utc());
        let reply = self
            // Boxed: inline, the script call (with its `NOSCRIPT` fallback) would make this
            // call's future over 1 KiB, which costs more in the allocator than a second box.
            .run(Box::pin(self.eval_update(&key, &record.data, &expected.data, ttl)))
            .await?;
        match reply {
            Value::Int(0) => Ok(Update::Gone),
            Value::Int(1) => Ok(Update::Done),
            Value::Array(fields) => {
                let (data, pttl): (Vec<u8>, i64) =
                    FromRedisValue::from_redis_value(&Value::Array(fields)).map_err(store_error)?;
                let expires = (pttl >= 0).then(|| OffsetDateTime::now_utc() + time::Duration::milliseconds(pttl));
                Ok(Update::Conflict(Record::new(text(data)?, expires)))
            }
            _ => Err(StoreError::backend("unexpected reply from the update script")),
        }
    }

    async fn touch(&self, id: &str, expires: Option<OffsetDateTime>) -> Result<(), StoreError> {
        let key = self.key(id);
        let ttl = ttl_seconds(expires, OffsetDateTime::now_utc());
        let mut conn = self.conn.clone();
        let mut expire = command("EXPIRE", 2, key.len() + 20);
        expire.arg(&key).arg(ttl);
        let _: i64 = self.run(conn.query(expire)).await?;
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        let key = self.key(id);
        let mut conn = self.conn.clone();
        let mut del = redis::cmd("DEL");
        del.arg(&key);
        let _: i64 = self.run(conn.query(del)).await?;
        Ok(())
    }
}

/// One Redis server (reconnecting; commands sent at the same moment go as one pipeline) or a
/// cluster.
#[derive(Clone)]
enum Connection {
    Single(Batched),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Sends `cmd` and converts its reply, as `cmd.query_async(self)` would. The command is
    /// handed over, so a batched one joins the queue as it is: `query_async` lends it, and the
    /// queue then has to copy it.
    async fn query<T: FromRedisValue>(&mut self, cmd: Cmd) -> redis::RedisResult<T> {
        let reply = match self {
            Self::Single(c) => c.send(cmd).await?,
            Self::Cluster(c) => redis::aio::ConnectionLike::req_packed_command(c, &cmd).await?,
        };
        redis::from_owned_redis_value(reply.extract_error()?)
    }
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// How long bytes sent to Redis may stay unacknowledged, and the idle time before keepalive
/// probes, before the kernel gives up on a connection (Linux).
const DEAD_PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP options for every connection the store opens:
///
/// - `TCP_NODELAY`: concurrent requests share one multiplexed connection, and Nagle's algorithm
///   would hold a request's bytes back until the previous one is acknowledged;
/// - keepalive, and on Linux `TCP_USER_TIMEOUT`: a connection that went silent (a network
///   partition, a failed-over host) errors after [`DEAD_PEER_TIMEOUT`] instead of only timing
///   out command after command, and the error makes the client reconnect.
fn tcp_settings() -> TcpSettings {
    let settings = TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(TcpKeepalive::new().with_time(DEAD_PEER_TIMEOUT));
    #[cfg(target_os = "linux")]
    let settings = settings.set_user_timeout(DEAD_PEER_TIMEOUT);
    settings
}

/// Runs `fut` for at most `limit`: past it, [`StoreError::Timeout`].
async fn bounded<T>(limit: Duration, fut: impl Future<Output = redis::RedisResult<T>>) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result.map_err(store_error),
        Err(_) => Err(StoreError::Timeout),
    }
}

/// Sorts a Redis error into the store's three kinds.
fn store_error(err: RedisError) -> StoreError {
    if err.is_timeout() {
        return StoreError::Timeout;
    }
    let unreachable = err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || matches!(
            err.kind(),
            ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::TryAgain
                | ErrorKind::BusyLoadingError
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::ReadOnly
        );
    if unreachable {
        StoreError::unavailable(err)
    } else {
        StoreError::backend(err)
    }
}

/// The stored value as text; session records are JSON, so anything else is a backend fault.
fn text(data: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(data).map_err(|_| StoreError::backend("stored session value is not UTF-8"))
}

/// connect-redis's TTL: `ceil((expires − now) / 1000)` seconds on whole milliseconds, or the
/// default day without an expiry.
fn ttl_seconds(expires: Option<OffsetDateTime>, now: OffsetDateTime) -> i64 {
    let Some(expires) = expires else {
        return DEFAULT_TTL.whole_seconds();
    };
    let millis = |t: OffsetDateTime| t.unix_timestamp_nanos().div_euclid(1_000_000);
    let ms = millis(expires) - millis(now);
    let secs = ms.div_euclid(1000) + i128::from(ms.rem_euclid(1000) != 0);
    i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
}

/// `prefix` with the glob characters of `SCAN MATCH` escaped.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds_like_connect_redis() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        assert_eq!(ttl_seconds(Some(now + time::Duration::days(1)), now), 86400);
        assert_eq!(ttl_seconds(Some(now + time::Duration::milliseconds(1)), now), 1);
        assert_eq!(ttl_seconds(Some(now + time::Duration::milliseconds(1001)), now), 2);
        assert_eq!(ttl_seconds(Some(now), now), 0);
        assert_eq!(ttl_seconds(Some(now - time::Duration::milliseconds(500)), now), 0);
        assert_eq!(ttl_seconds(Some(now - time::Duration::milliseconds(1500)), now), -1);
        assert_eq!(ttl_seconds(None, now), 86400);
    }

    #[test]
    fn ttl_ignores_sub_millisecond_parts_as_javascript_dates_do() {
        let now = datetime!(2026-01-01 12:00:00.000_900 UTC);
        // 1000.1 ms apart in nanoseconds, but 1000 whole milliseconds apart: 1 s, not 2.
        let expires = datetime!(2026-01-01 12:00:01.000_001 UTC);
        assert_eq!(ttl_seconds(Some(expires), now), 1);
    }

    #[test]
    fn scan_pattern_escapes_glob_characters() {
        assert_eq!(glob_escape("sess:"), "sess:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
